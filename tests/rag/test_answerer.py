"""The VQA answerer on a synthetic folder: closed and open answers, validation selection, save/load, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from kgclip.errors import ConfigError, StaleArtifactError
from kgclip.data.vqa_rad import read_vqa_rad
from kgclip.eval.vqa import score_predictions
from kgclip.rag.answerer import AnswererConfig, normalize_answer, question_kind
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.rag.vqa import OPTION_CONFIDENCE, VQAAnswerer, examples_from_vqa_rad
from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder

FAST = AnswererConfig()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_vqa_folder(tmp_path_factory.mktemp("vqa"), n_images=16)
    items = read_vqa_rad(root)
    train = examples_from_vqa_rad([i for i in items if i.split == "train"])
    test = examples_from_vqa_rad([i for i in items if i.split == "test"])
    paths = {i.image_key: i.image_path for i in items}
    vecs = dict(zip(paths, ThumbnailFeaturizer().embed(list(paths.values()))))
    return train, test, vecs


@pytest.fixture(scope="module")
def fitted(data):
    train, _, vecs = data
    return VQAAnswerer.fit(train, vecs, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"),
                           config=FAST, show_progress=False)


def test_question_kind_and_normalisation():
    assert question_kind("Is there a pleural effusion?") == "yes/no"
    assert question_kind("Is this a CT or an MRI?") == "choice"
    assert question_kind("What organ is shown?") == "open"
    assert question_kind("In this image, is the heart enlarged?") == "yes/no"
    assert normalize_answer(" The Right  Lung. ") == "right lung"


def test_fit_answers_held_out_questions(fitted, data):
    model, val = fitted
    _, test, vecs = data
    assert 0.0 <= val["val_acc"] <= 1.0 and "mix" in val["selected"]
    preds = model.predict_batch([e.question for e in test], np.stack([vecs[e.image_key] for e in test]))
    scores = score_predictions([p.normalized for p in preds], test)
    # Closed questions: effusion follows the image kind, the choice question names its options.
    assert scores["acc_closed"] >= 0.75
    by_q = {(e.image_key, e.question): p for e, p in zip(test, preds)}
    choice = [p for (k, q), p in by_q.items() if "CT or" in q]
    assert all(p.text in ("CT", "MRI") and p.kind == "closed" for p in choice)
    yes_no = [p for (k, q), p in by_q.items() if q.startswith("Is there")]
    assert yes_no and all({c for c, _ in p.candidates} <= {"yes", "no", "Yes", "No"} for p in yes_no)
    opened = [p for (k, q), p in by_q.items() if q == "What organ is shown?"]
    assert all(p.kind == "open" and p.normalized not in ("yes", "no") for p in opened)
    assert all(0.0 <= p.confidence <= 1.0 for p in preds)
    assert all(p.neighbors for p in preds)  # evidence: similar questions with answers


def test_save_load_roundtrip_and_refusals(fitted, data, tmp_path):
    model, _ = fitted
    _, test, vecs = data
    model.save(tmp_path / "ans")
    enc = load_text_encoder("hashing-64")
    loaded = VQAAnswerer.load(tmp_path / "ans", graph=tiny_graph(), text_encoder=enc)
    e = test[0]
    a, b = model.predict(e.question, vecs[e.image_key]), loaded.predict(e.question, vecs[e.image_key])
    assert a.text == b.text and a.confidence == pytest.approx(b.confidence, abs=1e-6)
    with pytest.raises(StaleArtifactError, match="text encoder"):
        VQAAnswerer.load(tmp_path / "ans", graph=tiny_graph(), text_encoder=load_text_encoder("hashing-32"))
    edited = tiny_graph()
    edited.remove_relation("RADLEX:RID4872", "located_in", "RADLEX:RID1362")
    with pytest.raises(StaleArtifactError, match="concept graph"):
        VQAAnswerer.load(tmp_path / "ans", graph=edited, text_encoder=enc)


def test_fit_refuses_bad_input(data):
    train, _, vecs = data
    with pytest.raises(ConfigError, match="at least 10"):
        VQAAnswerer.fit(train[:3], vecs, graph=None, text_encoder=load_text_encoder("hashing-64"), config=FAST,
                        show_progress=False)
    with pytest.raises(ConfigError, match="no features"):
        VQAAnswerer.fit(train, {}, graph=None, text_encoder=load_text_encoder("hashing-64"), config=FAST,
                        show_progress=False)
    with pytest.raises(ConfigError):
        AnswererConfig(val_fraction=0.9)


def test_a_choice_question_gets_one_of_its_options_even_when_no_training_answer_is_one(fitted, data):
    """'Is the CSF radiolucent or radioopaque?' was answered 'No' (no option is a training answer); now an option,
    chosen by the similar training questions' answers and how often training answers name each option."""
    model, _ = fitted
    _, test, vecs = data
    img = np.stack([vecs[test[0].image_key]] * 2)
    preds = model.predict_batch(["Is the lesion hyperintense or hypointense?", "Is the CSF radiolucent or opaque?"],
                                img)
    for pred, options in zip(preds, (("hyperintense", "hypointense"), ("radiolucent", "opaque"))):
        assert pred.normalized in options and pred.form == "options" and pred.kind == "closed"
        assert [normalize_answer(c) for c, _ in pred.candidates] == sorted(
            options, key=lambda o: o != pred.normalized)
        # Confidences are evidence shares scaled by OPTION_CONFIDENCE (option answers are often worded otherwise).
        assert 0.0 < pred.confidence < 1.0
        assert abs(sum(p for _, p in pred.candidates) - OPTION_CONFIDENCE) < 1e-6
    # An answer that already names an option is kept ("CT or MRI?" in the synthetic training set).
    ct = model.predict_batch(["Is this a CT or an MRI?"], img[:1])[0]
    assert ct.form == "choice" and ct.text in ("CT", "MRI")
    # When the training answers name only one of the options, the answerer's distribution holds that one alone
    # (probability 1: it was shown at confidence 1.0 and right half the time); the options are weighed instead.
    one = model.predict_batch(["Is this a CT or an ultrasound?"], img[:1])[0]
    assert one.form == "options" and {normalize_answer(c) for c, _ in one.candidates} == {"ct", "ultrasound"}
    assert one.confidence <= OPTION_CONFIDENCE


