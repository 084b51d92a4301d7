"""Session-14 experiment: drafts of limb scans kept to their part of the limb (upper / lower), on MedPix *val*.

    python benchmarks/exp_limb_parts.py [--seeds 0,1,2] [--medpix DIR]

"Musculoskeletal" places a shoulder MR and a knee MR in one region (``limb``), and shoulder drafts took knee
sentences. ``kgclip.rag.report_scope`` now decides a limb query's part (``kgclip.rag.regions.LIMB_PARTS``) from its
label when it names a joint (a DICOM ``BodyPartExamined`` such as KNEE), else from the nearest in-scope cases'
anatomy (``LIMB_PART_VOTERS`` / ``LIMB_PART_SHARE``), drops cases of the other part and sentences naming only it.
Variants, each drafting every val query of each carve seed as ``kgclip eval report --split val --no-select``:

- ``old``: no limb part (the earlier behaviour, restored in this process only);
- ``new``: the part from the label (MedPix labels name none) or the similar cases' vote;
- ``header``: as ``new``, the query's label also naming the part its own findings name (what a header naming the
  joint tells; queries whose findings name neither part, or both, get none).

Figures: findings concept F1 (exact linking) with the paired bootstrap 95 % CI against ``old``; for the queries
whose own findings name exactly one part (an evaluation word list over the reference text, never used to draft):
drafted sentences naming only the other part (``other_part_sentences`` of ``limb_sentences``), and how the decided
part compares with that reference part. MedPix dev is never read. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above

# Reference-side word lists (scoring only): which part of the limb a text names.
_UPPER = re.compile(r"\b(shoulder|elbow|wrist|hand|humer\w*|radius|radial|ulna\w*|finger\w*|thumb|carpal|metacarp\w*"
                    r"|glenoid|acromi\w*|forearm|arm)\b", re.I)
_LOWER = re.compile(r"\b(knee|ankle|foot|feet|femur|femoral|tibia\w*|fibula\w*|toes?|patella\w*|calcane\w*|tarsal"
                    r"|metatars\w*|leg|thigh|hip)\b", re.I)


def named_part(text: str) -> str:
    up, low = bool(_UPPER.search(text)), bool(_LOWER.search(text))
    return "upper limb" if up and not low else "lower limb" if low and not up else ""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    args = parser.parse_args(argv)

    from kgclip.eval import report as R
    from kgclip.eval.report_select import MemoTagger, draft_reports
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag import report_scope as RS
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.regions import BodyRegions
    from kgclip.stats import bootstrap_ci

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    keep_part = RS._keep_limb_part
    decided: list[str] = []

    def spy(kept, query, *rest):  # noqa: ANN001, ANN002, ANN202 - records the part each limb draft decides
        kept, query = keep_part(kept, query, *rest)
        decided.append(query.limb_part)
        return kept, query

    variants = ("old", "new", "header")
    res = {v: {"f1": [], "sent": 0, "other": 0, "parts": Counter()} for v in variants}
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        for seed in seeds:
            data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
            refs = []
            for q in val.queries:
                img = data.images[q]
                refs.append(named_part(f"{data.cases[img.case_id].findings or ''} {img.caption or ''}"))
            plain_meta = data.query_metadata
            for name in variants:
                RS._keep_limb_part = (lambda kept, query, *rest: (kept, query)) if name == "old" else spy
                if name == "header":
                    def with_part(split, qi, _plain=plain_meta):  # noqa: ANN001, ANN202
                        meta = dict(_plain(split, qi))
                        if refs[qi] and "limb" in RS.regions_of_label(meta.get("region")):
                            meta["region"] = f"{meta['region']}, {refs[qi]}"
                        return meta
                    data.query_metadata = with_part
                decided.clear()
                reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, R.ENGINE_DRAFT, tagger=tagger, graph=graph,
                                     expander=GraphExpander(graph, R.ENGINE_DRAFT.graph_hops),
                                     regions=BodyRegions(graph), priors=priors)
                data.query_metadata = plain_meta
                res[name]["f1"] += R.draft_figures(data, val, reps, scorer, tagger, graph)["concept_f1"]
                parts = iter(decided)
                for qi, rep in enumerate(reps):
                    limb = any(r == "limb" or r.endswith(" limb") for r in rep.region)
                    part = (next(parts, "") if name != "old" else "") if limb else None
                    if not refs[qi] or not limb:
                        continue
                    res[name]["parts"]["right" if part == refs[qi] else "none" if not part else "wrong"] += 1
                    for s in rep.findings:
                        res[name]["sent"] += 1
                        res[name]["other"] += named_part(s.text) not in ("", refs[qi])
    finally:
        RS._keep_limb_part = keep_part
    base = np.array(res["old"]["f1"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(base)}
    for name in variants:
        f1 = np.array(res[name]["f1"])
        out[name] = {"concept_f1": round(float(f1.mean()), 4), "minus_old_ci": bootstrap_ci(f1 - base, seed=0),
                     "changed": int((f1 != base).sum()), "limb_sentences": res[name]["sent"],
                     "other_part_sentences": res[name]["other"], "decided_part": dict(res[name]["parts"])}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
