"""The shipped CC0 VQA-RAD sample: complete, readable, small, and reproducible from the full dataset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kgclip.data.demo import build_vqa_rad_sample, demo_data_dir, demo_vqa_rad_dir
from kgclip.data.vqa_rad import VQA_RAD_JSON, read_vqa_rad
from kgclip.imaging.io import read_image


def test_shipped_sample_is_complete_and_small() -> None:
    root = demo_vqa_rad_dir()
    items = read_vqa_rad(root)  # raises if an image is missing
    assert len(items) == 329 and len({i.image_name for i in items}) == 39
    assert Counter(i.split for i in items) == {"train": 297, "test": 32}
    test_images = {i.image_name for i in items if i.split == "test"}
    assert Counter(i.organ for i in items if i.image_name in test_images and i.split == "test").keys() == {
        "HEAD", "CHEST", "ABD"}
    assert {i.answer_type for i in items if i.split == "test"} == {"CLOSED", "OPEN"}
    files = sorted((root / "images").iterdir())
    assert len(files) == 39 and sum(f.stat().st_size for f in files) < 4 * 2**20
    assert {f.name for f in files} == {i.image_name for i in items}
    assert "CC0" in (root / "README.md").read_text()
    assert (demo_data_dir() / "README.md").is_file()
    image = read_image(files[0])
    assert image.pixels.ndim in (2, 3) and min(image.height, image.width) >= 256


@pytest.mark.data
def test_sample_rebuilds_identically_and_excludes_medpix(shared_data: Path, tmp_path: Path) -> None:
    medpix_ids = {p.stem.split("_", 1)[1] + ".jpg" for p in (shared_data / "medpix-2.0" / "images").glob("*.jpg")}
    counts = build_vqa_rad_sample(shared_data / "vqa-rad", tmp_path / "sample", exclude=medpix_ids)
    assert counts["images"] == 39 and counts["rows"] == 329
    shipped = json.loads((demo_vqa_rad_dir() / VQA_RAD_JSON).read_text())
    assert json.loads((tmp_path / "sample" / VQA_RAD_JSON).read_text()) == shipped
    assert not {row["image_name"] for row in shipped} & medpix_ids
    originals = {row["qid"]: row for row in json.loads((shared_data / "vqa-rad" / VQA_RAD_JSON).read_text())}
    assert all(originals[row["qid"]] == row for row in shipped)  # rows unmodified
    for row in shipped[:5]:
        name = row["image_name"]
        assert (demo_vqa_rad_dir() / "images" / name).read_bytes() == (
            shared_data / "vqa-rad" / "images" / name).read_bytes()


def test_demo_metadata_is_derived_from_training_questions_never_test_ones() -> None:
    import numpy as np

    from kgclip.data.demo import derive_image_metadata, fill_by_neighbours, read_demo_metadata

    rows = [
        {"image_name": "a.jpg", "image_organ": "CHEST", "phrase_type": "freeform", "question": "What modality is used?",
         "answer": "PA Xray"},
        {"image_name": "b.jpg", "image_organ": "HEAD", "phrase_type": "para", "question": "Is this an MRI?",
         "answer": "yes"},
        {"image_name": "c.jpg", "image_organ": "HEAD", "phrase_type": "freeform",
         "question": "What MRI sequence is shown?", "answer": "T2 weighted"},
        {"image_name": "d.jpg", "image_organ": "ABD", "phrase_type": "test_freeform",
         "question": "What modality is used?", "answer": "CT"},  # a test answer never leaks
        {"image_name": "e.jpg", "image_organ": "HEAD ", "phrase_type": "freeform", "question": "Is this a CT?",
         "answer": "no"},
    ]
    meta = derive_image_metadata(rows)
    assert meta["a.jpg"] == {"modality": "XR", "region": "CHEST"}
    assert meta["b.jpg"]["modality"] == meta["c.jpg"]["modality"] == "MR"
    assert meta["d.jpg"] == {"modality": "", "region": "ABD"}
    assert meta["e.jpg"] == {"modality": "", "region": "HEAD"}
    vec = {n: np.array(v, dtype=np.float32) for n, v in
           {"b.jpg": [1, 0], "c.jpg": [0.9, 0.436], "e.jpg": [0.95, 0.31], "a.jpg": [0, 1], "d.jpg": [0, 1]}.items()}
    filled = fill_by_neighbours(meta, vec, k=2)
    assert filled["e.jpg"]["modality"] == "MR" and filled["e.jpg"]["modality_source"] == "neighbours"
    assert filled["b.jpg"]["modality_source"] == "questions"
    shipped = read_demo_metadata()
    items = read_vqa_rad(demo_vqa_rad_dir())
    assert set(shipped) == {i.image_name for i in items}
    assert all(m["region"] in ("HEAD", "CHEST", "ABD") and m["modality"] for m in shipped.values())
