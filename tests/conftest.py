"""Shared test setup: strict markers, skips for ``slow`` / ``gpu`` / ``data``, and session fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.config import shared_data_dir


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - torch missing or broken means no GPU
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--runslow")
    have_data = shared_data_dir() is not None
    have_gpu = _cuda_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        if "data" in item.keywords and not have_data:
            item.add_marker(pytest.mark.skip(reason="needs ../shared/data (or KGCLIP_SHARED_DATA)"))
        if "gpu" in item.keywords and not have_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests using it must be marked ``data`` (they are skipped when it is absent)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("needs ../shared/data (or KGCLIP_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kgclip demo`` run once per test session on what the package ships (tests share it read-only).

    ``KGCLIP_TEST_DEMO_DIR`` names a demo workspace already built by this checkout's code, to skip the build while
    iterating on tests.
    """
    import os

    from kgclip.cli.main import main

    prebuilt = os.environ.get("KGCLIP_TEST_DEMO_DIR")
    if prebuilt and (Path(prebuilt) / "demo.html").is_file():
        return Path(prebuilt)
    out = tmp_path_factory.getbasetemp() / "kgclip-demo"
    if not (out / "demo.html").is_file():
        assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out
