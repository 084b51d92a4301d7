"""Shared set-up of the engine tests: a small synthetic workspace (12 VQA-RAD-style images, the tiny graph)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.engine import Engine, EngineConfig
from kgclip.testing import tiny_graph
from kgclip.testing.synthetic import make_vqa_folder

SMALL_CONFIG = EngineConfig(text_encoder="hashing-64")


def build_small(data: Path, workspace: Path) -> Engine:
    """(Re)build ``workspace`` from the synthetic folder ``data`` with the tiny graph (added cases are kept)."""
    return Engine.build(SMALL_CONFIG, workspace, vqa_rad=data, graph=tiny_graph(), show_progress=False)


@pytest.fixture(scope="module")
def small_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Path]:
    """A freshly built workspace of the module (tests that change it get their own module's copy)."""
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=12, with_test=False)
    return build_small(data, tmp_path_factory.mktemp("ws") / "ws"), data
