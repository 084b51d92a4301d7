"""One-command GPU check of the FAISS index paths (about a minute on a GPU machine; well under 5 minutes).

Builds the same random unit vectors into a CPU and a ``device="cuda"`` :class:`~kgclip.index.faiss_index.FaissIndex`
(``Flat`` and ``IVF1024,Flat``), then checks that the GPU copy is used and agrees with the CPU index (unfiltered,
filtered, after a remove, and for ``k`` above faiss-gpu's limit, which falls back to the CPU), and measures
batched QPS on both (``gpu_speedup_*`` = GPU QPS / CPU QPS, same run).

Prints ONE JSON line last. Without a CUDA GPU or without faiss-gpu it prints ``{"skipped": "<why>"}`` and exits 0.

    python benchmarks/device_check_index.py            # 200,000 x 384, 2,000 queries
    python benchmarks/device_check_index.py --n 20000  # smaller
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import faiss
import numpy as np

from kgclip.index.faiss_index import FaissIndex


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def skip_reason() -> str | None:
    if not hasattr(faiss, "StandardGpuResources"):
        return "faiss has no GPU support (install faiss-gpu-cu12 in place of faiss-cpu)"
    if faiss.get_num_gpus() < 1:
        return "faiss sees no CUDA GPU"
    return None


def agreement(a: list[list[Any]], b: list[list[Any]]) -> float:
    """Mean fraction of shared ids per query (ties in score may order equal items differently)."""
    return float(np.mean([len({h.id for h in x} & {h.id for h in y}) / max(1, len(x)) for x, y in zip(a, b)]))


def check(factory: str, x: np.ndarray, q: np.ndarray, meta: list[dict[str, Any]], k: int) -> dict[str, Any]:
    ids = np.arange(len(x), dtype=np.int64)
    cpu = FaissIndex(dim=x.shape[1], factory=factory, nprobe=32)
    gpu = FaissIndex(dim=x.shape[1], factory=factory, nprobe=32, device="cuda")
    for index in (cpu, gpu):
        index.add(ids, x, meta)
    out: dict[str, Any] = {"on_gpu": gpu.on_gpu}
    out["agree_unfiltered"] = agreement(gpu.search(q[:200], k), cpu.search(q[:200], k))
    filters = {"modality": "CT"}
    out["agree_filtered"] = agreement(gpu.search(q[:200], k, filters), cpu.search(q[:200], k, filters))
    removed = ids[:1000]
    gpu.remove(removed)
    cpu.remove(removed)
    after = gpu.search(q[:200], k)
    out["removed_absent"] = not ({h.id for row in after for h in row} & set(removed.tolist()))
    out["agree_after_remove"] = agreement(after, cpu.search(q[:200], k))
    big_k = 3000  # above faiss-gpu's top-k limit (2048): served by the CPU index
    out["agree_k3000"] = agreement(gpu.search(q[:5], big_k), cpu.search(q[:5], big_k))
    for name, index in (("cpu", cpu), ("gpu", gpu)):
        index.search_arrays(q[:10], k)  # warm up
        t0 = time.perf_counter()
        index.search_arrays(q, k)
        out[f"{name}_qps"] = len(q) / (time.perf_counter() - t0)
    out["gpu_speedup"] = out["gpu_qps"] / out["cpu_qps"]
    log(f"{factory}: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=2000)
    args = p.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(json.dumps({"check": "device_index", "skipped": reason}))
        return 0
    rng = np.random.default_rng(0)
    x = unit(rng.standard_normal((args.n, args.dim), dtype=np.float32))
    q = unit(rng.standard_normal((args.queries, args.dim), dtype=np.float32))
    modality = rng.choice(["CT", "MR", "XR"], size=args.n)
    meta = [{"kind": "image", "modality": m} for m in modality.tolist()]
    result: dict[str, Any] = {"check": "device_index", "n": args.n, "dim": args.dim, "gpus": faiss.get_num_gpus()}
    for factory in ("Flat", "IVF1024,Flat"):
        key = factory.split(",")[0].lower()
        for name, value in check(factory, x, q, meta, 10).items():
            result[f"{key}_{name}"] = value
    result["ok"] = all(result[f"{key}_{c}"] for key in ("flat", "ivf1024")
                       for c in ("on_gpu", "removed_absent")) and \
        all(result[f"{key}_agree_{c}"] >= 0.99 for key in ("flat",)
            for c in ("unfiltered", "filtered", "after_remove", "k3000"))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
