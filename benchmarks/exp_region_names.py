"""Session-12 experiment: placing concepts by the organ their name names, switched off and on over the same MedPix
*val* drafts.

    python benchmarks/exp_region_names.py [--seeds 0,1,2] [--medpix DIR]

:class:`kgclip.rag.regions.BodyRegions` places a concept in the body regions of the anchor organs it reaches through
is-a / part-of. Most Disease Ontology diseases reach none ("pulmonary embolism" is a "pulmonary artery disease" is a
"vascular disease" ...), so they never counted as outside a scan's region: a head MR's draft could say "no pulmonary
embolism", and "Is there a brain tumor?" was answered on a spine CT. The new fallback
(``BodyRegions._organ_in_name``) places such a concept by the organ its own name
names ("brain cancer" -> head, "pulmonary embolism" -> chest, "renal cell carcinoma" -> abdomen).

``old`` switches the fallback off in this process only. Each variant drafts every val query of each carve seed with
the engine's defaults (as ``kgclip eval report --split val --no-select``); every variant's drafts are judged with
the *new* placement: ``region_viol_per_report`` (drafted sentences naming a concept outside the query's region),
findings concept F1 (exact linking, paired bootstrap 95 % CI against ``old``), the impression's diagnosis hits (lead
/ any line names the case's diagnosis, summed over seeds), and ``placed_share``: the share of distinct concepts
linked in the drafts that have a region. MedPix dev is never read. Prints one JSON line last.
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

VARIANTS = ("old", "new")


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
    from kgclip.rag.regions import BodyRegions, regions_of_label
    from kgclip.stats import bootstrap_ci

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    judge = BodyRegions(graph)
    fallback = BodyRegions._organ_in_name

    class OldRegions(BodyRegions):
        def _organ_in_name(self, concept_id: str) -> frozenset[str]:  # the placement before the fallback
            return frozenset()

    assert BodyRegions._organ_in_name is fallback
    res = {v: {"f1": [], "dx_lead": 0.0, "dx_any": 0.0, "viol": [], "concepts": set()} for v in VARIANTS}
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
        for name in VARIANTS:
            regions = OldRegions(graph) if name == "old" else BodyRegions(graph)
            cfg = R.ENGINE_DRAFT
            reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, cfg, tagger=tagger, graph=graph,
                                 expander=GraphExpander(graph, cfg.graph_hops), regions=regions, priors=priors)
            fig = R.draft_figures(data, val, reps, scorer, tagger, graph)
            res[name]["f1"] += fig["concept_f1"]
            res[name]["dx_lead"] += fig["dx_lead"]
            res[name]["dx_any"] += fig["dx_any"]
            for qi, r in enumerate(reps):
                query = regions_of_label(data.query_metadata(val, qi)["region"])
                viol = 0
                for s in r.findings:
                    concepts = tagger.concept_ids(s.text, include_negated=True)
                    res[name]["concepts"].update(concepts)
                    viol += bool(judge.outside(concepts, query))
                res[name]["viol"].append(viol)
    base = np.array(res["old"]["f1"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(base)}
    for name in VARIANTS:
        f1 = np.array(res[name]["f1"])
        concepts = res[name]["concepts"]
        out[name] = {"concept_f1": round(float(f1.mean()), 4), "minus_old_ci": bootstrap_ci(f1 - base, seed=0),
                     "changed": int((f1 != base).sum()), "dx_lead": round(res[name]["dx_lead"]),
                     "dx_any": round(res[name]["dx_any"]),
                     "region_viol_per_report": round(float(np.mean(res[name]["viol"])), 4),
                     "placed_share": round(sum(bool(judge.of_concept(c)) for c in concepts) / max(len(concepts), 1),
                                           4)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
