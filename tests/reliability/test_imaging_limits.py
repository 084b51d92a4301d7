"""Imaging size limits hold before any decompression: deflated DICOM bombs and huge PNG headers are refused with a
KgclipError and bounded memory, never a raw Pillow/zlib traceback."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from kgclip.errors import ImageReadError, KgclipError
from kgclip.imaging.io import read_image


def write_dicom(path: Path, rows: int, cols: int, syntax: str, **fields: object) -> Path:
    """A small CT image written by pydicom (uint16, 12 bits stored) in ``syntax``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = "CT", rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = (np.arange(rows * cols, dtype=np.uint16) % 4096).tobytes()
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_deflated_dicom_reads_like_pydicom(tmp_path: Path) -> None:
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    path = write_dicom(tmp_path / "small.dcm", 64, 48, DeflatedExplicitVRLittleEndian)
    image = read_image(path)
    expected = pydicom.dcmread(path).pixel_array.astype(np.float32)
    assert np.allclose(image.pixels * expected.max(), expected, atol=1e-2)
    assert image.meta["transfer_syntax"] == "Deflated Explicit VR Little Endian"
    assert read_image(path.read_bytes()).pixels.shape == (64, 48)


def test_deflated_bomb_refused_before_inflating(tmp_path: Path) -> None:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    path = write_dicom(tmp_path / "bomb.dcm", 4096, 4096, DeflatedExplicitVRLittleEndian)  # 32 MB inflated
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match="refused before inflating"):
            read_image(path, max_pixels=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16_000_000  # the header (at most 4 MB inflated), never the 32 MB of pixels


def test_deflated_stream_longer_than_declared_is_refused(tmp_path: Path) -> None:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    path = write_dicom(tmp_path / "liar.dcm", 16, 16, DeflatedExplicitVRLittleEndian)
    data = path.read_bytes()
    from kgclip.imaging.dicom import _meta_transfer_syntax

    start = _meta_transfer_syntax(data)[1]
    inflated = zlib.decompress(data[start:], -zlib.MAX_WBITS) + b"\x00" * 8_000_000  # trailing junk: 8 MB
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path.write_bytes(data[:start] + packer.compress(inflated) + packer.flush())
    with pytest.raises(ImageReadError, match="inflates beyond"):
        read_image(path)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [30000, 12000])
def test_huge_png_refused_without_a_pillow_traceback(tmp_path: Path, side: int) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(side, side))
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageReadError, match="refused before decoding") as info:
            read_image(source)
        assert isinstance(info.value, KgclipError)
        assert "<bytes>" not in str(info.value)


def test_tower_features_refuse_huge_png_and_write_nothing(tmp_path: Path) -> None:
    from kgclip.models.backbones import load_image_tower
    from kgclip.models.features import TowerFeatures

    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(30000, 30000))
    fx = TowerFeatures(load_image_tower("builtin-cnn", dim=8, image_size=32), cache_dir=tmp_path / "cache")
    with pytest.raises(ImageReadError, match="huge.png"):
        fx.encode([path])
    assert not (tmp_path / "cache").exists()
