"""Startup cost of :meth:`ConceptLinker.from_graph` on the shipped RadLex + Disease Ontology graph (~59k concepts).

Protocol (one process, a private empty ``KGCLIP_HOME`` so the machine's own cache is never touched):

- ``graph_load_s``: a plain ``kgclip.ontology.store.load_ontologies()`` (the graph every caller loads first), for
  scale: the previous linker's own cost is not available as a peer in the same run.
- ``cold_s``: ``from_graph`` with no cache at all (input fingerprint, lexicon build, cache write), on a graph
  object the linker has not seen.
- ``warm_s``: ``from_graph`` served from the on-disk cache, in-process caches cleared first and a freshly loaded
  graph object (so the input fingerprint is recomputed, as in a new notebook / CLI process); the median of
  ``--repeats`` runs (``warm_min_s`` the fastest).
- ``memory_s``: ``from_graph`` again in the same process (in-process lexicon hit).
- ``*_cpu_s``: the same in process CPU seconds (the shared development machine's wall clock depends on other jobs).
- ``identical``: the cold and the warm linker give the same mentions (every field) on the sample texts: IU X-ray
  findings + impressions from ``--data`` when present (``texts`` says how many), else built-in sentences.
- Ratios: ``speedup_warm_vs_cold`` = cold_s / warm_s and ``warm_vs_graph_load`` = warm_s / graph_load_s.

Usage: ``python benchmarks/bench_linker_load.py [--quick] [--data PATH] [--repeats N]``; the last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kgclip.config import shared_data_dir

_SENTENCES = [
    "Heart size is normal. No focal airspace consolidation, pleural effusion or pneumothorax.",
    "Atherosclerotic calcification of the aortic arch. Emphysematous changes. Kyphotic thoracic spine.",
    "Degenerative changes of the thoracic spine. Hiatal hernia. Right upper lobe pneumonia, pnuemothorax.",
    "Interval placement of a right IJ central venous catheter; tip in the SVC. COPD. T12 compression fracture.",
    "Possible small left pleural effusion. History of lung cancer. Cardiomegally. Effusion pleural.",
]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _texts(data: Path | None, limit: int) -> list[str]:
    reports = None if data is None else data / "iu-xray" / "indiana_reports.csv"
    if reports is None or not reports.is_file():
        return list(_SENTENCES)
    with open(reports, encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(limit), csv.DictReader(handle))]
    return [f"{r['findings']}\n\n{r['impression']}" for r in rows] + list(_SENTENCES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder (IU texts)")
    parser.add_argument("--quick", action="store_true", help="3 warm repeats, 200 texts")
    parser.add_argument("--repeats", type=int, default=None, help="warm loads to time (default 7, --quick 3)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)

    from kgclip.ontology.store import load_ontologies, shipped_ontology_dirs

    if not shipped_ontology_dirs():
        print("the shipped ontologies are not built: run `python ontologies/build.py`", file=sys.stderr)
        return 2
    import kgclip.text.linker as linker_module
    from kgclip.text.linker import ConceptLinker

    texts = _texts(args.data, 200 if args.quick else 1000)
    with tempfile.TemporaryDirectory() as home:
        old = os.environ.get("KGCLIP_HOME")
        os.environ["KGCLIP_HOME"] = home  # a cold, private cache: the first call below is a real build
        try:
            graph, graph_s, graph_cpu = _timed(load_ontologies)
            cold, cold_s, cold_cpu = _timed(lambda: ConceptLinker.from_graph(graph))
            _, memory_s, _ = _timed(lambda: ConceptLinker.from_graph(graph))
            warm_runs = []
            for _ in range(repeats):
                linker_module._LEXICONS.clear()
                fresh_graph = load_ontologies()  # a new object: nothing memoised about it
                warm, warm_s, warm_cpu = _timed(lambda: ConceptLinker.from_graph(fresh_graph))
                warm_runs.append((warm_s, warm_cpu, warm.lexicon_source))
            cache_bytes = sum(p.stat().st_size for p in (Path(home) / "cache" / "linker").glob("*"))
        finally:
            if old is None:
                os.environ.pop("KGCLIP_HOME", None)
            else:
                os.environ["KGCLIP_HOME"] = old
    identical = all(cold.link(t) == warm.link(t) for t in texts)
    warm_s = statistics.median(r[0] for r in warm_runs)
    result = {
        "benchmark": "linker_load",
        "concepts": len(graph),
        "terms": len(cold.lexicon),
        "cold_source": cold.lexicon_source,
        "warm_source": sorted({r[2] for r in warm_runs}),
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 3),
        "warm_min_s": round(min(r[0] for r in warm_runs), 3),
        "memory_s": round(memory_s, 4),
        "graph_load_s": round(graph_s, 3),
        "cold_cpu_s": round(cold_cpu, 3),
        "warm_cpu_s": round(statistics.median(r[1] for r in warm_runs), 3),
        "graph_load_cpu_s": round(graph_cpu, 3),
        "speedup_warm_vs_cold": round(cold_s / warm_s, 1),
        "warm_vs_graph_load": round(warm_s / graph_s, 3),
        "cache_mb": round(cache_bytes / 1e6, 1),
        "repeats": repeats,
        "texts": len(texts),
        "identical": identical,
    }
    print(json.dumps(result))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
