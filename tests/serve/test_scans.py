"""Scans through the web app: upload (de-identified), ask, draft, export, accept, search; PHI never leaves."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.serve.conftest import chest_image

pydicom_data = pytest.importorskip("pydicom.data")


def _phi_values(path: str) -> list[str]:
    """Identifying values in a pydicom test file: what must never appear anywhere the server writes or sends."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keys = ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "AccessionNumber",
            "ReferringPhysicianName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyID",
            "OperatorsName")
    values = [str(ds.get(k, "")) for k in keys]
    return [v for v in values if len(v) >= 4]


def test_upload_ask_draft_export_accept_search(client, workspace: Path) -> None:  # noqa: ANN001
    up = client.post("/api/upload", files={"file": ("scan.jpg", chest_image(workspace).read_bytes(), "image/jpeg")})
    assert up.status_code == 200, up.text
    upload = up.json()["upload"]
    png = client.get(f"/api/upload/{upload}/image.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")

    answer = client.post("/api/ask", json={"upload": upload, "question": "Is there a pleural effusion?"}).json()
    assert answer["text"] and 0.0 <= answer["confidence"] <= 1.0 and answer["similar_cases"]
    assert all(c["case_id"] for c in answer["similar_cases"])
    assert client.post("/api/ask", json={"upload": upload, "question": "  "}).status_code == 400
    assert client.post("/api/ask", json={"upload": upload, "question": "x" * 5000}).status_code == 400

    assert "CHEST" in client.get("/api/workspace").json()["body_parts"]
    draft = client.post("/api/draft", json={"upload": upload, "region": "chest"}).json()
    sentences = draft["findings"] + draft["impression"]
    assert sentences and all(s["case_id"] for s in sentences), draft
    assert all(c.startswith("report-") for s in draft["findings"] for c in s["cases"])  # drafted from findings only
    cited = sentences[0]["case_id"]
    assert client.get(f"/api/case/{cited}").json()["case_id"] == cited
    assert client.get(f"/api/case/{cited}/image.png").content.startswith(b"\x89PNG")

    edited = [{"text": "Edited by the radiologist: lungs clear.", "case_id": cited}] + draft["findings"][1:]
    body = {"findings": edited, "impression": draft["impression"]}
    text = client.post("/api/export", json={"format": "text", **body}).text
    assert "Edited by the radiologist" in text and f"[{cited}]" in text
    fhir = client.post("/api/export", json={"format": "fhir", **body}).json()
    assert fhir["resourceType"] == "DiagnosticReport"
    assert f"{cited}" in json.dumps(fhir)
    forged = client.post("/api/export", json={"format": "text", "findings": [{"text": "x", "case_id": "nope"}]})
    assert forged.status_code == 400 and "unknown case" in forged.json()["error"]

    accepted = client.post("/api/accept", json={"upload": upload, "author": "dr ann", "region": "chest", **body})
    assert accepted.status_code == 200, accepted.text
    case_id = accepted.json()["case_id"]
    hits = client.post("/api/search", json={"text": "Edited by the radiologist: lungs clear.", "k": 3}).json()["hits"]
    assert case_id in [h["case_id"] for h in hits]
    assert client.get(f"/api/case/{case_id}/image.png").status_code == 200


def test_phi_never_reaches_responses_storage_or_logs(client, workspace: Path, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    seen: list[bytes] = []
    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = pydicom_data.get_testdata_file(name)
        markers = _phi_values(path)
        assert markers, name
        up = client.post("/api/upload", files={"file": ("Doe^John.dcm", Path(path).read_bytes(), "application/dicom")})
        assert up.status_code == 200, up.text
        upload = up.json()["upload"]
        seen += [up.content, client.get("/").content, client.get(f"/api/upload/{upload}/image.png").content]
        seen.append(client.post("/api/ask", json={"upload": upload, "question": "What modality is this?"}).content)
        draft = client.post("/api/draft", json={"upload": upload})
        seen.append(draft.content)
        body = {"findings": draft.json()["findings"][:1] or [{"text": "No acute findings.", "case_id": ""}]}
        seen.append(client.post("/api/accept", json={"upload": upload, "author": "dr ann", **body}).content)
        stored = [p.read_bytes() for p in workspace.rglob("*") if p.is_file()]
        logs = caplog.text.encode()
        for marker in markers + ["Doe^John"]:
            needle = marker.encode()
            assert not any(needle in blob for blob in seen), (name, marker)
            assert not any(needle in blob for blob in stored), (name, marker, "stored")
            assert needle not in logs, (name, marker, "log")
