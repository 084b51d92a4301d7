"""Structural diff between two graph versions."""

from __future__ import annotations

from kgclip.ontology.curation import Curator
from kgclip.ontology.diff import diff_graphs
from kgclip.ontology.model import ConceptGraph, Relation
from kgclip.testing import tiny_graph


def with_dangling(graph: ConceptGraph, *relations: Relation) -> ConceptGraph:
    """``graph`` plus relations to ids it lacks (kept aside as dangling), through the public columnar API."""
    import dataclasses

    columns = graph.columns()
    return ConceptGraph.from_columns(dataclasses.replace(columns, dangling=[*columns.dangling, *relations]),
                                     name=graph.name)


def test_identical_graphs_have_an_empty_diff() -> None:
    d = diff_graphs(tiny_graph(), tiny_graph())
    assert d.is_empty and not d and d.text() == "" and "no differences" in d.summary()


def test_diff_reports_every_kind_of_change() -> None:
    old = tiny_graph()
    cur = Curator(old.copy())
    cur.add_concept("RADLEX:RID99999", "lung nodule", parents=["RADLEX:RID5"])
    cur.update_concept("DOID:552", name="pneumonia (disease)", add_synonyms=["lung infection"])
    cur.deprecate("RADLEX:RID1392")
    cur.remove_relation("DOID:3910", "is_a", "DOID:1324")
    new = with_dangling(cur.graph, Relation("DOID:4", "is_a", "DOID:424242"))
    d = diff_graphs(old, new)
    assert [c.id for c in d.added_concepts] == ["RADLEX:RID99999"]
    assert d.removed_concepts == []
    changes = {c.id: c.changes for c in d.changed_concepts}
    assert changes["DOID:552"]["name"] == ("pneumonia", "pneumonia (disease)")
    assert changes["DOID:552"]["synonyms"][1][-1] == "lung infection"
    assert changes["RADLEX:RID1392"] == {"deprecated": (False, True)}
    assert {(r.source, r.type, r.target) for r in d.added_relations} == {
        ("RADLEX:RID99999", "is_a", "RADLEX:RID5"), ("DOID:4", "is_a", "DOID:424242")}
    assert [(r.source, r.target) for r in d.removed_relations] == [("DOID:3910", "DOID:1324")]
    assert d.changed_ids >= {"RADLEX:RID99999", "DOID:552", "RADLEX:RID1392", "DOID:3910", "DOID:1324"}
    text = d.text()
    assert "+ RADLEX:RID99999 lung nodule" in text
    assert "~ DOID:552 pneumonia (disease)" in text and "name: 'pneumonia' -> 'pneumonia (disease)'" in text
    assert "- DOID:3910 -is_a-> DOID:1324" in text
    assert "concepts +1 -0 ~2; relations +2 -1" in d.summary()
    html = d._repr_html_()
    assert "<table" in html and "RADLEX:RID99999" in html
    assert d.to_dict()["removed_relations"] == [["DOID:3910", "is_a", "DOID:1324"]]
    # reversed direction mirrors it
    back = diff_graphs(new, old)
    assert [c.id for c in back.removed_concepts] == ["RADLEX:RID99999"]
    assert len(back.added_relations) == 1 and len(back.removed_relations) == 2


def test_diff_limit_and_merge() -> None:
    old = tiny_graph()
    cur = Curator(old.copy())
    cur.merge("DOID:552", "UMLS:C0032285")
    d = diff_graphs(old, cur.graph)
    assert ("UMLS:C0032285", "replaced_by", "DOID:552") in {(r.source, r.type, r.target) for r in d.added_relations}
    lines = d.lines(limit=2)
    assert len(lines) == 3 and lines[-1].startswith("...")
