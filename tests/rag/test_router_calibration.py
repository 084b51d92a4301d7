"""Question routing, calibration maths and the trust figures."""

from __future__ import annotations

import numpy as np
import pytest

from kgclip.rag.answerer import AnswererConfig, AnswererCore
from kgclip.rag.calibration import (Calibrator, accuracy_at_coverage, calibrated_ece_range, expected_calibration_error,
                                    isotonic_fit, risk_coverage)
from kgclip.rag.router import answer_fits_kind, question_options, route_question
from kgclip.stats import bootstrap_ci


@pytest.mark.parametrize("question,kind,form", [
    ("Which side is the opacity?", "laterality", "open"),
    ("Is the effusion on the left or right?", "laterality", "choice"),
    ("Where is the mass?", "location", "open"),
    ("Is the mass located in the liver?", "presence", "yes/no"),
    ("Is this an MRI?", "modality", "yes/no"),
    ("Is this a chest X-ray?", "modality", "yes/no"),
    ("What imaging modality was used?", "modality", "open"),
    ("Is this a CT or an MRI?", "modality", "choice"),
    ("In what plane is this image?", "plane", "open"),
    ("What organ system is shown?", "organ", "open"),
    ("How many masses are there?", "size_count", "open"),
    ("Is there a pleural effusion?", "presence", "yes/no"),
    ("What is the abnormality?", "open", "open"),
    ("Is there ectatic or aneurysmal enlargement of the aorta?", "presence", "yes/no"),  # existence: yes / no
    ("Can you evaluate the kidneys, bladder or ureters in this image?", "presence", "yes/no"),
    # Yes/no without the auxiliary verb, or after a leading clause (were open, so never answered yes / no).
    ("Any tracheal deviation present?", "presence", "yes/no"),
    ("Anything abnormal in this image?", "presence", "yes/no"),
    ("Notice any abnormality in the kidneys?", "presence", "yes/no"),
    ("Any evidence of epidural or subdural hematoma?", "presence", "yes/no"),  # an "or" in it still asks yes/no
    ("Besides the mass in the temporal horn, are there other enhancements?", "presence", "yes/no"),
    ("Besides the mass, is the lesion on the left or right?", "laterality", "choice"),
    # A leading clause that holds the question word is not cut off; its options after the comma make a choice
    # (it was open, and answered with a concept of the similar cases: "lateral ventricle").
    ("What is denser, the mass or the surrounding tissue?", "open", "choice"),
    ("Which is highlighted in this image, white or gray matter?", "open", "choice"),
    ("Anterior to the aorta, what structure is seen?", "organ", "open"),
])
def test_route_question(question, kind, form):
    route = route_question(question)
    assert (route.kind, route.form) == (kind, form)


def test_open_answers_keep_to_the_question_kind():
    """'Which side?' never gets 'ribs'; a plane question gets the answers plane questions had in training."""
    answers = ["axial", "coronal", "left", "no", "ribs", "right", "yes"]
    core = AnswererCore(AnswererConfig(), answers)
    questions = ["What plane is this?", "Which plane is shown?", "What is abnormal?", "Which side is it on?"]
    core.learn_kinds(questions, np.array([0, 1, 4, 5]))
    _, mask = core.candidate_mask("Which side is the opacity?")
    assert {answers[i] for i in np.flatnonzero(mask)} == {"left", "right"}
    _, mask = core.candidate_mask("In what plane was this taken?")
    assert {answers[i] for i in np.flatnonzero(mask)} == {"axial", "coronal"}
    _, mask = core.candidate_mask("What is the finding?")
    assert "ribs" in {answers[i] for i in np.flatnonzero(mask)} and not mask[answers.index("yes")]
    assert answer_fits_kind("right lower lobe", "laterality") and not answer_fits_kind("ribs", "laterality")


def test_a_question_asking_for_the_side_gets_a_bare_side():
    """'Which side is the lesion on?' -> 'right' or 'left side', not 'right frontal lobe'; 'Which lung...?' may still
    get 'right lung'."""
    answers = ["bilateral", "left side", "right", "right frontal lobe", "right lung", "ribs"]
    core = AnswererCore(AnswererConfig(), answers)
    core.learn_kinds(["Which side?", "What side?", "Where is it?"], np.array([2, 1, 3]))
    _, mask = core.candidate_mask("Which side of the brain is the lesion on?")
    assert {answers[i] for i in np.flatnonzero(mask)} == {"bilateral", "left side", "right"}
    _, mask = core.candidate_mask("Which lung is collapsed?")
    assert "right lung" in {answers[i] for i in np.flatnonzero(mask)}


def test_isotonic_calibration_is_monotone_and_fits():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.5, 1.0, 4000)
    truth = rng.uniform(size=4000) < (raw - 0.5) * 1.2 + 0.2  # over-confident raw scores
    cal = Calibrator.fit(raw, truth, ["yes/no"] * 4000)
    xs = np.linspace(0.5, 1.0, 50)
    ys = cal(xs, "yes/no")
    assert np.all(np.diff(ys) >= -1e-12)
    fixed = cal.calibrate(raw, ["yes/no"] * 4000)
    assert expected_calibration_error(fixed, truth) < 0.03 < expected_calibration_error(raw, truth)
    assert cal(0.7, "open") == 0.7  # a form it was not fitted on passes through
    assert Calibrator.from_json(cal.to_json()).knots == cal.knots
    xk, yk = isotonic_fit(np.array([0.1, 0.2, 0.3]), np.array([1.0, 0.0, 1.0]))
    assert yk == sorted(yk)
    # No finite sample supports certainty: 30 answers all right map to 31/32, 30 all wrong to 1/32.
    _, right = isotonic_fit(np.linspace(0.5, 1.0, 30), np.ones(30))
    _, wrong = isotonic_fit(np.linspace(0.0, 0.5, 30), np.zeros(30))
    assert right == [31 / 32] and wrong == [1 / 32]
    # A small perfect block above a large imperfect one stays above it (the running maximum keeps the order).
    _, mixed = isotonic_fit(np.arange(12.0), np.array([1.0] * 9 + [0.0] + [1.0] * 2))
    assert mixed == sorted(mixed) and max(mixed) < 1.0


