"""The codebase is clean under the project's ruff configuration (``[tool.ruff]`` in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _ruff_bin() -> str | None:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        return shutil.which("ruff")
    try:
        return find_ruff_bin()
    except FileNotFoundError:
        return shutil.which("ruff")


def test_ruff_is_clean(repo_root: Path) -> None:
    ruff = _ruff_bin()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    # ruff reads pyproject.toml from the working directory; --no-cache writes nothing into the checkout.
    proc = subprocess.run([ruff, "check", "--no-cache", "kgclip", "tests", "benchmarks"], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`ruff check kgclip tests benchmarks` found problems:\n{proc.stdout}{proc.stderr}"
