"""Concurrent writers of one workspace keep every case: two processes adding at once, and an engine whose view of
the workspace is older than what another writer saved."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from kgclip.engine import Engine
from kgclip.errors import StaleArtifactError
from kgclip.testing.workspaces import add_cases_when_ready, build_tiny_workspace


@pytest.fixture()
def ws(tmp_path):
    engine = build_tiny_workspace(tmp_path, n_images=4)
    return engine, tmp_path / "data" / "images", tmp_path / "ws"


def _rows(images: Path, prefix: str, n: int) -> list[dict]:
    return [{"case_id": f"{prefix}-{i}", "image": str(images / f"synth00{i % 4}.png"),
             "text": f"Case {prefix} {i}: small pleural effusion.", "body_part": "CHEST"} for i in range(n)]


def test_concurrent_two_processes_adding_at_once_keep_every_case(ws, tmp_path):
    engine, images, path = ws
    before = {c.case_id for c in engine.cases}
    ready = [str(tmp_path / f"ready-{w}") for w in "ab"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = [pool.apply_async(add_cases_when_ready, (str(path), _rows(images, w, 3), ready[i], ready))
                   for i, w in enumerate("ab")]
        assert [r.get(timeout=600) for r in results] == [3, 3]
    loaded = Engine.load(path)
    ids = [c.case_id for c in loaded.cases]
    assert set(ids) == before | {f"{w}-{i}" for w in "ab" for i in range(3)} and len(ids) == len(set(ids))
    assert len(loaded.image_table) == len(loaded.text_table) == len(ids)
    for w in "ab":  # each added case is searchable under its own position
        assert loaded.search(text=f"Case {w} 2: small pleural effusion.", k=1)[0].case_id == f"{w}-2"


def test_concurrent_writer_behind_the_disk_merges_instead_of_overwriting(ws):
    engine, images, path = ws
    other = Engine.load(path)
    other.add_cases(_rows(images, "other", 2))
    engine.add_cases(_rows(images, "mine", 2))  # engine loaded before `other` added: re-reads the disk first
    ids = {c.case_id for c in Engine.load(path).cases}
    assert {"other-0", "other-1", "mine-0", "mine-1"} <= ids
    assert {"other-0", "mine-1"} <= {c.case_id for c in engine.cases}


def test_adding_through_an_engine_of_a_replaced_build_is_refused(ws, tmp_path):
    engine, images, path = ws
    from kgclip.engine import EngineConfig
    from kgclip.testing import tiny_graph

    Engine.build(EngineConfig(text_encoder="hashing-64", k_cases=3), path, vqa_rad=tmp_path / "data",
                 graph=tiny_graph(), show_progress=False)
    with pytest.raises(StaleArtifactError, match="Engine.load"):
        engine.add_cases(_rows(images, "late", 1))
    assert "late-0" not in {c.case_id for c in Engine.load(path).cases}
