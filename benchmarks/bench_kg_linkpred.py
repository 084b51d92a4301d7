"""Link prediction on RadLex (is_a) + Disease Ontology (is_a, has_symptom) + the SLAKE KG.

Methods, all ranked with the same filtered protocol (kgclip.kg.metrics) on the same held-out 10 % of relations:
- ``text_only``: cosine of the text-tower features (no GNN, relation-blind);
- ``shallow``: a free vector per concept + DistMult (the PyKEEN-style baseline);
- ``rgcn`` and ``attention``: kgclip's graph encoders + DistMult.
Early stopping uses validation relations carved from the training relations; the test split is touched once.

Inductive: first, 5 % of the related concepts are held out with all their relations; every method trains on the
rest (so one training serves both figures). The best GNN (by validation MRR) then gets the held-out concepts back
through the curation API (kgclip.ontology.curation.Curator), each with all but one of its relations (a concept with
a single relation comes back with its text only), ``ConceptEmbeddings.refresh`` embeds them without retraining, and
the held-back relation of each is ranked. ``inductive_mrr_ratio`` = that MRR / the transductive test MRR.

Speed: ``epoch_seconds`` (one pass over the training relations, full graph, this machine), ``refresh_seconds``
(median wall time of ``refresh`` after one curator edit).

    python benchmarks/bench_kg_linkpred.py [--quick] [--data PATH]

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from kgclip.config import shared_data_dir
from kgclip.errors import CurationError
from kgclip.kg.build import embeddings_from_result
from kgclip.kg.convert import concept_features, to_pyg
from kgclip.kg.metrics import CosineScorer, DistMultScorer, KnownTriples, filtered_ranks, rank_metrics
from kgclip.kg.train import KGTrainConfig, base_triples, embed, fit, message_graph, split_triples
from kgclip.ontology.curation import Curator
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.text.encoders import load_text_encoder


def load_benchmark_graph(data: Path | None) -> ConceptGraph:
    """Shipped RadLex + DO graphs (else the readers over ``data``), plus the SLAKE KG from ``data``."""
    from kgclip.ontology.sources import load_graph
    from kgclip.ontology.store import load_ontologies, shipped_ontology_dirs

    graphs = []
    if len(shipped_ontology_dirs()) == 2:
        graphs.append(load_ontologies())
    elif data is not None:
        graphs.append(load_graph("radlex-csv", data / "ontologies" / "radlex" / "Radlex.csv", on_error="skip"))
        graphs.append(load_graph("doid-tsv", data / "ontologies" / "doid", on_error="skip"))
    if data is not None and (data / "ontologies" / "slake-kg").is_dir():
        graphs.append(load_graph("slake-kg", data / "ontologies" / "slake-kg", on_error="skip"))
    if not graphs:
        sys.exit("no ontologies: build ontologies/ (python ontologies/build.py) or pass --data")
    return ConceptGraph.union(graphs, name="radlex+doid+slake") if len(graphs) > 1 else graphs[0]


def subsample(triples: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    if triples.size(0) <= limit:
        return triples
    return triples[torch.randperm(triples.size(0), generator=torch.Generator().manual_seed(seed))[:limit]]


def metrics_of(prefix: str, ranks: torch.Tensor) -> dict[str, float]:
    m = rank_metrics(ranks)
    return {f"mrr_{prefix}": round(m["mrr"], 4), f"hits1_{prefix}": round(m["hits1"], 4),
            f"hits10_{prefix}": round(m["hits10"], 4)}


def without_concepts(graph: ConceptGraph, held: set[str]) -> ConceptGraph:
    records: list[Concept | Relation] = [c for c in graph.concepts() if c.id not in held]
    records += [r for r in graph.relations() if r.source not in held and r.target not in held]
    return ConceptGraph.from_records(records, name=graph.name + "-minus", link_xrefs=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--quick", action="store_true", help="fewer epochs and test queries (about 15 min)")
    parser.add_argument("--text-encoder", default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-test", type=int, default=None, help="rank at most this many test relations")
    parser.add_argument("--epochs", type=int, default=None, help="override the maximum epochs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    graph = load_benchmark_graph(args.data)
    text = load_text_encoder(args.text_encoder)
    concept_features(graph, text, show_progress=True)  # fills the on-disk cache once for every concept
    n_all = len(graph)
    # Inductive hold-out first: 5 % of the related concepts leave with all their relations. Every method below
    # trains on the rest ("minus"), so one training serves the transductive and the inductive figure.
    rng = np.random.default_rng(args.seed)
    src, _, dst = graph.edge_arrays()
    degree = np.bincount(np.concatenate([src, dst]), minlength=n_all)
    held_rows = rng.choice(np.flatnonzero(degree > 0), size=int(0.05 * n_all), replace=False)
    held = {graph.ids[i] for i in held_rows.tolist()}
    minus = without_concepts(graph, held)
    x = concept_features(minus, text)
    data = to_pyg(minus, x)
    n, nb = len(minus), int(data.num_base_relations)
    triples = base_triples(data)
    test, rest = split_triples(triples, (0.10,), args.seed)
    val, train = split_triples(rest, (0.05,), args.seed + 1)
    known = KnownTriples([triples], n, nb)
    max_test = args.max_test or (2000 if args.quick else 10**9)
    test_eval = subsample(test, max_test, args.seed)
    out: dict[str, object] = {"concepts": n_all, "relations": graph.num_relations, "relation_types": nb,
                              "train_concepts": n, "test_relations": int(test.size(0)),
                              "test_relations_ranked": int(test_eval.size(0)), "quick": bool(args.quick),
                              "text_encoder": text.name}
    print(f"graph: {graph}; training graph: {minus}; test ranked: {test_eval.size(0)}", file=sys.stderr)

    out.update(metrics_of("text_only", filtered_ranks(CosineScorer(x), test_eval, known)))
    epochs = args.epochs or (10 if args.quick else 40)
    base = KGTrainConfig(epochs=epochs, seed=args.seed, eval_every=2, patience=2 if args.quick else 3,
                         max_eval_triples=500)
    configs = {
        # Shallow vectors need many more updates than a GNN (each row only moves when its concept is sampled),
        # and its steps are cheap (no message passing): smaller batches, higher learning rate.
        "shallow": dataclasses.replace(base, encoder="shallow", lr=0.02, batch_size=8192),
        "rgcn": dataclasses.replace(base, encoder="rgcn"),
        "attention": dataclasses.replace(base, encoder="attention"),
    }
    msg_ei, msg_et = message_graph(torch.cat([train, val]), nb)
    results, val_mrr = {}, {}
    for name, cfg in configs.items():
        t0 = time.perf_counter()
        result = fit(data, cfg, train=train, val=val, known=known, show_progress=True)
        emb = embed(result.encoder, x, msg_ei, msg_et)
        ranks = filtered_ranks(DistMultScorer(emb, result.decoder.relations.detach()), test_eval, known)
        out.update(metrics_of(name, ranks))
        out[f"val_mrr_{name}"] = round(result.best_val_mrr, 4)
        out[f"epochs_{name}"] = result.epochs_run
        out[f"train_seconds_{name}"] = round(time.perf_counter() - t0, 1)
        results[name], val_mrr[name] = result, result.best_val_mrr
        print(json.dumps({k: v for k, v in out.items() if name in k}), file=sys.stderr)
    out["epoch_seconds"] = round(results["rgcn"].epoch_seconds, 2)
    out["epoch_seconds_attention"] = round(results["attention"].epoch_seconds, 2)
    best = max(("rgcn", "attention"), key=lambda k: val_mrr[k])  # chosen on validation, not test
    out["best_gnn"] = best
    out["best_gnn_minus_text_only"] = round(out[f"mrr_{best}"] - out["mrr_text_only"], 4)  # type: ignore[operator]
    out["best_gnn_minus_shallow"] = round(out[f"mrr_{best}"] - out["mrr_shallow"], 4)  # type: ignore[operator]

    # ---------------------------------------------------------------- inductive: add held-out concepts back, refresh
    print(f"[{time.perf_counter() - t_start:.0f}s] inductive: adding {len(held)} concepts back", file=sys.stderr)
    emb_minus = embeddings_from_result(minus, results[best], x, text, args.text_encoder)
    curator = Curator(minus, author="bench")
    since = curator.changelog.last_seq
    query: list[Relation] = []
    support: list[Relation] = []
    by_concept: dict[str, list[Relation]] = {cid: [] for cid in held}
    for rel in graph.relations():
        for end in (rel.source, rel.target):
            if end in held:
                by_concept[end].append(rel)
                break  # a relation between two held concepts is assigned to one of them
    for cid in sorted(held):
        rels = by_concept[cid]
        if not rels:
            continue
        pick = int(rng.integers(len(rels)))
        query.append(rels[pick])
        support.extend(r for i, r in enumerate(rels) if i != pick)
    direct: set[str] = set()  # relations the curator refuses (e.g. to a deprecated concept) go in directly
    with curator.batch():
        for cid in sorted(held):
            curator.add_concept(graph.concept(cid), reason="benchmark: held-out concept")
        for rel in support:
            if minus.has_relation(rel.source, rel.type, rel.target):
                continue
            try:
                curator.add_relation(rel.source, rel.type, rel.target, reason="benchmark: support relation")
            except CurationError:
                minus.add_relation(rel)
                direct.update((rel.source, rel.target))
    changed = curator.changelog.changed_ids(since) | direct
    print(f"[{time.perf_counter() - t_start:.0f}s] curated; refreshing", file=sys.stderr)
    out["inductive_support_relations"] = len(support)
    t0 = time.perf_counter()
    emb_plus = emb_minus.refresh(minus, changed)
    out["inductive_refresh_seconds"] = round(time.perf_counter() - t0, 2)
    rel_index = {t: i for i, t in enumerate(emb_plus.meta["relation_types"])}
    q = [(emb_plus.index_of(r.source), rel_index[r.type], emb_plus.index_of(r.target)) for r in query
         if r.type in rel_index]
    q_t = torch.tensor(q, dtype=torch.long)
    # Filter with every true relation of the full graph, in the refreshed graph's numbering.
    all_t = torch.tensor([(emb_plus.index_of(r.source), rel_index[r.type], emb_plus.index_of(r.target))
                          for r in graph.relations() if r.type in rel_index], dtype=torch.long)
    known_plus = KnownTriples([all_t], len(emb_plus), len(rel_index))
    scorer = DistMultScorer(emb_plus.vectors, emb_plus.decoder_state["relations"])  # type: ignore[index]
    ind = rank_metrics(filtered_ranks(scorer, q_t, known_plus))
    out["inductive_concepts"] = len(held)
    out["inductive_queries"] = int(q_t.size(0))
    out["inductive_mrr"] = round(ind["mrr"], 4)
    out["inductive_hits10"] = round(ind["hits10"], 4)
    out["inductive_mrr_ratio"] = round(ind["mrr"] / max(out[f"mrr_{best}"], 1e-9), 3)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- refresh speed: one curator edit at a time
    print(f"[{time.perf_counter() - t_start:.0f}s] refresh timing", file=sys.stderr)
    times = []
    current = emb_plus
    live = [i for i, c in enumerate(minus.concepts()) if not c.deprecated]
    picks = rng.choice(np.array(live), size=5, replace=False)
    for k, row in enumerate(picks.tolist()):
        parent = minus.ids[row]
        since = curator.changelog.last_seq
        new_id = f"BENCH:{k}"
        curator.add_concept(new_id, f"new finding {k} of {minus.name_of(parent)}", reason="benchmark edit")
        curator.add_relation(new_id, "is_a", parent, reason="benchmark edit")
        t0 = time.perf_counter()
        current = current.refresh(minus, curator.changelog.changed_ids(since))
        times.append(time.perf_counter() - t0)
    out["refresh_seconds"] = round(statistics.median(times), 3)
    out["refresh_seconds_max"] = round(max(times), 3)
    out["total_seconds"] = round(time.perf_counter() - t_start, 1)
    out["load_average_1m"] = round(os.getloadavg()[0], 1)  # other jobs on this 2-core machine slow every timing
    print(json.dumps(out))


if __name__ == "__main__":
    main()
