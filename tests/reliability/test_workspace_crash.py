"""Workspace mutations survive a crash at every durable step: the workspace afterwards loads as the previous
version or the new one (never a mix, never refused), and the next writer cleans up what the crash left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import kgclip.engine.store as store
from kgclip.engine import Engine
from kgclip.testing.workspaces import build_tiny_workspace

STAGES = ("staged", "aside", "swapped")
REPO = Path(__file__).resolve().parents[2]


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so no cleanup handler of the mutation runs."""


@pytest.fixture()
def ws(tmp_path):
    engine = build_tiny_workspace(tmp_path, n_images=4)
    return engine, tmp_path / "data" / "images", tmp_path / "ws"


def _crash_at(monkeypatch, stage):
    def checkpoint(name):
        if name == stage:
            raise SimulatedCrash(name)

    monkeypatch.setattr(store, "_checkpoint", checkpoint)


def _leftovers(ws):
    return sorted(p.name for p in ws.parent.iterdir() if p.name.startswith(f".{ws.name}.") and "lock" not in p.name)


def _new_case(images, i):
    return {"case_id": f"crash-{i}", "image": str(images / "synth000.png"), "text": f"Pneumothorax number {i}.",
            "body_part": "CHEST"}


@pytest.mark.parametrize("stage", STAGES)
def test_add_cases_crash_at_each_rename_recovers(ws, monkeypatch, stage):
    engine, images, path = ws
    before = [c.case_id for c in engine.cases]
    _crash_at(monkeypatch, stage)
    with pytest.raises(SimulatedCrash):
        engine.add_cases([_new_case(images, 1)])
    monkeypatch.setattr(store, "_checkpoint", lambda name: None)
    after = [c.case_id for c in Engine.load(path).cases]  # recovery on open
    committed = stage == "swapped"
    assert after == (before + ["crash-1"] if committed else before)
    fresh = Engine.load(path)
    fresh.add_cases([_new_case(images, 2)])
    assert [c.case_id for c in Engine.load(path).cases][-1] == "crash-2"
    assert _leftovers(path) == []


@pytest.mark.parametrize("stage", STAGES)
def test_rebuild_crash_at_each_rename_recovers(ws, monkeypatch, stage):
    engine, images, path = ws
    engine.add_cases([_new_case(images, 1)])
    _crash_at(monkeypatch, stage)
    with pytest.raises(SimulatedCrash):
        Engine.refresh(path, show_progress=False)
    monkeypatch.setattr(store, "_checkpoint", lambda name: None)
    loaded = Engine.load(path)
    assert "crash-1" in {c.case_id for c in loaded.cases}  # kept by the rebuild and by the old version alike
    assert loaded.search(text="pneumothorax", k=1)[0].case_id == "crash-1"
    loaded.add_cases([_new_case(images, 2)])
    assert _leftovers(path) == []


def test_crash_while_writing_leaves_previous_version(ws, monkeypatch):
    engine, images, path = ws
    before = len(engine.cases)

    def boom(*args, **kwargs):
        raise SimulatedCrash("mid-write")

    monkeypatch.setattr("kgclip.engine.adding.save_cases", boom)
    with pytest.raises(SimulatedCrash):
        engine.add_cases([_new_case(images, 1)])
    monkeypatch.undo()
    assert _leftovers(path)  # the unfinished staging directory is still there...
    assert len(Engine.load(path).cases) == before
    assert _leftovers(path) == []  # ...until the next load (or writer) removes it
    Engine.load(path).add_cases([_new_case(images, 2)])


def test_failed_add_changes_nothing(ws, tmp_path):
    engine, images, path = ws
    before = (path / "cases.json").read_bytes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    from kgclip.errors import ImageReadError

    with pytest.raises(ImageReadError):
        engine.add_cases([_new_case(images, 1), {"case_id": "bad", "image": str(bad), "text": "x"}])
    assert (path / "cases.json").read_bytes() == before and _leftovers(path) == []
    assert len(Engine.load(path).cases) == len(engine.cases)


_KILLER = """
import sys, time
import kgclip.engine.store as store
from kgclip.engine import Engine

def hang(name):
    if name == sys.argv[2]:
        print("IN-SWAP", flush=True)
        time.sleep(120)

store._checkpoint = hang
Engine.load(sys.argv[1]).add_cases([{"case_id": "killed", "image": sys.argv[3], "text": "Pneumothorax."}])
"""


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_crash_sigkill_at_each_rename_recovers(ws, stage):
    engine, images, path = ws
    before = [c.case_id for c in engine.cases]
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, str(path), stage, str(images / "synth001.png")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "IN-SWAP", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = [c.case_id for c in Engine.load(path).cases]
    assert after == (before + ["killed"] if stage == "swapped" else before)
    Engine.load(path).add_cases([_new_case(images, 2)])
    assert _leftovers(path) == []
