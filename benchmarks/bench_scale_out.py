"""Scale-out figures: Milvus Lite vs FAISS Flat on the same vectors, Ray Data vs single-process image encoding.

    python benchmarks/bench_scale_out.py [--quick] [--data PATH] [--n 100000] [--images 0]

Part 1 builds both indexes from the same ``n`` x 384 unit vectors (with a ``modality`` metadata field), then runs
the same queries: ``topk_agreement`` is the mean overlap of the exact top-10 id sets (1.0 = identical),
``topk_exact_match`` the fraction of queries whose ordered top-10 lists are identical (also under a filter).
Insert throughput includes Milvus' flush (data durable) and FAISS' metadata store; QPS is measured on one batch of
queries without metadata fetch for both. Part 2 encodes the MedPix images with the built-in image tower, once in
this process and once on a local Ray (``num_cpus`` = the machine's cores): images/s of each (model loading and Ray
actor start-up included; Ray's own start is reported apart), ``ray_speedup`` and ``max_abs_diff`` between the
vectors of the two runs. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_index(n: int, dim: int, n_queries: int, seed: int = 0) -> dict[str, float]:
    from kgclip.index.faiss_index import FaissIndex
    from kgclip.index.milvus_index import MilvusIndex

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 7 + 3  # sparse ids, as real item ids are
    meta = [{"kind": "image", "modality": ("CT", "MR", "XR")[i % 3]} for i in range(n)]
    # Queries near stored items (as image->image retrieval is), so the top-10 is meaningful, not noise.
    noise = rng.standard_normal((n_queries, dim)).astype(np.float32) / np.sqrt(dim)
    q = x[rng.choice(n, n_queries, replace=False)] + 0.5 * noise

    faiss_index = FaissIndex(dim=dim, factory="Flat")
    t = time.perf_counter()
    for start in range(0, n, 10_000):
        faiss_index.add(ids[start:start + 10_000], x[start:start + 10_000], meta[start:start + 10_000])
    faiss_insert = time.perf_counter() - t

    milvus = MilvusIndex(dim=dim, index_type="FLAT", batch_size=2000)
    t = time.perf_counter()
    for start in range(0, n, 10_000):
        milvus.add(ids[start:start + 10_000], x[start:start + 10_000], meta[start:start + 10_000])
    milvus.flush()
    milvus_insert = time.perf_counter() - t
    milvus._client.load_collection(milvus.collection)  # noqa: SLF001 - (re)load sealed segments before timing

    milvus.search_ids(q[:2], 10)  # warm-up
    faiss_index.search_arrays(q[:2], 10)
    t = time.perf_counter()
    got = milvus.search_ids(q, 10)
    qps_milvus = n_queries / (time.perf_counter() - t)
    t = time.perf_counter()
    _, want = faiss_index.search_arrays(q, 10)
    qps_faiss = n_queries / (time.perf_counter() - t)
    got_ids = [[h.id for h in row] for row in got]
    want_ids = [row.tolist() for row in want]
    overlap = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got_ids, want_ids)])
    exact = np.mean([g == w for g, w in zip(got_ids, want_ids)])

    flt = {"modality": ["CT", "XR"]}
    got_f = [[h.id for h in row] for row in milvus.search_ids(q[:50], 10, flt)]
    want_f = [row.tolist() for row in faiss_index.search_arrays(q[:50], 10, flt)[1]]
    exact_f = np.mean([g == w for g, w in zip(got_f, want_f)])
    milvus.drop()
    return {
        "n_vectors": n, "dim": dim, "n_queries": n_queries,
        "topk_agreement": round(float(overlap), 4), "topk_exact_match": round(float(exact), 4),
        "topk_exact_match_filtered": round(float(exact_f), 4),
        "qps_milvus": round(qps_milvus, 1), "qps_faiss": round(qps_faiss, 1),
        "insert_per_s_milvus": round(n / milvus_insert, 1), "insert_per_s_faiss": round(n / faiss_insert, 1),
    }


def bench_encode(images_dir: Path, limit: int, workers: int) -> dict[str, float]:
    import ray

    from kgclip.index.bulk import iter_shards
    from kgclip.models.encode_distributed import EncodeConfig, encode_manifest

    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".dcm"))
    if limit:
        images = images[:limit]
    work = Path(tempfile.mkdtemp(prefix="kgclip-bench-scale-"))
    manifest = work / "images.jsonl"
    manifest.write_text("".join(json.dumps({"image": str(p), "text": p.stem}) + "\n" for p in images))
    cores = os.cpu_count() or 2
    config = EncodeConfig(batch_size=32, workers=workers, num_cpus=cores, torch_threads=max(1, cores // workers))

    import torch

    torch.set_num_threads(cores)  # the single-process peer uses every core, as a plain run would
    local = encode_manifest(manifest, work / "local", config)
    t = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - t
    try:
        distributed = encode_manifest(manifest, work / "ray", config, use_ray=True)
    finally:
        ray.shutdown()

    def vectors(out: Path) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for ids, x, _ in iter_shards(out / "shards"):
            found.update(zip(ids.tolist(), x))
        return found

    a, b = vectors(work / "local"), vectors(work / "ray")
    shutil.rmtree(work, ignore_errors=True)
    same_ids = sorted(a) == sorted(b)
    diff = max((float(np.abs(a[i] - b[i]).max()) for i in a if i in b), default=float("nan"))
    local_rate, ray_rate = len(images) / local.seconds, len(images) / distributed.seconds
    return {
        "n_images": len(images), "encoded": local.count, "errors": len(local.errors), "ray_workers": workers,
        "images_per_s_local": round(local_rate, 2), "images_per_s_ray": round(ray_rate, 2),
        "ray_speedup": round(ray_rate / local_rate, 3), "ray_init_s": round(ray_init, 1),
        "same_ids": same_ids, "max_abs_diff": diff,
    }


def main() -> None:
    from kgclip.config import shared_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 vectors and 64 images")
    parser.add_argument("--data", type=Path, default=None, help="data dir (default: kgclip shared data)")
    parser.add_argument("--n", type=int, default=None, help="vectors (default 100,000; --quick 10,000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--images", type=int, default=None,
                        help="MedPix images to encode (default 600, all 1,850 take ~3x longer; 0 = all; --quick 64)")
    parser.add_argument("--workers", type=int, default=2, help="Ray encoder actors")
    args = parser.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    limit = args.images if args.images is not None else (64 if args.quick else 600)
    data = args.data or shared_data_dir()

    t0 = time.perf_counter()
    result: dict[str, object] = {"quick": args.quick}
    result.update(bench_index(n, args.dim, args.queries))
    print(json.dumps({"part": "index", **result}), file=sys.stderr)
    images_dir = Path(data) / "medpix-2.0" / "images" if data else None
    if images_dir is not None and images_dir.is_dir():
        result.update(bench_encode(images_dir, limit, args.workers))
    else:
        result["encode_skipped"] = f"no MedPix images under {data}; pass --data"
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
