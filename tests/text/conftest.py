"""Text-side test setup: every test gets its own KGCLIP_HOME, so lexicon caches never leak between tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGCLIP_HOME", str(tmp_path_factory.mktemp("kgclip_home")))
