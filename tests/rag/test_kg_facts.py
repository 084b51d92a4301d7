"""kg_facts: informative facts chosen for the question; suggested facts never shown as curated."""

from __future__ import annotations

from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.suggestions import Suggestion
from kgclip.ontology.taxonomy import useful_ancestor
from kgclip.rag.evidence import Evidence, kg_facts
from kgclip.testing import tiny_graph


def layered() -> ConceptGraph:
    """root > composite class > category (with many members) > pneumonia > lobar pneumonia."""
    records = [Concept("X:root", "entity"), Concept("X:d", "disease"),
               Concept("X:comp", "disease of anatomical entity"), Concept("X:lung", "lung disease"),
               Concept("X:pna", "pneumonia"), Concept("X:lobar", "lobar pneumonia"), Concept("X:cough", "cough"),
               Concept("X:organ", "lung"),
               Relation("X:d", "is_a", "X:root"), Relation("X:comp", "is_a", "X:d"),
               Relation("X:lung", "is_a", "X:comp"),
               Relation("X:pna", "is_a", "X:lung"), Relation("X:lobar", "is_a", "X:pna"),
               Relation("X:pna", "has_symptom", "X:cough"), Relation("X:pna", "located_in", "X:organ")]
    for i in range(8):
        records += [Concept(f"X:l{i}", f"lung disease {i}"), Relation(f"X:l{i}", "is_a", "X:lung")]
    for i in range(40):
        records += [Concept(f"X:o{i}", f"other {i}"), Relation(f"X:o{i}", "is_a", "X:root")]
    return ConceptGraph.from_records(records, name="layered")


def test_kind_of_fact_is_at_a_useful_level_not_the_first_hop() -> None:
    g = layered()
    assert useful_ancestor(g, "X:lobar", min_depth=3, min_descendants=5, max_share=0.5) == "X:lung"
    facts = kg_facts(g, ["X:lobar"])
    assert [str(f) for f in facts] == ["lobar pneumonia is a lung disease"]  # not "is a pneumonia" (one child)
    from kgclip.rag.evidence import KGFact

    assert str(KGFact("DOID:1", "pulmonary embolism", "is_a", "DOID:2", "artery disease")) == \
        "pulmonary embolism is an artery disease"
    assert not any(f.target_id in ("X:comp", "X:d", "X:root") for f in kg_facts(g, ["X:pna", "X:lung"]))


def test_question_words_choose_the_facts_first() -> None:
    g = layered()
    where = kg_facts(g, ["X:pna"], question="Where is the pneumonia?")
    assert where[0].relation == "located_in"
    symptoms = kg_facts(g, ["X:pna"], question="What symptoms does it present with?")
    assert symptoms[0].relation == "has_symptom"
    kind = kg_facts(g, ["X:pna"], question="What type of disease is this?")
    assert kind[0].relation == "is_a"
    assert len(kg_facts(g, ["X:pna"], per_concept=2)) == 2


def test_same_as_is_not_a_fact_and_unknown_ids_are_skipped() -> None:
    facts = kg_facts(tiny_graph(), ["DOID:552", "NOPE:1"])
    assert facts and all(f.relation != "same_as" for f in facts)


def test_suggested_facts_are_never_shown_as_curated() -> None:
    g = layered()
    s = Suggestion("has_symptom", "X:pna", "X:l0", 0.7, "link_predictor")
    facts = kg_facts(g, ["X:pna"], question="symptoms?", suggestions=[s])
    suggested = [f for f in facts if f.target_id == "X:l0"]
    assert suggested and not suggested[0].curated and str(suggested[0]).endswith("(suggested, not curated)")
    assert all(f.curated for f in facts if f.target_id != "X:l0")
    html = Evidence(kg_facts=facts)._repr_html_()
    assert "suggested, not curated" in html
    reviewed = [Suggestion("has_symptom", "X:pna", "X:l1", 0.7, "link_predictor", status="rejected")]
    assert all(f.target_id != "X:l1" for f in kg_facts(g, ["X:pna"], suggestions=reviewed))
