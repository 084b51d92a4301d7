"""Contrast / MR-sequence questions: routing, header answers, classifier answers, training labels, the gate."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from kgclip.imaging.dicom import read_dicom_header
from kgclip.models.metadata_heads import fit_metadata_heads
from kgclip.rag.abstain import InputCheck
from kgclip.rag.acquisition_qa import acquisition_answer, stated_acquisition
from kgclip.rag.grounding import ground_answer, header_answer
from kgclip.rag.image_metadata import (acquisition_labels, answering_labels, classifier_answer, labels_from_qa,
                                       metadata_training_labels)
from kgclip.rag.router import route_question
from kgclip.rag.vqa import Prediction


@pytest.fixture(scope="module")
def ct():
    return read_dicom_header(get_testdata_file("CT_small.dcm"))  # IV contrast (ISOVUE)


@pytest.fixture(scope="module")
def mr():
    return read_dicom_header(get_testdata_file("MR_small.dcm"))  # SE TR 4000 / TE 240: T2; contrast unknown


@pytest.mark.parametrize("question, topic", [
    ("Was contrast used?", "contrast"), ("Was this image taken with or without contrast?", "contrast"),
    ("Is this a contrast CT?", "contrast"), ("Is this a noncontrast CT?", "contrast"),
    ("Is there contrast in the bowel?", "contrast"), ("Is this a T1 or T2 weighted image?", "sequence"),
    ("What MRI sequence is shown?", "sequence"), ("What sequence is this?", "sequence"),
    ("Which weighting is this image?", "sequence"), ("Is this a STIR image?", "sequence"), ("Is this an MRI?", ""),
    ("Is there leakage of contrast?", ""), ("How can you tell this is a T2 weighted image?", ""),
])
def test_topics(question, topic):
    assert route_question(question).topic == topic


def test_header_contrast_answers(ct):
    assert header_answer("Was contrast used?", ct) == ("yes", 0.97)
    assert header_answer("Was IV contrast given to the patient?", ct)[0] == "yes"
    assert header_answer("Was the patient given oral contrast?", ct)[0] == "no"  # the route is IV only
    assert header_answer("Is this a noncontrast CT?", ct)[0] == "no"
    assert header_answer("Was this image taken with or without contrast?", ct)[0] == "with contrast"
    assert header_answer("What contrast was administered?", ct)[0] == "IV"
    assert header_answer("Is this a T2 weighted image?", ct) is None  # a CT has no MR sequence


def test_header_sequence_answers_and_fallbacks(mr, ct):
    assert header_answer("Is this a T2 weighted image?", mr) == ("yes", 0.97)
    assert header_answer("Is this a T1 weighted image?", mr)[0] == "no"
    assert header_answer("Is this a T1 or T2 weighted image?", mr)[0] == "T2 weighted"
    assert header_answer("What MRI sequence is this?", mr)[0] == "T2 weighted"
    assert header_answer("What sequence is this?", mr)[0] == "T2 weighted"  # no modality word needed
    assert header_answer("Is this a FLAIR image?", mr) is None  # TR/TE T2 cannot rule FLAIR out
    assert header_answer("Was contrast used?", mr) is None  # empty ContrastBolusAgent: no made-up answer
    no_tr_te = {**mr, "mr_sequence": None, "mr_weighting": None}
    assert header_answer("Is this a T2 weighted image?", no_tr_te) is None
    no_agent = {**ct, "contrast": None, "contrast_route": None}
    assert header_answer("Was contrast used?", no_agent) is None
    # Route unknown: "with contrast" says nothing about the bowel.
    assert header_answer("Is there contrast in the bowel?", {**ct, "contrast_route": None}) is None


def _pred(text="yes", conf=0.6):
    return Prediction(text=text, normalized=text.lower(), confidence=conf, kind="closed", candidates=[(text, conf)],
                      neighbors=[], concepts=[], raw_confidence=conf, form="yes/no", route="modality")


def test_ground_answer_uses_header_then_classifier_then_answerer(ct):
    check = InputCheck(True, "", ct)
    a = ground_answer(_pred("no", 0.7), "Was contrast used?", check, [], None, tagger=None, graph=None,
                      image_threshold=None, min_confidence=0.0)
    assert (a.text, a.flags["source"]) == ("yes", "dicom-header")
    jpeg = InputCheck(True, "", {"source_format": "jpeg"})
    labels = {"contrast": {"with": 0.2, "without": 0.8}, "modality": {"CT": 0.99, "MR": 0.01}}
    a = ground_answer(_pred("yes", 0.7), "Was contrast used?", jpeg, [], None, tagger=None, graph=None,
                      image_threshold=None, min_confidence=0.0, image_labels=labels)
    assert (a.text, a.flags["source"], round(a.confidence, 2)) == ("no", "image-classifier", 0.8)
    # Without a contrast head the modality head does not answer a contrast question: the answerer does.
    a = ground_answer(_pred("yes", 0.7), "Is this a contrast CT?", jpeg, [], None, tagger=None, graph=None,
                      image_threshold=None, min_confidence=0.0, image_labels={"modality": {"CT": 0.99}})
    assert (a.text, a.flags.get("source")) == ("yes", None)


def test_classifier_answers():
    labels = {"contrast": {"with": 0.9, "without": 0.1}, "sequence": {"T1": 0.1, "T2": 0.7, "FLAIR": 0.2}}
    assert acquisition_answer("Was IV contrast used?", labels) == ("yes", 0.9)
    assert acquisition_answer("Is there oral contrast in the bowel?", labels) is None  # heads know no route
    assert acquisition_answer("Is this a T2 weighted image?", labels) == ("yes", 0.7)
    assert acquisition_answer("Is this a DWI image?", labels) is None  # a sequence the head never learned
    assert acquisition_answer("Is this a T1 weighted, T2 weighted, or FLAIR image?", labels)[0] == "T2 weighted"
    assert acquisition_answer("Is this an MRI?", labels) is None
    # Choice answers are the option as the question writes it.
    without = {"contrast": {"with": 0.2, "without": 0.8}}
    assert acquisition_answer("Is this MRI with contrast or without contrast?", labels) == ("with contrast", 0.9)
    assert acquisition_answer("Is this a contrast CT or a non-contrast CT?", without) == ("non contrast ct", 0.8)
    assert acquisition_answer("Does this image use contrast or not?", labels)[0] == "contrast"
    assert acquisition_answer("Is the contrast in the bowels or the vasculature?", labels) is None
    # The modality classifier still refuses contrast questions.
    assert classifier_answer("Is this a contrast CT?", {"modality": {"CT": 0.99, "MR": 0.01}}) is None


def test_training_labels_from_strings_and_questions():
    assert acquisition_labels("CT w/contrast (IV)") == {"contrast": "with", "sequence": ""}
    assert acquisition_labels("MR - T1W - noncontrast") == {"contrast": "without", "sequence": "T1"}
    assert acquisition_labels("MR T2* gradient,GRE,MPGR,SWAN,SWI") == {"contrast": "", "sequence": ""}
    assert acquisition_labels("MRA - MR Angiography/Venography")["contrast"] == ""
    labels = metadata_training_labels([{"modality": "MR - FLAIR"}, {"modality": "CT - GI & IV Contrast"}])
    assert labels["sequence"] == [frozenset({"FLAIR"}), frozenset()]
    assert labels["contrast"] == [frozenset(), frozenset({"with"})]
    said = labels_from_qa([("Was contrast used?", "No"), ("Is this an MRI?", "yes")])
    assert (said["contrast"], said["modality"]) == ("without", "MR")
    assert stated_acquisition("Is there oral contrast in the colon?", "no") == ""  # IV contrast may be there
    assert stated_acquisition("What MRI sequence is shown above?", "T2 weighted") == "T2"


def test_gate_keeps_acquisition_heads_that_beat_majority():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += 4.0 * y  # separable contrast; sequence labels are noise
    contrast = [frozenset({"with" if v else "without"}) for v in y]
    sequence = [frozenset({str(rng.choice(["T1", "T2"]))}) for _ in range(n)]
    heads = fit_metadata_heads(x, {"contrast": contrast, "sequence": sequence}, feature_fingerprint="f",
                               groups=[str(i // 2) for i in range(n)])
    assert heads.heads["contrast"].figures["beats_majority"] is True
    assert heads.heads["contrast"].figures["val_gain_ci"][0] > 0
    kept = answering_labels(heads, heads.predict(x[:1])[0])
    assert "contrast" in kept
    assert ("sequence" in kept) == heads.heads["sequence"].figures["beats_majority"]
    old = SimpleNamespace(heads={"contrast": SimpleNamespace(figures={}), "modality": SimpleNamespace(figures={})})
    assert answering_labels(old, {"contrast": {"with": 1.0}, "modality": {"CT": 1.0}}) == {"modality": {"CT": 1.0}}
