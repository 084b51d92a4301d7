"""The VQA-RAD evaluation runner on a synthetic folder (fast), and on the real data (marked data + slow)."""

from __future__ import annotations

import pytest

from kgclip.errors import InputFormatError
from kgclip.eval.vqa import evaluate_vqa_rad
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder


def test_evaluate_reports_kg_and_nokg_figures(tmp_path):
    root = make_vqa_folder(tmp_path / "vqa", n_images=16)
    out = evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"),
                           show_progress=False, image_features="thumbnail", per_question=True)
    for key in ("acc_closed", "acc_open", "acc_overall", "acc_closed_nokg", "acc_open_nokg", "acc_overall_nokg"):
        assert 0.0 <= out[key] <= 1.0
    assert out["n_test"] == 12 and out["n_test_closed"] == 8 and out["n_test_open"] == 4
    assert out["acc_closed"] >= 0.75
    # The trust figures: calibration, coverage, kinds, CIs, abstention on in- and out-of-range inputs.
    assert 0.0 <= out["ece"] <= 1.0 and out["risk_coverage_closed"][-1] == [1.0, out["acc_closed"]]
    assert out["acc_closed_ci"][0] <= out["acc_closed"] <= out["acc_closed_ci"][1]
    assert {"presence", "modality"} <= set(out["acc_by_kind"])
    # In range, the only declines are questions about the pleura (chest) asked of head images (odd numbers).
    declined = [(r["image"], r["question"]) for r in out["per_question"] if r["abstained"]]
    assert declined and all(int(image[-3:]) % 2 == 1 and "pleural" in q for image, q in declined)
    assert out["abstain_in_range_rate"] == round(len(declined) / out["n_test"], 4)
    assert out["abstain_ood_rate"] >= 0.95 and out["n_ood"] >= 10 and "acc_closed_answerer" in out


def test_val_split_never_reads_the_test_split(tmp_path):
    """Development runs score a split carved from train; the test rows (here: pointing at missing images) are unused."""
    import json

    root = make_vqa_folder(tmp_path / "vqa", n_images=16)
    path = next(root.glob("*.json"))
    rows = json.loads(path.read_text())
    for r in rows:
        if r["phrase_type"].startswith("test"):
            r["image_name"] = "missing-test-image.png"
    path.write_text(json.dumps(rows))
    out = evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"), split="val",
                           show_progress=False, image_features="thumbnail")
    n_train = sum(not r["phrase_type"].startswith("test") for r in rows)
    assert out["split"] == "val" and out["n_test"] == n_train  # every training question scored once, out of fold
    with pytest.raises(Exception, match="missing-test-image"):  # the test split does read them
        evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"), split="test",
                         show_progress=False, image_features="thumbnail")


def test_per_question_rows_are_the_scored_answers(tmp_path):
    """The error-analysis rows: one per scored question, and their hits are the reported accuracies."""
    root = make_vqa_folder(tmp_path / "vqa", n_images=16)
    out = evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"), split="val",
                           show_progress=False, image_features="thumbnail", variants=("kg",), per_question=True)
    rows = out["per_question"]
    assert len(rows) == out["n_test"] and sum(r["closed"] for r in rows) == out["n_test_closed"]
    closed_hits = [r["hit"] for r in rows if r["closed"]]
    assert round(sum(closed_hits) / len(closed_hits), 4) == out["acc_closed"]
    assert {"question", "gold", "predicted", "answerer", "source", "kind", "form", "confidence"} <= set(rows[0])
    assert {r["source"] for r in rows} <= {"answerer", "image-classifier", "case-metadata", "case-votes+answerer",
                                          "case-concepts", "dicom-header"}
    assert "per_question" not in evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder(
        "hashing-64"), split="val", show_progress=False, image_features="thumbnail", variants=("kg",))


def test_validation_folds_keep_paraphrase_groups_whole():
    from kgclip.eval.vqa import validation_folds
    from kgclip.rag.answerer import QAExample

    examples = [QAExample(f"img{i % 7}.png", f"question {i}", "yes", True, group=f"g{i // 2}") for i in range(100)]
    folds = validation_folds(examples, 5, seed=3)
    assert len(folds) == 5 and sorted(e.question for _, v in folds for e in v) == sorted(e.question for e in examples)
    for train, val in folds:
        assert len(train) + len(val) == 100 and len(val) == 20
        assert not {e.group for e in train} & {e.group for e in val}
    assert validation_folds(examples, 5, seed=3) == folds  # seeded


def test_bad_folders_are_refused(tmp_path):
    enc = load_text_encoder("hashing-64")
    with pytest.raises(InputFormatError, match="no VQA-RAD JSON"):
        evaluate_vqa_rad(tmp_path, graph=None, text_encoder=enc, show_progress=False)
    (tmp_path / "VQA_RAD_Dataset_Public.json").write_text("{not json")
    with pytest.raises(InputFormatError, match="invalid JSON"):
        evaluate_vqa_rad(tmp_path, graph=None, text_encoder=enc, show_progress=False)
    (tmp_path / "VQA_RAD_Dataset_Public.json").write_text('{"question": "a dict, not a list"}')
    with pytest.raises(InputFormatError, match="JSON list"):
        evaluate_vqa_rad(tmp_path, graph=None, text_encoder=enc, show_progress=False)


@pytest.mark.data
@pytest.mark.slow
def test_real_vqa_rad_beats_majority_on_validation(shared_data):
    """On validation carved from train (the test split is kept for the one reported run of `kgclip eval`)."""
    from kgclip.ontology.store import load_ontologies

    out = evaluate_vqa_rad(shared_data / "vqa-rad", graph=load_ontologies(), split="val",
                           text_encoder=load_text_encoder("minilm"), show_progress=False)
    assert out["n_test"] == 1797 and out["val_folds"] == 5
    assert out["acc_closed"] > 0.55  # the majority answer ("no") scores about half
