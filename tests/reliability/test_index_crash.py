"""Index directories survive a writer killed at every step of a save: every file write (before it and torn half-way),
both renames of the directory swap, and the deletion of the previous version.

Each test forks a child that runs ``kgclip index add`` and is killed (``os._exit``: no ``finally``, no cleanup, as in
a power cut) at one step of the save. The parent then uses the index as the next user would: ``index info``,
``search`` and ``add`` must work, hold either the whole add or none of it, and no ``.new-*`` / ``.old-*`` leftover may
remain.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path

import pytest

import kgclip.index.persistence as persistence
from kgclip.cli.main import main

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="crash injection forks a child (POSIX only)")

FILES = ("index.faiss", "metadata.sqlite", "manifest.json")  # in the order a Flat index save writes them
STEPS = [f"write {name}" for name in FILES] + ["rename live -> old", "rename new -> live", "delete old"]
CRASH_POINTS = [(i, "before") for i in range(len(STEPS))] + \
               [(i, "torn") for i, step in enumerate(STEPS) if step.startswith("write")] + [(len(STEPS), "before")]


def _rows(path: Path, start: int, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"doc-{i}", "text": f"finding number {i}", "modality": "CT"}) + "\n"
                            for i in range(start, start + n)))
    return path


def _info(ix: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["index", "info", str(ix), "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _killed_during_add(ix: Path, more: Path, step: int, mode: str) -> None:
    """Fork a child that runs ``index add`` and dies at ``STEPS[step]`` (``mode`` "before" it or "torn" half-way)."""
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 137, "the child was meant to die mid-save"
        return
    try:  # the child: never returns
        counter = {"n": 0}

        def at_step(name: str) -> bool:
            here = counter["n"]
            counter["n"] += 1
            return here == step

        real_write, real_replace, real_rmtree = persistence._write_synced, os.replace, shutil.rmtree

        def write(path: Path, data: bytes) -> None:
            if at_step(f"write {path.name}"):
                if mode == "torn":
                    with open(path, "wb") as handle:
                        handle.write(data[: len(data) // 2])
                os._exit(137)
            real_write(path, data)

        def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            if ".new-" in str(src) or ".old-" in str(dst):
                if at_step("rename"):
                    os._exit(137)
            real_replace(src, dst)

        def rmtree(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
            if ".old-" in str(path) and at_step("delete old"):
                os._exit(137)
            real_rmtree(path, *args, **kwargs)

        persistence._write_synced = write
        os.replace = replace
        shutil.rmtree = rmtree
        main(["index", "add", str(ix), "--input", str(more)])
        os._exit(137 if counter["n"] == step else 3)  # the last crash point: after every step
    except BaseException:  # noqa: BLE001 - the child must never return into pytest
        traceback.print_exc(file=sys.stderr)
        os._exit(4)


@pytest.mark.parametrize("step, mode", CRASH_POINTS,
                         ids=[f"{mode}-{STEPS[i] if i < len(STEPS) else 'end'}" for i, mode in CRASH_POINTS])
def test_index_save_crash_point_recovers(tmp_path: Path, step: int, mode: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    ix = tmp_path / "ix"
    assert main(["index", "build", str(ix), "--input", str(_rows(tmp_path / "a.jsonl", 0, 20)),
                 "--encoder", "hashing-64"]) == 0
    _killed_during_add(ix, _rows(tmp_path / "b.jsonl", 20, 5), step, mode)
    if step == STEPS.index("rename new -> live"):
        assert not ix.exists()  # the window the recovery is for: only the previous version, set aside
    items = _info(ix, capsys)["counts"]["items"]
    committed = step > STEPS.index("rename new -> live")
    assert items == (25 if committed else 20)
    assert not [p.name for p in tmp_path.glob(".ix.*") if p.name != ".ix.lock"], "leftover temporary copies"
    assert main(["index", "search", str(ix), "finding number 3", "--filter", "modality=CT", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and all(h["metadata"]["modality"] == "CT" for h in hits)
    assert main(["index", "add", str(ix), "--input", str(_rows(tmp_path / "c.jsonl", 100, 3))]) == 0
    assert _info(ix, capsys)["counts"]["items"] == items + 3


def test_index_crash_recovery_waits_for_a_live_writer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A reader must not "recover" a save still in progress: while a writer holds the lock, its temporary
    directory and the set-aside previous version are left alone."""
    ix = tmp_path / "ix"
    assert main(["index", "build", str(ix), "--input", str(_rows(tmp_path / "a.jsonl", 0, 5)),
                 "--encoder", "hashing-64"]) == 0
    pending = tmp_path / ".ix.new-inprogress"
    pending.mkdir()
    with persistence.DirectoryLock(ix, timeout=0):
        persistence.recover_interrupted_save(ix)
        assert pending.exists()
    persistence.recover_interrupted_save(ix)  # no writer any more: an abandoned copy
    assert not pending.exists() and _info(ix, capsys)["counts"]["items"] == 5
