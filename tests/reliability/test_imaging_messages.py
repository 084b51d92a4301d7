"""Imaging errors say what is actually wrong: no plugin advice when the plugins are installed or no codec is
involved, no "truncated" for a file without pixel data, no stray ``<bytes>:``; header values are escaped in HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.errors import ImageReadError
from kgclip.imaging.io import read_image
from tests.reliability.test_imaging_limits import write_dicom


def test_undecodable_jpeg2000_with_decoders_installed(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, JPEGBaseline8Bit

    for syntax in (JPEG2000, JPEGBaseline8Bit):
        if not get_decoder(syntax).is_available:
            pytest.skip(f"no {syntax.name} decoder installed")
        path = write_dicom(tmp_path / "j.dcm", 32, 32, ExplicitVRLittleEndian, BitsStored=8, HighBit=7,
                           BitsAllocated=8)
        import pydicom

        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64 if syntax == JPEG2000 else
                                    b"\xff\xd8\xff\xe0" + b"\x13" * 64])
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        message = str(info.value)
        assert "installed decoders" in message and "pip install" not in message, message


def test_short_native_pixel_data_is_truncation_not_a_plugin_problem(tmp_path: Path) -> None:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    path = write_dicom(tmp_path / "short.dcm", 64, 64, ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:100]  # far shorter than Rows x Columns x 2 bytes
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="truncated: its pixel data is shorter") as info:
        read_image(path)
    assert "kgclip[dicom]" not in str(info.value) and "pip install" not in str(info.value)


def test_bad_value_representation_in_header(tmp_path: Path) -> None:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    path = write_dicom(tmp_path / "badvr.dcm", 8, 8, ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    del ds.Rows
    ds.add_new(0x00280010, "LO", "eight")  # Rows written as text
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="Rows") as info:
        read_image(path)
    assert "kgclip[dicom]" not in str(info.value)


def test_no_pixel_data_is_not_called_truncated(tmp_path: Path) -> None:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    path = write_dicom(tmp_path / "nopix.dcm", 8, 8, ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ImageReadError, match="no pixel data") as info:
        read_image(path)
    assert "truncated" not in str(info.value)


@pytest.mark.parametrize("data", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b""])
def test_bytes_errors_have_no_stray_placeholder(data: bytes) -> None:
    with pytest.raises(ImageReadError) as info:
        read_image(data)
    assert "<bytes>" not in str(info.value)


def test_repr_html_escapes_header_values(tmp_path: Path) -> None:
    from pydicom.uid import ExplicitVRLittleEndian

    path = write_dicom(tmp_path / "xss.dcm", 8, 8, ExplicitVRLittleEndian,
                       BodyPartExamined="<script>alert(1)</script>", Modality="CT<img src=x onerror=alert(2)>")
    html = read_image(path)._repr_html_()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
