"""Session-13 experiment: which cases the Engine drafts from, against the ones ``kgclip eval report`` drafts from,
on MedPix *val*.

    python benchmarks/exp_engine_retrieval.py [--seeds 0,1,2] [--medpix DIR]

``kgclip eval report`` drafts from ``ENGINE_RETRIEVAL``: the 80 nearest pool cases of the query's modality and
MedPix location category (what a DICOM header tells), their cosine raised by 0.3 / 3 for each header field (body
location, acquisition detail, plane) they share with the query. ``Engine.draft_report`` retrieves its ``draft_k``
(160) nearest cases with no metadata filter or bonus, and the draft's scope then keeps those of the header's region
and modality. Variants, each told the query's modality and region, with the concept prior and the drafter's
defaults, over the same val queries of each carve seed:

- ``eval``: ``ENGINE_RETRIEVAL``;
- ``engine``: 160 nearest, no filter, no bonus (the Engine);
- ``filtered``: 80 nearest of the query's modality and region, no bonus (a filter the Engine's index can apply);
- ``filtered_160``: 160 nearest of the query's modality and region, no bonus;
- ``scoped_80`` / ``scoped_160``: every pool case, no filter or bonus, and the draft's scope keeps the nearest 80 /
  160 of the query's modality lying wholly in its regions (at least ``SCOPE_MIN_CASES`` of them, else those sharing
  one; ``draft_from_cases(max_cases=...)``: what the Engine does since);
- ``scoped_160_sharing``: the same keeping every case that shares one of the query's regions.

Figures: findings concept F1 (exact linking) with the paired bootstrap 95 % CI against ``eval``, ROUGE-L, the
impression's diagnosis hits (lead / any, summed over seeds), and drafts with no sentence. MedPix dev is never read.
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    args = parser.parse_args(argv)

    from kgclip.eval import report as R
    from kgclip.eval.report_select import MemoTagger, RetrievalConfig, draft_reports
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.regions import BodyRegions
    from kgclip.stats import bootstrap_ci

    variants = {"eval": R.ENGINE_RETRIEVAL,
                "engine": RetrievalConfig(k=160, filter="none", meta_bonus=0.0),
                "filtered": RetrievalConfig(k=80, filter="modality+region", meta_bonus=0.0),
                "filtered_160": RetrievalConfig(k=160, filter="modality+region", meta_bonus=0.0),
                "scoped_80": RetrievalConfig(k=10_000, filter="none", meta_bonus=0.0),
                "scoped_160": RetrievalConfig(k=10_000, filter="none", meta_bonus=0.0),
                "scoped_160_sharing": RetrievalConfig(k=10_000, filter="none", meta_bonus=0.0)}
    max_cases = {"scoped_80": 80, "scoped_160": 160, "scoped_160_sharing": 160}
    from kgclip.rag import report_scope as RS
    min_cases = RS.SCOPE_MIN_CASES
    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    res = {v: {"f1": [], "rouge": [], "dx_lead": 0.0, "dx_any": 0.0, "empty": 0} for v in variants}
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = R.ENGINE_DRAFT
    for seed in seeds:
        data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
        for name, retrieval in variants.items():
            RS.SCOPE_MIN_CASES = 10 ** 9 if name.endswith("_sharing") else min_cases
            reps = draft_reports(data, val, retrieval, cfg, tagger=tagger, graph=graph,
                                 expander=GraphExpander(graph, cfg.graph_hops), regions=BodyRegions(graph),
                                 priors=priors, max_cases=max_cases.get(name))
            fig, row = R.draft_figures(data, val, reps, scorer, tagger, graph), res[name]
            row["f1"] += fig["concept_f1"]
            row["rouge"] += fig["rouge_l"]
            row["empty"] += sum(not r.findings for r in reps)
            row["dx_lead"] += fig["dx_lead"]
            row["dx_any"] += fig["dx_any"]
    base = np.array(res["eval"]["f1"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(base)}
    for name, row in res.items():
        f1 = np.array(row["f1"])
        out[name] = {"concept_f1": round(float(f1.mean()), 4), "minus_eval_ci": bootstrap_ci(f1 - base, seed=0),
                     "rouge_l": round(float(np.mean(row["rouge"])), 4), "dx_lead": round(row["dx_lead"]),
                     "dx_any": round(row["dx_any"]), "empty_drafts": row["empty"]}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
