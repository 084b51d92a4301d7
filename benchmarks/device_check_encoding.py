"""One-command GPU check of the encoding paths (a minute or two on a GPU machine; well under 5 minutes).

- Text: the default ``minilm`` tower (``HFTextEncoder``) on ``device="cuda"`` against the same tower on the CPU, on
  ``--texts`` concept texts of the shipped graphs: the lowest cosine between the two vectors of a text
  (``text_min_cosine``, goal >= 0.999: the CUDA path computes the same float32 model) and texts/s on each
  (``text_gpu_speedup`` = GPU / CPU, same run).
- Image: the default ``efficientnet-lite0`` tower (``TowerFeatures``) with ``device="auto"`` (CUDA, bfloat16 autocast)
  against the CPU in float32, on ``--images`` synthetic greyscale scans written to a temporary folder: the lowest
  cosine of the pooled features (``image_min_cosine``, goal >= 0.99) and images/s on each.

Prints ONE JSON line last. Without a CUDA GPU it prints ``{"skipped": "<why>"}`` and exits 0.

    python benchmarks/device_check_encoding.py                   # 5,000 texts, 256 images
    python benchmarks/device_check_encoding.py --texts 1000 --images 64
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def concept_texts(n: int) -> list[str]:
    from kgclip.kg.convert import concept_text
    from kgclip.ontology.store import load_ontologies

    graph = load_ontologies()
    texts = list(dict.fromkeys(concept_text(graph.concept(cid)) for cid in graph.ids))
    return random.Random(0).sample(texts, min(n, len(texts)))


def timed_encode(encoder: Any, texts: list[str], batch_size: int) -> tuple[torch.Tensor, float]:
    encoder.encode(texts[:8], batch_size=batch_size)  # warm up (CUDA context, kernels)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    vectors = encoder._encode_uncached(texts, batch_size, False)  # every text once: no cache hits
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return vectors, len(texts) / (time.perf_counter() - t0)


def check_text(n: int, batch_size: int) -> dict[str, Any]:
    from kgclip.text.encoders import HFTextEncoder, default_text_model_dir

    texts = concept_texts(n)
    model_dir = default_text_model_dir()
    cpu_vecs, cpu_rate = timed_encode(HFTextEncoder(model_dir, device="cpu"), texts, batch_size)
    gpu_enc = HFTextEncoder(model_dir, device="cuda")
    gpu_vecs, gpu_rate = timed_encode(gpu_enc, texts, batch_size)
    cos = torch.nn.functional.cosine_similarity(cpu_vecs, gpu_vecs)
    out = {"texts": len(texts), "native": gpu_enc._native is not None, "min_cosine": round(float(cos.min()), 6),
           "cpu_per_s": round(cpu_rate, 1), "gpu_per_s": round(gpu_rate, 1),
           "gpu_speedup": round(gpu_rate / cpu_rate, 2)}
    log(f"text: {out}")
    return out


def synthetic_scans(folder: Path, n: int) -> list[Path]:
    """Greyscale PNGs with a bright blob on a noisy field, 256x256 (no data needed on the device machine)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    paths = []
    for i in range(n):
        cy, cx, r = rng.integers(60, 196), rng.integers(60, 196), rng.integers(10, 50)
        img = rng.normal(80, 20, (256, 256)) + 120 * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
        path = folder / f"scan_{i:04d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def check_image(n: int) -> dict[str, Any]:
    from kgclip.models.features import load_image_features

    with tempfile.TemporaryDirectory() as tmp:
        paths = synthetic_scans(Path(tmp), n)
        rates, pooled = {}, {}
        for name, device in (("cpu", "cpu"), ("gpu", "auto")):
            fx = load_image_features("efficientnet-lite0", cache_dir="", device=device)
            fx.features(paths[:4])  # warm up
            t0 = time.perf_counter()
            pooled[name] = fx.features(paths)["pooled"].float()
            rates[name] = n / (time.perf_counter() - t0)
            if name == "gpu":
                precision, gpu_device = fx.precision, fx.device.type
    cos = torch.nn.functional.cosine_similarity(pooled["cpu"], pooled["gpu"])
    out = {"images": n, "gpu_device": gpu_device, "gpu_precision": precision,
           "min_cosine": round(float(cos.min()), 6), "cpu_per_s": round(rates["cpu"], 1),
           "gpu_per_s": round(rates["gpu"], 1), "gpu_speedup": round(rates["gpu"] / rates["cpu"], 2)}
    log(f"image: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=5000)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"check": "device_encoding", "skipped": "torch sees no CUDA GPU"}))
        return 0
    result: dict[str, Any] = {"check": "device_encoding", "gpu": torch.cuda.get_device_name(0)}
    for prefix, values in (("text", check_text(args.texts, args.batch_size)), ("image", check_image(args.images))):
        result.update({f"{prefix}_{k}": v for k, v in values.items()})
    result["ok"] = bool(result["text_min_cosine"] >= 0.999 and result["image_min_cosine"] >= 0.99
                        and result["image_gpu_device"] == "cuda")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
