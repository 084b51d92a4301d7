"""Design study of the draft confidence (:mod:`kgclip.rag.draft_confidence`) on MedPix *validation* only.

    python benchmarks/bench_draft_confidence.py [--seeds 0,1,2,3,4] [--out FILE]

Queries: the val carve-outs of MedPix *train* (20 % of its cases each, ``carve_val_cases`` with each seed; seed 0 is
the ``kgclip eval report --split val`` carve-out, the other seeds add power for the design), each retrieving among
the rest of train and drafted by the evaluation's engine (``ENGINE_RETRIEVAL`` / ``ENGINE_DRAFT`` with the concept
prior trained on that carve-out's pool, no threshold). MedPix dev is never read.

For each draft: its concept F1 against the case's Findings and the candidate signals a draft can rest on:

* ``agreement``: the similar cases' vote-weighted mean pairwise concept overlap, widened through the graph (what
  the engine uses: ``DraftReport.agreement``); ``agreement_exact``: the same without the graph;
* ``consensus_mean``: mean consensus support of the drafted concepts; ``vote_share``: vote-weighted share of the
  similar cases asserting one of them;
* ``prior_mean``: mean concept-prior probability of the drafted concepts; ``expected_f1_prior``: the draft's
  expected concept F1 under the prior, ``2 sum_C p / (|C| + sum_all p)``;
* ``gain_max``: the best chosen sentence's gain; ``top_similarity``: the nearest similar case's score.

Figures per signal, pooled over the carve-outs and on seed 0 alone: AUROC of concept F1 >= the median draft's,
Spearman, and Spearman within each (modality, region). Then the chosen signal's logistic mapping (fitted on the
pooled rows), the threshold (the highest on a 0.01 grid keeping >= 50 % of pooled drafts), coverage per kind of
study at it, and the risk-coverage curve. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import shared_data_dir  # noqa: E402 - after the sys.path insert above

SIGNALS = ("agreement", "agreement_exact", "consensus_mean", "vote_share", "prior_mean", "expected_f1_prior",
           "gain_max", "top_similarity")


def fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """``(offset, slope)`` of a one-feature logistic regression (Newton's method, unpenalised)."""
    X = np.stack([np.ones_like(x), x], 1)
    beta = np.zeros(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-X @ beta))
        hess = X.T @ (X * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, X.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def draft_rows(data, seed: int, graph, tagger) -> list[dict]:  # noqa: ANN001
    from kgclip.eval.report import ENGINE_DRAFT, ENGINE_RETRIEVAL, PRIOR_CONFIG
    from kgclip.eval.report_data import carve_val_cases
    from kgclip.eval.report_prior import split_priors, train_split_prior
    from kgclip.eval.report_select import ReportScorer, draft_reports
    from kgclip.eval.text_metrics import concept_f1
    from kgclip.rag.consensus import GraphExpander, case_weights, concept_support
    from kgclip.rag.draft_confidence import case_agreement

    train_ids = [cid for cid, c in data.cases.items() if c.split == "train" and c.findings]
    data.val_cases = set(carve_val_cases(train_ids, data.val_fraction, seed))
    data._splits.pop("val", None)  # the split and its metadata memo belong to the previous carve-out
    data._meta.pop("val", None)
    split = data.split("val")
    priors = split_priors(data, split, train_split_prior(data, split, tagger, graph, PRIOR_CONFIG))
    expander = GraphExpander(graph, ENGINE_DRAFT.graph_hops)
    reports = draft_reports(data, split, ENGINE_RETRIEVAL, ENGINE_DRAFT, tagger=tagger, graph=graph,
                            expander=expander, priors=priors)
    scorer = ReportScorer(tagger, split.references)
    rows = []
    for qi, report in enumerate(reports):
        meta = data.query_metadata(split, qi)
        hits = report.similar_cases
        sets = [tagger.concept_ids(h.metadata.get("findings", h.text), include_negated=False) for h in hits]
        w = case_weights([h.score for h in hits], ENGINE_DRAFT.temperature)
        support = concept_support([h.case_id for h in hits], sets, [[] for _ in hits], w, expander=expander,
                                  credit=ENGINE_DRAFT.graph_credit)
        chosen = list(dict.fromkeys(c for s in report.findings for c in s.concepts))
        prior = priors[qi]
        rows.append({
            "seed": seed, "case": split.case_ids[qi], "group": f"{meta['modality']}|{meta['region']}",
            "f1": concept_f1(scorer.concepts(report.findings_text, True), scorer.gold[qi]),
            "confidence": report.confidence or 0.0,
            "agreement": report.agreement or 0.0,
            "agreement_exact": case_agreement(sets, w),
            "consensus_mean": float(np.mean([support.pos(c) for c in chosen])) if chosen else 0.0,
            "vote_share": float(np.dot(w, [bool(set(s) & set(chosen)) for s in sets]) / max(w.sum(), 1e-9)),
            "prior_mean": float(np.mean([prior.get(c, 0.0) for c in chosen])) if chosen else 0.0,
            "expected_f1_prior": (2 * sum(prior.get(c, 0.0) for c in chosen) / (len(chosen) + sum(prior.values()))
                                  if chosen else 0.0),
            "gain_max": max((s.score for s in report.findings), default=0.0),
            "top_similarity": float(hits[0].score) if hits else 0.0,
        })
    return rows


def ranking(rows: list[dict], key: str) -> dict[str, float]:
    from kgclip.eval.report_confidence import auroc, spearman, within_groups

    f1 = np.array([r["f1"] for r in rows])
    x = np.array([r[key] for r in rows])
    return {"auroc": round(auroc(x, f1 >= np.median(f1)), 3), "spearman": round(spearman(x, f1), 3),
            "spearman_within": round(within_groups(x, f1, [r["group"] for r in rows]), 3)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="val carve-out seeds (0: the evaluation's)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    from kgclip.eval.report_confidence import risk_coverage
    from kgclip.eval.report_data import MedPixReportData
    from kgclip.eval.report_select import MemoTagger
    from kgclip.stats import bootstrap_ci
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger

    start = time.perf_counter()
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    data = MedPixReportData(shared_data_dir() / "medpix-2.0", splits=(), seed=0)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [r for seed in seeds for r in draft_rows(data, seed, graph, tagger)]
    seed0 = [r for r in rows if r["seed"] == seeds[0]]
    out: dict = {"n_queries": len(rows), "n_cases": len({r["case"] for r in rows}), "seeds": seeds,
                 "median_f1": round(float(np.median([r["f1"] for r in rows])), 4),
                 "signals": {k: {"pooled": ranking(rows, k), f"seed{seeds[0]}": ranking(seed0, k)} for k in SIGNALS}}
    f1 = np.array([r["f1"] for r in rows])
    offset, slope = fit_logistic(np.array([r["agreement"] for r in rows]), (f1 >= np.median(f1)).astype(float))
    out["logit"] = [round(offset, 2), round(slope, 2)]
    conf = np.array([r["confidence"] for r in rows])
    grid = [t / 100 for t in range(0, 101) if (conf >= t / 100).mean() >= 0.5]
    threshold = max(grid)
    drafted = conf >= threshold
    groups = sorted({r["group"] for r in rows})
    out["threshold"] = {
        "rule": "highest 0.01 step keeping >= 50 % of pooled val drafts", "min_confidence": threshold,
        "coverage": round(float(drafted.mean()), 4), "concept_f1_all": round(float(f1.mean()), 4),
        "concept_f1_all_ci": bootstrap_ci(f1), "concept_f1_drafted": round(float(f1[drafted].mean()), 4),
        "concept_f1_drafted_ci": bootstrap_ci(f1[drafted]),
        "coverage_by_study": {g: round(float(np.mean([c >= threshold for c, r in zip(conf, rows)
                                                      if r["group"] == g])), 2)
                              for g in groups if sum(r["group"] == g for r in rows) >= 20},
        "risk_coverage": risk_coverage(conf, f1, (1.0, 0.8, 0.6, 0.5, 0.4))}
    out["seconds"] = round(time.perf_counter() - start, 1)
    line = json.dumps(out)
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line)
    return out


if __name__ == "__main__":
    main()
