"""The MedPix report-drafting evaluation (real data; marked data + slow)."""

from __future__ import annotations

import pytest


@pytest.mark.data
@pytest.mark.slow
def test_medpix_dev_report_figures(shared_data):
    from kgclip.eval.report import evaluate_report
    from kgclip.ontology.store import load_ontologies

    out = evaluate_report(shared_data / "medpix-2.0", split="dev", graph=load_ontologies(), show_progress=False)
    assert out["n_cases"] == 67
    for key in ("bleu4", "rouge_l", "concept_f1", "concept_f1_random", "concept_f1_image_only"):
        assert 0.0 <= out[key] <= 1.0
    assert out["concept_f1"] > out["concept_f1_random"]
