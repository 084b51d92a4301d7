"""The VQA-RAD evaluation runner on a synthetic folder (fast), and on the real data (marked data + slow)."""

from __future__ import annotations

import pytest

from kgclip.errors import InputFormatError
from kgclip.eval.vqa import evaluate_vqa_rad, load_vqa_rad_rows
from kgclip.rag.synthetic import make_vqa_folder
from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder


def test_evaluate_reports_kg_and_nokg_figures(tmp_path):
    root = make_vqa_folder(tmp_path / "vqa", n_images=16)
    out = evaluate_vqa_rad(root, graph=tiny_graph(), text_encoder=load_text_encoder("hashing-64"),
                           show_progress=False)
    for key in ("acc_closed", "acc_open", "acc_overall", "acc_closed_nokg", "acc_open_nokg", "acc_overall_nokg"):
        assert 0.0 <= out[key] <= 1.0
    assert out["n_test"] == 12 and out["n_test_closed"] == 8 and out["n_test_open"] == 4
    assert out["acc_closed"] >= 0.75


def test_bad_folders_are_refused(tmp_path):
    with pytest.raises(InputFormatError, match="no VQA-RAD JSON"):
        load_vqa_rad_rows(tmp_path)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(InputFormatError, match="cannot read"):
        load_vqa_rad_rows(tmp_path)


@pytest.mark.data
@pytest.mark.slow
def test_real_vqa_rad_beats_majority(shared_data):
    from kgclip.ontology.store import load_ontologies

    out = evaluate_vqa_rad(shared_data / "vqa-rad", graph=load_ontologies(),
                           text_encoder=load_text_encoder("minilm"), show_progress=False)
    assert out["n_test_closed"] == 272 and out["n_test_open"] == 179
    assert out["acc_closed"] > 0.489  # the majority ("no") baseline
