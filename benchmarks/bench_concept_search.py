"""Concept search over the hierarchy vs plain embedding search, on MedPix 2.0 cases (read from the shared data
folder, never copied).

Protocol (printed in the JSON line as ``protocol``):

- Graph: the shipped RadLex + Disease Ontology graphs (``load_ontologies``); linker: ``ConceptLinker.from_graph``.
- Cases: MedPix cases of ``--split`` (default ``train``, 535 cases; ``dev`` is the test split, run it once). Each
  case is linked through its Diagnosis text (diagnosis concepts) and its Findings text (findings concepts), affirmed
  mentions only. Case text for embeddings = Diagnosis + Findings, the same text that is linked.
- Queries: every DO / RadLex class that has >= 3 cases whose diagnosis concept is the class or an ``is_a``
  descendant of it, and at most ``--max-share`` (20 %) of the cases (a class matching most cases, "disease", is
  not a search). Relevant cases: exactly those.
- ``map_plain``: the class name embedded with MiniLM (the default text tower), cases ranked by cosine with their
  text embeddings; mean average precision over queries.
- ``map_kg``: concept search: ``expand_concept`` (the class, its ``is_a`` descendants and ``same_as`` partners);
  cases whose linked concepts meet the expansion come first (diagnosis matches before findings-only matches, then
  by cosine), the rest follow by cosine.
- Because relevance is itself defined through the linked diagnosis, ``map_kg`` partly re-uses the judge's input;
  ``map_kg_findings_only`` / ``map_plain_findings_only`` index only the Findings text (no diagnosis field) to show
  what the hierarchy adds when the search never sees the diagnosis.
- CIs: 95 % bootstrap over queries (1000 resamples, seed 0) of each MAP and of the difference ``map_kg - map_plain``.

    python benchmarks/bench_concept_search.py [--split train|dev|all] [--data PATH]

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

from kgclip.config import shared_data_dir
from kgclip.data.medpix import read_medpix
from kgclip.ontology.expand import expand_concept
from kgclip.ontology.model import IS_A, ConceptGraph
from kgclip.ontology.store import load_ontologies
from kgclip.stats import bootstrap_ci
from kgclip.text.encoders import load_text_encoder
from kgclip.text.linker import ConceptLinker


def average_precision(ranking: list[int], relevant: set[int]) -> float:
    hits, total = 0, 0.0
    for rank, item in enumerate(ranking, start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / max(1, len(relevant))


def ancestors(graph: ConceptGraph, cid: str, cache: dict[str, set[str]]) -> set[str]:
    """``cid`` and every is_a ancestor."""
    if cid in cache:
        return cache[cid]
    out, stack = {cid}, [cid]
    while stack:
        for p in graph.parents(stack.pop(), IS_A):
            if p not in out:
                out.add(p)
                stack.append(p)
    cache[cid] = out
    return out


def kg_ranking(expansion: set[str], diag: list[set[str]], found: list[set[str]], cos: np.ndarray,
               use_diagnosis: bool) -> list[int]:
    """Cases meeting the expansion first (diagnosis before findings-only), each group by cosine, then the rest."""
    def tier(i: int) -> int:
        if use_diagnosis and diag[i] & expansion:
            return 0
        return 1 if found[i] & expansion else 2

    return sorted(range(len(cos)), key=lambda i: (tier(i), -cos[i]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--split", default="train", choices=("train", "dev", "all"))
    parser.add_argument("--min-cases", type=int, default=3)
    parser.add_argument("--max-share", type=float, default=0.2)
    parser.add_argument("--text-encoder", default="minilm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.data is None:
        sys.exit("needs the shared data folder (--data)")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    graph = load_ontologies()
    linker = ConceptLinker.from_graph(graph)
    medpix = read_medpix(args.data / "medpix-2.0", split=None if args.split == "all" else args.split,
                         check_images=False)
    cases = sorted(medpix.cases.values(), key=lambda c: c.case_id)
    diag = [set(linker.concepts(c.diagnosis, include_uncertain=False)) for c in cases]
    finds = [set(linker.concepts(c.findings, include_uncertain=False)) for c in cases]
    both = [d | f for d, f in zip(diag, finds)]
    print(f"[{time.perf_counter() - t0:.0f}s] {len(cases)} cases linked; "
          f"{sum(1 for d in diag if d)} with a diagnosis concept", file=sys.stderr)

    cache: dict[str, set[str]] = {}
    relevant: dict[str, set[int]] = {}
    for i, concepts in enumerate(diag):
        for cid in concepts:
            for a in ancestors(graph, cid, cache):
                relevant.setdefault(a, set()).add(i)
    cap = args.max_share * len(cases)
    queries = sorted(q for q, rel in relevant.items() if args.min_cases <= len(rel) <= cap
                     and q.split(":")[0] in ("DOID", "RADLEX"))

    text = load_text_encoder(args.text_encoder)
    case_text = [f"{c.diagnosis}. {c.findings}" for c in cases]
    case_vec = torch.nn.functional.normalize(text.encode(case_text, show_progress=True).float(), dim=-1).numpy()
    find_vec = torch.nn.functional.normalize(text.encode([c.findings for c in cases]).float(), dim=-1).numpy()
    q_vec = torch.nn.functional.normalize(text.encode([graph.name_of(q) for q in queries]).float(), dim=-1).numpy()

    rows = {k: [] for k in ("plain", "kg", "plain_findings_only", "kg_findings_only")}
    examples = []
    for qi, q in enumerate(queries):
        rel = relevant[q]
        expansion = set(expand_concept(graph, q).ids())
        cos, cos_f = case_vec @ q_vec[qi], find_vec @ q_vec[qi]
        rows["plain"].append(average_precision(list(np.argsort(-cos)), rel))
        rows["plain_findings_only"].append(average_precision(list(np.argsort(-cos_f)), rel))
        rows["kg"].append(average_precision(kg_ranking(expansion, diag, both, cos, True), rel))
        rows["kg_findings_only"].append(average_precision(kg_ranking(expansion, diag, finds, cos_f, False), rel))
        if len(examples) < 5 and len(expansion) > 1:
            examples.append(f"{graph.name_of(q)}: {len(rel)} relevant, plain {rows['plain'][-1]:.2f}, "
                            f"kg {rows['kg'][-1]:.2f}")
    ap = {k: np.array(v) for k, v in rows.items()}
    out: dict[str, object] = {
        "split": args.split, "cases": len(cases), "cases_with_diagnosis_concept": sum(1 for d in diag if d),
        "queries": len(queries), "text_encoder": text.name,
        "map_plain": round(float(ap["plain"].mean()), 4), "map_plain_ci": bootstrap_ci(ap["plain"]),
        "map_kg": round(float(ap["kg"].mean()), 4), "map_kg_ci": bootstrap_ci(ap["kg"]),
        "map_kg_minus_plain": round(float((ap["kg"] - ap["plain"]).mean()), 4),
        "map_kg_minus_plain_ci": bootstrap_ci(ap["kg"] - ap["plain"]),
        "map_plain_findings_only": round(float(ap["plain_findings_only"].mean()), 4),
        "map_kg_findings_only": round(float(ap["kg_findings_only"].mean()), 4),
        "map_kg_findings_only_minus_plain": round(float((ap["kg_findings_only"] - ap["plain_findings_only"]).mean()),
                                                  4),
        "map_kg_findings_only_minus_plain_ci": bootstrap_ci(ap["kg_findings_only"] - ap["plain_findings_only"]),
        "examples": examples,
        "protocol": "queries: DO/RadLex classes with >=3 and <=20% cases by linked diagnosis (is_a closure); "
                    "relevant = those cases; plain = MiniLM cosine of class name vs diagnosis+findings text; "
                    "kg = expand_concept matches first (diagnosis, then findings), then cosine; "
                    "findings_only variants never see the diagnosis field; bootstrap over queries",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
