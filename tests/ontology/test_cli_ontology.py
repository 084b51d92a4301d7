"""``kgclip ontology ...`` through ``kgclip.cli.main.main(argv)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kgclip.cli.main import main
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph

OBO = """format-version: 1.2
ontology: test

[Term]
id: DOID:4
name: disease

[Term]
id: DOID:552
name: pneumonia
synonym: "lung inflammation" EXACT []
is_a: DOID:4 ! disease

[Term]
id: DOID:1324
name: lung cancer
is_a: DOID:4 ! disease
"""


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["ontology", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def gdir(tmp_path: Path) -> Path:
    save_graph(tiny_graph(), tmp_path / "g")
    return tmp_path / "g"


def test_import_merge_replace_and_failed_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.obo"
    src.write_text(OBO, encoding="utf-8")
    into = tmp_path / "onto"
    code, out, _ = run(capsys, "import", "obo", src, "--into", into, "--name", "test")
    assert code == 0 and "concepts +3" in out
    graph = load_graph_dir(into)
    assert graph.name == "test" and graph.parents("DOID:552") == ["DOID:4"]
    meta = json.loads((into / "meta.json").read_text(encoding="utf-8"))
    assert meta["sources"][0]["format"] == "obo" and len(meta["sources"][0]["fingerprint"]) == 32
    entry = json.loads((into / "changelog.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert entry["op"] == "import" and set(entry["concept_ids"]) == {"DOID:4", "DOID:552", "DOID:1324"}

    second = tmp_path / "u.obo"
    second.write_text(OBO.replace("lung cancer", "lung cancer").replace("DOID:1324", "DOID:1826")
                      .replace("lung cancer", "epilepsy"), encoding="utf-8")
    assert run(capsys, "import", "obo", second, "--into", into)[0] == 0  # merges
    assert {"DOID:1324", "DOID:1826"} <= set(load_graph_dir(into).ids)
    assert len(json.loads((into / "meta.json").read_text(encoding="utf-8"))["sources"]) == 2

    before = files(into)
    bad = tmp_path / "bad.obo"
    bad.write_bytes(b"format-version: 1.2\n\n[Term]\nid: DOID:9\nname: bad \xff\n")
    code, _, err = run(capsys, "import", "obo", bad, "--into", into)
    assert code == 1 and "bad.obo" in err and "UTF-8" in err
    empty = tmp_path / "empty.obo"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "import", "obo", empty, "--into", into)
    assert code == 1 and "empty" in err
    assert files(into) == before  # a failed import leaves the directory untouched

    assert run(capsys, "import", "obo", src, "--into", into, "--replace")[0] == 0
    assert set(load_graph_dir(into).ids) == {"DOID:4", "DOID:552", "DOID:1324"}


def test_import_reader_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.obo"
    src.write_text(OBO, encoding="utf-8")
    code, _, _ = run(capsys, "import", "obo", src, "--into", tmp_path / "o", "--option", "source=mine")
    assert code == 0 and {c.source for c in load_graph_dir(tmp_path / "o").concepts()} == {"mine"}
    code, _, err = run(capsys, "import", "obo", src, "--into", tmp_path / "p", "--option", "bogus=1")
    assert code == 1 and "has no option 'bogus'" in err and not (tmp_path / "p").exists()
    code, _, err = run(capsys, "import", "no-such-format", src, "--into", tmp_path / "p")
    assert code == 1 and "obo" in err  # the error lists the valid formats


def test_info_show_search(gdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", gdir)
    assert code == 0 and "20 concepts" in out and "is_a" in out and "graph is valid" in out
    code, out, _ = run(capsys, "info", gdir, "--json")
    assert json.loads(out)["counts"]["concepts"] == 20
    code, out, _ = run(capsys, "show", gdir, "RADLEX:RID1301")
    assert code == 0 and "lung" in out and "-part_of-> RADLEX:RID1243 (thorax)" in out
    assert "<-located_in- RADLEX:RID28530 (consolidation)" in out
    assert run(capsys, "show", gdir, "RID1301")[0] == 0  # un-namespaced ids are normalised
    code, _, err = run(capsys, "show", gdir, "DOID:424242")
    assert code == 1 and "search" in err
    code, out, _ = run(capsys, "search", gdir, "pleural")
    assert code == 0 and out.splitlines()[0] == "RADLEX:RID1362\tpleura"  # synonym "pleural membrane", shorter name
    assert "RADLEX:RID4872\tpleural effusion" in out


def test_edits_log_undo_validate(gdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = load_graph_dir(gdir).fingerprint()
    assert run(capsys, "add-concept", gdir, "RADLEX:RID99999", "--name", "lung nodule", "--synonym", "nodule",
               "--parent", "RADLEX:RID5", "--author", "ann", "--reason", "missing")[0] == 0
    assert run(capsys, "add-relation", gdir, "RADLEX:RID99999", "located_in", "RADLEX:RID1301")[0] == 0
    assert run(capsys, "update-concept", gdir, "DOID:552", "--add-synonym", "lung infection")[0] == 0
    assert run(capsys, "deprecate", gdir, "RADLEX:RID1392", "--replaced-by", "RADLEX:RID5")[0] == 0
    assert run(capsys, "merge", gdir, "DOID:552", "UMLS:C0032285")[0] == 0
    assert run(capsys, "remove-relation", gdir, "DOID:3910", "is_a", "DOID:1324")[0] == 0
    g = load_graph_dir(gdir)
    assert g.concept("UMLS:C0032285").deprecated and "RADLEX:RID99999" in g
    code, out, _ = run(capsys, "log", gdir)
    assert code == 0 and len(out.splitlines()) == 6 and "by ann" in out and "(missing)" in out
    code, out, _ = run(capsys, "log", gdir, "--since", "4", "--changed-ids")
    assert {"DOID:552", "UMLS:C0032285", "DOID:3910", "DOID:1324"} <= set(out.split())

    before = files(gdir)
    code, _, err = run(capsys, "add-relation", gdir, "DOID:4", "is_a", "DOID:3910")  # 3910 no longer under 1324
    assert code == 0
    code, _, err = run(capsys, "add-relation", gdir, "DOID:3910", "is_a", "DOID:4")
    assert code == 1 and "cycle" in err and "DOID:3910 -is_a-> DOID:4 -is_a-> DOID:3910" in err
    code, _, err = run(capsys, "add-relation", gdir, "DOID:4", "is_a", "DOID:424242")
    assert code == 1 and "DOID:424242" in err
    assert files(gdir) != before  # the first (valid) edit was saved ...
    after_valid = files(gdir)
    run(capsys, "merge", gdir, "DOID:4", "DOID:4")
    assert files(gdir) == after_valid  # ... the refused ones changed nothing

    code, out, _ = run(capsys, "undo", gdir, "-n", "7")
    assert code == 0 and out.count("undone:") == 7
    assert load_graph_dir(gdir).fingerprint() == original
    code, _, err = run(capsys, "undo", gdir)
    assert code == 1 and "0 can be undone" in err
    code, out, _ = run(capsys, "validate", gdir)
    assert code == 0 and "valid" in out


def test_validate_fails_on_dangling(gdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = gdir / "relations.tsv"
    rel.write_text(rel.read_text(encoding="utf-8") + "DOID:4\tis_a\tDOID:424242\thand\n", encoding="utf-8")
    with pytest.warns(UserWarning):
        code, out, _ = run(capsys, "validate", gdir)
    assert code == 1 and "DOID:424242" in out
    code, _, err = run(capsys, "validate", gdir, "--strict")  # the hand edit itself is an error under --strict
    assert code == 1 and "relations.tsv differs" in err


def test_diff_export_cache(gdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    save_graph(tiny_graph(), other)
    run(capsys, "add-concept", other, "X:1", "--name", "new thing", "--parent", "DOID:4")
    code, out, _ = run(capsys, "diff", gdir, other)
    assert code == 0 and "+ X:1 new thing" in out and "+ X:1 -is_a-> DOID:4" in out
    code, out, _ = run(capsys, "diff", gdir, other, "--json")
    assert json.loads(out)["added_concepts"] == ["X:1"]
    for fmt in ("turtle", "xml"):
        out_file = tmp_path / f"x.{fmt}"
        code, out, _ = run(capsys, "export", other, "--format", fmt, "--out", out_file)
        assert code == 0 and out_file.stat().st_size > 1000
    cache = tmp_path / "g.safetensors"
    assert run(capsys, "cache", other, "--out", cache)[0] == 0
    code, out, _ = run(capsys, "diff", other, cache)
    assert code == 0 and "no differences" in out


def test_ontology_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ontology"]) == 2
    assert "import" in capsys.readouterr().out


@pytest.mark.data
def test_import_real_radlex_csv(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = shared_data / "ontologies" / "radlex" / "Radlex.csv"
    code, out, _ = run(capsys, "import", "radlex-csv", csv, "--into", tmp_path / "radlex")
    assert code == 0
    graph = load_graph_dir(tmp_path / "radlex")
    assert len(graph) > 45_000 and graph.num_relations > 45_000
    entry = json.loads((tmp_path / "radlex" / "changelog.jsonl").read_text(encoding="utf-8"))
    assert entry["args"]["full_refresh"] is True and entry["concept_ids"] == []
    code, out, _ = run(capsys, "search", tmp_path / "radlex", "pneumothorax", "--limit", "3")
    assert code == 0 and "pneumothorax" in out.splitlines()[0]


# ---------------------------------------------------------------------------------------------- concurrent writers
def _hold_lock_then_edit(directory: str, loaded: Any, release: Any, hold: float, concept_id: str) -> None:
    """Child process: open the graph under its writers' lock, signal, hold it (up to ``hold`` s), then edit."""
    from kgclip.ontology.curation import Curator

    with Curator.locked(directory, author="first") as curator:
        loaded.set()
        release.wait(hold)
        curator.add_concept(concept_id, "added while holding the lock")


