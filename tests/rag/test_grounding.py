"""Grounded answers: the DICOM header for modality / plane / region, similar cases' findings for presence."""

from __future__ import annotations

import dataclasses

import pytest

from kgclip.rag.abstain import InputCheck
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit
from kgclip.rag.grounding import (blend_presence, case_concept_answer, case_metadata_vote, case_presence_vote,
                                  ground_answer, header_answer, out_of_range_answer, presence_targets)
from kgclip.rag.vqa import Prediction
from kgclip.testing import tiny_graph

CXR = {"source_format": "dicom", "modality": "CR", "body_part": "CHEST", "view_position": "PA", "plane": None}


@pytest.fixture(scope="module")
def tagger():
    return ConceptTagger(tiny_graph())


def test_header_answers_modality_region_and_plane():
    assert header_answer("Is this a chest X-ray?", CXR) == ("yes", 0.97)
    assert header_answer("Is this an MRI of the brain?", CXR) == ("no", 0.97)
    assert header_answer("What imaging modality was used?", CXR)[0] == "X-ray"
    assert header_answer("Is this a CT or an X-ray?", CXR)[0] == "X-ray"
    assert header_answer("Is this image in the PA projection?", CXR)[0] == "yes"
    ct = {"source_format": "dicom", "modality": "CT", "body_part": None, "plane": "axial"}
    assert header_answer("In what plane is this image?", ct)[0] == "axial"
    assert header_answer("Is this a head CT?", ct) is None  # the header does not say the region
    assert header_answer("Is there a pleural effusion?", CXR) is None  # not a header question
    assert header_answer("Is this a chest X-ray?", {"source_format": "png"}) is None


def _hit(case_id, score, text, **meta):
    return CaseHit(case_id, score, text, metadata=meta)


def test_similar_cases_vote_on_presence_with_negation_and_is_a(tagger):
    graph = tiny_graph()
    hits = [_hit("a", 0.95, "No pleural effusion. Cardiomegaly."), _hit("b", 0.94, "Small pleural effusion."),
            _hit("c", 0.50, "Lung adenocarcinoma of the right upper lobe."), _hit("d", 0.93, "Normal brain.")]
    p, n = case_presence_vote(["RADLEX:RID4872"], hits, tagger, graph)
    assert n == 2 and 0.3 < p < 0.7  # one yes, one no, nearly equal weight
    p, n = case_presence_vote(["DOID:1324"], hits, tagger, graph)  # lung cancer: supported by adenocarcinoma
    assert n == 1 and p == 1.0
    p, n = case_presence_vote(["RADLEX:RID5352"], hits, tagger, graph)  # nobody mentions pneumothorax
    assert n == 0 and p == 0.5
    assert blend_presence(0.2, 1.0, 2, 1.0) == pytest.approx(0.6) and blend_presence(0.2, 1.0, 2, 0.0) == 0.2


def test_presence_votes_count_the_asked_finding_where_the_question_places_it(tagger):
    graph = tiny_graph()
    lung, consolidation, brain = "RADLEX:RID1301", "RADLEX:RID28530", "RADLEX:RID6434"
    # "Is there lung consolidation?": the finding votes, the anatomy only says where.
    assert presence_targets([lung, consolidation], graph) == ([consolidation], [lung])
    assert presence_targets([brain], graph) == ([], [brain])  # "Is the brain normal?": no finding, no case vote
    hits = [_hit("a", 0.9, "Consolidation of the left lung."), _hit("b", 0.9, "Consolidation. The lungs are clear."),
            _hit("c", 0.9, "Consolidation in the brain."), _hit("d", 0.9, "Cardiomegaly.")]
    p, n = case_presence_vote([consolidation], hits, tagger, graph)
    assert (p, n) == (1.0, 3)  # anywhere: three cases, one of them the brain
    p, n = case_presence_vote([consolidation], hits, tagger, graph, anatomy=[lung])
    assert (p, n) == (1.0, 1)  # only a mention in a sentence naming the lung counts
    # A case silent on the finding votes no at the silence weight: one yes and three half noes.
    p, n = case_presence_vote([consolidation], hits, tagger, graph, anatomy=[lung], silence=0.5)
    assert n == 4 and p == pytest.approx(1.0 / 2.5)


def test_case_metadata_votes_on_modality_and_region():
    hits = [_hit("a", 0.9, "", modality="XR", body_part="CHEST"), _hit("b", 0.88, "", modality="XR",
                                                                        body_part="CHEST"),
            _hit("c", 0.5, "", modality="MR", body_part="HEAD")]
    answer, p = case_metadata_vote("Is this a chest x-ray?", hits)
    assert answer == "yes" and p > 0.6
    answer, p = case_metadata_vote("Is this an MRI of the brain?", hits)
    assert answer == "no" and p > 0.6
    assert case_metadata_vote("What modality is this?", hits) is None


