"""Tiny engine workspaces and DICOM files for tests: a real :class:`~kgclip.engine.Engine` build (hashing text
encoder, :func:`kgclip.testing.tiny_graph`, a few synthetic images) and DICOMs that carry patient-identity markers,
so de-identification can be checked by searching every stored byte for them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_tiny_workspace", "write_phi_dicom", "PHI_MARKERS", "add_cases_when_ready"]

# Values written into the identifying attributes of write_phi_dicom; none may appear in a workspace.
PHI_MARKERS = {"PatientName": "Phimarker^Jane", "PatientID": "PHI-ID-93417", "PatientBirthDate": "19450317",
               "InstitutionName": "PHI Marker General Hospital", "AccessionNumber": "PHIACC88421",
               "ReferringPhysicianName": "Phidoctor^Bob", "StudyInstanceUID": "1.2.826.0.1.3680043.99.424242.1",
               "SeriesInstanceUID": "1.2.826.0.1.3680043.99.424242.2",
               "SOPInstanceUID": "1.2.826.0.1.3680043.99.424242.3", "StudyDate": "20240229",
               "OtherPatientIDs": "PHI-OTHER-5521", "PatientAddress": "12 Phimarker Lane"}


def build_tiny_workspace(directory: str | Path, *, n_images: int = 6) -> Any:
    """A real workspace in ``directory / "ws"`` built from a synthetic VQA-RAD folder; returns the Engine."""
    from kgclip.engine import Engine, EngineConfig
    from kgclip.testing import tiny_graph
    from kgclip.testing.synthetic import make_vqa_folder

    root = Path(directory)
    data = make_vqa_folder(root / "data", n_images=n_images)
    return Engine.build(EngineConfig(text_encoder="hashing-64"), root / "ws", vqa_rad=data, graph=tiny_graph(),
                        show_progress=False)


def write_phi_dicom(path: str | Path, *, seed: int = 0, burned_in: str | None = None, size: int = 48) -> Path:
    """A CT-like DICOM whose identifying attributes hold :data:`PHI_MARKERS`; ``seed`` varies the pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = (1000 + 800 * np.sin(yy / (3.0 + seed)) + rng.normal(0, 20, (size, size))).clip(0, 4095)
    ds = Dataset()
    for keyword, value in PHI_MARKERS.items():
        setattr(ds, keyword, value)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def add_cases_when_ready(workspace: str, rows: list[dict[str, Any]], ready: str, others: list[str]) -> int:
    """Load ``workspace``, signal ``ready`` (a file), wait for the ``others`` to exist, then add ``rows``.

    A process target for concurrency tests: every writer has loaded the workspace before any adds, so their
    ``add_cases`` calls overlap.
    """
    from kgclip.engine import Engine

    engine = Engine.load(workspace)
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not all(Path(o).exists() for o in others) and time.monotonic() < deadline:
        time.sleep(0.02)
    return engine.add_cases(rows)
