"""Imaging speed: DICOM decoding through ``read_image`` vs plain pydicom, and image-encoding throughput.

Measures, in one run on this machine:

- ``dicom_read_ratio``: total time of ``read_image(path)`` (decode + modality LUT + VOI/window + MONOCHROME1 + safe
  metadata + float32) over total time of ``pydicom.dcmread(path).pixel_array`` (decode only) on the real DICOMs of
  ``<data>/dicom`` plus pydicom's own CT, MR, RLE, multi-frame and JPEG 2000 test files (best of ``--repeats``);
- ``images_per_s``: built-in CNN tower forward passes at its default size (160 px), batch 32, eval mode;
- ``images_per_s_lite0``: the default pretrained tower, EfficientNet-Lite0 at 224 px, same batch and threads, on the
  CPU; ``images_per_s_lite0_gpu`` (bf16 autocast, batch 128) where CUDA is present;
- ``images_per_s_lite0_cached``: the same images through :class:`kgclip.models.features.TowerFeatures` once they
  are cached (what training heads, VQA and drafting pay after the first pass);
- ``images_per_s_vit_b32``: the peer: a ViT-B/32 CLIP vision tower (the architecture of the usual pretrained
  CLIP; random weights, speed only) at 224 px, same batch and threads;
- ``images_per_s_end_to_end``: JPEG file -> ``read_image`` (``max_side`` hint) -> transform -> built-in tower,
  on VQA-RAD images (mostly ~1000 px RGB JPEGs).

Prints one JSON line last. ``--quick`` runs fewer repetitions and skips the ViT peer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgclip.config import shared_data_dir  # noqa: E402
from kgclip.imaging.io import read_image  # noqa: E402
from kgclip.imaging.transforms import ImageTransform  # noqa: E402
from kgclip.models.backbones import DEFAULT_IMAGE_SIZE, load_image_tower  # noqa: E402

PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "693_J2KI.dcm",
                 "rtdose.dcm", "SC_rgb_rle_2frame.dcm")


def _best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_dicom(files: list[Path], repeats: int) -> dict:
    per_file = {}
    ours_total = peer_total = 0.0
    for path in files:
        read_image(path)  # warm the decoder plugins and file cache for both sides alike
        pydicom.dcmread(path).pixel_array  # noqa: B018
        ours = _best_time(lambda p=path: read_image(p), repeats)
        peer = _best_time(lambda p=path: pydicom.dcmread(p).pixel_array, repeats)
        ours_total += ours
        peer_total += peer
        per_file[path.name] = {"read_image_ms": round(ours * 1e3, 2), "pydicom_ms": round(peer * 1e3, 2),
                               "ratio": round(ours / peer, 2)}
    return {"dicom_read_ratio": round(ours_total / peer_total, 3), "dicom_read_image_ms": round(ours_total * 1e3, 1),
            "dicom_pydicom_ms": round(peer_total * 1e3, 1), "dicom_files": len(files), "dicom_per_file": per_file}


@torch.inference_mode()
def bench_tower(tower: Callable[[torch.Tensor], torch.Tensor], size: int, batches: int, batch_size: int = 32) -> float:
    x = torch.randn(batch_size, 3, size, size)
    tower(x)  # warm-up (allocator, oneDNN kernels)
    times = [_best_time(lambda: tower(x), 1) for _ in range(batches)]
    return batch_size / statistics.median(times)


def bench_lite0(quick: bool) -> dict:
    """EfficientNet-Lite0 throughput: CPU fp32, GPU bf16 where present, and cache hits through TowerFeatures."""
    import tempfile

    from kgclip.models.features import TowerFeatures

    lite0 = load_image_tower("efficientnet-lite0").eval()
    out = {"images_per_s_lite0": round(bench_tower(lite0, 224, 2 if quick else 5), 1), "lite0_image_size": 224}
    if torch.cuda.is_available():
        gpu = load_image_tower("efficientnet-lite0").eval().cuda()

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                y = gpu(x.cuda(non_blocking=True))
            torch.cuda.synchronize()
            return y

        out["images_per_s_lite0_gpu"] = round(bench_tower(run, 224, 5, batch_size=128), 1)
        out["gpu"] = torch.cuda.get_device_name(0)
    rng = np.random.default_rng(0)
    images = [rng.random((256, 256)).astype(np.float32) for _ in range(16 if quick else 64)]
    with tempfile.TemporaryDirectory() as cache:
        fx = TowerFeatures(lite0, cache_dir=cache, device="cpu")
        start = time.perf_counter()
        fx.features(images)
        out["images_per_s_lite0_first_pass"] = round(len(images) / (time.perf_counter() - start), 1)
        start = time.perf_counter()
        fx.features(images)
        out["images_per_s_lite0_cached"] = round(len(images) / (time.perf_counter() - start), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data dir (default: kgclip's lookup)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no ViT peer")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data or shared_data_dir()
    repeats = 3 if args.quick else 7
    files = sorted((data / "dicom").glob("*.dcm")) if data else []
    test_dir = Path(pydicom.__file__).parent / "data" / "test_files"
    files += [test_dir / n for n in PYDICOM_FILES if (test_dir / n).is_file()]
    result: dict = {"machine_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    result.update(bench_dicom(files, repeats))
    for name, info in result["dicom_per_file"].items():
        print(f"{name:28s} read_image {info['read_image_ms']:8.2f} ms  pydicom {info['pydicom_ms']:8.2f} ms  "
              f"x{info['ratio']}")

    torch.manual_seed(0)
    tower = load_image_tower("builtin-cnn").eval()
    result["images_per_s"] = round(bench_tower(tower, DEFAULT_IMAGE_SIZE, 3 if args.quick else 8), 1)
    result["image_size"] = DEFAULT_IMAGE_SIZE
    result["builtin_params"] = sum(p.numel() for p in tower.parameters())
    result.update(bench_lite0(args.quick))
    if not args.quick:
        from transformers import CLIPVisionConfig, CLIPVisionModel

        vit = CLIPVisionModel(CLIPVisionConfig(image_size=224, patch_size=32)).eval()
        result["images_per_s_vit_b32"] = round(bench_tower(lambda x: vit(pixel_values=x).pooler_output, 224, 3), 1)
        del vit
        result["builtin_vs_vit_b32_speedup"] = round(result["images_per_s"] / result["images_per_s_vit_b32"], 2)
    if data and (data / "vqa-rad" / "images").is_dir():
        paths = sorted((data / "vqa-rad" / "images").glob("*.jpg"))[: 32 if args.quick else 96]
        transform = ImageTransform.for_tower(tower)
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(paths), 32):
                # max_side as ImageTextDataset passes it: large JPEGs decode at a reduced DCT scale.
                tower(transform.batch([read_image(p, max_side=round(1.25 * DEFAULT_IMAGE_SIZE))
                                       for p in paths[i:i + 32]]))
        result["images_per_s_end_to_end"] = round(len(paths) / (time.perf_counter() - start), 1)
    result.pop("dicom_per_file")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
