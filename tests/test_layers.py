"""The layering in ARCHITECTURE.md is a checked contract: import-linter's contracts in pyproject.toml must hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_import_contracts_are_kept(repo_root: Path) -> None:
    cli = pytest.importorskip("importlinter.cli")
    cwd = os.getcwd()
    os.chdir(repo_root)  # import-linter reads pyproject.toml from the working directory
    try:
        code = cli.lint_imports(config_filename=str(repo_root / "pyproject.toml"), no_cache=True)
    finally:
        os.chdir(cwd)
    assert code == 0, "a layer imports upward or modules import each other in a cycle: see `lint-imports` output"
