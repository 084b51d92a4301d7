"""The data kgclip ships for its demo: a CC0 sample of VQA-RAD (``kgclip/demo_data/vqa-rad``).

>>> items = read_vqa_rad(demo_vqa_rad_dir())       # doctest: +SKIP

:func:`build_vqa_rad_sample` is how the shipped sample was made from the full dataset (deterministic: same source,
same sample), so it can be rebuilt or resized.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from kgclip.atomic import atomic_directory
from kgclip.data.vqa_rad import TEST_PHRASE_TYPES, VQA_RAD_JSON
from kgclip.errors import DataNotFoundError

__all__ = ["demo_data_dir", "demo_vqa_rad_dir", "build_vqa_rad_sample", "derive_image_metadata", "write_demo_metadata",
           "read_demo_metadata", "fill_by_neighbours", "DEMO_METADATA"]

ORGANS = ("HEAD", "CHEST", "ABD")


def demo_data_dir() -> Path:
    """The installed ``kgclip/demo_data`` directory."""
    # A plain path beside this package (kgclip is installed unzipped; importlib.resources needs kgclip/__init__.py).
    return Path(__file__).resolve().parents[1] / "demo_data"


def demo_vqa_rad_dir() -> Path:
    """The shipped VQA-RAD sample (same layout as the full dataset: JSON + ``images/``)."""
    path = demo_data_dir() / "vqa-rad"
    if not (path / VQA_RAD_JSON).is_file():
        raise DataNotFoundError(
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


DEMO_METADATA = "image_metadata.json"
# Open questions asking for the modality ("What modality is used?", "How was this image taken?").
_MODALITY_Q = re.compile(r"(?i)modality|type of imag|kind of (?:scan|imag)|how (?:was|is) (?:this|the) image (?:taken|"
                         r"acquired|obtained)|what imaging|imaging (?:technique|method|type)|what type of image|"
                         r"what kind of image")
# Yes/no questions asking whether it is one ("Is this an MRI?", "Is this a PA film?").
_IS_MODALITY_Q = re.compile(r"(?i)^(?:is|was) (?:this|the) (?:image\s+)?(?:taken\s+(?:with|by|using)\s+|an?\s+)?"
                            r"(?:\w+\s+)?(ct|mri|mr|x-?ray|radiograph|film|ultrasound|pet)\b")
_MODALITY_WORDS = ((r"\bmri?\b|magnetic|\bflair\b|\bt[12]\b|\bt[12][- ]weighted|\bdwi\b|diffusion", "MR"),
                   (r"\bct\b|\bcta\b|computed tomography", "CT"),
                   (r"x-?ray|radiograph|\bfilm\b|\bcxr\b|\bkub\b|\bpa\b|\bap\b", "XR"),
                   (r"ultrasound|sonogra|doppler", "US"), (r"\bpet\b|nuclear", "NM"))


def _modalities_in(text: str) -> list[str]:
    return [name for pattern, name in _MODALITY_WORDS if re.search(pattern, text.lower())]


def _modality_votes(question: str, answer: str) -> dict[str, int]:
    """What one training question/answer says about its image's modality (votes per modality)."""
    q, a = question.strip(), answer.strip().lower()
    asked = _IS_MODALITY_Q.match(q)
    if asked:  # "Is this an MRI?" yes -> MR (2 votes); no -> nothing
        return {m: 2 for m in _modalities_in(asked.group(1))} if a == "yes" else {}
    if _MODALITY_Q.search(q) and a not in ("yes", "no"):
        return {m: 2 for m in _modalities_in(a)}
    # A question that presupposes the modality ("Is the chest x-ray normal?", "What MRI sequence is shown?").
    return {m: 1 for m in _modalities_in(q)}


