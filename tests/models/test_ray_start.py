"""Ray's local start gets one retry and then a clear error (no raw timeout traceback)."""

from __future__ import annotations

import pytest

from kgclip.errors import ConfigError
from kgclip.models.encode_distributed import _start_ray


class FlakyRay:
    """Stands in for the ``ray`` module: fails its first ``fails`` starts the way a busy machine does."""

    def __init__(self, fails: int) -> None:
        self.fails, self.inits, self.shutdowns = fails, 0, 0

    def init(self, **kwargs: object) -> None:
        self.inits += 1
        if self.inits <= self.fails:
            raise RuntimeError("Timed out waiting for file /tmp/ray/session_latest/logs/gcs_server_port")

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_local_start_retries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    ray = FlakyRay(fails=1)
    _start_ray(ray, {"num_cpus": 2}, local=True)
    assert (ray.inits, ray.shutdowns) == (2, 1)


def test_failed_start_names_the_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(ConfigError, match="--address"):
        _start_ray(FlakyRay(fails=5), {"num_cpus": 2}, local=True)
    with pytest.raises(ConfigError, match="could not connect"):
        _start_ray(FlakyRay(fails=5), {"address": "ray://head:10001"}, local=False)
