"""Input checks and abstention: out-of-range inputs abstain with a reason, unreadable ones raise."""

from __future__ import annotations

import io

import numpy as np
import pytest

from kgclip.errors import ImageReadError, InputFormatError
from kgclip.eval.ood import out_of_range_inputs
from kgclip.rag.abstain import answer_abstain_reason, check_input, check_question, unreadable_question_reason
from kgclip.rag.vqa import Prediction


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_every_shipped_out_of_range_input_is_refused_by_the_input_check():
    items = out_of_range_inputs()
    names = {n for n, _ in items}
    assert {"rtdose.dcm", "test-SR.dcm", "waveform_ecg.dcm", "tiny-3x3-rgb", "blank-white",
            "drawn-landscape"} <= names
    for name, source in items:
        verdict = check_input(source)
        if name != "drawn-landscape-grey":  # a grey drawing is left to the similarity threshold
            assert not verdict.ok and verdict.reason, name


def test_a_grey_scan_passes(tmp_path):
    from pydicom.data import get_testdata_file

    yy, xx = np.mgrid[0:128, 0:128]
    scan = (((yy - 64) ** 2 + (xx - 64) ** 2 < 40 ** 2) * 150 + 40 + (yy % 7) * 3).astype(np.uint8)
    assert check_input(_png(scan)).ok
    ct = check_input(get_testdata_file("CT_small.dcm"))
    assert ct.ok and ct.header["modality"] == "CT" and ct.header["plane"] == "axial"
    assert check_input(scan).ok  # arrays too


def test_unreadable_input_raises_and_questions_are_checked(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        check_input(tmp_path / "missing.dcm")
    from pydicom.data import get_testdata_file

    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 3])  # header intact, pixel data gone
    with pytest.raises(ImageReadError):
        check_input(cut)
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    with pytest.raises(ImageReadError):
        check_input(garbage)
    for question in ("", "   ", None, "x" * 1_000_000):
        with pytest.raises(InputFormatError):
            check_question(question)
    assert check_question("  Is there an effusion? ") == "Is there an effusion?"


def test_answer_abstains_below_thresholds():
    pred = Prediction("yes", "yes", 0.4, "closed", [], [], [], image_similarity=0.5)
    assert "no similar case" in answer_abstain_reason(pred, image_threshold=0.8, min_confidence=0.0)
    assert "not confident" in answer_abstain_reason(pred, image_threshold=0.3, min_confidence=0.5)
    assert answer_abstain_reason(pred, image_threshold=0.3, min_confidence=0.3) == ""


def test_a_value_just_below_its_threshold_never_reads_as_equal_to_it():
    """0.6651 against 0.6702 printed "similarity 0.67, below the threshold 0.67"."""
    pred = Prediction("yes", "yes", 0.6651, "closed", [], [], [], image_similarity=0.6651)
    far = answer_abstain_reason(pred, image_threshold=0.6702, min_confidence=0.0)
    assert "similarity 0.665, below the threshold 0.670" in far
    unsure = answer_abstain_reason(pred, image_threshold=0.3, min_confidence=0.6652)
    assert "confidence 0.6651 is below the workspace's threshold 0.6652" in unsure
    assert "0.50, below the threshold 0.80" in answer_abstain_reason(
        Prediction("yes", "yes", 0.9, "closed", [], [], [], image_similarity=0.5), image_threshold=0.8,
        min_confidence=0.0)


def test_cases_added_to_the_workspace_bring_an_image_into_range():
    """The collection is the answerer's memory and the workspace's cases: an image like a case the user added is in
    range, but only answers that rest on those cases stand (the answerer never saw such an image)."""
    pred = Prediction("yes", "yes", 0.9, "closed", [], [], [], image_similarity=0.5)
    far = answer_abstain_reason(pred, image_threshold=0.8, min_confidence=0.0, nearest_case=0.6, from_cases=True)
    assert "no similar case" in far and "0.60" in far  # the best of memory and cases is reported
    assert answer_abstain_reason(pred, image_threshold=0.8, min_confidence=0.0, nearest_case=0.95,
                                 from_cases=True) == ""
    alone = answer_abstain_reason(pred, image_threshold=0.8, min_confidence=0.0, nearest_case=0.95)
    assert "only the workspace's cases" in alone and "kgclip vqa fit" in alone
    assert "not confident" in answer_abstain_reason(pred, image_threshold=0.8, min_confidence=0.95,
                                                    nearest_case=0.95, from_cases=True)


def test_a_question_naming_only_unknown_words_is_unreadable():
    known = frozenset({"effusion", "pleural", "ct", "mass"})
    assert "'asdf'" in unreadable_question_reason("asdf", known, linked=False)
    assert "'qwerty'" in unreadable_question_reason("Is there qwerty?", known, linked=False)
    assert unreadable_question_reason("Is this a CT?", known, linked=False) == ""  # a known word
    assert unreadable_question_reason("Is there qwerty?", known, linked=True) == ""  # a linked concept
    assert unreadable_question_reason("What do you see?", known, linked=False) == ""  # nothing unknown either
    assert unreadable_question_reason("asdf", frozenset(), linked=False) == ""  # no vocabulary: refuse nothing
