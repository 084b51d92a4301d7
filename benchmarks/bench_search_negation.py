"""Text search that puts cases saying the opposite of the query last, against plain embedding search, on MedPix
2.0 case findings (read from the shared data folder, never copied).

Protocol (printed in the JSON line as ``protocol``):

- Cases: MedPix cases of ``--split`` (default ``train``) with a Findings section; case text = Findings, embedded
  with the default text tower (MiniLM), as ``Engine.search(text=...)`` embeds case texts.
- Linking: ``ConceptTagger`` over the shipped RadLex + Disease Ontology graphs, with its negation detection.
- Queries: every concept that at least ``--min-cases`` (3) cases' findings assert and at least as many negate ("no
  pleural effusion", "no hemorrhage"); the query text is the concept's name.
- ``plain``: the ``k`` (10) nearest cases by cosine. ``ordered``: the ``2k`` nearest through
  ``kgclip.engine.concept_search.negation_order`` (what ``Engine.search(text=...)`` does), then the first ``k``.
- Figures per query, averaged over queries: ``opposing_at_k`` (share of the top ``k`` whose findings negate the
  query concept and never assert it) and ``asserting_at_k`` (share asserting it), with the paired 95 % bootstrap CI
  of ``ordered - plain`` over queries; and the time per query of each (linking the hits is the added cost).
- The judge reads the same negation detector the ordering uses, so this measures what the ordering does with it,
  not how right the detector is (``kgclip.text.negation`` has its own tests).

    python benchmarks/bench_search_negation.py [--split train|dev] [--data PATH] [--k 10]

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import shared_data_dir  # noqa: E402 - after the sys.path insert above


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="train", choices=("train", "dev"))
    parser.add_argument("--data", default=None, help="MedPix 2.0 folder (default: the shared data)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--min-cases", type=int, default=3)
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm

    from kgclip.data.medpix import read_medpix
    from kgclip.engine.concept_search import negation_order
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.evidence import CaseHit
    from kgclip.rag.report_scope import link_sentence
    from kgclip.stats import bootstrap_ci
    from kgclip.text.encoders import load_text_encoder

    path = Path(args.data) if args.data else shared_data_dir() / "medpix-2.0"
    cases = [c for c in read_medpix(path, split=args.split).cases.values() if c.findings]
    tagger = ConceptTagger(load_ontologies())
    asserted, negated = [], []
    for case in tqdm(cases, desc="linking findings"):
        pos, neg = link_sentence(tagger, case.findings)
        asserted.append(set(pos))
        negated.append(set(neg) - set(pos))
    counts_pos: dict[str, int] = {}
    counts_neg: dict[str, int] = {}
    for pos, neg in zip(asserted, negated):
        for c in pos:
            counts_pos[c] = counts_pos.get(c, 0) + 1
        for c in neg:
            counts_neg[c] = counts_neg.get(c, 0) + 1
    queries = sorted(c for c in counts_neg
                     if counts_neg[c] >= args.min_cases and counts_pos.get(c, 0) >= args.min_cases)
    text = load_text_encoder("minilm")
    case_vec = torch.nn.functional.normalize(text.encode([c.findings for c in cases]).float(), dim=-1).numpy()
    q_vec = torch.nn.functional.normalize(text.encode([tagger.graph.name_of(q) for q in queries]).float(),
                                          dim=-1).numpy()
    k = args.k
    figures = {v: {"opposing": [], "asserting": [], "seconds": 0.0} for v in ("plain", "ordered")}
    index = {c.case_id: i for i, c in enumerate(cases)}
    for qi, q in enumerate(tqdm(queries, desc="queries")):
        order = np.argsort(-(case_vec @ q_vec[qi]), kind="stable")
        for variant in ("plain", "ordered"):
            start = time.perf_counter()
            if variant == "plain":
                top = [int(i) for i in order[:k]]
            else:
                hits = [CaseHit(cases[int(i)].case_id, 0.0, cases[int(i)].findings) for i in order[:2 * k]]
                top = [index[h.case_id] for h in negation_order(hits, tagger.graph.name_of(q), tagger, k)]
            figures[variant]["seconds"] += time.perf_counter() - start
            figures[variant]["opposing"].append(np.mean([q in negated[i] for i in top]))
            figures[variant]["asserting"].append(np.mean([q in asserted[i] for i in top]))
    out: dict = {"split": args.split, "cases": len(cases), "queries": len(queries), "k": k,
                 "examples": [tagger.graph.name_of(q) for q in queries[:8]]}
    for variant, f in figures.items():
        out[f"opposing_at_k_{variant}"] = round(float(np.mean(f["opposing"])), 4)
        out[f"asserting_at_k_{variant}"] = round(float(np.mean(f["asserting"])), 4)
        out[f"ms_per_query_{variant}"] = round(1000 * f["seconds"] / max(len(queries), 1), 2)
    for metric in ("opposing", "asserting"):
        diff = np.array(figures["ordered"][metric]) - np.array(figures["plain"][metric])
        out[f"{metric}_ordered_minus_plain_ci"] = bootstrap_ci(diff, seed=0)
    out["protocol"] = ("MedPix findings embedded with MiniLM; queries: concept names asserted and negated by >= "
                       f"{args.min_cases} cases; ordered = negation_order over the 2k nearest; judge = the same "
                       "negation detector")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
