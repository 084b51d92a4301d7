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
