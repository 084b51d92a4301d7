"""Streaming UMLS ingest at release scale, and reload from the binary cache vs re-parse.

Generates a synthetic release in the exact RRF format (``kgclip.testing.rrf.generate_release``: >= 2,000,000
MRCONSO and >= 6,000,000 MRREL rows, plus MRSTY, MRDEF, MRFILES) in a temporary directory, then times
``load_graph("umls-rrf", dir)`` (stream every file + build the ConceptGraph), records the process's peak RSS, saves
the graph with ``kgclip.ontology.store.save_cache`` and times ``load_cache``.

Usage: ``python benchmarks/bench_umls_stream.py [--quick] [--keep DIR]``; prints one JSON line last with
``rows_per_s``, ``peak_rss_mb`` (goal <= 3072), ``cache_speedup`` (re-parse time / cache load time, goal >= 20).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from kgclip.ontology.sources import load_graph
from kgclip.testing.rrf import generate_release


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 if sys.platform != "darwin" else peak / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10x smaller release")
    parser.add_argument("--keep", type=Path, default=None, help="write the release here (and keep it)")
    parser.add_argument("--concepts", type=int, default=None, help="concepts to generate (default 520,000)")
    args = parser.parse_args(argv)
    concepts = args.concepts or (52_000 if args.quick else 520_000)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        release = args.keep or Path(tmp) / "META"
        start = time.perf_counter()
        counts = generate_release(release, concepts=concepts, names_per_concept=4, relations_per_concept=12)
        generate_s = time.perf_counter() - start
        total_rows = sum(counts.values())
        rss_before = _rss_mb()

        start = time.perf_counter()
        graph = load_graph("umls-rrf", release, name="umls-synthetic")
        parse_s = time.perf_counter() - start
        peak_rss = _rss_mb()
        n_concepts, n_relations = len(graph), graph.num_relations

        cache_speedup: float | None = None
        cache_note = ""
        try:
            from kgclip.ontology.store import load_cache, save_cache
        except ImportError:
            save_cache = load_cache = None  # type: ignore[assignment]
            cache_note = "kgclip.ontology.store.save_cache/load_cache not available: cache_speedup not measured"
        save_s = load_s = None
        if save_cache is not None:
            cache = Path(tmp) / "umls.safetensors"
            start = time.perf_counter()
            save_cache(graph, cache)
            save_s = time.perf_counter() - start
            del graph
            gc.collect()
            start = time.perf_counter()
            loaded = load_cache(cache)
            load_s = time.perf_counter() - start
            assert len(loaded) == n_concepts and loaded.num_relations == n_relations
            cache_speedup = round(parse_s / load_s, 1)
            result["cache_mb"] = round(cache.stat().st_size / 2**20, 1)
        result.update({
            "rows_per_s": round(total_rows / parse_s),
            "peak_rss_mb": peak_rss,
            "cache_speedup": cache_speedup,
            "mrconso_rows": counts["MRCONSO.RRF"],
            "mrrel_rows": counts["MRREL.RRF"],
            "mrsty_rows": counts["MRSTY.RRF"],
            "mrdef_rows": counts["MRDEF.RRF"],
            "concepts": n_concepts,
            "relations": n_relations,
            "parse_s": round(parse_s, 2),
            "cache_save_s": round(save_s, 2) if save_s is not None else None,
            "cache_load_s": round(load_s, 3) if load_s is not None else None,
            "generate_s": round(generate_s, 1),
            "rss_before_parse_mb": rss_before,
            "goal_peak_rss_mb": 3072,
            "goal_cache_speedup": 20,
            "quick": bool(args.quick),
        })
        if cache_note:
            result["note"] = cache_note
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