def _effusion_no(confidence):
    """The answerer says "no" to "Is there a pleural effusion?"; four similar cases report an effusion."""
    from kgclip.rag.concepts import LinkedConcept

    effusion = LinkedConcept("RADLEX:RID4872", "pleural effusion", 12, 28, "pleural effusion")
    pred = Prediction("no", "no", confidence, "closed", [("No", confidence), ("Yes", 1 - confidence)], [],
                      [effusion], raw_confidence=confidence, form="yes/no", route="presence", image_similarity=0.95)
    hits = [_hit(f"u{i}", 0.9, "Large right pleural effusion.") for i in range(4)]
    return pred, InputCheck(True, "", {"source_format": "png"}), hits


def test_ground_answer_uses_user_cases_and_abstains(tagger):
    pred, ok, hits = _effusion_no(0.7)
    answer = ground_answer(pred, "Is there a pleural effusion?", ok, hits, None, tagger=tagger, graph=tiny_graph(),
                           image_threshold=0.5, min_confidence=0.0)
    assert answer.text == "yes" and answer.flags["voting_cases"] == "4" and not answer.abstained
    far = ground_answer(pred, "Is there a pleural effusion?", ok, [], None, tagger=tagger, graph=tiny_graph(),
                        image_threshold=0.99, min_confidence=0.0)
    assert far.abstained and "no similar case" in far.abstain_reason and str(far).startswith("cannot answer")
    header = ground_answer(pred, "Is this a chest X-ray?", InputCheck(True, "", CXR), [], None, tagger=tagger,
                           graph=tiny_graph(), image_threshold=0.99, min_confidence=0.0)
    assert header.text == "yes" and header.flags["source"] == "dicom-header" and not header.abstained
    rt = out_of_range_answer("Is there an effusion?", InputCheck(False, "RT Dose Storage is not an image"), None)
    assert rt.abstained and "RT Dose" in rt.abstain_reason


def test_open_answer_from_the_cases_vocabulary(tagger):
    hits = [_hit("a", 0.9, "Cardiomegaly. No pleural effusion."), _hit("b", 0.89, "Cardiomegaly with pneumothorax."),
            _hit("c", 0.3, "Epilepsy.")]
    text, share = case_concept_answer("What is the abnormality?", hits, tagger)
    assert text == "cardiomegaly" and 0.4 < share < 1.0  # negated effusion does not count
    assert case_concept_answer("What is abnormal besides the cardiomegaly?", hits, tagger)[0] == "pneumothorax"
    from kgclip.rag.concepts import LinkedConcept  # noqa: F401
    pred = Prediction("atelectasis", "atelectasis", 0.05, "open", [], [], [], raw_confidence=0.05, form="open",
                      route="open", image_similarity=0.95)
    ok = InputCheck(True, "", {"source_format": "png"})
    answer = ground_answer(pred, "What is the abnormality?", ok, hits, None, tagger=tagger, graph=tiny_graph(),
                           image_threshold=0.5, min_confidence=0.0, open_from_cases=0.2)
    assert answer.text == "cardiomegaly" and answer.flags["source"] == "case-concepts"
    kept = ground_answer(pred, "What is the abnormality?", ok, hits, None, tagger=tagger, graph=tiny_graph(),
                         image_threshold=0.5, min_confidence=0.0, open_from_cases=0.0)
    assert kept.text == "atelectasis"


def test_a_question_asking_for_a_finding_is_answered_with_one(tagger):
    """'What does the hypodensity suggest?' was answered 'abdomen' (the concept the similar cases share most); a
    question asking for a finding or disease takes one from the cases' words, or none."""
    from kgclip.rag.grounding import asks_for_finding

    assert asks_for_finding("What does the blunting of the costophrenic angles indicate?")
    assert asks_for_finding("What is the pathology in this image?")
    assert not asks_for_finding("What test might reveal the diagnosis?")
    assert not asks_for_finding("What density is the abnormality?")  # a property, not a finding
    assert not asks_for_finding("Is this consistent with pneumonia?")  # yes / no
    hits = [_hit("a", 0.9, "The lung is clear. Small pleural effusion."), _hit("b", 0.89, "Lung and pleura."),
            _hit("c", 0.88, "Lung nodule.")]
    pred = Prediction("atelectasis", "atelectasis", 0.05, "open", [], [], [], raw_confidence=0.05, form="open",
                      route="open", image_similarity=0.95)
    ok = InputCheck(True, "", {"source_format": "png"})

    def ask(question: str) -> str:
        return ground_answer(pred, question, ok, hits, None, tagger=tagger, graph=tiny_graph(), image_threshold=0.5,
                             min_confidence=0.0, open_from_cases=0.2).text

    assert ask("What does the opacity suggest?") == "pleural effusion"
    assert ask("What is visible?") == "lung"  # not a finding question: the most shared concept
    only_anatomy = [_hit("b", 0.9, "Lung and pleura.")]
    assert ground_answer(pred, "What does the opacity suggest?", ok, only_anatomy, None, tagger=tagger,
                         graph=tiny_graph(), image_threshold=0.5, min_confidence=0.0,
                         open_from_cases=0.2).text == "atelectasis"  # no finding in the cases: the answerer's


