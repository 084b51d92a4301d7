"""Concept search core: expansion through is_a descendants and same_as partners, with paths; taxonomy levels."""

from __future__ import annotations

import pytest

from kgclip.errors import UnknownConceptError
from kgclip.ontology.expand import expand_concept
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.taxonomy import taxonomy_stats, useful_ancestor
from kgclip.testing import tiny_graph


def pneumonias() -> ConceptGraph:
    return ConceptGraph.from_records([
        Concept("DOID:552", "pneumonia"), Concept("DOID:1", "lobar pneumonia"),
        Concept("DOID:2", "left lower lobe pneumonia"), Concept("DOID:3", "old pneumonia term", deprecated=True),
        Concept("RADLEX:RID5350", "pneumonia"), Concept("RADLEX:RID9", "aspiration pneumonia"),
        Relation("DOID:1", "is_a", "DOID:552"), Relation("DOID:2", "is_a", "DOID:1"),
        Relation("DOID:3", "is_a", "DOID:552"), Relation("RADLEX:RID9", "is_a", "RADLEX:RID5350"),
        Relation("RADLEX:RID5350", "same_as", "DOID:552")], name="p")


def test_expansion_follows_is_a_down_and_same_as_both_ways_with_paths() -> None:
    exp = expand_concept(pneumonias(), "DOID:552")
    paths = {m.concept_id: m.path_text for m in exp}
    assert exp.ids()[0] == "DOID:552" and exp.matches[0].via == "query"
    assert paths["DOID:1"] == "lobar pneumonia ⊂ pneumonia"
    assert paths["DOID:2"] == "left lower lobe pneumonia ⊂ lobar pneumonia ⊂ pneumonia"
    assert paths["RADLEX:RID5350"] == "pneumonia ≡ pneumonia"
    assert paths["RADLEX:RID9"] == "aspiration pneumonia ⊂ pneumonia ≡ pneumonia"
    assert exp.match("RADLEX:RID9").via == "same_as" and exp.match("DOID:2").depth == 2
    assert "DOID:3" not in exp  # deprecated concepts never match
    assert "lobar pneumonia" in exp.terms()
    assert "DOID:552" in exp._repr_html_()


def test_switches_and_limits() -> None:
    g = pneumonias()
    assert expand_concept(g, "DOID:552", descendants=False).ids() == ["DOID:552", "RADLEX:RID5350"]
    assert expand_concept(g, "DOID:552", same_as=False).ids() == ["DOID:552", "DOID:1", "DOID:2"]
    assert expand_concept(g, "DOID:552", max_depth=1, same_as=False).ids() == ["DOID:552", "DOID:1"]
    small = expand_concept(g, "DOID:552", max_concepts=2)
    assert len(small) == 2 and small.truncated
    assert expand_concept(g, "DOID:2").ids() == ["DOID:2"]  # a leaf stands for itself


def test_unknown_concept_is_refused() -> None:
    with pytest.raises(UnknownConceptError, match="kgclip ontology search"):
        expand_concept(tiny_graph(), "DOID:nope")


def test_taxonomy_depth_and_descendants_follow_edits() -> None:
    g = pneumonias()
    stats = taxonomy_stats(g)
    assert stats.depth[g.index_of("DOID:552")] == 0 and stats.depth[g.index_of("DOID:2")] == 2
    assert stats.descendants[g.index_of("DOID:552")] == 3  # DOID:1, DOID:2 and the deprecated DOID:3
    g.add_concept(Concept("DOID:4", "right lobar pneumonia"))
    g.add_relation(Relation("DOID:4", "is_a", "DOID:1"))
    assert taxonomy_stats(g).descendants[g.index_of("DOID:1")] == 2


def test_useful_ancestor_skips_composite_names() -> None:
    g = ConceptGraph.from_records([
        Concept("A:0", "root"), Concept("A:1", "organ"), Concept("A:2", "organ with cavitated organ parts"),
        Concept("A:3", "heart"), Relation("A:1", "is_a", "A:0"), Relation("A:2", "is_a", "A:1"),
        Relation("A:3", "is_a", "A:2"), *[Concept(f"A:x{i}", f"x{i}") for i in range(4)],
        *[Relation(f"A:x{i}", "is_a", "A:1") for i in range(4)]])
    assert useful_ancestor(g, "A:3", min_depth=1, min_descendants=2) == "A:1"
    assert useful_ancestor(g, "A:3", min_depth=2, min_descendants=2) is None
