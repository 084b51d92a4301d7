"""Relation types must be declared before curated edits use them; declarations persist and undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.errors import CurationError
from kgclip.ontology.cache import load_cache, save_cache
from kgclip.ontology.curation import Curator
from kgclip.ontology.ids import BUILTIN_RELATION_TYPES
from kgclip.ontology.store import load_graph_dir, read_meta, save_graph
from kgclip.testing import tiny_graph


def test_declared_types_are_builtin_plus_used_plus_declared() -> None:
    graph = tiny_graph()
    assert set(graph.declared_relation_types) == BUILTIN_RELATION_TYPES | {"located_in", "has_symptom"}
    assert graph.declare_relation_type("treated_by") and not graph.declare_relation_type("treated_by")
    assert "treated_by" in graph.declared_relation_types and "treated_by" not in graph.relation_types
    assert graph.copy().declared_relation_types == graph.declared_relation_types


def test_undeclared_type_is_refused_until_declared_and_the_declaration_undoes(tmp_path: Path) -> None:
    save_graph(tiny_graph(), tmp_path / "g")
    before = {p.name: p.read_bytes() for p in (tmp_path / "g").iterdir()}
    cur = Curator.open(tmp_path / "g")
    with pytest.raises(CurationError, match=r"not declared.*kgclip ontology declare-relation DIR bogus_rel"):
        cur.add_relation("DOID:552", "bogus_rel", "DOID:4")
    assert {p.name: p.read_bytes() for p in (tmp_path / "g").iterdir()} == before  # nothing written
    cur.declare_relation_type("treated_by", reason="new kind of fact")
    cur.add_relation("DOID:552", "treated_by", "DOID:4")
    with pytest.raises(CurationError, match="already declared"):
        cur.declare_relation_type("is_a")
    # The declaration persists without relations (meta.json), and undo takes it back.
    cur.remove_relation("DOID:552", "treated_by", "DOID:4")
    reopened = Curator.open(tmp_path / "g")
    assert "treated_by" in reopened.graph.declared_relation_types
    assert read_meta(tmp_path / "g")["declared_relation_types"] == ["treated_by"]
    reopened.undo(3)
    assert "treated_by" not in load_graph_dir(tmp_path / "g").declared_relation_types
    assert "declared_relation_types" not in read_meta(tmp_path / "g")
    assert load_graph_dir(tmp_path / "g").fingerprint() == tiny_graph().fingerprint()


def test_friendly_spellings_of_declared_types_are_accepted_but_nothing_is_renamed() -> None:
    cur = Curator(tiny_graph())
    cur.add_relation("DOID:1324", "Has Symptom", "SYMP:0000614")
    assert cur.graph.has_relation("DOID:1324", "has_symptom", "SYMP:0000614")
    for bad in ("", "   ", "../../etc/x", "located in/x", "Bogus Rel", "is_a\u2028"):
        with pytest.raises(CurationError, match="refused"):
            cur.add_relation("DOID:1826", bad, "DOID:4")
    assert "related_to" not in cur.graph.relation_types and "etc_x" not in cur.graph.relation_types


def test_declarations_travel_through_the_cache(tmp_path: Path) -> None:
    graph = tiny_graph()
    graph.declare_relation_type("treated_by")
    back = load_cache(save_cache(graph, tmp_path / "g.safetensors"), verify=True)
    assert back.declared_relation_types == graph.declared_relation_types
