"""The MedPix report-drafting evaluation on real data (marked data + slow). Runs on ``val`` (carved from train)
only: dev is for the reported figures, not for tests run again and again."""

from __future__ import annotations

import pytest


@pytest.mark.data
@pytest.mark.slow
def test_medpix_val_report_figures(shared_data):
    from kgclip.eval.report import evaluate_report
    from kgclip.ontology.store import load_ontologies

    out = evaluate_report(shared_data / "medpix-2.0", split="val", graph=load_ontologies(), select=False,
                          show_progress=False)
    assert out["split"] == "val" and out["n_cases"] == out["n_val_cases"] > 90
    for key in ("bleu4", "rouge_l", "concept_f1", "concept_f1_random", "concept_f1_image_only",
                "concept_f1_engine_nokg"):
        assert 0.0 <= out[key] <= 1.0
    # The selected KG drafter beats the baselines and its own no-KG ablation on the split it was selected on.
    assert out["concept_f1"] > 2 * max(out["concept_f1_random"], out["concept_f1_image_only"])
    assert out["concept_f1"] > out["concept_f1_engine_nokg"]
    # The draft confidence ranks drafts better than chance, and the drafted ones are the better ones.
    assert out["confidence_auroc"] > 0.55 and 0.3 <= out["draft_coverage"] < 1.0
    assert out["concept_f1_drafted"] > out["concept_f1"] == out["risk_coverage"]["1.0"]
