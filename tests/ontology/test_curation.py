"""Curation edits, the changelog, undo, refused edits (graph and files unchanged), is_a cycle refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.errors import CurationError
from kgclip.ontology.curation import REPLACED_BY, Changelog, Curator, find_concepts
from kgclip.ontology.model import Concept
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture()
def stored(tmp_path: Path) -> Path:
    save_graph(tiny_graph(), tmp_path / "g", changelog=Changelog())
    return tmp_path / "g"


def test_add_concept_with_parents_and_log() -> None:
    cur = Curator(tiny_graph(), author="ann")
    entry = cur.add_concept("RADLEX:RID99999", "lung nodule", synonyms=["pulmonary nodule"],
                            parents=["RADLEX:RID5"], reason="missing")
    g = cur.graph
    assert g.concept("RADLEX:RID99999").synonyms == ("pulmonary nodule",)
    assert g.parents("RADLEX:RID99999") == ["RADLEX:RID5"]
    assert entry.op == "add_concept" and entry.author == "ann" and entry.reason == "missing"
    assert set(entry.concept_ids) == {"RADLEX:RID99999", "RADLEX:RID5"} and entry.seq == 1
    assert entry.timestamp.endswith("Z")


def test_update_deprecate_relations() -> None:
    cur = Curator(tiny_graph())
    cur.update_concept("DOID:552", add_synonyms=["lung infection"], remove_synonyms=["lung inflammation"],
                       definition="Inflammation of the lung.")
    c = cur.graph.concept("DOID:552")
    assert c.synonyms == ("lung infection",) and c.definition == "Inflammation of the lung."
    cur.add_relation("DOID:1324", "Has Symptom", "SYMP:0000614")  # type names are normalised
    assert cur.graph.has_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    cur.remove_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    assert not cur.graph.has_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    cur.deprecate("RADLEX:RID1392", replaced_by="RADLEX:RID5")
    assert cur.graph.concept("RADLEX:RID1392").deprecated
    assert cur.graph.has_relation("RADLEX:RID1392", REPLACED_BY, "RADLEX:RID5")


def test_merge_moves_relations_and_names() -> None:
    g = tiny_graph()
    before_in = {(r.source, r.type) for r in g.relations("UMLS:C0032285", direction="both")}
    cur = Curator(g)
    cur.add_relation("UMLS:C0032285", "located_in", "RADLEX:RID1243")  # a relation the kept concept lacks
    cur.merge("DOID:552", "UMLS:C0032285")
    keep, other = g.concept("DOID:552"), g.concept("UMLS:C0032285")
    assert other.deprecated and not keep.deprecated
    assert keep.synonyms == ("lung inflammation", "Pneumonia", "Pneumonitis")
    assert g.has_relation("DOID:552", "located_in", "RADLEX:RID1243")
    assert [r.type for r in g.relations("UMLS:C0032285", direction="both")] == [REPLACED_BY]
    assert not any(r.target == r.source for r in g.relations())
    assert before_in  # the same_as edge between the two became a self-loop and was dropped
    assert not g.has_relation("DOID:552", "same_as", "DOID:552")


def test_undo_restores_fingerprint_exactly() -> None:
    g = tiny_graph()
    original = g.fingerprint()
    cur = Curator(g)
    cur.add_concept("RADLEX:RID99999", "lung nodule", parents=["RADLEX:RID5"])
    cur.add_concept("RADLEX:RID99998", "ground glass nodule", parents=["RADLEX:RID99999"])
    cur.add_relation("RADLEX:RID99999", "located_in", "RADLEX:RID1301")
    cur.update_concept("RADLEX:RID1301", name="lung (organ)")
    cur.deprecate("RADLEX:RID1392", replaced_by="RADLEX:RID5")
    cur.merge("DOID:552", "UMLS:C0032285")
    cur.merge("RADLEX:RID1", "RADLEX:RID3")
    cur.remove_relation("DOID:3910", "is_a", "DOID:1324")
    mid = g.fingerprint()
    undone = cur.undo(2)
    assert [e.op for e in undone] == ["remove_relation", "merge"]
    assert g.fingerprint() != mid
    cur.undo(len(cur.changelog.undoable()))
    assert g.fingerprint() == original
    assert g.validate().ok
    with pytest.raises(CurationError, match="0 can be undone"):
        cur.undo()


def test_undo_of_add_concept_in_the_middle_of_the_columns(stored: Path) -> None:
    cur = Curator.open(stored)
    cur.add_concept("AAA:1", "first by id")  # reloaded graphs are sorted by id: this one is not last
    cur2 = Curator.open(stored)
    assert cur2.graph.ids.index("AAA:1") != len(cur2.graph) - 1
    cur2.undo()
    assert cur2.graph.fingerprint() == tiny_graph().fingerprint()
    assert cur2.graph.neighborhood(["RADLEX:RID1301"], hops=1)  # indices were remapped consistently


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.add_concept("RADLEX:RID1301", "lung again"), "already exists"),
    (lambda c: c.add_concept("no namespace", "x"), "invalid id"),
    (lambda c: c.add_concept("X:1", "x", parents=["DOID:424242"]), "not in graph"),
    (lambda c: c.update_concept("DOID:424242", name="x"), "not in graph"),
    (lambda c: c.update_concept("DOID:552", name="pneumonia"), "unchanged"),
    (lambda c: c.update_concept("DOID:552", remove_synonyms=["nope"]), "no synonym"),
    (lambda c: c.deprecate("RADLEX:RID1385X"), "already deprecated"),
    (lambda c: c.merge("DOID:552", "DOID:552"), "itself"),
    (lambda c: c.merge("DOID:552", "RADLEX:RID1385X"), "deprecated"),
    (lambda c: c.add_relation("DOID:552", "is_a", "DOID:4"), "already exists"),
    (lambda c: c.add_relation("DOID:552", "is_a", "DOID:424242"), "not in graph"),
    (lambda c: c.add_relation("DOID:552", "is_a", "DOID:552"), "itself"),
    (lambda c: c.remove_relation("DOID:552", "is_a", "DOID:1324"), "does not exist"),
    (lambda c: c.add_relation("DOID:4", "is_a", "DOID:3910"), "cycle"),
    (lambda c: c.merge("DOID:4", "DOID:3910"), "cycle"),
])
def test_refused_edits_change_nothing(stored: Path, edit, match: str) -> None:  # noqa: ANN001
    cur = Curator.open(stored)
    before_fp, before_files, before_log = cur.graph.fingerprint(), files(stored), len(cur.changelog)
    with pytest.raises(CurationError, match=match) as info:
        edit(cur)
    assert "Nothing was changed" in str(info.value)
    assert cur.graph.fingerprint() == before_fp
    assert files(stored) == before_files
    assert len(cur.changelog) == before_log


def test_cycle_error_names_the_cycle() -> None:
    cur = Curator(tiny_graph())
    with pytest.raises(CurationError) as info:
        cur.add_relation("DOID:4", "is_a", "DOID:3910")
    assert "DOID:4 -is_a-> DOID:3910 -is_a-> DOID:1324 -is_a-> DOID:4" in str(info.value)
    # the cache used by the check follows later edits (a new path makes a new cycle)
    cur.add_concept("DOID:9", "x", parents=["DOID:3910"])
    with pytest.raises(CurationError, match="DOID:9"):
        cur.add_relation("DOID:4", "is_a", "DOID:9")
    cur.remove_relation("DOID:3910", "is_a", "DOID:1324")
    cur.add_relation("DOID:4", "is_a", "DOID:9")  # no longer a cycle
    assert cur.graph.validate().ok


def test_autosave_persists_and_failed_save_rolls_back(stored: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cur = Curator.open(stored, author="bob")
    cur.add_relation("DOID:1324", "has_symptom", "SYMP:0000614", reason="dyspnoea too")
    again = Curator.open(stored)
    assert again.graph.has_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    assert again.changelog.entries[-1].author == "bob"
    before_fp, before_files = cur.graph.fingerprint(), files(stored)

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("kgclip.ontology.store.save_graph", boom)
    with pytest.raises(OSError):
        cur.merge("DOID:552", "UMLS:C0032285")
    with pytest.raises(OSError):
        cur.undo()
    assert cur.graph.fingerprint() == before_fp and files(stored) == before_files
    assert cur.changelog.entries[-1].op == "add_relation"


def test_batch_saves_once(stored: Path) -> None:
    cur = Curator.open(stored)
    with cur.batch():
        cur.add_concept("X:1", "a")
        cur.add_concept("X:2", "b", parents=["X:1"])
        assert "X:1" not in load_graph_dir(stored)
    assert load_graph_dir(stored).parents("X:2") == ["X:1"]


def test_changelog_changed_ids_and_round_trip(stored: Path) -> None:
    cur = Curator.open(stored)
    cur.add_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    mark = cur.changelog.last_seq
    cur.update_concept("DOID:1826", add_synonyms=["falling sickness"])
    cur.undo()
    assert cur.changelog.changed_ids(since=mark) == {"DOID:1826"}
    assert cur.changelog.changed_ids() == {"DOID:1324", "SYMP:0000614", "DOID:1826"}
    assert not cur.changelog.full_refresh_needed(mark)
    text = (stored / "changelog.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 3
    log = Changelog.from_jsonl(text)
    assert [e.op for e in log] == ["add_relation", "update_concept", "undo"]
    assert log.to_jsonl() == text
    assert "<table>" in log._repr_html_()
    # undo survives a reload: the revert data is in the file
    cur2 = Curator.open(stored)
    cur2.undo()
    assert cur2.graph.fingerprint() == tiny_graph().fingerprint()


def test_imports_end_the_undo_history() -> None:
    log = Changelog()
    log.append("add_concept", {}, ["X:1"], revert={"remove_concepts": ["X:1"]})
    log.append("import", {"full_refresh": True}, [])
    log.append("add_concept", {}, ["X:2"], revert={"remove_concepts": ["X:2"]})
    assert [e.seq for e in log.undoable()] == [3]
    assert log.full_refresh_needed(1) and not log.full_refresh_needed(2)


def test_find_concepts_ranks_exact_first() -> None:
    g = tiny_graph()
    assert [c.id for c in find_concepts(g, "pneumonia")] == ["DOID:552", "UMLS:C0032285"]
    assert [c.id for c in find_concepts(g, "lung")][0] == "RADLEX:RID1301"  # exact before prefix / substring
    assert find_concepts(g, "PTX")[0].id == "RADLEX:RID5352"
    assert find_concepts(g, "DOID:1826")[0].name == "epilepsy"
    assert not find_concepts(g, "old atelectasis")  # deprecated hidden by default
    assert find_concepts(g, "old atelectasis", include_deprecated=True)


def test_add_concept_accepts_a_concept_record() -> None:
    cur = Curator(tiny_graph())
    cur.add_concept(Concept("X:7", "seven", synonyms=("7",), source="mine"))
    assert cur.graph.concept("X:7").source == "mine"


def test_corrupt_changelog_is_a_clear_error(stored: Path) -> None:
    from kgclip.errors import InputFormatError

    log = stored / "changelog.jsonl"
    log.write_text('{"seq": 1, "op": "add_concept"\n', encoding="utf-8")  # truncated line
    with pytest.raises(InputFormatError, match=r"changelog.jsonl:1: "):
        Changelog.load(log)
    log.write_bytes(b"\xff\xfe")
    with pytest.raises(InputFormatError, match="UTF-8"):
        Changelog.load(log)


def test_stale_curator_refuses_to_overwrite_another_writer(stored: Path) -> None:
    first, second = Curator.open(stored), Curator.open(stored)
    first.add_concept("X:1", "first writer")
    with pytest.raises(CurationError, match="changed by another writer"):
        second.add_concept("X:2", "second writer")
    assert "X:2" not in second.graph and len(second.changelog) == 0  # the refused edit was rolled back
    on_disk = load_graph_dir(stored)
    assert "X:1" in on_disk and "X:2" not in on_disk
    first.add_concept("X:3", "first again")  # the first curator's view is still current
    third = Curator.open(stored)
    third.add_concept("X:2", "second writer, reopened")
    assert {"X:1", "X:2", "X:3"} <= set(load_graph_dir(stored).ids)


def test_locked_curator_holds_the_lock_and_needs_a_graph(stored: Path, tmp_path: Path) -> None:
    from kgclip.errors import InputFormatError, LockedError
    from kgclip.ontology.locking import graph_dir_lock

    with Curator.locked(stored, author="ann") as cur:
        with pytest.raises(LockedError, match="another process"), graph_dir_lock(stored, timeout=0):
            pass  # a second lock (even from this process) is refused while the curator holds it
        with cur.batch():
            cur.add_concept("X:1", "a")
            cur.add_concept("X:2", "b", parents=["X:1"])
    with graph_dir_lock(stored, timeout=0):  # released at the end of the block
        pass
    assert load_graph_dir(stored).parents("X:2") == ["X:1"]
    with pytest.raises(InputFormatError, match="import"):
        with Curator.locked(tmp_path / "missing"):
            pass
    assert not (tmp_path / "missing").exists()


def test_fingerprint_is_memoised_until_the_next_mutation() -> None:
    """fingerprint() is cached by graph version; every kind of edit must give a fresh digest."""
    from kgclip.ontology.model import Concept, Relation
    from kgclip.testing import tiny_graph

    graph = tiny_graph()
    seen = {graph.fingerprint()}
    a, b = list(graph.ids)[:2]
    edits = [lambda: graph.add_concept(Concept("X:1", "new concept")),
             lambda: graph.add_relation(Relation("X:1", "is_a", a)),
             lambda: graph.replace_concept(Concept("X:1", "renamed concept")),
             lambda: graph.remove_relation("X:1", "is_a", a),
             lambda: graph.redirect_relations(b, a),
             lambda: graph.remove_concept("X:1")]
    for edit in edits:
        edit()
        fp = graph.fingerprint()
        assert fp == graph.copy().fingerprint()  # the memo equals a fresh computation
        seen.add(fp)
    assert len(seen) == len(edits) + 1
