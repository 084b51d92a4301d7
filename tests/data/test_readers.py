"""Dataset readers on small files in the real formats, bad-row policies, the torch Dataset, and the real data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kgclip.data.dataset import ImageTextDataset, collate_image_text
from kgclip.data.iu_xray import read_iu_xray
from kgclip.data.manifest import ManifestItem, read_manifest, write_manifest
from kgclip.data.medpix import medpix_pairs, read_medpix
from kgclip.data.vqa_rad import image_key, read_vqa_rad
from kgclip.errors import ImageReadError, InputFormatError
from kgclip.imaging.transforms import ImageTransform, TransformConfig


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (40, 50)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size, dtype=np.uint8)).save(path)


def _medpix(root: Path) -> Path:
    cases = [
        {"U_id": "MPX1", "TAC": ["MPX1_synpic1"], "MRI": ["MPX1_synpic2"],
         "Case": {"Title": "Effusion", "History": "Cough.", "Exam": "N/A", "Findings": "Right  pleural\neffusion.",
                  "Differential Diagnosis": "Empyema", "Case Diagnosis": "Pleural effusion", "Diagnosis By": "N/A"},
         "Topic": {"Title": "Pleural effusion", "Disease Discussion": "Fluid.", "ACR Code": "6.8",
                   "Category": "Fluid"}},
        {"U_id": "MPX2", "TAC": [], "MRI": ["MPX2_synpic3"],
         "Case": {"Title": "Glioma", "Findings": "Enhancing mass."}, "Topic": {"Title": "Glioma"}},
    ]
    descriptions = [
        {"Type": "CT", "U_id": "MPX1", "image": "MPX1_synpic1", "Location": "Chest, Pulmonary",
         "Location Category": "Thorax",
         "Description": {"Caption": "Axial CT: effusion.", "Modality": "CT - noncontrast", "Plane": "Axial"}},
        {"Type": "MR", "U_id": "MPX1", "image": "MPX1_synpic2", "Location": "Chest, Pulmonary",
         "Location Category": "Thorax", "Description": {"Caption": "", "Modality": "MR - T2 weighted",
                                                        "Plane": "Coronal"}},
        {"Type": "MR", "U_id": "MPX2", "image": "MPX2_synpic3", "Location": "Brain and Neuro",
         "Location Category": "Head", "Description": {"Caption": "Mass.", "Modality": "MR - FLAIR",
                                                      "Plane": "Axial"}},
    ]
    root.mkdir(parents=True)
    (root / "cases.json").write_text(json.dumps(cases))
    (root / "descriptions.json").write_text(json.dumps(descriptions))
    (root / "splits.json").write_text(json.dumps({"train": ["MPX1"], "dev": ["MPX2"]}))
    for i, name in enumerate(("MPX1_synpic1", "MPX1_synpic2", "MPX2_synpic3")):
        _jpeg(root / "images" / f"{name}.jpg", i)
    return root


def test_medpix_reader(tmp_path: Path) -> None:
    root = _medpix(tmp_path / "mp")
    mp = read_medpix(root)
    assert len(mp) == 3 and set(mp.cases) == {"MPX1", "MPX2"}
    first = mp.images[0]
    assert (first.image_id, first.case_id, first.modality, first.plane, first.split) == (
        "MPX1_synpic1", "MPX1", "CT", "Axial", "train")
    assert first.location_category == "Thorax" and first.synpic_id == "synpic1" and first.image_path.is_file()
    case = mp.cases["MPX1"]
    assert case.findings == "Right pleural effusion." and case.exam == "" and case.diagnosis == "Pleural effusion"
    assert case.image_ids == ("MPX1_synpic1", "MPX1_synpic2") and case.acr_code == "6.8"
    dev = read_medpix(root, split="dev")
    assert [i.image_id for i in dev] == ["MPX2_synpic3"] and set(dev.cases) == {"MPX2"}
    assert [t for _, t in medpix_pairs(mp)] == ["Axial CT: effusion.", "Mass."]  # empty caption dropped
    assert medpix_pairs(mp, "findings")[1][1] == "Right pleural effusion."
    with pytest.raises(ValueError, match="train"):
        read_medpix(root, split="test")


def test_medpix_missing_image_policy(tmp_path: Path) -> None:
    root = _medpix(tmp_path / "mp")
    (root / "images" / "MPX2_synpic3.jpg").unlink()
    with pytest.raises(InputFormatError, match=r"descriptions.json:3: image file .* is missing"):
        read_medpix(root)
    with pytest.warns(UserWarning, match="skipped"):
        assert len(read_medpix(root, on_error="warn")) == 2
    assert len(read_medpix(root, on_error="skip")) == 2
    with pytest.raises(FileNotFoundError, match="MedPix"):
        read_medpix(tmp_path / "nowhere")


def _vqa(root: Path, rows: list[dict]) -> Path:
    root.mkdir(parents=True)
    (root / "VQA_RAD_Dataset_Public.json").write_text(json.dumps(rows))
    for row in rows:
        if "image_name" in row:
            _jpeg(root / "images" / row["image_name"], 0)
    return root


def _vqa_row(qid: int, phrase: str, answer: object, atype: str, image: str = "synpic1.jpg") -> dict:
    return {"qid": str(qid), "phrase_type": phrase, "image_name": image, "image_organ": "CHEST",
            "question": "Is there an effusion? ", "answer": answer, "answer_type": atype, "question_type": "PRES",
            "qid_linked_id": f"link{qid}"}


def test_vqa_rad_reader(tmp_path: Path) -> None:
    rows = [_vqa_row(1, "freeform", "Yes", "CLOSED"), _vqa_row(2, "para", 3, "OPEN"),
            _vqa_row(3, "test_freeform", " no ", "CLOSED "), _vqa_row(4, "test_para", "Left lung", "OPEN",
                                                                         "synpic2.jpg")]
    root = _vqa(tmp_path / "vqa", rows)
    items = read_vqa_rad(root)
    assert [i.split for i in items] == ["train", "train", "test", "test"]
    assert items[1].answer == "3" and items[2].answer == "no" and items[2].answer_type == "CLOSED"
    assert items[0].question == "Is there an effusion?" and items[0].is_closed and items[0].organ == "CHEST"
    assert [i.qid for i in read_vqa_rad(root / "VQA_RAD_Dataset_Public.json", split="test")] == ["3", "4"]
    with pytest.raises(ValueError, match="train"):
        read_vqa_rad(root, split="dev")
    # The one image-key rule (features, answerer memory, workspace case ids) and the paraphrase group.
    assert items[0].image_key == image_key("images/synpic1.jpg") == "synpic1" and items[3].image_key == "synpic2"
    assert items[0].linked_id == "link1"


def test_vqa_rad_train_split_reads_no_test_image(tmp_path: Path) -> None:
    rows = [_vqa_row(1, "freeform", "Yes", "CLOSED"), _vqa_row(2, "test_freeform", "No", "CLOSED", "gone.jpg")]
    root = _vqa(tmp_path / "vqa", rows)
    (root / "images" / "gone.jpg").unlink()
    assert [i.qid for i in read_vqa_rad(root, split="train")] == ["1"]
    with pytest.raises(InputFormatError, match="gone.jpg"):
        read_vqa_rad(root, split="test")
    with pytest.raises(InputFormatError, match="no VQA-RAD JSON"):
        read_vqa_rad(root / "images")


def test_vqa_rad_bad_rows(tmp_path: Path) -> None:
    rows = [_vqa_row(1, "freeform", "Yes", "CLOSED"), _vqa_row(2, "mystery", "Yes", "CLOSED"),
            {"qid": "3", "question": "no answer"}]
    root = _vqa(tmp_path / "vqa", rows[:2])
    (root / "VQA_RAD_Dataset_Public.json").write_text(json.dumps(rows))
    with pytest.raises(InputFormatError, match=r"VQA_RAD_Dataset_Public.json:2: unknown phrase_type 'mystery'"):
        read_vqa_rad(root)
    assert [i.qid for i in read_vqa_rad(root, on_error="skip")] == ["1"]
    (root / "VQA_RAD_Dataset_Public.json").write_text("[{")
    with pytest.raises(InputFormatError, match=":1:"):
        read_vqa_rad(root)


def test_iu_xray_reader(tmp_path: Path) -> None:
    root = tmp_path / "iu"
    root.mkdir()
    with open(root / "indiana_reports.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        writer.writerow(["1", "normal", "normal", "Xray Chest PA and Lateral", "TB test", "None.",
                         "No effusion.", "Normal chest."])
        writer.writerow(["2", "Cardiomegaly/borderline;Opacity/lung", "Cardiomegaly;Opacity", "Chest", "", "", "",
                         "Borderline cardiomegaly."])
    (root / "indiana_projections.csv").write_text("uid,filename,projection\n1,1_a.png,Frontal\n1,1_b.png,Lateral\n")
    reports = read_iu_xray(root)
    assert [r.uid for r in reports] == ["1", "2"]
    assert reports[0].is_normal and reports[0].projections == (("1_a.png", "Frontal"), ("1_b.png", "Lateral"))
    assert reports[1].mesh == ("Cardiomegaly/borderline", "Opacity/lung") and reports[1].findings == ""
    assert reports[0].text == "No effusion. Normal chest."
    assert [r.uid for r in read_iu_xray(root, require_findings=True)] == ["1"]


def test_manifest_csv_jsonl_and_policies(tmp_path: Path) -> None:
    _jpeg(tmp_path / "scans" / "a.jpg", 1)
    _jpeg(tmp_path / "scans" / "b.jpg", 2)
    (tmp_path / "m.csv").write_text(
        "image,text,modality\nscans/a.jpg,Right effusion.,CR\nscans/missing.jpg,Nothing.,CR\nscans/b.jpg,,CT\n")
    with pytest.raises(InputFormatError, match=r"m.csv:3: image .*missing.jpg not found"):
        read_manifest(tmp_path / "m.csv")
    items = read_manifest(tmp_path / "m.csv", on_error="skip")
    assert len(items) == 1 and items[0].metadata == {"modality": "CR"} and items[0].image_path.is_absolute()
    write_manifest(tmp_path / "out" / "m.jsonl", items + [(tmp_path / "scans" / "b.jpg", "Normal.")])
    back = read_manifest(tmp_path / "out" / "m.jsonl")
    assert [(i.image_path.name, i.text) for i in back] == [("a.jpg", "Right effusion."), ("b.jpg", "Normal.")]
    (tmp_path / "bad.jsonl").write_text('{"image": "scans/a.jpg", "text": "x"}\n{oops\n')
    with pytest.raises(InputFormatError, match="bad.jsonl:2: invalid JSON"):
        read_manifest(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="needs 'image'"):
        (tmp_path / "cols.csv").write_text("path,caption\n")
        read_manifest(tmp_path / "cols.csv")
    assert read_manifest(tmp_path / "cols.csv", image_column="path", text_column="caption") == []


def test_image_text_dataset_and_collate(tmp_path: Path) -> None:
    _jpeg(tmp_path / "a.jpg", 1, (60, 90))
    _jpeg(tmp_path / "b.jpg", 2, (30, 20))
    items = [ManifestItem(tmp_path / "a.jpg", "first"), (tmp_path / "b.jpg", "second")]
    ds = ImageTextDataset(items, ImageTransform(TransformConfig(size=32)))
    first = ds[0]
    assert first["pixels"].shape == (3, 32, 32) and first["text"] == "first" and first["index"] == 0
    assert torch.equal(ds[0]["pixels"], first["pixels"])  # cached, deterministic eval transform
    assert ds._cache[0].dtype == torch.uint8 and ds._cache[0].shape[0] == 1  # grey stored once
    batch = collate_image_text([ds[1], ds[0]])
    assert batch["pixels"].shape == (2, 3, 32, 32) and batch["text"] == ["second", "first"]
    assert batch["index"].tolist() == [1, 0]
    train = ImageTextDataset(items, ImageTransform(TransformConfig(size=32), train=True,
                                                   generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(train[0]["pixels"], train[0]["pixels"])
    (tmp_path / "c.jpg").write_text("not an image")
    broken = ImageTextDataset([(tmp_path / "c.jpg", "x")])
    with pytest.raises(ImageReadError, match="item 0"):
        broken.preload(show_progress=False)
    with pytest.raises(IndexError):
        ds[5]


# ------------------------------------------------------------------------------------------- real data


@pytest.mark.data
def test_real_medpix(shared_data: Path) -> None:
    mp = read_medpix(shared_data / "medpix-2.0")
    assert len(mp) == 1850 and len(mp.cases) == 602
    assert {i.modality for i in mp} == {"CT", "MR"}
    train, dev = read_medpix(shared_data / "medpix-2.0", split="train"), read_medpix(shared_data / "medpix-2.0",
                                                                                      split="dev")
    assert (len(train.cases), len(dev.cases)) == (535, 67) and len(train) + len(dev) == 1850
    assert not set(train.cases) & set(dev.cases)
    cats = {i.location_category for i in mp}
    assert cats == {"Head", "Spine and Muscles", "Thorax", "Abdomen", "Reproductive and Urinary System"}
    assert sum(i.plane == "Axial" for i in mp) == 1262
    assert sum(bool(c.findings) for c in mp.cases.values()) > 580


@pytest.mark.data
def test_real_vqa_rad(shared_data: Path) -> None:
    items = read_vqa_rad(shared_data / "vqa-rad")
    train = [i for i in items if i.split == "train"]
    test = [i for i in items if i.split == "test"]
    assert (len(train), len(test)) == (1797, 451)
    assert sum(i.is_closed for i in test) == 272 and sum(not i.is_closed for i in test) == 179
    assert {i.organ for i in items} == {"HEAD", "CHEST", "ABD"}
    assert len({i.image_name for i in items}) == 314  # 315 files, one unreferenced


@pytest.mark.data
def test_real_iu_xray(shared_data: Path) -> None:
    reports = read_iu_xray(shared_data / "iu-xray")
    assert len(reports) == 3851 and reports[0].uid == "1"
    assert sum(r.is_normal for r in reports) > 1000
    assert all(len(r.projections) >= 1 for r in reports[:50])
