"""Curation on the RadLex graph: 1,000 mixed edits + validate (goal <= 2 s), then undo of all of them.

Usage: ``python benchmarks/bench_curation.py [--quick] [--data PATH] [--edits N] [--seed S]``

The graph is the shipped ``ontologies/radlex`` (45k concepts); without it, ``Radlex.csv`` under ``--data`` is parsed.
The mix: add concept (with an is_a parent), update concept, add relation (is_a or located_in), remove relation,
deprecate, merge, plus refused edits (is_a cycles, unknown ids) that must change nothing. Also measured in the same
run: saving the edited graph as text, and loading RadLex from the text directory, from the binary cache and by
re-parsing the CSV (the peer of the cache). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from kgclip.config import shared_data_dir
from kgclip.errors import CurationError
from kgclip.ontology.curation import Curator
from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.cache import load_cache, save_cache
from kgclip.ontology.store import load_graph_dir, save_graph

REPO = Path(__file__).resolve().parents[1]


def load_radlex(data: Path | None) -> tuple[ConceptGraph, float, float | None]:
    shipped = REPO / "ontologies" / "radlex"
    reparse = None
    csv = data / "ontologies" / "radlex" / "Radlex.csv" if data else None
    if csv is not None and csv.exists():
        from kgclip.ontology.sources import load_graph

        t = time.perf_counter()
        parsed = load_graph("radlex-csv", csv, name="radlex")
        reparse = time.perf_counter() - t
    t = time.perf_counter()
    if (shipped / "concepts.tsv").exists():
        graph = load_graph_dir(shipped)
    elif reparse is not None:
        graph = parsed
    else:
        sys.exit("no RadLex graph: build ontologies/radlex (python ontologies/build.py) or pass --data")
    return graph, time.perf_counter() - t, reparse


class Pool:
    """Live (not deprecated) ids with O(1) random choice and removal (bookkeeping kept out of the timings' way)."""

    def __init__(self, ids: list[str]) -> None:
        self.items = list(ids)
        self.pos = {x: i for i, x in enumerate(self.items)}

    def choice(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]

    def sample2(self, rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(range(len(self.items)), 2)
        return self.items[a], self.items[b]

    def append(self, x: str) -> None:
        self.pos[x] = len(self.items)
        self.items.append(x)

    def remove(self, x: str) -> None:
        i, last = self.pos.pop(x), self.items.pop()
        if last != x:
            self.items[i], self.pos[last] = last, i


def live_ids(graph: ConceptGraph) -> Pool:
    return Pool([c.id for c in graph.concepts(include_deprecated=False)])


def run_edits(cur: Curator, n: int, rng: random.Random, live: Pool) -> tuple[int, int, dict[str, int]]:
    g = cur.graph
    counts: dict[str, int] = {}
    done = refused = 0
    new_id = 0
    while done < n:
        op = rng.choices(["add_concept", "update_concept", "add_relation", "remove_relation", "deprecate", "merge",
                          "bad"], weights=[25, 20, 20, 12, 8, 10, 5])[0]
        try:
            if op == "add_concept":
                new_id += 1
                cid = f"RADLEX:RID9{new_id:06d}"
                cur.add_concept(cid, f"bench concept {new_id}", synonyms=[f"bc{new_id}"], parents=[live.choice(rng)],
                                reason="benchmark")
                live.append(cid)
            elif op == "update_concept":
                cur.update_concept(live.choice(rng), add_synonyms=[f"syn {done}"])
            elif op == "add_relation":
                rtype = rng.choice(["is_a", "located_in"])
                cur.add_relation(live.choice(rng), rtype, live.choice(rng))
            elif op == "remove_relation":
                src, rel, dst = g.edge_arrays()
                k = rng.randrange(len(src))
                cur.remove_relation(g.ids[int(src[k])], g.relation_types[int(rel[k])], g.ids[int(dst[k])])
            elif op == "deprecate":
                cid = live.choice(rng)
                cur.deprecate(cid)
                live.remove(cid)
            elif op == "merge":
                a, b = live.sample2(rng)
                cur.merge(a, b)
                live.remove(b)
            else:  # deliberately invalid: a cycle through a parent, or an unknown id
                child = live.choice(rng)
                parents = g.parents(child)
                if parents and rng.random() < 0.7:
                    cur.add_relation(parents[0], "is_a", child)
                else:
                    cur.add_relation(child, "is_a", "RADLEX:RID0")
            done += 1
            counts[op] = counts.get(op, 0) + 1
        except CurationError:
            refused += 1
    return done, refused, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 edits")
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--edits", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = args.edits or (200 if args.quick else 1000)

    graph, text_load, reparse = load_radlex(args.data)
    original = graph.fingerprint()
    cur = Curator(graph, author="bench")
    # RadLex has only is_a; the mix also adds located_in relations, a type a curator declares first.
    cur.declare_relation_type("located_in", reason="benchmark")
    live = live_ids(graph)

    # Wall time is the figure; CPU time is reported beside it because the 2-core machine this runs on is often
    # shared, which inflates wall time without saying anything about the code.
    t, c = time.perf_counter(), time.process_time()
    done, refused, counts = run_edits(cur, n, random.Random(args.seed), live)
    edit_seconds, edit_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    report = cur.validate()
    validate_seconds, validate_cpu = time.perf_counter() - t, time.process_time() - c
    edited = graph.fingerprint()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_graph(graph, Path(tmp) / "radlex", changelog=cur.changelog)
        save_seconds = time.perf_counter() - t
        t = time.perf_counter()
        reloaded = Curator.open(Path(tmp) / "radlex")
        reload_seconds = time.perf_counter() - t
        reload_ok = reloaded.graph.fingerprint() == edited and len(reloaded.changelog) == len(cur.changelog)
        save_cache(graph, Path(tmp) / "radlex.safetensors")
        t = time.perf_counter()
        cached = load_cache(Path(tmp) / "radlex.safetensors")
        cache_load = time.perf_counter() - t
        cache_ok = cached.fingerprint() == edited

    t = time.perf_counter()
    cur.undo(done)
    undo_seconds = time.perf_counter() - t
    restored = graph.fingerprint() == original

    result = {
        "benchmark": "curation",
        "concepts": len(graph),
        "relations": graph.num_relations,
        "edits": done,
        "edits_by_op": counts,
        "refused_edits": refused,
        "edit_seconds": round(edit_seconds, 4),
        "validate_seconds": round(validate_seconds, 4),
        "edits_plus_validate_seconds": round(edit_seconds + validate_seconds, 4),
        "edit_cpu_seconds": round(edit_cpu, 4),
        "validate_cpu_seconds": round(validate_cpu, 4),
        "goal_seconds": 2.0,
        "goal_met": edit_seconds + validate_seconds <= 2.0,
        "goal_met_cpu": edit_cpu + validate_cpu <= 2.0,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "valid_after_edits": report.ok,
        "is_a_cycles_after_edits": len(report.is_a_cycles),
        "undo_seconds": round(undo_seconds, 4),
        "fingerprint_restored": restored,
        "save_text_seconds": round(save_seconds, 4),
        "reload_text_seconds": round(reload_seconds, 4),
        "reload_round_trip_ok": reload_ok,
        "text_load_seconds": round(text_load, 4),
        "cache_load_seconds": round(cache_load, 4),
        "cache_round_trip_ok": cache_ok,
        "reparse_csv_seconds": None if reparse is None else round(reparse, 4),
        "cache_speedup_vs_reparse": None if reparse is None else round(reparse / cache_load, 1),
        "cache_speedup_vs_text": round(text_load / cache_load, 1),
    }
    print(json.dumps(result))
    return 0 if restored and reload_ok and cache_ok else 1


if __name__ == "__main__":
    sys.exit(main())
