"""Engine.ask grounded and abstaining: the user's added cases vote at once, out-of-range inputs abstain with a reason,
bad input fails before any model is loaded, and `kgclip vqa fit` refits on the user's pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from kgclip.cli.main import main
from kgclip.engine import Engine, EngineConfig
from kgclip.errors import ImageReadError, InputFormatError
from kgclip.eval.ood import out_of_range_inputs
from kgclip.testing import tiny_graph
from kgclip.testing.synthetic import make_vqa_folder

CONFIG = EngineConfig(text_encoder="hashing-64")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=12)
    ws = tmp_path_factory.mktemp("ws") / "workspace"
    engine = Engine.build(CONFIG, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    return engine, data, ws


def _new_scan(path, seed):
    """A kind of image the workspace has never seen: diagonal bands."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    img = 0.5 + 0.4 * np.sin((xx + yy) / 2.5) + rng.normal(0, 0.03, (64, 64))
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def test_out_of_range_inputs_abstain_with_a_reason(built):
    engine, data, _ = built
    abstained = {}
    for name, source in out_of_range_inputs():
        answer = engine.ask(source, "Is there a pleural effusion?")
        abstained[name] = answer.abstained
        assert not answer.abstained or answer.abstain_reason
        assert answer.evidence is not None  # evidence stays
    assert sum(abstained.values()) >= 0.9 * len(abstained), abstained
    in_range = engine.ask(data / "images" / "synth010.png", "Is there a pleural effusion?")
    assert not in_range.abstained and in_range.route == "presence"
    # Its similar questions were asked about similar images (a memory image of the same kind).
    threshold = engine.answerer.meta["image_sim_threshold"]
    assert in_range.evidence.similar_questions
    assert all(q.image_score >= threshold for q in in_range.evidence.similar_questions)


def test_bad_input_is_an_error(built, tmp_path):
    engine, data, _ = built
    with pytest.raises(InputFormatError):
        engine.ask(data / "images" / "synth010.png", "x" * 1_000_000)
    with pytest.raises(ImageReadError):
        engine.ask(tmp_path / "missing.png", "Is there a pleural effusion?")


def test_added_cases_vote_at_once(built, tmp_path):
    engine, _, _ = built
    scans = [_new_scan(tmp_path / f"band{i}.png", i) for i in range(4)]
    query = _new_scan(tmp_path / "query.png", 99)
    before = engine.ask(query, "Is there a pneumothorax?")
    assert before.abstained and "no similar case" in before.abstain_reason
    engine.add_cases([{"case_id": f"band{i}", "image": str(p), "text": "Large pneumothorax of the left lung.",
                       "modality": "XR", "body_part": "CHEST"} for i, p in enumerate(scans)])
    answer = engine.ask(query, "Is there a pneumothorax?")
    assert answer.flags.get("source") == "case-votes+answerer" and answer.text == "yes" and not answer.abstained
    assert {c.case_id for c in answer.evidence.similar_cases} & {f"band{i}" for i in range(4)}
    # No memory image is like it, so no "similar question on a similar image" is listed: only the cases are.
    assert before.evidence.similar_questions == [] and answer.evidence.similar_questions == []
    modality = engine.ask(query, "Is this a chest x-ray?")  # classifiers retrained on the added cases' metadata
    assert modality.text == "yes" and not modality.abstained
    assert modality.flags.get("source") in ("image-classifier", "case-metadata")
    # The answerer was trained on no such image, and the cases do not answer an open question: decline, saying why.
    open_answer = engine.ask(query, "What is the abnormality?")
    assert open_answer.abstained and "only the workspace's cases" in open_answer.abstain_reason
    # A question about anatomy the image does not show (its similar cases are chest cases) is declined, saying so.
    brain = engine.ask(query, "Is the brain normal?")
    assert brain.abstained and brain.abstain_reason.startswith("the question is about the head (brain)")
    assert "chest" in brain.abstain_reason


def test_a_question_naming_nothing_known_is_declined(built):
    engine, data, _ = built
    image = data / "images" / "synth010.png"
    for question in ("asdf", "Is there qwertyuiop?"):
        answer = engine.ask(image, question)
        assert answer.abstained and "names nothing kgclip knows" in answer.abstain_reason, question
    assert "'qwertyuiop'" in engine.ask(image, "Is there qwertyuiop?").abstain_reason
    assert not engine.ask(image, "Is there a pleural effusion?").abstained


def test_cli_checks_inputs_first_and_says_cannot_answer(built, tmp_path, capsys):
    from pydicom.data import get_testdata_file

    _, data, ws = built
    assert main(["ask", str(tmp_path / "nope.png"), "Is there X?", "--workspace", str(ws)]) == 1
    assert "no such file" in capsys.readouterr().err.lower()
    assert main(["ask", str(data / "images" / "synth010.png"), "", "--workspace", str(ws)]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["ask", get_testdata_file("rtdose.dcm"), "Is there an effusion?", "--workspace", str(ws)]) == 0
    assert "cannot answer: RT Dose Storage" in capsys.readouterr().out


def test_vqa_fit_refits_on_the_users_pairs(built, tmp_path, capsys):
    _, _, ws = built
    rows = []
    for i in range(5):
        path = _new_scan(tmp_path / f"fit{i}.png", 10 + i)
        rows.append({"image": path.name, "question": "What pattern is this?", "answer": "diagonal bands",
                     "group": f"f{i}"})
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["vqa", "fit", str(ws), "--input", str(qa), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pairs_added"] == 5 and "val_acc" in out
    engine = Engine.load(ws)  # the manifest matches the refit answerer
    assert engine.ask(_new_scan(tmp_path / "q.png", 42), "What pattern is this?").text == "diagonal bands"
