"""Engine.search(concept=..., descendants=...) and text expansion: cases of subtypes found, the path shown."""

from __future__ import annotations

import pytest

from kgclip.engine import Engine, EngineConfig
from kgclip.errors import InputFormatError, UnknownConceptError
from kgclip.testing import tiny_graph
from kgclip.testing.synthetic import make_vqa_folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=6)
    engine = Engine.build(EngineConfig(text_encoder="hashing-64"), tmp_path_factory.mktemp("ws") / "ws",
                          vqa_rad=data, graph=tiny_graph(), show_progress=False)
    img = str(data / "images" / "synth000.png")
    engine.add_cases([
        {"case_id": "adeno", "image": img, "text": "Spiculated lung adenocarcinoma in the right upper lobe."},
        {"case_id": "cancer", "image": img, "text": "Known lung cancer, stable."},
        {"case_id": "seizure", "image": img, "text": "Epilepsy follow-up, normal study."},
    ])
    return engine


def test_concept_search_finds_descendants_and_says_how(engine) -> None:
    results = engine.search(concept="DOID:1324", k=10)
    by_id = {h.case_id: h for h in results}
    assert set(by_id) == {"adeno", "cancer"}
    assert by_id["adeno"].metadata["matched_through"] == "lung adenocarcinoma ⊂ lung cancer"
    assert by_id["cancer"].metadata["matched_through"] == "lung cancer"
    assert results.expansion.ids() == ["DOID:1324", "DOID:3910"]
    assert "lung adenocarcinoma ⊂ lung cancer" in results._repr_html_()


def test_without_descendants_only_the_concept_itself(engine) -> None:
    assert [h.case_id for h in engine.search(concept="DOID:1324", descendants=False)] == ["cancer"]


def test_concept_search_combines_with_filters_and_a_text(engine) -> None:
    assert engine.search(concept="DOID:1324", filters={"concept": "DOID:3910"}).__len__() == 1
    hits = engine.search(text="right upper lobe", concept="DOID:1324", k=5)
    assert {h.case_id for h in hits} == {"adeno", "cancer"}


def test_text_query_is_linked_and_expanded(engine) -> None:
    results = engine.search(text="lung cancer", expand=True, k=4)
    assert {h.case_id for h in results[:2]} == {"adeno", "cancer"}
    assert "lung adenocarcinoma ⊂ lung cancer" in results.expansion.describe()
    assert "matched_through" not in results[2].metadata


def test_bad_input(engine) -> None:
    with pytest.raises(UnknownConceptError):
        engine.search(concept="DOID:nope")
    with pytest.raises(InputFormatError):
        engine.search()


def test_cases_saying_the_opposite_of_a_text_query_come_last(engine) -> None:
    from kgclip.engine.concept_search import negation_order
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.evidence import CaseHit

    tagger = ConceptTagger(tiny_graph())
    hits = [CaseHit("says-no", 0.9, "No pleural effusion. Heart size normal."),
            CaseHit("silent", 0.8, "Cardiomegaly."),
            CaseHit("says-yes", 0.7, "Small left pleural effusion."),
            CaseHit("ptx", 0.6, "There is a pneumothorax.")]
    ordered = negation_order(hits, "pleural effusion", tagger, k=4)
    assert [h.case_id for h in ordered] == ["silent", "says-yes", "ptx", "says-no"]
    assert ordered[-1].metadata["opposes_query"] == "no pleural effusion"
    assert [h.case_id for h in negation_order(hits, "pleural effusion", tagger, k=2)] == ["silent", "says-yes"]
    # A negated query: cases asserting the finding give way.
    assert negation_order(hits, "no pneumothorax", tagger, k=4)[-1].case_id == "ptx"
    # A query naming no concept keeps the similarity order.
    assert [h.case_id for h in negation_order(hits, "follow-up", tagger, k=4)] == [h.case_id for h in hits]
    # Through Engine.search: the cases of the workspace, k of them, in the same shape.
    engine.add_cases([{"case_id": "no-effusion", "image": str(engine.image_path(engine.cases[0].image)),
                       "text": "No pleural effusion."}])
    found = engine.search(text="pleural effusion", k=len(engine.cases))
    opposing = [bool(h.metadata.get("opposes_query")) for h in found]
    assert len(found) == len(engine.cases) and opposing == sorted(opposing)  # all of them after the others
    assert {h.case_id: h for h in found}["no-effusion"].metadata["opposes_query"] == "no pleural effusion"