def test_candidates_follow_the_grounded_answer(tagger):
    pred, ok, hits = _effusion_no(0.85)
    voted = ground_answer(pred, "Is there a pleural effusion?", ok, hits, None, tagger=tagger, graph=tiny_graph(),
                          image_threshold=0.5, min_confidence=0.0)
    assert voted.text == "yes" and voted.candidates[0] == ("yes", voted.confidence)
    assert voted.candidates[1][0] == "no" and voted.candidates[1][1] == pytest.approx(1 - voted.confidence)
    alone = ground_answer(pred, "Is there a pleural effusion?", ok, [], None, tagger=tagger, graph=tiny_graph(),
                          image_threshold=0.5, min_confidence=0.0)
    # The answerer answered: the same calibrated scale, not its raw distribution.
    assert alone.candidates == [("no", alone.confidence), ("yes", pytest.approx(1 - alone.confidence))]
    opened = ground_answer(dataclasses.replace(pred, text="pneumonia", confidence=0.6, route="open", form="open",
                                               candidates=[("pneumonia", 0.9), ("atelectasis", 0.06),
                                                           ("edema", 0.03)]),
                           "What is the abnormality?", ok, [], None, tagger=tagger, graph=tiny_graph(),
                           image_threshold=0.5, min_confidence=0.0)
    assert opened.text == "pneumonia" and not opened.abstained
    assert opened.candidates[0] == ("pneumonia", opened.confidence)
    assert [c for c, _ in opened.candidates[1:]] == ["atelectasis", "edema"]
    assert sum(p for _, p in opened.candidates) <= 1.0
    assert opened.candidates[1][1] == pytest.approx(2 * opened.candidates[2][1])  # the answerer's proportions
    # An option answer's confidence is low by design (options are often worded otherwise); the other option is never
    # shown above it ("Normal 30 %" beside "enlarged 70 %" read as a contradiction).
    option = ground_answer(dataclasses.replace(pred, text="Normal", normalized="normal", confidence=0.3, route="open",
                                               form="options", candidates=[("Normal", 0.3), ("enlarged", 0.2)]),
                           "Is the heart enlarged or normal in size?", ok, [], None, tagger=tagger,
                           graph=tiny_graph(), image_threshold=0.5, min_confidence=0.0)
    assert option.candidates[0] == ("Normal", 0.3)
    assert option.candidates[1][0] == "enlarged" and option.candidates[1][1] == pytest.approx(0.2)


def test_a_question_about_a_region_the_image_does_not_show_is_declined(tagger):
    from kgclip.rag.concepts import LinkedConcept
    from kgclip.rag.grounding import question_elsewhere

    graph = tiny_graph()
    brain, lung = "RADLEX:RID6434", "RADLEX:RID1301"
    head_ct = {"source_format": "dicom", "modality": "CT", "body_part": "HEAD"}
    assert question_elsewhere([lung], head_ct, None, [], graph).startswith(
        "the question is about the chest (lung), and this image shows the head (the DICOM header)")
    assert question_elsewhere([lung, brain], head_ct, None, [], graph) == ""  # it names the head too
    assert question_elsewhere([lung], {}, None, [], graph) == ""  # the image's region is unknown
    # The similar cases' regions decide when neither the header nor a sure classifier does.
    chest_cases = [_hit(f"c{i}", 0.9, "", body_part="CHEST") for i in range(3)]
    assert "(the similar cases' regions)" in question_elsewhere([brain], {}, None, chest_cases, graph)
    assert question_elsewhere([brain], {}, {"region": {"head": 0.95, "chest": 0.05}}, chest_cases, graph) == ""
    # Through ground_answer: a presence question is declined; "Is this an MRI of the brain?" is about the image.
    mention = LinkedConcept(brain, "brain", 7, 12, "brain")
    pred = Prediction("yes", "yes", 0.9, "closed", [("Yes", 0.9), ("No", 0.1)], [], [mention], raw_confidence=0.9,
                      form="yes/no", route="presence", image_similarity=0.95)
    ct = InputCheck(True, "", head_ct | {"body_part": "CHEST"})
    answer = ground_answer(pred, "Is the brain normal?", ct, [], None, tagger=tagger, graph=graph,
                           image_threshold=0.5, min_confidence=0.0)
    assert answer.abstained and answer.abstain_reason.startswith("the question is about the head")
    organ = ground_answer(pred, "Is this a CT of the brain?", ct, [], None, tagger=tagger, graph=graph,
                          image_threshold=0.5, min_confidence=0.0)
    assert organ.route == "modality" and not organ.abstain_reason.startswith("the question is about")


