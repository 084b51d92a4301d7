"""read_image on real DICOMs (shared data + pydicom's own test files), PNG/JPEG, PHI removal and bad inputs."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from kgclip.errors import ConfigError, ImageReadError
from kgclip.imaging.dicom import SUPPORTED_PHOTOMETRIC, pseudonymise_uid
from kgclip.imaging.io import ImageData, read_image
from kgclip.imaging.window import WINDOW_PRESETS, apply_window

_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_file(name: str) -> Path:
    """A test file pydicom ships on disk (never get_testdata_file, which may try to download)."""
    path = _TEST_FILES / name
    if not path.is_file():
        pytest.skip(f"pydicom test file {name} not installed")
    return path


def dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# ------------------------------------------------------------------------------------- real shared DICOMs


@pytest.mark.data
def test_jpeg2000_monochrome1_chest_matches_pydicom(shared_data: Path) -> None:
    path = shared_data / "dicom" / "RG1_J2KI.dcm"
    image = read_image(path)
    assert image.pixels.shape == (1955, 1841) and image.pixels.dtype == np.float32
    meta = image.meta
    assert (meta["modality"], meta["body_part"], meta["view_position"]) == ("CR", "CHEST", "PA")
    assert meta["photometric"] == "MONOCHROME1" and meta["inverted"] is True
    assert meta["transfer_syntax"] == "JPEG 2000 Image Compression" and meta["bits_stored"] == 15
    assert meta["window"] == {"source": "window", "center": 15000.0, "width": 30000.0, "function": "LINEAR"}
    # Reference: pydicom's own decode + LUT functions, scaled to its output range, then MONOCHROME1 inverted.
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array
    assert raw.shape == (1955, 1841) and (int(raw.min()), int(raw.max())) == (803, 26512)
    ref = apply_voi_lut(apply_modality_lut(raw, ds), ds).astype(np.float64) / (2**15 - 1)
    np.testing.assert_allclose(image.pixels, 1.0 - ref, atol=2e-4)
    px = image.pixels
    assert 0.10 < px.min() < 0.13 and 0.96 < px.max() < 0.98 and abs(px.mean() - 0.754) < 0.01
    # MONOCHROME1: the air-filled lungs must be darker than the mediastinum / spine column between them.
    h, w = px.shape
    lungs = np.r_[px[h // 3:2 * h // 3, w // 5:w // 3].ravel(), px[h // 3:2 * h // 3, 2 * w // 3:4 * w // 5].ravel()]
    mediastinum = px[h // 3:2 * h // 3, 9 * w // 20:11 * w // 20]
    assert lungs.mean() + 0.1 < mediastinum.mean()


@pytest.mark.data
def test_uncompressed_8bit_chest_and_sample(shared_data: Path) -> None:
    image = read_image(shared_data / "dicom" / "nih_cxr14_no_finding.dcm")
    raw = pydicom.dcmread(shared_data / "dicom" / "nih_cxr14_no_finding.dcm").pixel_array
    assert image.pixels.shape == (1024, 1024) and image.meta["modality"] == "DX"
    assert image.meta["window"] == {"source": "minmax", "low": 0.0, "high": 252.0}  # no window in the file
    np.testing.assert_allclose(image.pixels, raw / 252.0, atol=1e-6)
    bits = read_image(shared_data / "dicom" / "nih_cxr14_no_finding.dcm", window="bits")
    np.testing.assert_allclose(bits.pixels, raw / 255.0, atol=1e-6)  # BitsStored = 8 range
    sample = read_image(shared_data / "dicom" / "sample.dcm")
    assert sample.pixels.shape == (512, 512) and 0.35 < sample.pixels.mean() < 0.37


@pytest.mark.data
def test_real_dicoms_carry_no_phi(shared_data: Path) -> None:
    for path in sorted((shared_data / "dicom").glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        meta_text = json.dumps(read_image(path).meta)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber",
                        "InstitutionName", "ReferringPhysicianName", "StudyInstanceUID", "SeriesInstanceUID",
                        "SOPInstanceUID", "StudyID"):
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 3:
                assert value not in meta_text, f"{path.name}: {keyword} leaked"


# -------------------------------------------------------------------------------- pydicom's test files


def test_ct_hounsfield_units_and_presets() -> None:
    path = pydicom_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    image = read_image(path)
    assert image.meta["modality_lut"] == {"slope": 1.0, "intercept": -1024.0, "units": "HU"}
    assert image.meta["plane"] == "axial" and image.meta["window"]["source"] == "minmax"
    np.testing.assert_allclose(image.pixels, (hu - hu.min()) / (hu.max() - hu.min()), atol=1e-6)
    lung = read_image(path, window="lung")
    np.testing.assert_allclose(lung.pixels, apply_window(hu, *WINDOW_PRESETS["lung"]), atol=1e-6)
    # Soft tissue (~40 HU) sits mid-grey in a mediastinal window: 50 +- 175 HU.
    soft = read_image(path, window=(50, 350)).pixels
    assert soft[(hu > 30) & (hu < 60)].mean() == pytest.approx(((hu[(hu > 30) & (hu < 60)] - 50 + 175) / 349).mean(),
                                                               abs=1e-3)
    with pytest.raises(ConfigError, match="lung"):
        read_image(path, window="lungs-please")


def test_mr_window_from_file_and_rle_matches_uncompressed() -> None:
    image = read_image(pydicom_file("MR_small.dcm"))
    raw = pydicom.dcmread(pydicom_file("MR_small.dcm")).pixel_array
    assert image.pixels.shape == (64, 64) and image.meta["window"]["center"] == 600.0
    expected = np.clip((raw - (600 - 0.5 - 799.5)) / 1599.0, 0, 1)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)
    rle = read_image(pydicom_file("MR_small_RLE.dcm"))
    np.testing.assert_array_equal(rle.pixels, image.pixels)


def test_monochrome1_is_inverted_after_windowing() -> None:
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    mono2 = read_image(dicom_bytes(ds)).pixels
    ds.PhotometricInterpretation = "MONOCHROME1"
    mono1 = read_image(dicom_bytes(ds))
    assert mono1.meta["inverted"] is True
    np.testing.assert_allclose(mono1.pixels, 1.0 - mono2, atol=1e-6)


def test_voi_lut_sequence_is_preferred() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]  # 4096 entries from stored value 0, 12-bit output
    item.add_new(0x00283006, "US", [min(4095, 2 * v) for v in range(4096)])  # LUTData; US, not the OW choice
    ds.VOILUTSequence = Sequence([item])
    image = read_image(dicom_bytes(ds))
    raw = ds.pixel_array.astype(np.float64)
    assert image.meta["window"]["source"] == "voi_lut"
    np.testing.assert_allclose(image.pixels, np.minimum(4095, 2 * raw) / 4095.0, atol=1e-6)


def test_enhanced_multiframe_functional_groups() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    reference = read_image(dicom_bytes(ds), window="lung")
    transform, orientation = Dataset(), Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = (
        ds.RescaleSlope, ds.RescaleIntercept, "HU")
    orientation.ImageOrientationPatient = ds.ImageOrientationPatient
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = 40, 400
    frame = Dataset()
    frame.FrameVOILUTSequence = Sequence([voi])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    for keyword in ("RescaleSlope", "RescaleIntercept", "ImageOrientationPatient"):
        delattr(ds, keyword)
    enhanced = read_image(dicom_bytes(ds), window="lung")
    np.testing.assert_allclose(enhanced.pixels, reference.pixels, atol=1e-6)  # HU restored from the groups
    assert enhanced.meta["modality_lut"]["units"] == "HU" and enhanced.meta["plane"] == "axial"
    auto = read_image(dicom_bytes(ds))
    assert auto.meta["window"] == {"source": "window", "center": 40.0, "width": 400.0, "function": "LINEAR"}


def test_multiframe_grey_and_single_frame() -> None:
    path = pydicom_file("rtdose.dcm")
    image = read_image(path)
    assert image.pixels.shape == (15, 10, 10) and image.n_frames == 15 and not image.is_color
    assert image.pixels.min() == 0.0 and image.pixels.max() == 1.0
    one = read_image(path, frame=3, window=image.meta["window"]["source"])
    assert one.pixels.shape == (10, 10)
    assert image.frame("middle").shape == (10, 10)
    with pytest.raises(ImageReadError, match="15 frame"):
        read_image(path, frame=15)
    # One frame of a compressed (JPEG baseline, YBR) 30-frame ultrasound equals that frame of the full decode.
    cine = pydicom_file("examples_ybr_color.dcm")
    fifth = read_image(cine, frame=5)
    assert fifth.pixels.shape == (240, 320, 3) and fifth.meta["frame"] == 5
    np.testing.assert_array_equal(fifth.pixels, read_image(cine).pixels[5])


def test_colour_rgb_ybr_and_palette() -> None:
    rgb = read_image(pydicom_file("SC_rgb_rle_2frame.dcm"))
    assert rgb.pixels.shape == (2, 100, 100, 3) and rgb.is_color and rgb.n_frames == 2
    # The pydicom SC_rgb images are horizontal bands: red, green, blue, black, white...
    assert rgb.pixels[0, 5, 50].tolist() == [1.0, 0.0, 0.0]
    ybr = read_image(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL, JPEG baseline
    assert ybr.meta["photometric"] == "YBR_FULL" and ybr.meta["converted_to"] == "RGB"
    assert ybr.pixels.shape == (100, 100, 3)
    assert np.abs(ybr.pixels - rgb.pixels[0]).mean() < 0.02  # lossy JPEG of the same picture
    ybr422 = read_image(pydicom_file("SC_ybr_full_422_uncompressed.dcm"))
    assert np.abs(ybr422.pixels - rgb.pixels[0]).mean() < 0.02
    palette = read_image(pydicom_file("examples_palette.dcm"))
    assert palette.pixels.shape == (350, 800, 3) and palette.meta["window"]["source"] == "palette"
    assert 0.0 <= palette.pixels.min() and palette.pixels.max() <= 1.0


def test_jpeg2000_nm_matches_pydicom() -> None:
    path = pydicom_file("JPEG2000.dcm")
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
    image = read_image(path)
    np.testing.assert_allclose(image.pixels, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)


def test_phi_removed_and_uids_pseudonymised() -> None:
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    phi = {"PatientName": "Doe^Jane", "PatientID": "MRN-0042-XYZ", "PatientBirthDate": "19580317",
           "PatientAddress": "12 Elm Street Springfield", "InstitutionName": "Springfield General",
           "ReferringPhysicianName": "House^Gregory", "AccessionNumber": "ACC778899", "StudyDate": "20240229",
           "StudyTime": "101112", "OperatorsName": "Smithers^W", "StudyDescription": "Jane chest followup"}
    for keyword, value in phi.items():
        setattr(ds, keyword, value)
    data = dicom_bytes(ds)
    meta = read_image(data).meta
    text = json.dumps(meta)
    for value in [*phi.values(), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]:
        assert value not in text
    assert meta["study_uid"] == pseudonymise_uid(str(ds.StudyInstanceUID))
    assert meta["study_uid"].startswith("2.25.") and len(meta["study_uid"]) <= 64
    assert read_image(data).meta["series_uid"] == meta["series_uid"]  # consistent across reads
    assert read_image(data, uid_salt="site-secret").meta["study_uid"] != meta["study_uid"]
    assert "Annex E" in meta["deidentification"]


# ------------------------------------------------------------------------------------------ PNG / JPEG


def test_png_16bit_kept_and_8bit_grey(tmp_path: Path) -> None:
    values = (np.arange(64 * 48, dtype=np.uint32).reshape(64, 48) * 21).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "x16.png")
    image = read_image(tmp_path / "x16.png")
    assert image.meta["source_format"] == "png" and image.meta["bits_stored"] == 16
    np.testing.assert_allclose(image.pixels, values / 65535.0, atol=1e-6)
    assert len(np.unique(image.pixels)) == 64 * 48  # no 8-bit quantisation
    grey = np.tile(np.arange(256, dtype=np.uint8), (20, 1))
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_image((tmp_path / "g.png").read_bytes()).pixels, grey / 255.0, atol=1e-7)


def test_jpeg_colour_and_file_object(tmp_path: Path) -> None:
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[:, :30, 0] = 255
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    with open(tmp_path / "c.jpg", "rb") as handle:
        image = read_image(handle)
    assert image.pixels.shape == (40, 60, 3) and image.is_color and image.meta["source_format"] == "jpeg"
    assert image.pixels[20, 5, 0] > 0.95 and image.pixels[20, 55, 0] < 0.05
    assert isinstance(image, ImageData) and "<img" in image._repr_html_()


def test_jpeg_max_side_decodes_at_reduced_scale(tmp_path: Path) -> None:
    big = np.zeros((1000, 1600), np.uint8)
    big[:, 800:] = 255
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    full = read_image(tmp_path / "big.jpg")
    small = read_image(tmp_path / "big.jpg", max_side=200)
    assert full.pixels.shape == (1000, 1600) and small.meta["original_size"] == [1000, 1600]
    assert 200 <= min(small.pixels.shape) < 1000 and small.pixels.shape[1] / small.pixels.shape[0] == 1.6
    assert small.pixels[:, :50].mean() < 0.02 and small.pixels[:, -50:].mean() > 0.98
    Image.fromarray(big).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_side=200).pixels.shape == (1000, 1600)  # a hint only for JPEG


@pytest.mark.data
def test_vqa_rad_and_medpix_jpegs(shared_data: Path) -> None:
    medpix = read_image(shared_data / "medpix-2.0" / "images" / "MPX1007_synpic46719.jpg")
    assert medpix.pixels.shape == (323, 270) and medpix.meta["photometric"] == "MONOCHROME2"
    vqa = read_image(shared_data / "vqa-rad" / "images" / "synpic100132.jpg")
    assert vqa.pixels.shape == (1384, 2321, 3) and 0.3 < vqa.pixels.mean() < 0.4


# ------------------------------------------------------------------------------------------ bad inputs


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Patient has a cough.\n" * 20)
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.dcm")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.dcm")


def test_dicom_without_pixel_data() -> None:
    with pytest.raises(ImageReadError, match="no pixel data.*RT Plan"):
        read_image(pydicom_file("rtplan.dcm"))


def test_unsupported_photometric_lists_supported() -> None:
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "HSV"
    with pytest.raises(ImageReadError, match="'HSV'.*MONOCHROME1.*PALETTE COLOR") as info:
        read_image(dicom_bytes(ds))
    assert all(name in str(info.value) for name in SUPPORTED_PHOTOMETRIC)


def test_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(pydicom_file("MR_truncated.dcm"))
    data = pydicom_file("CT_small.dcm").read_bytes()
    for cut in (len(data) // 2, 1990, 603, 140):  # inside an element: certainly cut
        with pytest.raises(ImageReadError, match="truncated"):
            read_image(data[:cut])
    for cut in (2000, 600):  # exactly between two elements: indistinguishable from a file saved without pixels
        with pytest.raises(ImageReadError, match="no pixel data.*incomplete"):
            read_image(data[:cut])
    Image.fromarray(np.full((200, 300), 128, np.uint8)).save(tmp_path / "x.jpg")
    jpg = (tmp_path / "x.jpg").read_bytes()
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(jpg[: len(jpg) // 2])
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300), dtype=np.uint8)).save(tmp_path / "x.png")
    png = (tmp_path / "x.png").read_bytes()
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(png[: len(png) // 2])
    for cut in range(8, 80):  # inside the header: Pillow fails while opening (OSError), not while decoding
        with pytest.raises(ImageReadError, match="truncated|corrupt|not an image"):
            read_image(png[:cut])
    with pytest.raises(ImageReadError, match="header is truncated"):
        read_image(png[:8] + b" truncated")


def _png_claiming(width: int, height: int) -> bytes:
    # A valid PNG signature + IHDR (correct CRC) announcing a huge 8-bit grey image, followed by almost no data.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 16)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk + end


def test_huge_images_refused_before_decoding() -> None:
    tracemalloc.start()
    with pytest.raises(ImageReadError, match="refused before decoding"):
        read_image(_png_claiming(20000, 20000))
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    ds.Rows = ds.Columns = 20000  # header says 20000 x 20000; the pixel data is still 8 KB
    with pytest.raises(ImageReadError, match="20000x20000.*refused before decoding"):
        read_image(dicom_bytes(ds))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20  # nothing near 20000^2 values was allocated
    with pytest.raises(ImageReadError, match="limit"):
        read_image(pydicom_file("MR_small.dcm"), max_pixels=1000)


def test_tiny_images_are_readable() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.array([[200]], dtype=np.uint8)).save(buf, format="PNG")
    image = read_image(buf.getvalue())
    assert image.pixels.shape == (1, 1) and image.pixels[0, 0] == pytest.approx(200 / 255)


def test_missing_codec_names_the_plugin() -> None:
    path = pydicom_file("MR_small_jpeg_ls_lossless.dcm")
    try:
        image = read_image(path)
    except ImageReadError as exc:
        assert "JPEG-LS" in str(exc) and "pyjpegls" in str(exc)
    else:  # a JPEG-LS plugin is installed: then it must decode to the uncompressed original
        np.testing.assert_array_equal(image.pixels, read_image(pydicom_file("MR_small.dcm")).pixels)
