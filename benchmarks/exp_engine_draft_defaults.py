"""Session-13 experiment: the Engine's drafter against the one ``kgclip eval report`` measures, on MedPix *val*.

    python benchmarks/exp_engine_draft_defaults.py [--seeds 0,1,2] [--medpix DIR]

``kgclip eval report`` reports the drafter ``kgclip.eval.report.ENGINE_DRAFT`` (``word_weight`` 0, ``graph_hops``
2, chosen on val with a concept prior), but ``Engine`` drafted with ``DraftConfig()``, whose defaults were older
(``word_weight`` 1, ``graph_hops`` 1): the published figures were not what a user's engine drafts. This compares the
two over the same val queries of each carve seed, with the concept prior the engine trains on a workspace with enough
cases with findings (``prior``) and without one (``no_prior``: a workspace with fewer). Figures: findings concept F1
(exact linking) with the paired bootstrap 95 % CI of ``eval - before``, ROUGE-L, and the impression's diagnosis hits
(lead / any line, summed over seeds). MedPix dev is never read. Prints one JSON line last.
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
    from kgclip.eval.report_select import MemoTagger, draft_reports
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.regions import BodyRegions
    from kgclip.rag.report import DraftConfig
    from kgclip.stats import bootstrap_ci

    configs = {"before": DraftConfig(word_weight=1.0, graph_hops=1), "eval": R.ENGINE_DRAFT}
    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    runs = [(p, c) for p in ("prior", "no_prior") for c in configs]
    res = {f"{p}_{c}": {"f1": [], "rouge": [], "dx_lead": 0.0, "dx_any": 0.0} for p, c in runs}
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
        for p, c in runs:
            cfg = configs[c]
            reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, cfg, tagger=tagger, graph=graph,
                                 expander=GraphExpander(graph, cfg.graph_hops), regions=BodyRegions(graph),
                                 priors=priors if p == "prior" else None)
            fig, row = R.draft_figures(data, val, reps, scorer, tagger, graph), res[f"{p}_{c}"]
            row["f1"] += fig["concept_f1"]
            row["rouge"] += fig["rouge_l"]
            row["dx_lead"] += fig["dx_lead"]
            row["dx_any"] += fig["dx_any"]
    out: dict = {"split": "val", "seeds": seeds, "n": len(res["prior_before"]["f1"])}
    for key, row in res.items():
        f1 = np.array(row["f1"])
        out[key] = {"concept_f1": round(float(f1.mean()), 4), "rouge_l": round(float(np.mean(row["rouge"])), 4),
                    "dx_lead": round(row["dx_lead"]), "dx_any": round(row["dx_any"])}
    for p in ("prior", "no_prior"):
        diff = np.array(res[f"{p}_eval"]["f1"]) - np.array(res[f"{p}_before"]["f1"])
        out[f"{p}_eval_minus_before_ci"] = bootstrap_ci(diff, seed=0)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