def test_a_diagnosis_question_gets_the_similar_cases_diagnoses_as_a_declined_guess(tagger):
    from kgclip.rag.grounding import DIAGNOSIS_CONFIDENCE, asks_for_diagnosis, case_diagnosis_answer

    graph = tiny_graph()
    assert asks_for_diagnosis("What is the most likely diagnosis?")
    assert asks_for_diagnosis("What condition does the patient have?")
    assert not asks_for_diagnosis("What test might reveal the diagnosis?")
    assert not asks_for_diagnosis("Is this consistent with pneumonia?")  # yes/no: a presence question
    hits = [_hit("a", 0.9, "Right lower lobe consolidation.", diagnosis="Lung adenocarcinoma"),
            _hit("b", 0.88, "Mass.", impression="Findings most consistent with lung cancer."),
            _hit("c", 0.7, "Consolidation.", diagnosis="Pneumonia"), _hit("d", 0.9, "Normal.")]
    name, support, cases, concept = case_diagnosis_answer(hits, tagger, graph)
    # Adenocarcinoma (a) and lung cancer (b, and a through is-a) vote; lung cancer's is-a child is not a differential.
    assert concept in ("DOID:3910", "DOID:1324") and set(cases) & {"a", "b"} and 0 < support < 1
    assert case_diagnosis_answer([_hit("d", 0.9, "Normal.")], tagger, graph) is None
    pred = Prediction("t2", "t2", 0.3, "open", [("t2", 0.3)], [], [], raw_confidence=0.3, form="open", route="open",
                      image_similarity=0.95)
    answer = ground_answer(pred, "What is the most likely diagnosis?", InputCheck(True), hits, None, tagger=tagger,
                           graph=graph, image_threshold=0.5, min_confidence=0.1)
    assert answer.flags["source"] == "case-diagnoses" and answer.text == name
    assert answer.confidence <= DIAGNOSIS_CONFIDENCE and answer.abstained
    assert answer.abstain_reason.startswith("kgclip does not diagnose from the image") and "[" not in answer.text
    # The engine passes its draft's leading impression, so the page never names two diagnoses.
    given = ground_answer(pred, "What is the most likely diagnosis?", InputCheck(True), hits, None, tagger=tagger,
                          graph=graph, image_threshold=0.5, min_confidence=0.1,
                          diagnosis=("pneumonia", 0.4, ("c",), "DOID:552"))
    assert given.text == "pneumonia" and given.flags["cases"] == "c" and "(c;" in given.abstain_reason


def test_a_diagnosis_question_without_diagnosed_cases_declines_a_guess_that_is_no_disease(tagger):
    graph = tiny_graph()
    hits = [_hit("a", 0.9, "Pleural effusion.")]  # no diagnosis, no impression
    for guess, declined in (("lung", True), ("pneumonia", False)):
        pred = Prediction(guess, guess, 0.9, "open", [(guess, 0.9)], [], [], raw_confidence=0.9, form="open",
                          route="open", image_similarity=0.95)
        answer = ground_answer(pred, "What is the most likely diagnosis?", InputCheck(True), hits, None,
                               tagger=tagger, graph=graph, image_threshold=0.5, min_confidence=0.1)
        assert answer.abstained == declined, guess
        assert not declined or answer.abstain_reason.startswith("no similar case names a diagnosis")


def test_a_femur_is_not_on_a_chest_film_but_a_humerus_is():
    from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation
    from kgclip.rag.grounding import question_elsewhere

    names = {"A:1": "anatomical entity", "A:2": "femur", "A:3": "humerus"}
    graph = ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                      + [Relation(c, IS_A, "A:1") for c in ("A:2", "A:3")])
    chest = {"source_format": "dicom", "modality": "CR", "body_part": "CHEST"}
    assert question_elsewhere(["A:2"], chest, None, [], graph).startswith(
        "the question is about the lower limb (femur), and this image shows the chest (the DICOM header)")
    assert question_elsewhere(["A:3"], chest, None, [], graph) == ""  # the shoulder girdle is on a chest film
    assert question_elsewhere(["A:2"], chest | {"body_part": "PELVIS"}, None, [], graph) == ""
