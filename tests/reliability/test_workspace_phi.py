"""Images stored in a workspace carry no patient identity: de-identified, content-addressed copies, burned-in
annotation refused unless overridden, UID pseudonyms salted per workspace."""

from __future__ import annotations

import re

import pytest

from kgclip.engine import Engine
from kgclip.engine.images import SALT_FILE, read_uid_salt
from kgclip.errors import ImageReadError
from kgclip.imaging.dicom import pseudonymise_uid
from kgclip.testing.workspaces import PHI_MARKERS, build_tiny_workspace, write_phi_dicom


@pytest.fixture()
def ws(tmp_path):
    engine = build_tiny_workspace(tmp_path, n_images=4)
    return engine, tmp_path, tmp_path / "ws"


def _stored_bytes(path):
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_no_phi_marker_in_any_stored_file(ws):
    engine, tmp, path = ws
    dcm = write_phi_dicom(tmp / "in" / "Phimarker_Jane.dcm")
    engine.add_cases([{"case_id": "phi-1", "image": str(dcm), "text": "Small left pleural effusion.",
                       "modality": "CT", "body_part": "CHEST"}])
    markers = [v.encode() for v in PHI_MARKERS.values()] + [b"Phimarker_Jane"]
    found = [(p.name, m) for p, data in _stored_bytes(path).items() for m in markers if m in data]
    assert found == []
    stored = path / Engine.load(path).cases[-1].image
    assert stored.suffix == ".dcm" and re.fullmatch(r"[0-9a-f]{32}", stored.stem)
    import pydicom

    ds = pydicom.dcmread(stored)
    assert ds.PatientIdentityRemoved == "YES" and ds.Modality == "CT" and "PatientName" not in ds
    salt = read_uid_salt(path)
    assert ds.StudyInstanceUID == pseudonymise_uid(PHI_MARKERS["StudyInstanceUID"], salt)
    assert ds.StudyInstanceUID != pseudonymise_uid(PHI_MARKERS["StudyInstanceUID"])  # salted


def test_same_file_name_in_two_folders_gives_two_images(ws):
    engine, tmp, path = ws
    a = write_phi_dicom(tmp / "a" / "image.dcm", seed=1)
    b = write_phi_dicom(tmp / "b" / "image.dcm", seed=2)
    engine.add_cases([{"case_id": "a", "image": str(a), "text": "Pneumothorax."},
                      {"case_id": "b", "image": str(b), "text": "Cardiomegaly."}])
    by_id = {c.case_id: c.image for c in Engine.load(path).cases}
    assert by_id["a"] != by_id["b"] and (path / by_id["a"]).is_file() and (path / by_id["b"]).is_file()
    hits = Engine.load(path).search(image=a, k=1)
    assert hits[0].case_id == "a" and hits[0].score > 0.9999
    engine.add_cases([{"case_id": "a-again", "image": str(a), "text": "Same image."}])
    assert {c.case_id: c.image for c in Engine.load(path).cases}["a-again"] == by_id["a"]  # stored once


def test_phi_burned_in_annotation_is_refused_unless_overridden(ws):
    engine, tmp, path = ws
    dcm = write_phi_dicom(tmp / "burned.dcm", burned_in="YES")
    before = (path / "cases.json").read_bytes()
    with pytest.raises(ImageReadError, match="BurnedInAnnotation=YES.*allow_burned_in"):
        engine.add_cases([{"case_id": "burned", "image": str(dcm), "text": "x"}])
    assert (path / "cases.json").read_bytes() == before
    assert engine.add_cases([{"case_id": "burned", "image": str(dcm), "text": "x"}], allow_burned_in=True) == 1
    assert engine.add_cases([{"case_id": "clean", "image": str(write_phi_dicom(tmp / "no.dcm", burned_in="NO")),
                              "text": "y"}]) == 1


def test_phi_each_workspace_has_its_own_random_salt_kept_across_rebuilds(ws, tmp_path_factory):
    engine, tmp, path = ws
    salt = read_uid_salt(path)
    assert salt and re.fullmatch(r"[0-9a-f]{32}", salt) and (path / SALT_FILE).is_file()
    other = build_tiny_workspace(tmp_path_factory.mktemp("other"), n_images=4)
    assert read_uid_salt(other.directory) != salt
    Engine.refresh(path, show_progress=False)
    assert read_uid_salt(path) == salt


def test_phi_png_and_jpeg_copies_keep_the_descriptor_and_drop_metadata(ws):
    from PIL import Image, PngImagePlugin

    engine, tmp, path = ws
    src = Image.open(tmp / "data" / "images" / "synth000.png").convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", PHI_MARKERS["PatientName"])
    src.save(tmp / "tagged.png", pnginfo=info)
    src.save(tmp / "tagged.jpg", quality=95, comment=PHI_MARKERS["PatientID"].encode())
    engine.add_cases([{"case_id": "png", "image": str(tmp / "tagged.png"), "text": "x"},
                      {"case_id": "jpg", "image": str(tmp / "tagged.jpg"), "text": "y"}])
    for case_id, source in (("png", "tagged.png"), ("jpg", "tagged.jpg")):
        stored = path / {c.case_id: c.image for c in engine.cases}[case_id]
        data = stored.read_bytes()
        assert stored.suffix == ".png" and PHI_MARKERS["PatientName"].encode() not in data
        assert PHI_MARKERS["PatientID"].encode() not in data
        v_src, v_stored = engine.featurizer.embed([tmp / source, stored])
        assert float(v_src @ v_stored) > 0.99999
