"""Link suggestions for curators: do the suggested parents of a concept include the one a curator removed?

Protocol (printed in the JSON line as ``protocol``):

- Graph: the shipped Disease Ontology graph (``ontologies/doid``: DO + Symptom Ontology, is_a and has_symptom);
  ``--with-radlex`` adds RadLex (features for 45k more concepts take long on a shared 2-core machine).
- Hidden links: 5 % of the ``is_a`` links (test) and another 5 % (validation), at random (``--seed``), plus 5 % of
  the ``same_as`` links. The shipped graphs carry no ``same_as`` link: DO's xrefs name UMLS / MeSH / NCIt ids, none a
  RadLex id, and RadLex carries no xrefs, so there are no xref-derived DO<->RadLex links to hide
  (``same_as_links`` says how many there were).
- Training: the R-GCN of ``kgclip.kg.train`` on the graph without the hidden links (quick settings: ``--epochs``
  15, early stopping on its own validation split of the remaining links), MiniLM text features (cached on disk).
- For each hidden ``child -is_a-> parent``, the child's top 5 suggested parents (``kgclip.kg.suggest.rank_links``;
  existing parents excluded, other hidden parents of the same child filtered out). ``hits_at_5`` = share of hidden
  links whose parent is among them.
- Variants: ``names`` (the name-similarity baseline: ``kgclip.ontology.align.name_parents``, head noun + IDF word
  overlap), ``predictor`` (the link predictor alone), ``fused`` (reciprocal-rank fusion of both). The suggester's
  variant (``chosen``) is picked on the validation links; figures are on the test links; CI: 95 % bootstrap over
  test links of ``hits_at_5 - hits_at_5_baseline``.

    python benchmarks/bench_link_suggest.py [--epochs 15] [--seed 0] [--with-radlex]

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

from kgclip.kg.build import embeddings_from_result
from kgclip.kg.convert import concept_features, to_pyg
from kgclip.kg.suggest import rank_links
from kgclip.stats import bootstrap_ci
from kgclip.kg.train import KGTrainConfig, fit
from kgclip.ontology.model import IS_A, SAME_AS, ConceptGraph, Relation
from kgclip.ontology.store import load_graph_dir
from kgclip.text.encoders import load_text_encoder

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"names": (True, False), "predictor": (False, True), "fused": (True, True)}


def hits(graph: ConceptGraph, minus: ConceptGraph, links: list[Relation], emb: object, variant: str,
         k: int = 5) -> np.ndarray:
    """1.0 per hidden link whose parent is in the child's top ``k`` suggestions (other true parents filtered)."""
    use_names, use_predictor = VARIANTS[variant]
    heads = sorted({r.source for r in links})
    ranked = rank_links(minus, IS_A, heads, emb, k + 10, use_names=use_names, use_predictor=use_predictor)
    out = []
    for r in links:
        others = set(graph.parents(r.source)) - {r.target}
        top = [s.target for s in ranked.get(r.source, []) if s.target not in others][:k]
        out.append(1.0 if r.target in top else 0.0)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--with-radlex", action="store_true")
    parser.add_argument("--text-encoder", default="minilm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    graphs = [load_graph_dir(ROOT / "ontologies" / "doid")]
    if args.with_radlex:
        graphs.append(load_graph_dir(ROOT / "ontologies" / "radlex"))
    graph = ConceptGraph.union(graphs, name="+".join(g.name for g in graphs)) if len(graphs) > 1 else graphs[0]
    live = {c.id for c in graph.concepts(include_deprecated=False)}
    rng = np.random.default_rng(args.seed)
    is_a = [r for r in graph.relations(relation_type=IS_A) if r.source in live and r.target in live]
    same = graph.relations(relation_type=SAME_AS)
    order = rng.permutation(len(is_a))
    n = int(round(args.fraction * len(is_a)))
    test = [is_a[i] for i in order[:n].tolist()]
    val = [is_a[i] for i in order[n:2 * n].tolist()]
    hidden_same = [same[i] for i in rng.permutation(len(same))[:int(round(args.fraction * len(same)))].tolist()]
    minus = graph.copy()
    for r in [*test, *val, *hidden_same]:
        minus.remove_relation(r.source, r.type, r.target)
    print(f"[{time.perf_counter() - t0:.0f}s] {graph}; hidden {len(test)} test + {len(val)} val is_a, "
          f"{len(hidden_same)} same_as", file=sys.stderr)

    text = load_text_encoder(args.text_encoder)
    x = concept_features(minus, text, show_progress=True)
    config = KGTrainConfig(epochs=args.epochs, seed=args.seed, eval_every=3, patience=2, max_eval_triples=500)
    t_train = time.perf_counter()
    result = fit(to_pyg(minus, x), config, show_progress=True)
    train_seconds = time.perf_counter() - t_train
    emb = embeddings_from_result(minus, result, x, text, args.text_encoder)
    print(f"[{time.perf_counter() - t0:.0f}s] trained ({result.epochs_run} epochs, val MRR "
          f"{result.best_val_mrr:.3f}); ranking", file=sys.stderr)

    val_hits = {v: float(hits(graph, minus, val, emb, v).mean()) for v in ("predictor", "fused")}
    chosen = max(val_hits, key=lambda v: val_hits[v])  # chosen on validation links, never on test
    test_hits = {v: hits(graph, minus, test, emb, v) for v in VARIANTS}
    diff = test_hits[chosen] - test_hits["names"]
    out = {
        "graph": graph.name, "concepts": len(graph), "is_a_links": len(is_a), "same_as_links": len(same),
        "hidden_test": len(test), "hidden_val": len(val), "hidden_same_as": len(hidden_same),
        "chosen": chosen, "val_hits_at_5": {k: round(v, 4) for k, v in val_hits.items()},
        "hits_at_5": round(float(test_hits[chosen].mean()), 4),
        "hits_at_5_baseline": round(float(test_hits["names"].mean()), 4),
        "hits_at_5_predictor": round(float(test_hits["predictor"].mean()), 4),
        "hits_at_5_fused": round(float(test_hits["fused"].mean()), 4),
        "hits_at_5_minus_baseline": round(float(diff.mean()), 4), "hits_at_5_minus_baseline_ci": bootstrap_ci(diff),
        "train_epochs": result.epochs_run, "train_seconds": round(train_seconds, 1),
        "best_val_mrr": round(result.best_val_mrr, 4), "seed": args.seed, "text_encoder": args.text_encoder,
        "protocol": "hide 5% is_a (test) + 5% (val) + 5% same_as; R-GCN quick on the rest; top-5 suggested "
                    "parents per hidden child, other true parents filtered; baseline = name_parents; variant "
                    "chosen on val",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
