"""Contrast / MR-sequence classifiers for the VQA-RAD evaluation, trained on MedPix 2.0 images with none of VQA-RAD's.

VQA-RAD's images come from MedPix, so MedPix images may *be* VQA-RAD images (train or test), re-encoded and
downscaled. Before training, every MedPix image is dropped that

* has the same file content (sha256) as any image in VQA-RAD's ``images/`` folder, or
* is a near duplicate of one: cosine > :data:`NEAR_DUPLICATE_COSINE` between its image features and those of the
  VQA-RAD image or of a centred crop of it (:data:`CROP_SCALES`). Features survive re-encoding and resizing, but
  VQA-RAD re-pads some MedPix images onto a larger canvas with a watermark: of the 18 MedPix images whose ``synpic``
  id is a VQA-RAD image name, the plain cosine > 0.99 test found 16 (the other two: 0.945 and 0.808); with the
  crops every one of the 18 is above 0.949, so the threshold sits below that, at 0.94 (removing a few unrelated
  look-alikes too costs nothing but training images);

and with it its whole case (other images of the same case show the same patient and study). Every file in
VQA-RAD's ``images/`` folder is compared, train and test alike; no VQA-RAD question or answer is read. The counts are
returned (``dedupe``), with how many removed images share a VQA-RAD image's ``synpic`` id, as a check of the
near-duplicate test only (the names are never used to choose).

On the shared data (MedPix 2.0 train + dev, 1,850 images; VQA-RAD ``images/``, 315): no identical files, 21 near
duplicates (16 by the plain cosine > 0.99 test), among them all 18 MedPix images whose id names a VQA-RAD image;
their 19 cases, 91 images, are removed.

Labels come from each MedPix image's modality string (:func:`kgclip.rag.image_metadata.acquisition_labels`:
``contrast`` with / without, ``sequence`` T1 / T2 / FLAIR / DWI); the heads are
:func:`kgclip.models.metadata_heads.fit_metadata_heads` with whole cases carved for validation, so
``figures["beats_majority"]`` gates whether a head answers (:func:`kgclip.rag.image_metadata.answering_labels`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.data.medpix import read_medpix
from kgclip.models.metadata_heads import MetadataHeads, fit_metadata_heads
from kgclip.rag.image_metadata import ACQUISITION_FIELDS, metadata_training_labels

__all__ = ["CROP_SCALES", "NEAR_DUPLICATE_COSINE", "medpix_acquisition_heads", "near_duplicates"]

NEAR_DUPLICATE_COSINE = 0.94
CROP_SCALES = (1.0, 0.9, 0.8, 0.7)  # centred crops of each VQA-RAD image compared (side as a share of the image's)


def _crops(path: Path) -> list[np.ndarray]:
    """The image (grey, ``[H, W]`` in ``[0, 1]``) and its centred crops at :data:`CROP_SCALES`."""
    from kgclip.imaging.io import read_image

    a = np.asarray(getattr(read_image(path), "pixels", None), np.float32)
    a = a.mean(axis=2) if a.ndim == 3 else a
    h, w = a.shape[:2]
    out = []
    for s in CROP_SCALES:
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        top, left = (h - ch) // 2, (w - cw) // 2
        out.append(np.ascontiguousarray(a[top:top + ch, left:left + cw]))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def near_duplicates(x: np.ndarray, y: np.ndarray, threshold: float = NEAR_DUPLICATE_COSINE) -> np.ndarray:
    """Boolean mask over the rows of ``x``: cosine > ``threshold`` to any row of ``y``.
    Shapes: ``x [N, D]``, ``y [M, D]`` -> ``[N]`` (rows need not be normalised)."""
    if not len(x) or not len(y):
        return np.zeros(len(x), bool)
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    yn = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    return (xn @ yn.T).max(axis=1) > threshold


def medpix_acquisition_heads(medpix_root: str | Path, vqa_rad_root: str | Path, featurizer: Any, *,
                             show_progress: bool = False) -> tuple[MetadataHeads | None, dict[str, Any]]:
    """``(heads, info)``: contrast / sequence heads on the MedPix images left after removing VQA-RAD's (module
    docstring); ``heads`` is ``None`` when no field can be trained. ``info`` holds the dedupe counts and each
    head's validation figures."""
    images = list(read_medpix(medpix_root).images)
    vqa_files = sorted(p for p in (Path(vqa_rad_root) / "images").iterdir()
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    x = featurizer.embed([str(i.image_path) for i in images], show_progress=show_progress)
    y_full = featurizer.embed([str(p) for p in vqa_files], show_progress=show_progress)
    y = featurizer.embed([c for p in vqa_files for c in _crops(p)], show_progress=show_progress)
    vqa_hashes = {_sha256(p) for p in vqa_files}
    same_bytes = np.array([_sha256(i.image_path) in vqa_hashes for i in images], bool)
    near = near_duplicates(np.asarray(x), np.asarray(y))
    plain = near_duplicates(np.asarray(x), np.asarray(y_full), 0.99)
    hit = same_bytes | near
    bad_cases = {images[j].case_id for j in np.flatnonzero(hit)}
    keep = [j for j, i in enumerate(images) if i.case_id not in bad_cases]
    vqa_stems = {p.stem for p in vqa_files}
    removed_ids = {str(images[j].synpic_id) for j in np.flatnonzero(hit)}
    info: dict[str, Any] = {"dedupe": {
        "medpix_images": len(images), "vqa_rad_images": len(vqa_files),
        "same_content": int(same_bytes.sum()), "near_duplicate": int(near.sum()),
        "near_duplicate_plain_0.99": int(plain.sum()), "threshold": NEAR_DUPLICATE_COSINE,
        "removed_images_matching": int(hit.sum()), "removed_cases": len(bad_cases),
        "removed_with_case": len(images) - len(keep),
        "check_synpic_ids_shared_with_vqa_rad": len({str(i.synpic_id) for i in images} & vqa_stems),
        "check_removed_with_shared_synpic_id": len(removed_ids & vqa_stems)}}
    records = [{"modality_detail": images[j].modality_detail} for j in keep]
    labels = metadata_training_labels(records)
    try:
        heads = fit_metadata_heads(np.asarray(x)[keep], {f: labels[f] for f in ACQUISITION_FIELDS},
                                   feature_fingerprint=getattr(featurizer, "fingerprint", ""),
                                   groups=[images[j].case_id for j in keep])
    except Exception as exc:  # noqa: BLE001 - InputFormatError: too few labels; reported, not fatal
        info["error"] = str(exc)
        return None, info
    info["heads"] = {f: {k: h.figures[k] for k in ("val_n", "val_acc", "val_majority", "val_gain_ci",
                                                    "beats_majority", "n_per_class")}
                     for f, h in heads.heads.items()}
    return heads, info
