"""Metadata classifiers in answers and drafts: one vocabulary, the header always wins, unsure -> fall back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from kgclip.models.metadata_heads import fit_metadata_heads
from kgclip.rag.abstain import InputCheck
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit
from kgclip.rag.grounding import ground_answer
from kgclip.rag.image_metadata import (
    asks_about_metadata,
    classifier_answer,
    labels_from_qa,
    metadata_training_labels,
    normalize_modality,
    plane_label,
)
from kgclip.rag.report import DraftConfig, draft_from_cases
from kgclip.rag.vqa import Prediction
from kgclip.testing import tiny_graph

CT_ABDOMEN = {"modality": {"CT": 0.9, "MR": 0.07, "XR": 0.03}, "plane": {"axial": 0.8, "coronal": 0.15, "pa": 0.05},
              "region": {"abdomen": 0.85, "chest": 0.1, "head": 0.05}}
CXR_HEADER = {"source_format": "dicom", "modality": "CR", "body_part": "CHEST", "view_position": "PA", "plane": None}


def test_one_vocabulary_for_every_source_of_labels():
    assert [normalize_modality(m) for m in ("MR - T2 weighted", "CT w/contrast (IV)", "CR", "DX", "x-ray", "?")] == [
        "MR", "CT", "XR", "XR", "XR", ""]
    assert [plane_label(p) for p in ("Axial", "Transverse", "PA", "Multiple or Montage", None)] == [
        "axial", "axial", "pa", "", ""]
    labels = metadata_training_labels([
        {"modality": "MR", "plane": "Sagittal", "location": "Spine", "location_category": "Spine and Muscles"},
        {"modality": "CT", "body_part": "ABDOMENPELVIS"},  # a DICOM header's BodyPartExamined
        {"modality": "CR", "view_position": "PA", "body_part": "CHEST"},
        {"region": "ABD"}, {}])
    assert labels["modality"] == [{"MR"}, {"CT"}, {"XR"}, set(), set()]
    assert labels["plane"] == [{"sagittal"}, set(), {"pa"}, set(), set()]
    assert labels["region"] == [{"spine"}, {"abdomen", "pelvis"}, {"chest"}, {"abdomen"}, set()]


def test_labels_from_questions_only_when_they_say_so_unambiguously():
    assert labels_from_qa([("What plane is this?", "Axial"), ("Is this an MRI?", "yes")]) == {
        "modality": "MR", "plane": "axial", "contrast": "", "sequence": ""}
    assert labels_from_qa([("Is this an MRI?", "no"), ("Is there an effusion?", "yes")]) == {
        "modality": "", "plane": "", "contrast": "", "sequence": ""}
    assert labels_from_qa([("What modality?", "CT"), ("What modality is this?", "MRI")])["modality"] == ""


def test_yes_no_questions_about_the_image_itself_only():
    assert asks_about_metadata("Is this a chest x-ray?") and asks_about_metadata("Was this taken in the axial plane?")
    assert not asks_about_metadata("Is there acute blood on this head CT?")  # a finding on a CT
    assert not asks_about_metadata("Is this a T1 weighted image?")  # finer than modality
    assert classifier_answer("Is this a CT?", CT_ABDOMEN) == ("yes", pytest.approx(0.9))
    assert classifier_answer("Is this an MRI?", CT_ABDOMEN) == ("no", pytest.approx(0.93))
    text, p = classifier_answer("Is this a CT of the abdomen?", CT_ABDOMEN)
    assert text == "yes" and p == pytest.approx(0.9 * 0.85)
    assert classifier_answer("Is this an ultrasound?", CT_ABDOMEN) is None  # a class the heads never learned
    assert classifier_answer("Is there free air on this CT?", CT_ABDOMEN) is None
    assert classifier_answer("Is there a pleural effusion?", CT_ABDOMEN) is None  # not a metadata question
    assert classifier_answer("Is this a CT?", None) is None


def test_choice_and_open_answers_keep_to_the_kind():
    assert classifier_answer("Is this a CT or an MRI?", CT_ABDOMEN) == ("CT", pytest.approx(0.9 / 0.97))
    # The answerer prefers MRI; the head is sure of CT: the CT candidate wins, in the answerer's wording.
    text, p = classifier_answer("What imaging modality was used?", CT_ABDOMEN,
                                [("MRI", 0.5), ("CT with contrast", 0.3), ("Xray", 0.2)])
    assert text == "CT with contrast" and p == pytest.approx(0.9 * 0.3)  # P(CT) x P(this wording)
    # No candidate names what the head is sure of: its own label, never an answer of another kind.
    assert classifier_answer("What plane is this?", CT_ABDOMEN, [("Coronal", 0.6), ("PA", 0.4)]) == (
        "axial", pytest.approx(0.8))
    # The answerer's best answer is not a modality at all: the question asks something else.
    assert classifier_answer("What does the black on this x-ray show?", CT_ABDOMEN, [("Air", 0.7), ("CT", 0.3)]) is None
    assert classifier_answer("What contrast was given?", CT_ABDOMEN, [("CT", 0.7)]) is None
    # ... unless it asks for the modality itself: then the head's own label.
    assert classifier_answer("What imaging modality is this?", CT_ABDOMEN, [("Air", 0.7), ("MRI", 0.2)]) == (
        "CT", pytest.approx(0.9))


def _pred(text: str, candidates, form: str, route: str) -> Prediction:
    return Prediction(text, text.lower(), candidates[0][1], "closed" if form != "open" else "open", candidates, [], [],
                      raw_confidence=candidates[0][1], form=form, route=route, image_similarity=0.95)


def test_the_header_wins_and_the_classifier_answers_without_one():
    pred = _pred("no", [("no", 0.6), ("yes", 0.4)], "yes/no", "modality")
    png = InputCheck(True, "", {"source_format": "png"})
    said = ground_answer(pred, "Is this a CT?", png, [], None, tagger=None, graph=None, image_threshold=None,
                         min_confidence=0.0, image_labels=CT_ABDOMEN)
    assert (said.text, said.flags["source"]) == ("yes", "image-classifier")
    assert said.confidence == pytest.approx(0.9)
    dicom = InputCheck(True, "", CXR_HEADER)  # the header says CR: it wins over a classifier that says CT
    said = ground_answer(pred, "Is this a CT?", dicom, [], None, tagger=None, graph=None, image_threshold=None,
                         min_confidence=0.0, image_labels=CT_ABDOMEN)
    assert (said.text, said.flags["source"]) == ("no", "dicom-header")
    plain = ground_answer(pred, "Is this a CT?", png, [], None, tagger=None, graph=None, image_threshold=None,
                          min_confidence=0.0)
    assert plain.text == "no" and "source" not in plain.flags  # no classifier: the answerer


def test_a_head_that_only_narrows_the_answer_never_makes_it_surer():
    """"What organ is enlarged?" does not ask for the region: the region head keeps the answerer's abdominal
    candidate, at no more than the answerer's own calibrated confidence (it was P(abdomen) x the raw candidate
    probability, 0.97 for a wrong "Spleen")."""
    pred = _pred("Spleen", [("Spleen", 0.98), ("Brain", 0.02)], "open", "organ")
    pred = replace(pred, confidence=0.4)  # calibrated below the raw 0.98
    png = InputCheck(True, "", {"source_format": "png"})
    said = ground_answer(pred, "What organ is enlarged?", png, [], None, tagger=None, graph=None,
                         image_threshold=None, min_confidence=0.0, image_labels=CT_ABDOMEN)
    assert (said.text, said.flags["source"]) == ("Spleen", "image-classifier") and said.confidence == 0.4
    asked = ground_answer(replace(pred, text="Abdomen", normalized="abdomen", candidates=[("Abdomen", 0.98)]),
                          "Which organ system is shown?", png, [], None, tagger=None, graph=None,
                          image_threshold=None, min_confidence=0.0, image_labels=CT_ABDOMEN)
    assert asked.flags["source"] == "image-classifier" and asked.confidence > 0.4  # asked for the region itself


def test_trained_heads_answer_through_grounding():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16))
    y = rng.integers(0, 2, 80)
    x = centres[y] + 0.3 * rng.normal(size=(80, 16))
    heads = fit_metadata_heads(x, {"modality": [["CT", "MR"][k] for k in y]}, feature_fingerprint="fp")
    labels = heads.predict(centres[1:2])[0]  # an MR-like image
    pred = _pred("yes", [("yes", 0.55), ("no", 0.45)], "yes/no", "modality")
    said = ground_answer(pred, "Is this a CT scan?", InputCheck(True, "", {"source_format": "png"}), [], None,
                         tagger=None, graph=None, image_threshold=None, min_confidence=0.0, image_labels=labels)
    assert said.text == "no" and said.confidence > 0.9


def _case(case_id: str, score: float, text: str, body_part: str) -> CaseHit:
    return CaseHit(case_id, score, text, metadata={"body_part": body_part})


def test_report_scope_region_from_the_classifier_above_the_threshold_else_the_vote():
    g = tiny_graph()
    cfg = DraftConfig(min_support=0.0, max_impression=0)
    hits = [_case("h1", 0.95, "Brain lesion with epilepsy.", "HEAD"), _case("h2", 0.94, "Brain lesion.", "HEAD"),
            _case("c1", 0.80, "Pleural effusion. Lung consolidation.", "CHEST")]
    sure = {"region": {"chest": 0.93, "head": 0.07}}
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=cfg, image_labels=sure)
    assert report.region == ("chest",) and report.region_source.startswith("region classifier (chest 0.93")
    assert {h.case_id for h in report.similar_cases} == {"c1"}
    unsure = {"region": {"chest": 0.55, "head": 0.45}}
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=cfg, image_labels=unsure)
    assert report.region == ("head",) and "weighted vote" in report.region_source
    assert "region classifier was unsure (chest 0.55" in report.region_source
    given = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=cfg, image_labels=sure, query_region="HEAD")
    assert given.region == ("head",) and given.region_source == "query"  # the caller / header wins