def _spawn_holder(directory: Path, concept_id: str, hold: float) -> tuple[Any, Any]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may hold threads (torch, tqdm)
    loaded, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_lock_then_edit, args=(str(directory), loaded, release, hold, concept_id))
    child.start()
    assert loaded.wait(60), "the child process never opened the graph"
    return child, release


def test_simultaneous_cli_edits_are_serialised(gdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The child has loaded the graph and edits it a moment later. Without the lock this process would load the
    # graph before the child's edit and save over it; with the lock it waits and starts from the child's result.
    child, _ = _spawn_holder(gdir, "X:1", hold=1.0)
    try:
        code, out, err = run(capsys, "add-concept", gdir, "X:2", "--name", "second writer", "--wait", "60")
    finally:
        child.join(60)
    assert child.exitcode == 0 and code == 0, err
    graph = load_graph_dir(gdir)
    assert "X:1" in graph and "X:2" in graph
    log = [json.loads(line) for line in (gdir / "changelog.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["op"], e["concept_ids"][0]) for e in log] == [("add_concept", "X:1"), ("add_concept", "X:2")]


def test_second_writer_gives_up_with_locked_error(gdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    child, release = _spawn_holder(gdir, "X:1", hold=60.0)
    try:
        before = files(gdir)
        code, _, err = run(capsys, "add-concept", gdir, "X:2", "--name", "too late", "--wait", "0.3")
        assert code == 1 and "another process" in err and f"pid {child.pid}" in err and "Retry" in err
        assert files(gdir) == before  # nothing written by the refused writer
        # imports take the same lock
        src = gdir.parent / "t.obo"
        src.write_text(OBO, encoding="utf-8")
        code, _, err = run(capsys, "import", "obo", src, "--into", gdir, "--wait", "0.3")
        assert code == 1 and "another process" in err
        assert files(gdir) == before
    finally:
        release.set()
        child.join(60)
    assert child.exitcode == 0
    graph = load_graph_dir(gdir)
    assert "X:1" in graph and "X:2" not in graph
    assert run(capsys, "add-concept", gdir, "X:2", "--name", "now it works")[0] == 0
