"""The report-drafting evaluation: val carved from train by case, retrieval pools, selection on val only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kgclip.eval.report import evaluate_report
from kgclip.eval.report_data import MedPixReportData, carve_val_cases
from kgclip.eval.report_prior import split_priors, train_split_prior
from kgclip.eval.report_select import MemoTagger, ReportScorer, RetrievalConfig, draft_split, select_draft_config
from kgclip.rag.concept_prior import ConceptPriorConfig
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.report import DraftConfig
from kgclip.testing import tiny_graph

_CHEST = ["Small pleural effusion. Cardiomegaly.", "Pleural effusion on the right. Mild cardiomegaly.",
          "Cardiomegaly. No pneumothorax.", "Large pleural effusion with atelectasis."]
_HEAD = ["Epilepsy focus in the brain.", "Brain lesion in a patient with epilepsy.", "Normal brain. Epilepsy."]


def _image(path: Path, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:48]
    base = x * 5 if kind == "chest" else np.hypot(x - 24, y - 24) * 8  # gradient vs rings: easy to tell apart
    Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)).save(path)


def _medpix(root: Path, n_train: int = 30, n_dev: int = 4) -> Path:
    (root / "images").mkdir(parents=True)
    cases, descriptions, splits = [], [], {"train": [], "dev": []}
    for i in range(n_train + n_dev):
        kind = "chest" if i % 2 == 0 else "head"
        cid, img = f"MPX{i}", f"MPX{i}_synpic{i}"
        texts = _CHEST if kind == "chest" else _HEAD
        cases.append({"U_id": cid, "TAC": [img] if kind == "chest" else [], "MRI": [img] if kind == "head" else [],
                      "Case": {"Title": kind, "Findings": texts[i % len(texts)]}, "Topic": {"Title": kind}})
        descriptions.append({
            "Type": "CT" if kind == "chest" else "MR", "U_id": cid, "image": img,
            "Location": "Chest, Pulmonary" if kind == "chest" else "Brain and Neuro",
            "Location Category": "Thorax" if kind == "chest" else "Head",
            "Description": {"Caption": f"{kind} caption", "Modality": "CT - noncontrast", "Plane": "Axial"}})
        splits["train" if i < n_train else "dev"].append(cid)
        _image(root / "images" / f"{img}.jpg", kind, i)
    for name, rows in (("cases", cases), ("descriptions", descriptions), ("splits", splits)):
        (root / f"{name}.json").write_text(json.dumps(rows))
    return root


def test_carve_val_cases_is_seeded_by_case_and_order_free():
    ids = [f"c{i}" for i in range(50)]
    val = carve_val_cases(ids, 0.2, seed=0)
    assert len(val) == 10 and set(val) <= set(ids)
    assert carve_val_cases(list(reversed(ids)), 0.2, seed=0) == val
    assert carve_val_cases(ids, 0.2, seed=1) != val
    with pytest.raises(ValueError):
        carve_val_cases(ids, 1.0)


def test_val_queries_retrieve_among_the_other_train_cases_only(tmp_path):
    data = MedPixReportData(_medpix(tmp_path / "mp"), splits=("dev",))
    val, dev = data.split("val"), data.split("dev")
    assert set(val.case_ids) == data.val_cases and len(val) == 6
    val_pool = {data.images[i].case_id for i in val.pool}
    assert not val_pool & data.val_cases and not val_pool & set(dev.case_ids)
    dev_pool = {data.images[i].case_id for i in dev.pool}
    assert dev_pool == {f"MPX{i}" for i in range(30)}  # dev retrieves among all train cases, val included
    assert val.sims.shape == (6, len(val.pool))
    for qi in range(len(val)):
        query = data.images[val.queries[qi]]
        hits = data.retrieve(val, qi, 5, filter_="modality+region")
        assert len(hits) == 5 and len({h.case_id for h in hits}) == 5
        assert all(h.metadata["modality"] == query.modality for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="unknown split"):
        data.split("test")


def test_selection_keeps_the_best_value_tried_on_val(tmp_path):
    g = tiny_graph()
    data = MedPixReportData(_medpix(tmp_path / "mp"), splits=())
    tagger = MemoTagger(ConceptTagger(g))
    space = {"r.k": (1, 3, 10), "d.max_findings": (1, 4)}
    start = (RetrievalConfig(k=3), DraftConfig(max_findings=1))
    choice = select_draft_config(data, tagger, g, space=space, start=start, rounds=2)
    assert choice.retrieval.k in (1, 3, 10) and choice.draft.max_findings in (1, 4)
    best = max(score for _, score in choice.trials)
    assert choice.figures["concept_f1"] + choice.figures["bleu4"] + choice.figures["rouge_l"] == pytest.approx(best)
    # The figures are what the chosen configuration scores on val, not on anything else.
    split = data.split("val")
    hyps = draft_split(data, split, choice.retrieval, choice.draft, tagger=tagger, graph=g)
    assert ReportScorer(tagger, split.references).score(hyps) == pytest.approx(choice.figures)


def test_val_run_never_reads_dev_and_dev_run_reports_both(tmp_path):
    root = _medpix(tmp_path / "mp")
    g = tiny_graph()
    out = evaluate_report(root, split="dev", graph=g, rounds=1, show_progress=False, prior_features="thumbnail")
    assert out["n_cases"] == 4 and out["n_val_cases"] == 6 and out["selected_on"] == "val"
    for key in ("concept_f1", "bleu4", "rouge_l", "concept_f1_engine_nokg", "concept_f1_random",
                "concept_f1_image_only", "val_concept_f1", "val_concept_f1_engine_nokg", "val_bleu4"):
        assert 0.0 <= out[key] <= 1.0, key
    assert out["concept_f1"] > out["concept_f1_random"]  # chest vs head: retrieval by image + metadata helps
    assert set(out["selected"]) == {"engine", "engine_nokg"}
    assert out["concept_prior"]["features"] == "thumbnail" and out["select_on"] == "concept_f1"
    for name in ("MPX30_synpic30", "MPX31_synpic31"):  # dev images gone: a val run must not notice
        (root / "images" / f"{name}.jpg").unlink()
    val = evaluate_report(root, split="val", graph=g, rounds=1, show_progress=False, prior_features="thumbnail")
    assert val["split"] == "val" and val["n_cases"] == 6 and "val_concept_f1" not in val
    with pytest.raises(Exception, match="missing"):
        evaluate_report(root, split="dev", graph=g, select=False, show_progress=False, prior=False)


def test_cli_eval_report_on_val_without_selection(tmp_path, capsys, monkeypatch):
    """`kgclip eval report --split val --no-select --json`: one JSON line last, the stored configurations."""
    from kgclip.cli import eval_cmd
    from kgclip.cli.main import main

    root = _medpix(tmp_path / "mp")
    monkeypatch.setattr(eval_cmd, "_graph", tiny_graph)  # the shipped ontologies are not needed here
    assert main(["eval", "report", str(root), "--split", "val", "--no-select", "--prior-features", "thumbnail",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["split"] == "val" and out["n_cases"] == 6 and 0.0 <= out["concept_f1"] <= 1.0
    # The draft confidence: coverage at the stored threshold, concept F1 of the drafted queries with its interval,
    # the risk-coverage curve (its full-coverage point is the figure on all queries) and the ranking quality.
    assert out["min_confidence"] == DraftConfig().min_confidence == out["selected"]["engine"]["draft"]["min_confidence"]
    assert 0.0 <= out["draft_coverage"] <= 1.0 and out["n_abstained"] == round((1 - out["draft_coverage"]) * 6)
    low, high = out["concept_f1_drafted_ci"]
    assert low <= out["concept_f1_drafted"] <= high or out["draft_coverage"] == 0.0
    assert list(out["risk_coverage"]) == ["1.0", "0.8", "0.6", "0.4"]
    assert out["risk_coverage"]["1.0"] == pytest.approx(out["concept_f1"], abs=1e-4)
    for key in ("confidence_auroc", "confidence_spearman", "confidence_spearman_within"):
        assert key in out
    with pytest.raises(SystemExit):
        main(["eval", "report", str(root), "--rounds", "0"])


def test_the_split_prior_learns_from_the_pool_only_and_selection_can_maximise_concept_f1(tmp_path):
    g = tiny_graph()
    data = MedPixReportData(_medpix(tmp_path / "mp"), splits=("dev",))
    tagger = MemoTagger(ConceptTagger(g))
    val = data.split("val")
    prior = train_split_prior(data, val, tagger, g, ConceptPriorConfig(min_cases=2), "thumbnail")
    pool_cases = {data.images[i].case_id for i in val.pool}
    assert prior.meta["n_cases"] == len(pool_cases) and not pool_cases & data.val_cases
    assert prior.meta["features"] == "thumbnail-32"
    priors = split_priors(data, val, prior, "thumbnail")
    assert len(priors) == len(val)
    for qi, p in enumerate(priors):  # a chest query expects chest findings, a head query head findings
        chest = data.query_metadata(val, qi)["region"] == "Thorax"
        effusion, epilepsy = p.get("RADLEX:RID4872", 0.0), p.get("DOID:1826", 0.0)
        assert (effusion > epilepsy) == chest
    space = {"d.prior_mix": (0.0, 1.0), "d.min_support": (0.1, 0.3)}
    choice = select_draft_config(data, tagger, g, space=space, rounds=1, priors=priors, metric="concept_f1")
    assert choice.figures["concept_f1"] == pytest.approx(max(score for _, score in choice.trials))
    with pytest.raises(Exception, match="selection metric"):
        select_draft_config(data, tagger, g, space=space, rounds=1, metric="bleu")
