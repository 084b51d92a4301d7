"""Curated graph directories survive crashes and odd text: crash injection at every write and rename of a save,
line separators in names, and undo after recovery.

Each crash test forks a child that makes one curation edit and is killed (``os._exit``, so no ``finally`` and no
cleanup runs, as in a power cut) at one step of the save; the parent then opens the directory as the next user would
and checks that it holds either the whole edit or none of it, that the changelog agrees with ``concepts.tsv``, and
that ``undo -n 2`` works afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.errors import CurationError
from kgclip.ontology import commit
from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog
from kgclip.ontology.curation import Curator
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="crash injection forks a child (POSIX only)")

FILES = ("changelog.jsonl", "concepts.tsv", "relations.tsv", "meta.json")  # in the order a save stages them
# Every step of a save that changes all four files, in order: staging each file, writing the journal (the commit
# point) and renaming it into place, the four renames, deleting the journal.
STEPS = ([f"write {name}" for name in FILES] + ["write journal", "rename journal"]
         + [f"rename {name}" for name in FILES] + ["delete journal"])
# Crash before each step; for writes also half-way through (a torn file); and after the last step.
CRASH_POINTS = [(i, "before") for i in range(len(STEPS))] + \
               [(i, "torn") for i, step in enumerate(STEPS) if step.startswith("write")] + [(len(STEPS), "before")]


def _ontology(*argv: str) -> int:
    return main(["ontology", *argv])


def _edits_then(directory: Path) -> None:
    """The directory's history before the crash: two undoable edits."""
    save_graph(tiny_graph(), directory)
    with Curator.locked(directory, author="ann") as cur:
        cur.update_concept("DOID:1826", add_synonyms=["falling sickness"], reason="first")
        cur.add_concept("DOID:9000002", "pleural nodule", parents=["DOID:4"], reason="second")


def _add(directory: Path) -> None:
    with Curator.locked(directory, author="bob") as cur:
        cur.add_concept("DOID:9000001", "lung nodule", parents=["DOID:4"], reason="the edit that crashes")


def _undo(directory: Path) -> None:
    with Curator.locked(directory, author="bob") as cur:
        cur.undo(1, reason="the undo that crashes")


def _in_child(directory: Path, action: Callable[[Path], None], crash: tuple[int, str] | None) -> tuple[int, list[str]]:
    """Run ``action`` in a forked child that dies at ``crash`` = (step index, "before" | "torn"); returns the exit
    code and the steps it reached."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            steps: list[str] = []

            def step(label: str, path: Path | None = None, data: bytes | None = None) -> None:
                if crash is not None and len(steps) == crash[0]:
                    if crash[1] == "torn" and path is not None and data is not None:
                        path.write_bytes(data[: len(data) // 2])
                    os._exit(86)
                steps.append(label)

            real_write, real_journal, real_replace, real_unlink = (commit._write_synced, commit.atomic_write_bytes,
                                                                   os.replace, Path.unlink)

            def write(path: Path, data: bytes) -> None:
                step(f"write {path.name[1:].rsplit('.', 2)[0]}", path, data)
                real_write(path, data)

            def journal(path: Path, data: bytes) -> None:
                step("write journal", path.parent / f".{path.name}.torn.tmp", data)
                real_journal(path, data)

            def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
                name = Path(dst).name
                step("rename journal" if name.startswith(".commit-") else f"rename {name}")
                real_replace(src, dst)

            def unlink(self: Path, missing_ok: bool = False) -> None:
                if self.name.startswith(".commit-"):
                    step("delete journal")
                real_unlink(self, missing_ok=missing_ok)

            commit._write_synced, commit.atomic_write_bytes, os.replace = write, journal, replace  # type: ignore
            Path.unlink = unlink  # type: ignore[method-assign]
            action(directory)
            if crash is not None and len(steps) == crash[0]:
                os._exit(86)  # the crash "after the last step"
            os.write(write_end, json.dumps(steps).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - reported to the parent through the exit code and stderr
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reached = json.loads(pipe.read() or b"[]")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), reached


def _state(directory: Path) -> tuple[str, list[int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file that disagrees with meta.json would warn
        graph = load_graph_dir(directory, strict=True)
    return graph.fingerprint(), [e.seq for e in Changelog.load(directory / CHANGELOG_FILE)]


@pytest.mark.parametrize("action", [_add, _undo], ids=["edit", "undo"])
def test_crash_steps_are_the_ones_injected(tmp_path: Path, action: Callable[[Path], None]) -> None:
    _edits_then(tmp_path / "g")
    code, reached = _in_child(tmp_path / "g", action, None)
    assert code == 0 and reached == STEPS


def _then_undo_two(directory: Path) -> str:
    """What the next user does: one more edit, then ``kgclip ontology undo -n 2``; returns the fingerprint."""
    assert _ontology("add-relation", str(directory), "DOID:1324", "located_in", "RADLEX:RID1243") == 0
    assert _ontology("undo", str(directory), "-n", "2") == 0
    return load_graph_dir(directory, strict=True).fingerprint()


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[bool, tuple]]]:
    """Per action: a directory holding the history before it, and for "not committed" / "committed" the state
    after the crash and the fingerprint after the next user's edit and undo -n 2."""
    out = {}
    for action in (_add, _undo):
        root = tmp_path_factory.mktemp(action.__name__)
        _edits_then(root / "old")
        shutil.copytree(root / "old", root / "new")
        action(root / "new")
        expected = {}
        for committed in (False, True):
            d = root / ("new" if committed else "old")
            state = _state(d)
            shutil.copytree(d, root / f"{d.name}-next")
            expected[committed] = (state, _then_undo_two(root / f"{d.name}-next"))
        out[action.__name__] = (root / "old", expected)
    return out


