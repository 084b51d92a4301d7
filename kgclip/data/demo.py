"""The data kgclip ships for its demo: a CC0 sample of VQA-RAD (``kgclip/demo_data/vqa-rad``).

>>> items = read_vqa_rad(demo_vqa_rad_dir())       # doctest: +SKIP

:func:`build_vqa_rad_sample` is how the shipped sample was made from the full dataset (deterministic: same source,
same sample), so it can be rebuilt or resized.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

from kgclip.atomic import atomic_directory
from kgclip.data.vqa_rad import TEST_PHRASE_TYPES, VQA_RAD_JSON

__all__ = ["demo_data_dir", "demo_vqa_rad_dir", "build_vqa_rad_sample"]

ORGANS = ("HEAD", "CHEST", "ABD")


def demo_data_dir() -> Path:
    """The installed ``kgclip/demo_data`` directory."""
    # A plain path beside this package (kgclip is installed unzipped; importlib.resources needs kgclip/__init__.py).
    return Path(__file__).resolve().parents[1] / "demo_data"


def demo_vqa_rad_dir() -> Path:
    """The shipped VQA-RAD sample (same layout as the full dataset: JSON + ``images/``)."""
    path = demo_data_dir() / "vqa-rad"
    if not (path / VQA_RAD_JSON).is_file():
        raise FileNotFoundError(
            f"the demo VQA-RAD sample is missing at {path}; reinstall kgclip (its package data includes demo_data/)"
        )
    return path


def build_vqa_rad_sample(source: str | Path, out_dir: str | Path, *, train_images_per_organ: int = 11,
                         test_images_per_organ: int = 2, max_image_bytes: int = 150_000,
                         exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, int]:
    """Write a small VQA-RAD sample (original JSON rows and image files, unmodified) to ``out_dir``.

    Per organ (HEAD, CHEST, ABD): the ``test_images_per_organ`` images with the most test questions (at least one
    closed and one open; their train rows come along) and the ``train_images_per_organ`` images with the most train
    questions among images without test questions. Images above ``max_image_bytes`` are passed over so that the
    sample stays small, and so are the image names in ``exclude`` (the shipped sample excludes the 19 images that
    MedPix 2.0 also holds, so that no MedPix evaluation image is ever in the package). Ties break on the image
    name, so the result is deterministic.

    Returns:
        Counts: ``images``, ``rows``, ``train_rows``, ``test_rows``, ``bytes``.
    """
    src = Path(source)
    rows = json.loads((src / VQA_RAD_JSON).read_text(encoding="utf-8"))
    per_image: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        per_image[row["image_name"]].append(row)

    def is_test(row: dict) -> bool:
        return str(row["phrase_type"]).strip() in TEST_PHRASE_TYPES

    chosen: list[str] = []
    for organ in ORGANS:
        names = sorted(n for n, r in per_image.items() if r[0]["image_organ"].strip().upper() == organ
                       and n not in exclude and (src / "images" / n).stat().st_size <= max_image_bytes)
        with_test = [n for n in names
                     if {str(r["answer_type"]).strip() for r in per_image[n] if is_test(r)} == {"CLOSED", "OPEN"}]
        with_test.sort(key=lambda n: (-sum(is_test(r) for r in per_image[n]), n))
        chosen += with_test[:test_images_per_organ]
        train_only = [n for n in names if not any(is_test(r) for r in per_image[n])]
        train_only.sort(key=lambda n: (-len(per_image[n]), n))
        chosen += train_only[:train_images_per_organ]
    keep = set(chosen)
    sample = [row for row in rows if row["image_name"] in keep]  # original order and fields
    total = 0
    with atomic_directory(out_dir) as tmp:
        (tmp / "images").mkdir()
        for name in sorted(keep):
            shutil.copyfile(src / "images" / name, tmp / "images" / name)
            total += (src / "images" / name).stat().st_size
        (tmp / VQA_RAD_JSON).write_text(json.dumps(sample, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n_test = sum(is_test(r) for r in sample)
    return {"images": len(keep), "rows": len(sample), "train_rows": len(sample) - n_test, "test_rows": n_test,
            "bytes": total}