def test_calibration_per_question_kind_where_a_kind_has_enough_answers():
    """Two kinds of open question with the same raw confidences but different hit rates get their own maps; a kind
    with too few validation answers, or none given, falls back to the form's map."""
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.0, 0.6, 2000)
    kinds = np.where(np.arange(2000) < 1000, "location", "organ")
    truth = rng.uniform(size=2000) < np.where(kinds == "location", 0.2 * raw, raw)
    kinds[:30] = "size_count"  # too few for a map of their own
    forms = ["open"] * 2000
    by_kind = Calibrator.fit(raw, truth, forms, kinds=list(kinds), min_kind_count=100)
    assert set(by_kind.knots) == {"open", "open/location", "open/organ"}
    fixed = by_kind.calibrate(raw, forms, list(kinds))
    pooled = Calibrator.fit(raw, truth, forms).calibrate(raw, forms)
    for kind in ("location", "organ"):  # pooled, each kind is off (their errors cancel in the overall ECE)
        sel = kinds == kind
        assert expected_calibration_error(fixed[sel], truth[sel]) + 0.05 < expected_calibration_error(pooled[sel],
                                                                                                     truth[sel])
    assert by_kind(0.5, "open", "location") < by_kind(0.5, "open") < by_kind(0.5, "open", "organ")
    assert by_kind(0.5, "open", "size_count") == by_kind(0.5, "open") == by_kind(0.5, "open", None)
    assert Calibrator.from_json(by_kind.to_json())(0.5, "open", "location") == by_kind(0.5, "open", "location")


def test_calibrated_ece_range_is_the_noise_floor_of_a_small_set():
    """A perfectly calibrated system shows ECE > 0 on a few hundred answers; the range says how much, and a
    miscalibrated one lands above it."""
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.3, 1.0, 451)
    mean, p95 = calibrated_ece_range(conf, n_sim=300)
    assert 0.01 < mean < p95 < 0.12
    observed = [expected_calibration_error(conf, rng.uniform(size=451) < conf) for _ in range(50)]
    assert abs(np.mean(observed) - mean) < 0.01
    assert expected_calibration_error(conf, rng.uniform(size=451) < conf - 0.2) > p95
    assert calibrated_ece_range([]) == (0.0, 0.0)


def test_coverage_and_bootstrap():
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    hit = np.array([1, 1, 1, 0, 0], bool)
    assert accuracy_at_coverage(conf, hit, 0.6) == 1.0 and accuracy_at_coverage(conf, hit, 1.0) == 0.6
    assert risk_coverage(conf, hit, (0.2, 1.0)) == [(0.2, 1.0), (1.0, 0.6)]
    lo, hi = bootstrap_ci(np.r_[np.ones(60), np.zeros(40)], seed=1)
    assert lo < 0.6 < hi and hi - lo < 0.25
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0


@pytest.mark.parametrize("question,options", [
    ("Is the mass hyperintense or hypointense?", [("hyperintense", "mass hyperintense"), ("hypointense",)]),
    ("Is this a T1 weighted, T2 weighted, or FLAIR image?", [("weighted", "t1 weighted"), ("t2 weighted",),
                                                             ("flair",)]),
    ("Is the contrast in the bowels or the vasculature?", [("bowels",), ("vasculature",)]),
    ("Is the lesion on the patient's right or left side?", [("right", "right side"), ("left", "left side")]),
    ("Was this image taken with or without contrast?", [("with", "taken with", "with contrast"),
                                                       ("without", "without contrast")]),
    # A wh-question's options follow its comma or colon.
    ("Which is highlighted in this image, white or gray matter?", [("white", "white matter"),
                                                                   ("gray", "gray matter")]),
    ("Which is it: CT, MRI, or ultrasound?", [("ct",), ("mri",), ("ultrasound",)]),
    # The left option already ends with the shared word: no "enhanced enhanced".
    ("Is the CSF enhanced or non-enhanced?", [("enhanced", "csf enhanced"), ("non", "non enhanced")]),
    ("Are there epidural or subdural bleeds as well?", []),  # existence: yes / no
    ("Can you evaluate the kidneys, bladder or ureters in this image?", []),
    ("Is there a pleural effusion?", []),
])
def test_question_options(question, options):
    from kgclip.rag.router import question_options

    assert question_options(question) == options


def test_options_come_from_the_question_after_a_leading_clause():
    assert question_options("Besides the mass, is the lesion on the left or right?") == [("left",), ("right",)]
    assert question_options("Any evidence of epidural or subdural hematoma?") == []


def test_a_list_with_a_comma_before_or_is_a_choice():
    assert route_question("Is this a T1 weighted, T2 weighted, or FLAIR image?").form == "choice"


@pytest.mark.parametrize("question, kind", [
    ("Is there acute blood present on this head CT?", "presence"),  # the CT is where to look
    ("Do we see diffuse cerebral edema in this MRI?", "presence"),
    ("Is this a CT?", "modality"),
    ("Is this an MRI of the brain?", "modality"),
    ("What organ is shown in this CT scan?", "organ"),
])
def test_where_to_look_is_not_what_is_asked(question, kind):
    assert route_question(question).kind == kind
    if kind == "presence":
        assert route_question("Was contrast used in this image?").topic == "contrast"