@pytest.mark.parametrize("question, written", [
    # Options no training answer gives are written as the question writes them, never as a bare prefix ("non").
    ("Is the CSF enhanced or non-enhanced?", ["enhanced", "non enhanced"]),
    ("Is the abnormality hyper dense or hypo dense?", ["hyper dense", "hypo dense"]),
    ("Is the lesion more or less dense?", ["more dense", "less dense"]),
    ("Do you suspect a vascular process or a genetic process?", ["process", "genetic"]),
    ("Is the mass solid or cystic in nature?", ["solid", "cystic"]),
])
def test_an_option_is_written_as_the_question_writes_it(question, written):
    from kgclip.rag.router import question_options
    from kgclip.rag.vqa import _option_text

    options = question_options(question)
    assert [_option_text(j, options, {}) for j in range(len(options))] == written
    # A span given as a whole training answer wins ("left side" over "left" when it is the more frequent).
    side = question_options("Is the lesion on the right or left side?")
    assert _option_text(1, side, {"left side": 3, "left": 1}) == "left side"
    assert _option_text(1, side, {"left side": 1, "left": 3}) == "left"


def test_an_answer_names_the_option_it_covers_most_of():
    from kgclip.rag.router import question_options
    from kgclip.rag.vqa import _option_named

    options = question_options("Is the CSF enhanced or non-enhanced?")
    assert _option_named("non enhanced", options) == 1 and _option_named("enhanced", options) == 0
    dense = question_options("Is the lesion more or less dense?")
    assert _option_named("more dense", dense) == 0 and _option_named("less dense", dense) == 1
    assert _option_named("left and right", question_options("Is it on the left or right?")) is None  # both
    assert _option_named("yes", dense) is None


def test_fit_learns_the_abstention_threshold_of_its_least_confident_answers(fitted, data, tmp_path):
    """The threshold is the abstain_share quantile of the calibrated out-of-fold confidences; it is saved, and an
    answer below it is declined with the reason."""
    from dataclasses import replace

    from kgclip.rag.abstain import answer_abstain_reason

    model, _ = fitted
    train, test, vecs = data
    learned = model.meta["learned_min_confidence"]
    assert 0.0 < learned < 1.0 and model.min_confidence == learned
    model.save(tmp_path / "ans")
    loaded = VQAAnswerer.load(tmp_path / "ans", graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"))
    assert loaded.min_confidence == learned
    pred = model.predict_batch([test[0].question], vecs[test[0].image_key][None, :])[0]
    low = replace(pred, confidence=learned / 2)
    assert "not confident enough" in answer_abstain_reason(low, image_threshold=None,
                                                           min_confidence=model.min_confidence)
    off, _ = VQAAnswerer.fit(train, vecs, graph=None, text_encoder=load_text_encoder("hashing-64"),
                             config=AnswererConfig(abstain_share=0.0, min_confidence=0.2), show_progress=False)
    assert off.meta["learned_min_confidence"] == 0.0 and off.min_confidence == 0.2
    with pytest.raises(ConfigError, match="abstain_share"):
        AnswererConfig(abstain_share=0.6)