def derive_image_metadata(rows: list[dict]) -> dict[str, dict[str, str]]:
    """Modality and body region of each image, derived from VQA-RAD's own rows (never labelled by hand).

    * ``region``: the dataset's ``image_organ`` field (``HEAD`` / ``CHEST`` / ``ABD``);
    * ``modality``: what the image's *training* questions say: answers to questions asking for it ("What modality
      is used?" -> "CT"), confirmations ("Is this an MRI?" -> "yes"), and questions that presuppose it ("What MRI
      sequence is shown?"); the majority, ``""`` when none says. Test questions are never read, so no test
      answer leaks into a case's metadata.
    """
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    organ: dict[str, str] = {}
    for row in rows:
        name = str(row["image_name"])
        organ.setdefault(name, str(row.get("image_organ", "")).strip().upper())
        if str(row.get("phrase_type", "")).strip() in TEST_PHRASE_TYPES:
            continue
        for modality, n in _modality_votes(str(row.get("question", "")), str(row.get("answer", ""))).items():
            votes[name][modality] += n
    out = {}
    for name, region in sorted(organ.items()):
        counts = votes.get(name, {})
        best = max(sorted(counts), key=lambda m: counts[m]) if counts else ""
        # A tie between modalities says nothing.
        tied = best and sum(n == counts[best] for n in counts.values()) > 1
        out[name] = {"modality": "" if tied else best, "region": region}
    return out


def fill_by_neighbours(meta: dict[str, dict[str, str]], vectors: dict[str, np.ndarray], *, k: int = 5,
                       field: str = "modality") -> dict[str, dict[str, str]]:
    """Images whose ``field`` the questions left empty get the majority of their ``k`` nearest images (cosine of
    ``vectors``, image name -> unit vector) among those with one, same region only; ``<field>_source`` says which
    way each value came (``"questions"`` or ``"neighbours"``).

    Shapes:
        each vector ``[D]``, L2-normalised.
    """
    out = {name: dict(m) for name, m in meta.items()}
    known = [n for n, m in meta.items() if m.get(field) and n in vectors]
    for name, m in out.items():
        if m.get(field):
            m[f"{field}_source"] = "questions"
            continue
        pool = [n for n in known if meta[n].get("region") == m.get("region")] or known
        if name not in vectors or not pool:
            continue
        sims = np.stack([vectors[n] for n in pool]) @ vectors[name]
        counts: dict[str, float] = defaultdict(float)
        for j in np.argsort(-sims)[:k].tolist():
            counts[meta[pool[j]][field]] += 1.0
        m[field] = max(sorted(counts), key=lambda v: counts[v])
        m[f"{field}_source"] = "neighbours"
    return out


def write_demo_metadata(data_dir: str | Path, *, source: str | Path | None = None,
                        vectors: dict[str, np.ndarray] | None = None) -> dict[str, int]:
    """Write the modality and region of every image of ``data_dir`` to ``<data_dir>/image_metadata.json``.

    Args:
        source: a folder with more VQA-RAD rows of the same images (the full dataset): their training questions
            vote too (default: ``data_dir``'s own rows).
        vectors: image name -> unit image vector over ``source``'s images; images whose questions say nothing get
            the modality of their nearest neighbours (:func:`fill_by_neighbours`).

    Returns:
        Counts: ``images``, ``with_modality``, ``modality_from_neighbours``, ``with_region``.
    """
    from kgclip.atomic import atomic_write_text

    base = Path(data_dir)
    names = {str(r["image_name"]) for r in json.loads((base / VQA_RAD_JSON).read_text(encoding="utf-8"))}
    rows = json.loads((Path(source or base) / VQA_RAD_JSON).read_text(encoding="utf-8"))
    meta = derive_image_metadata(rows)
    if vectors is not None:
        meta = fill_by_neighbours(meta, vectors)
    meta = {n: m for n, m in meta.items() if n in names}
    atomic_write_text(base / DEMO_METADATA, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return {"images": len(meta), "with_modality": sum(bool(m.get("modality")) for m in meta.values()),
            "modality_from_neighbours": sum(m.get("modality_source") == "neighbours" for m in meta.values()),
            "with_region": sum(bool(m.get("region")) for m in meta.values())}


def read_demo_metadata(data_dir: str | Path | None = None) -> dict[str, dict[str, str]]:
    """``{image name: {"modality", "region"}}`` of the shipped sample (or of ``data_dir``); ``{}`` when the
    folder has no metadata file (then derive it with :func:`derive_image_metadata`)."""
    path = Path(data_dir) if data_dir is not None else demo_vqa_rad_dir()
    file = path / DEMO_METADATA
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
