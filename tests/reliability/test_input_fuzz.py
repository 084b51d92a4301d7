"""Property-based bad input for the readers outside the ontology layer: index input files (JSONL / CSV) and DICOM
headers built with pydicom. The only exceptions allowed out are ``KgclipError``s (a bounded, derandomized set of
examples, so the default run stays fast and repeatable)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kgclip.errors import KgclipError  # noqa: E402
from kgclip.imaging.io import read_image  # noqa: E402
from kgclip.index.io import read_items  # noqa: E402

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_FIELD = st.sampled_from(["id", "text", "modality", "", "TEXT", "id\x00", "é"])
_VALUE = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                   st.text(max_size=20), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _consume(path: Path) -> None:
    try:
        for _ in read_items(path):
            pass
    except KgclipError:
        pass


@FAST
@given(rows=st.lists(st.one_of(st.dictionaries(_FIELD, _VALUE, max_size=4), st.text(max_size=30),
                               st.binary(max_size=30)), max_size=6))
def test_jsonl_input_rows(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    import json

    path = tmp_path_factory.mktemp("jsonl") / "rows.jsonl"
    lines = []
    for row in rows:
        if isinstance(row, bytes):
            lines.append(row)
        elif isinstance(row, str):
            lines.append(row.encode("utf-8", "surrogatepass"))
        else:
            lines.append(json.dumps(row, default=str).encode())
    path.write_bytes(b"\n".join(lines))
    _consume(path)


@FAST
@given(body=st.text(alphabet=st.sampled_from(list('ab,"\n\r\x00;é 1')), max_size=80))
def test_csv_input_text(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_text("id,text,modality\n" + body, encoding="utf-8", errors="surrogatepass")
    _consume(path)


@FAST
@given(rows=st.integers(min_value=-5, max_value=70000), cols=st.integers(min_value=-5, max_value=70000),
       bits=st.sampled_from([1, 8, 12, 16, 32, 0, 7]), samples=st.sampled_from([1, 3, 4, 0]),
       photometric=st.sampled_from(["MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "BOGUS", ""]),
       data_len=st.integers(min_value=0, max_value=4096), frames=st.sampled_from([None, "1", "3", "0", "70000"]))
def test_dicom_headers(rows: int, cols: int, bits: int, samples: int, photometric: str, data_len: int,
                       frames: str | None) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName = "OT", "Fuzz^Case"
    ds.Rows, ds.Columns = max(rows, 0) % 65536, max(cols, 0) % 65536
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = max(bits - 1, 0)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = samples, photometric, 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(data_len)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    try:
        read_image(buf.getvalue(), max_pixels=4_000_000)
    except KgclipError:
        pass