@pytest.mark.parametrize("action", [_add, _undo], ids=["edit", "undo"])
@pytest.mark.parametrize("point", CRASH_POINTS, ids=[f"{w}-{STEPS[i] if i < len(STEPS) else 'done'}".replace(" ", "_")
                                                     for i, w in CRASH_POINTS])
def test_crash_during_save_recovers_whole(tmp_path: Path, action: Callable[[Path], None], point: tuple[int, str],
                                          references: dict[str, tuple[Path, dict[bool, tuple]]]) -> None:
    old, expected = references[action.__name__]
    directory = tmp_path / "g"
    shutil.copytree(old, directory)
    code, _ = _in_child(directory, action, point)
    assert code == 86, "the child should have been killed at the injected step"
    committed = point[0] > STEPS.index("rename journal")  # the rename of the journal is the commit point
    state, after_undo = expected[committed]
    # The next writer, straight after the crash, works normally (an edit, then undo -n 2) ...
    shutil.copytree(directory, tmp_path / "writer")
    assert _then_undo_two(tmp_path / "writer") == after_undo
    assert [p.name for p in (tmp_path / "writer").iterdir() if p.name.startswith(".") and p.name != ".lock"] == []
    # ... and a reader sees the whole edit or none of it, with the changelog agreeing with concepts.tsv.
    assert _state(directory) == state


def test_line_separators_in_names_keep_the_directory_usable(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # A source whose names hold U+2028, U+2029 and U+0085 (kgclip <= 0.1 wrote them unescaped into the changelog).
    odd = "pleural\u2028effusion\u2029left\x85side"
    obo = tmp_path / "odd.obo"
    obo.write_text(f"format-version: 1.2\n\n[Term]\nid: DOID:4\nname: disease\n\n[Term]\nid: DOID:9\nname: {odd}\n"
                   "is_a: DOID:4\n", encoding="utf-8")
    directory = tmp_path / "g"
    assert _ontology("import", "obo", str(obo), "--into", str(directory)) == 0
    assert load_graph_dir(directory).name_of("DOID:9") == odd
    # Edits of that concept whose reason and author hold the same characters (curated names may not: refused), then
    # log, info, undo, and more edits.
    with Curator.locked(directory, author="ann\x85lee") as cur:
        cur.update_concept("DOID:9", definition="fluid", reason=f"why\u2029{odd}")
        cur.add_concept("DOID:10", "plain child", parents=["DOID:9"], reason=odd)
        with pytest.raises(CurationError, match="U\\+2028"):
            cur.update_concept("DOID:9", definition="def\u2028with\x85breaks")
    text = (directory / CHANGELOG_FILE).read_text(encoding="utf-8")
    assert len(text.split("\n")) == len(text.splitlines()) + 1 == 4  # one entry per line, for every line splitter
    for argv in (["log", str(directory)], ["info", str(directory)], ["undo", str(directory), "-n", "2"],
                 ["add-relation", str(directory), "DOID:9", "is_a", "DOID:4"], ["log", str(directory)]):
        assert _ontology(*argv) in (0, 1), argv
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    log = Changelog.load(directory / CHANGELOG_FILE)
    assert [e.op for e in log] == ["import", "update_concept", "add_concept", "undo"]
    assert load_graph_dir(directory).concept("DOID:9").definition == ""


def test_changelog_written_by_older_versions_with_raw_separators_still_loads(tmp_path: Path) -> None:
    log = Changelog()
    log.append("update_concept", {"id": "DOID:9", "name": "a\u2028b"}, ["DOID:9"], reason="c\x85d",
               revert={"restore_concepts": []})
    raw = json.dumps(json.loads(log.to_jsonl()), ensure_ascii=False, sort_keys=True) + "\n"
    assert "\u2028" in raw and "\x85" in raw  # the old, unescaped form
    path = tmp_path / CHANGELOG_FILE
    path.write_text(raw + raw.replace('"seq": 1', '"seq": 2'), encoding="utf-8")
    assert [e.seq for e in Changelog.load(path)] == [1, 2]
    assert Changelog.load(path).entries[0].args["name"] == "a\u2028b"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_suggestion_files_keep_names_with_line_separators(tmp_path: Path) -> None:
    from kgclip.errors import InputFormatError
    from kgclip.ontology.suggestions import Suggestion, read_suggestions, write_suggestions

    odd = Suggestion("same_as", "DOID:9", "RADLEX:RID5", 0.9, "name", why="a\u2028b", source_name="x\x85y",
                     target_name="p\u2029q")
    write_suggestions(tmp_path / "s.jsonl", [odd], {"g": "fp"})
    back = read_suggestions(tmp_path / "s.jsonl")
    assert [(s.why, s.source_name, s.target_name) for s in back.suggestions] == [("a\u2028b", "x\x85y", "p\u2029q")]
    (tmp_path / "s.jsonl").write_bytes(b'{"type": "header"}\n\xff\n')
    with pytest.raises(InputFormatError, match="not UTF-8"):
        read_suggestions(tmp_path / "s.jsonl")
