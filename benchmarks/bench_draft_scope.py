"""How often a header-less draft keeps to the right body region and modality, on MedPix *validation* only.

    python benchmarks/bench_draft_scope.py [--seeds 0,1,2] [--out FILE]

A JPEG or PNG carries no DICOM header, so ``Engine.draft_report`` learns the query's region and modality from the
image's metadata classifiers when they are sure, else from a weighted vote of the similar cases
(:func:`kgclip.rag.report_scope.scope_hits`). ``kgclip eval report`` tells every query its region and modality (what a
header would), so it never measures that fallback; this bench does, by the vote alone (no classifier):

Queries: the val carve-outs of MedPix *train* (``carve_val_cases`` with each seed), each retrieving its ``--k``
(160, ``EngineConfig.draft_k``) most similar cases among the rest of train by the tower's image features, with no
metadata filter. For each query ``scope_hits`` is called without region or modality, and its answer is compared with the
query's MedPix location category (as regions, :func:`kgclip.rag.regions.regions_of_label`) and modality:

* ``region_exact``: the voted regions equal the query's; ``region_overlap``: they share one; ``region_wrong``:
  regions were voted and none is the query's (a draft from another region); ``region_none``: no region reaches the
  vote share (the draft is a notice asking for the region);
* ``modality_right`` / ``modality_wrong`` / ``modality_none`` likewise;
* ``*_engine``: the whole path a header-less query takes in the engine: metadata heads trained on the pool images
  (:func:`kgclip.models.metadata_heads.fit_metadata_heads` on their modality and location category) decide when
  their best label reaches ``REGION_THRESHOLD``, else the vote;
* the peer, ``*_top1``: the vote as it was before session 10 (all retrieved cases, share 0.5, only the best region,
  ties broken by name), over the same hits in the same run.

MedPix dev is never read. Prints one JSON line last.
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

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above


def top1_vote(regions: list[frozenset[str]], weights: np.ndarray, share: float) -> frozenset[str]:
    """The vote before session 10: the single best region (ties by name) when it reaches ``share``."""
    total: dict[str, float] = {}
    for r, w in zip(regions, weights.tolist()):
        for x in r:
            total[x] = total.get(x, 0.0) + w
    if not total:
        return frozenset()
    best = max(total, key=lambda x: (total[x], x))
    return frozenset({best}) if total[best] >= share * float(np.sum(weights)) else frozenset()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    parser.add_argument("--k", type=int, default=160, help="similar cases retrieved per query (the engine's draft_k)")
    parser.add_argument("--out", default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)

    from kgclip.errors import InputFormatError
    from kgclip.eval import report as R
    from kgclip.models.metadata_heads import fit_metadata_heads
    from kgclip.rag.image_metadata import metadata_training_labels
    from kgclip.eval.report_data import MedPixReportData
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.consensus import case_weights
    from kgclip.rag.image_metadata import normalize_modality
    from kgclip.rag.regions import BodyRegions, regions_of_label
    from kgclip.rag.report_scope import case_regions, scope_hits

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    start = time.perf_counter()
    graph = load_ontologies()
    body = BodyRegions(graph)
    cfg = R.ENGINE_DRAFT
    counts: dict[str, int] = {}

    def count(key: str, hit: bool) -> None:
        counts[key] = counts.get(key, 0) + int(hit)

    seeds = [int(s) for s in args.seeds.split(",")]
    n = 0
    for seed in seeds:
        data = MedPixReportData(medpix, splits=(), val_fraction=0.2, seed=seed, show_progress=False)
        val = data.split("val")
        # The engine's path: metadata heads trained on the pool images (their modality and location category, as a
        # workspace trains them on its cases), deciding when sure (REGION_THRESHOLD), else the vote.
        pool_images = [data.images[int(i)] for i in val.pool]
        try:
            heads = fit_metadata_heads(
                data.vectors[val.pool], metadata_training_labels(
                    [{"modality": im.modality, "location_category": im.location_category} for im in pool_images]),
                feature_fingerprint="bench", groups=[im.case_id for im in pool_images])
            labels = heads.predict(data.vectors[val.queries])
        except InputFormatError:
            labels = [None] * len(val)
        for qi in range(len(val)):
            hits = data.retrieve(val, qi, args.k, filter_="none")
            meta = data.query_metadata(val, qi)
            true_regions, true_modality = regions_of_label(meta["region"]), normalize_modality(meta["modality"])
            _, query, _ = scope_hits(hits, None, body, temperature=cfg.temperature, region_vote=cfg.region_vote,
                                     region_voters=cfg.region_voters, query_region=None, query_modality=None)
            old = top1_vote([case_regions(h, body, ()) for h in hits],
                            case_weights([h.score for h in hits], cfg.temperature), 0.5)
            _, engine_query, _ = scope_hits(hits, None, body, temperature=cfg.temperature,
                                            region_vote=cfg.region_vote, region_voters=cfg.region_voters,
                                            query_region=None, query_modality=None, image_labels=labels[qi])
            n += 1
            for suffix, regions in (("", query.regions), ("_top1", old), ("_engine", engine_query.regions)):
                count("region_exact" + suffix, regions == true_regions)
                count("region_overlap" + suffix, bool(regions & true_regions))
                count("region_wrong" + suffix, bool(regions) and not regions & true_regions)
                count("region_none" + suffix, not regions)
            count("modality_right", query.modality == true_modality)
            count("modality_wrong", bool(query.modality) and query.modality != true_modality)
            count("modality_none", not query.modality)
            count("modality_right_engine", engine_query.modality == true_modality)
            count("modality_wrong_engine", bool(engine_query.modality) and engine_query.modality != true_modality)
            count("modality_none_engine", not engine_query.modality)
    out = {"split": "val", "seeds": seeds, "n_queries": n, "k": args.k, "region_vote": cfg.region_vote,
           "region_voters": cfg.region_voters,
           **{key: round(v / max(n, 1), 4) for key, v in sorted(counts.items())},
           "seconds": round(time.perf_counter() - start, 1)}
    line = json.dumps(out)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    print(line)
    return out


if __name__ == "__main__":
    main()
