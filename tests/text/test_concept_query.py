"""Text queries linked and expanded through the graph."""

from __future__ import annotations

from kgclip.testing import tiny_graph
from kgclip.text.concept_query import expand_query
from kgclip.text.linker import ConceptLinker


def test_affirmed_mentions_are_expanded_negated_ones_are_not() -> None:
    g = tiny_graph()
    q = expand_query("lung cancer without pleural effusion", g, ConceptLinker.from_graph(g))
    assert [e.query for e in q.expansions] == ["DOID:1324"]
    assert q.ids() == ["DOID:1324", "DOID:3910"]
    assert q.match("DOID:3910").path_text == "lung adenocarcinoma ⊂ lung cancer"
    assert {m.concept_id for m in q.mentions} >= {"DOID:1324", "RADLEX:RID4872"}
    assert "lung adenocarcinoma ⊂ lung cancer" in q.describe() and q._repr_html_()


def test_text_without_concepts() -> None:
    g = tiny_graph()
    q = expand_query("nothing to see", g, ConceptLinker.from_graph(g))
    assert q.ids() == [] and "names no concept" in q.describe()
