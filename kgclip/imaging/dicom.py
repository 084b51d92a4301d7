"""DICOM -> display-ready float32 pixels + metadata with patient-identifying fields removed.

The pipeline follows DICOM PS3.3 C.11 (and torchxrayvision's reader, without its side effects):
stored values -> ``BitsStored`` masking (pydicom) -> modality LUT / rescale (e.g. to HU) -> VOI LUT or window
(or a preset, min-max or the ``BitsStored`` range) -> ``[0, 1]`` -> MONOCHROME1 inverted *after* windowing.
Colour images (RGB, YBR_* converted to RGB, PALETTE COLOR through its LUT) are scaled by their bit depth.

Metadata is built from a whitelist, so nothing from PS3.15 Annex E's Basic Application Level Confidentiality
Profile (names, ids, birth date, addresses, institution, physicians, accession number, dates and times, free text)
can leak; study / series / instance UIDs are replaced by consistent ``2.25.<hash>`` pseudonyms.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any, BinaryIO

import numpy as np

from kgclip.errors import ImageReadError
from kgclip.imaging.acquisition import acquisition_from_dataset
from kgclip.imaging.window import apply_window, resolve_window, scale_range

__all__ = ["read_dicom_header", "SUPPORTED_PHOTOMETRIC", "read_dicom", "pseudonymise_uid", "DEID_PROFILE"]

SUPPORTED_PHOTOMETRIC = (
    "MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR",
)
DEID_PROFILE = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile (whitelist; UIDs pseudonymised)"
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_CODEC_HELP = (
    "install the decoder plugins: pip install 'kgclip[dicom]' (pylibjpeg, pylibjpeg-openjpeg for JPEG 2000), "
    "plus pylibjpeg-libjpeg for JPEG lossless/extended, pyjpegls for JPEG-LS, pylibjpeg-rle for faster RLE"
)
# Inflated bytes read from a deflated dataset before its header is parsed (headers are far smaller).
_DEFLATE_HEAD = 4 << 20


def _decode_help(transfer_syntax: Any) -> str:
    """What to do when pixel data cannot be decoded: install a plugin only when one is actually missing."""
    from pydicom.pixels import get_decoder

    if transfer_syntax is None or not getattr(transfer_syntax, "is_compressed", False):
        return ("the pixel data element is malformed (wrong length, value representation or bit depth for its "
                "Rows/Columns/BitsAllocated); repair or re-export the file")
    try:
        decoder = get_decoder(transfer_syntax)
    except Exception:  # noqa: BLE001 - pydicom knows no decoder for this syntax at all
        return f"no decoder exists for {transfer_syntax.name}; convert the file (e.g. dcmtk's dcmdjpeg / dcmconv)"
    if decoder.is_available:
        plugins = ", ".join(decoder.available_plugins)
        return (f"the installed decoders ({plugins}) could not decode it: the compressed data is damaged or uses a "
                "variant they do not support; re-export the file or convert it to an uncompressed transfer syntax")
    return _CODEC_HELP


def _meta_transfer_syntax(data: bytes) -> tuple[str | None, int]:
    """``(TransferSyntaxUID, offset where the dataset starts)`` of a DICOM file with preamble, read from its
    file-meta group by hand (explicit VR little endian, PS3.10 7.1) so nothing after it is touched."""
    pos, syntax = 132, None
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        elem, vr = int.from_bytes(data[pos + 2:pos + 4], "little"), data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
            length, head = int.from_bytes(data[pos + 8:pos + 12], "little"), 12
        else:
            length, head = int.from_bytes(data[pos + 6:pos + 8], "little"), 8
        if elem == 0x0010:
            syntax = data[pos + head:pos + head + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos += head + length
    return syntax, pos


def _inflate_bounded(data: bytes, start: int, max_pixels: int, name: str) -> Any:
    """A Deflated Explicit VR Little Endian dataset, inflated only as far as its declared image allows.

    The header is inflated first (at most 4 MB) and its pixel count checked against ``max_pixels``; the rest is
    then inflated with a cap of the declared pixel bytes, so a small file that inflates to gigabytes is refused
    with bounded memory. Returns the dataset with its transfer syntax set to explicit VR little endian.
    """
    import zlib

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        head = inflater.decompress(data[start:], _DEFLATE_HEAD)
        header = pydicom.dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - zlib / pydicom errors on damaged streams
        raise ImageReadError(f"{name}: the deflated DICOM dataset is corrupt ({type(exc).__name__}: {exc}). "
                             "Copy or export the file again.") from exc
    count = _pixel_count(header)
    if count > max_pixels:
        raise ImageReadError(
            f"{name}: deflated DICOM declares {header.get('Rows', '?')}x{header.get('Columns', '?')}x"
            f"{header.get('NumberOfFrames', 1) or 1} frame(s) = {count:,} values, above the limit of {max_pixels:,}; "
            "refused before inflating it. Raise max_pixels if the image is genuine.")
    bytes_per_value = max(1, min(8, int(header.get("BitsAllocated", 16) or 16) // 8))
    cap = count * bytes_per_value + len(head) + (1 << 20)
    rest = inflater.decompress(inflater.unconsumed_tail, max(cap - len(head), 1))
    if inflater.unconsumed_tail:
        raise ImageReadError(f"{name}: the deflated DICOM inflates beyond the {cap:,} bytes its header declares; "
                             "refused (the file is damaged or crafted). Export it again without deflate.")
    ds = pydicom.dcmread(io.BytesIO(head + rest), force=True)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds._kgclip_inflated_from = "Deflated Explicit VR Little Endian"  # what the file said (reported in meta)
    return ds


def pseudonymise_uid(uid: str, salt: str = "") -> str:
    """A consistent replacement UID: ``2.25.`` + the decimal of a 128-bit blake2b hash of ``salt`` + ``uid``.

    The same input always gives the same pseudonym (series stay grouped), the original cannot be read back, and the
    ``2.25`` root (UUID-derived UIDs, PS3.5 B.2) keeps it a valid UID of at most 44 characters. Pass a secret
    ``salt`` when an attacker could otherwise hash candidate UIDs.
    """
    digest = hashlib.blake2b(f"{salt}\x00{uid}".encode(), digest_size=16).digest()
    return "2.25." + str(int.from_bytes(digest, "big"))


def _plane(orientation: Any) -> str | None:
    # ImageOrientationPatient row/column cosines -> the normal's dominant axis (x: sagittal, y: coronal, z: axial).
    try:
        r = np.array([float(v) for v in orientation][:3])
        c = np.array([float(v) for v in orientation][3:6])
    except (TypeError, ValueError):
        return None
    if r.shape != (3,) or c.shape != (3,):
        return None
    normal = np.abs(np.cross(r, c))
    if not normal.any():
        return None
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _safe_meta(ds: Any, uid_salt: str) -> dict[str, Any]:
    """Only non-identifying acquisition fields; see the module docstring for the profile."""
    meta: dict[str, Any] = {
        "source_format": "dicom",
        "modality": _text(ds, "Modality"),
        "body_part": _text(ds, "BodyPartExamined"),
        "view_position": _text(ds, "ViewPosition"),
        "laterality": _text(ds, "ImageLaterality") or _text(ds, "Laterality"),
        "plane": _plane(ds.get("ImageOrientationPatient")),
        "photometric": _text(ds, "PhotometricInterpretation"),
        "bits_stored": _int(ds, "BitsStored", 0) if "BitsStored" in ds else None,
        "bits_allocated": _int(ds, "BitsAllocated", 0) if "BitsAllocated" in ds else None,
        "pixel_representation": _int(ds, "PixelRepresentation", 0),
        "rows": _int(ds, "Rows", 0) if "Rows" in ds else None,
        "columns": _int(ds, "Columns", 0) if "Columns" in ds else None,
        "frames": _int(ds, "NumberOfFrames", 1),
        "pixel_spacing": [float(v) for v in ds.PixelSpacing] if "PixelSpacing" in ds else None,
        "sop_class_uid": str(ds.SOPClassUID) if "SOPClassUID" in ds else None,  # a standard class, not an instance
        "burned_in_annotation": _text(ds, "BurnedInAnnotation"),
        "deidentification": DEID_PROFILE,
    }
    meta.update(acquisition_from_dataset(ds))  # contrast, MR sequence: derived values only, no free text
    meta["transfer_syntax"] = None
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "TransferSyntaxUID" in file_meta:
        meta["transfer_syntax"] = file_meta.TransferSyntaxUID.name
    for key, keyword in (("study_uid", "StudyInstanceUID"), ("series_uid", "SeriesInstanceUID"),
                         ("sop_instance_uid", "SOPInstanceUID"), ("frame_of_reference_uid", "FrameOfReferenceUID")):
        value = _text(ds, keyword)
        meta[key] = pseudonymise_uid(value, uid_salt) if value else None
    return meta


def read_dicom_header(source: str | os.PathLike[str] | bytes | BinaryIO, *, uid_salt: str = "", name: str = "",
                      force: bool = False) -> dict[str, Any]:
    """The allow-listed header of a DICOM (no pixel data read), plus ``has_pixels`` and ``sop_class`` (its name).

    For deciding what an object is before decoding it: an RT Dose, a structured report or an ECG waveform.

    Raises:
        ImageReadError: not a DICOM, or a corrupt header.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True, force=force)
    except InvalidDicomError as exc:
        raise ImageReadError(f"{name}: not a DICOM file ({exc}). Pass a DICOM, PNG or JPEG image.") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt headers
        raise ImageReadError(f"{name}: corrupt or truncated DICOM header ({type(exc).__name__}: {exc}).") from exc
    meta = _safe_meta(ds, uid_salt)
    meta["sop_class"] = ds.SOPClassUID.name if "SOPClassUID" in ds else None
    meta["has_pixels"] = "Rows" in ds and "Columns" in ds
    return meta


# Enhanced multi-frame objects (Enhanced CT/MR, breast tomosynthesis...) keep rescale, window, orientation and
# spacing in functional groups instead of the top level; (macro, attributes) to copy up.
_FUNCTIONAL_GROUPS = (
    ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept", "RescaleType")),
    ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
    ("PlaneOrientationSequence", ("ImageOrientationPatient",)),
    ("PixelMeasuresSequence", ("PixelSpacing",)),
)


def _lift_functional_groups(ds: Any, frame: int) -> None:
    """Copy the functional-group values of ``frame`` (per-frame first, then shared) to the top level, in memory.

    When all frames are read, the first frame's values apply to the whole stack (frames of one series almost
    always share them; read frame by frame with ``frame=`` when they do not).
    """
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and -len(per_frame) <= frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for macro, keywords in _FUNCTIONAL_GROUPS:
        for keyword in keywords:
            if keyword in ds:
                continue
            for group in groups:
                items = group.get(macro)
                if items and keyword in items[0]:
                    setattr(ds, keyword, items[0][keyword].value)
                    break


def _int(ds: Any, keyword: str, default: int) -> int:
    """A numeric header value; ``ValueError`` naming the element when it holds something else (a wrong VR)."""
    value = ds.get(keyword, default)
    try:
        return int(value or default)
    except (TypeError, ValueError):
        raise ValueError(f"{keyword} holds {str(value)[:40]!r}, not a number") from None


def _ends_mid_element(ds: Any) -> bool:
    """Whether pydicom stopped inside an element (fewer value bytes than its length): a cut file. An empty dataset
    (nothing after the file meta) counts as cut too."""
    if not len(ds):
        return True
    raw = ds.get_item(list(ds.keys())[-1])
    value, length = getattr(raw, "value", None), getattr(raw, "length", None)
    return isinstance(value, bytes) and isinstance(length, int) and length != 0xFFFFFFFF and len(value) < length


def _native_pixels_short(ds: Any, syntax: Any, count: int) -> bool:
    """Uncompressed pixel data with fewer bytes than the header's image needs (a file cut inside its pixels)."""
    if syntax is None or getattr(syntax, "is_compressed", True) or "PixelData" not in ds:
        return False
    raw = ds.get_item("PixelData")
    value = getattr(raw, "value", None)
    actual = len(value) if isinstance(value, bytes) else getattr(raw, "length", 0)
    return actual * 8 < count * _int(ds, "BitsAllocated", 8)


def _pixel_count(ds: Any) -> int:
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    frames, samples = _int(ds, "NumberOfFrames", 1), _int(ds, "SamplesPerPixel", 1)
    return rows * cols * max(frames, 1) * max(samples, 1)


def _window_values(values: np.ndarray, ds: Any, window: Any, meta: dict[str, Any]) -> np.ndarray:
    """Modality values -> ``[0, 1]``; records what was used in ``meta['window']``."""
    from pydicom.pixels import apply_voi_lut

    bits = int(ds.get("BitsStored", 16) or 16)
    if window == "auto":
        if "VOILUTSequence" in ds and len(ds.VOILUTSequence) and "LUTDescriptor" in ds.VOILUTSequence[0]:
            if values.dtype.kind == "f" and np.array_equal(values, np.round(values)):
                values = values.astype(np.int64)  # integer rescale: the LUT is indexed by whole modality values
            out = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float32)
            lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2]) or bits
            meta["window"] = {"source": "voi_lut", "lut_bits": lut_bits}
            return scale_range(out, 0.0, float(2**lut_bits - 1))
        if "WindowCenter" in ds and "WindowWidth" in ds:
            center = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
            width = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
            function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
            if float(width) > 0:
                meta["window"] = {"source": "window", "center": float(center), "width": float(width),
                                  "function": function}
                return apply_window(values, float(center), float(width), function)
        window = "minmax"
    if window == "minmax":
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        meta["window"] = {"source": "minmax", "low": lo, "high": hi}
        return scale_range(values, lo, hi)
    if window == "bits":
        # The range BitsStored allows, mapped through the rescale (e.g. 12-bit CR data in 16-bit words).
        signed = meta.get("pixel_representation") == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        meta["window"] = {"source": "bits", "low": lo, "high": hi}
        return scale_range(values, lo, hi)
    center, width = resolve_window(window)
    meta["window"] = {"source": "preset" if isinstance(window, str) else "explicit", "center": center, "width": width}
    return apply_window(values, center, width)


def _affine_window(window: dict[str, Any], slope: float, intercept: float) -> tuple[float, float] | None:
    """``(a, b)`` with ``stored * a + b`` (before clipping) equal to the window output, or ``None`` if non-linear."""
    source = window.get("source")
    if source in ("minmax", "bits"):
        lo, span = window["low"], window["high"] - window["low"]
    elif source in ("window", "preset", "explicit"):
        function = str(window.get("function", "LINEAR")).upper().replace(" ", "_")
        center, width = window["center"], window["width"]
        if function == "LINEAR_EXACT":
            lo, span = center - width / 2.0, width
        elif function == "LINEAR":
            width = max(width, 1.0)
            lo, span = center - 0.5 - (width - 1.0) / 2.0, width - 1.0
        else:
            return None
    else:
        return None
    if not span > 0:
        return None
    return slope / span, (intercept - lo) / span


def _open_dataset(source: Any, force: bool, max_pixels: int, name: str) -> Any:
    """``pydicom.dcmread`` with pixel data deferred; a deflated dataset is inflated within the pixel limit first."""
    import pydicom

    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            head = fh.read(132 + 4096)
    else:
        source.seek(0)
        head = source.read(132 + 4096)
        source.seek(0)
    syntax, _ = _meta_transfer_syntax(head) if head[128:132] == b"DICM" else (None, 0)
    if syntax == "1.2.840.10008.1.2.1.99":  # Deflated Explicit VR Little Endian
        data = open(source, "rb").read() if isinstance(source, str | os.PathLike) else source.read()
        return _inflate_bounded(data, _meta_transfer_syntax(data)[1], max_pixels, name)
    # defer_size keeps large pixel data on disk until the size check has passed (bounded memory).
    return pydicom.dcmread(source, defer_size="4 MB", force=force)


def read_dicom(source: str | os.PathLike[str] | bytes | BinaryIO, *, window: Any = "auto", frame: int | None = None,
               max_pixels: int, uid_salt: str = "", name: str = "the image data",
               force: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM into ``[0, 1]`` float32 pixels and safe metadata (see :func:`kgclip.imaging.io.read_image`).

    Shapes: grey ``[H, W]`` or ``[F, H, W]``; colour ``[H, W, 3]`` or ``[F, H, W, 3]`` (one frame when ``frame``).
    """
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        ds = _open_dataset(source, force, max_pixels, name)
    except ImageReadError:
        raise
    except InvalidDicomError as exc:
        raise ImageReadError(f"{name}: not a DICOM file ({exc}). Pass a DICOM, PNG or JPEG image.") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt headers
        raise ImageReadError(f"{name}: corrupt or truncated DICOM header ({type(exc).__name__}: {exc}).") from exc
    if not any(tag in ds for tag in _PIXEL_TAGS):
        sop = ds.SOPClassUID.name if "SOPClassUID" in ds else "unknown SOP class"
        if _ends_mid_element(ds):
            raise ImageReadError(f"{name}: the DICOM is truncated: it ends inside an element, before its pixel data "
                                 f"({sop}). Copy or download it again.")
        # A complete file without pixel data and one cut exactly between two elements read the same: claim neither.
        raise ImageReadError(
            f"{name}: the DICOM has no pixel data ({sop}, modality {ds.get('Modality', '?')}): it is not an image "
            "instance, it was saved without its pixels, or the copy is incomplete. Pass an image instance (e.g. CT, "
            "MR, CR, DX); if it should be one, copy or export it again."
        )
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise ImageReadError(
            f"{name}: unsupported photometric interpretation {photometric or '(missing)'!r}; supported are "
            f"{', '.join(SUPPORTED_PHOTOMETRIC)}. Convert the file (e.g. with dcmtk's dcmconv) first."
        )
    try:
        _lift_functional_groups(ds, 0 if frame is None else frame)
        meta = _safe_meta(ds, uid_salt)
        count = _pixel_count(ds)
    except (ValueError, TypeError) as exc:  # e.g. Rows stored as text (a wrong value representation)
        raise ImageReadError(f"{name}: a DICOM header value has the wrong type ({exc}); repair the header (e.g. "
                             "with dcmtk's dcmodify) or export the file again.") from exc
    meta["transfer_syntax"] = getattr(ds, "_kgclip_inflated_from", meta["transfer_syntax"])
    n_frames = meta["frames"]
    if frame is not None and not -n_frames <= frame < n_frames:
        raise ImageReadError(f"{name}: frame {frame} requested but the file has {n_frames} frame(s)")
    count //= n_frames if frame is not None else 1
    if count <= 0:
        raise ImageReadError(f"{name}: DICOM declares an empty image (Rows/Columns missing or zero)")
    if count > max_pixels:
        raise ImageReadError(
            f"{name}: image of {meta['rows']}x{meta['columns']}x{n_frames} frame(s) has {count:,} values, above the "
            f"limit of {max_pixels:,}; refused before decoding. Raise max_pixels, or read one frame with frame=."
        )
    index = None if frame is None else frame % n_frames
    try:
        arr = pixel_array(ds, index=index, as_rgb=True)
    except Exception as exc:  # noqa: BLE001 - decoders raise RuntimeError/ValueError/EOFError/OSError
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if _native_pixels_short(ds, syntax, count):
            raise ImageReadError(f"{name}: the DICOM is truncated: its pixel data is shorter than its Rows, Columns "
                                 "and frames require. Copy or download it again.") from exc
        raise ImageReadError(
            f"{name}: cannot decode the pixel data ({meta['transfer_syntax'] or 'unknown transfer syntax'}; "
            f"{type(exc).__name__}: {exc}): {_decode_help(syntax)}."
        ) from exc
    if frame is not None and n_frames > 1:
        meta["frame"] = index  # which frame of the series these pixels are
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2]) if "RedPaletteColorLookupTableDescriptor" in ds else 16
        meta["window"] = {"source": "palette", "bits": depth}
        return scale_range(rgb, 0.0, float(2**depth - 1)), meta
    if photometric.startswith(("RGB", "YBR")):
        bits = int(ds.get("BitsStored", 8) or 8)
        meta["window"] = {"source": "bits", "low": 0.0, "high": float(2**bits - 1)}
        if photometric != "RGB":
            meta["converted_to"] = "RGB"
        return scale_range(arr, 0.0, float(2**bits - 1)), meta
    if "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds:
        meta["modality_lut"] = {"slope": float(ds.get("RescaleSlope", 1) or 1),
                                "intercept": float(ds.get("RescaleIntercept", 0) or 0),
                                "units": _text(ds, "RescaleType") or ("HU" if meta["modality"] == "CT" else None)}
    invert = photometric == "MONOCHROME1"
    affine = None
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2 and "ModalityLUTSequence" not in ds:
        # Fast path: rescale, a linear window (or min-max / bits range) and the MONOCHROME1 inversion compose into
        # one affine map of the stored values, applied in a single float32 pass instead of four array passes.
        ends = np.array([arr.min(), arr.max()], dtype=arr.dtype) if arr.size else np.zeros(2, arr.dtype)
        _window_values(np.asarray(apply_modality_lut(ends, ds)), ds, window, meta)
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        affine = _affine_window(meta["window"], slope, intercept)
    if affine is not None:
        a, b = (-affine[0], 1.0 - affine[1]) if invert else affine
        out = arr.astype(np.float32)
        out *= np.float32(a)
        out += np.float32(b)
        np.clip(out, 0.0, 1.0, out=out)
    else:
        out = _window_values(np.asarray(apply_modality_lut(arr, ds)), ds, window, meta)
        if invert:
            out = 1.0 - out
    if invert:
        meta["inverted"] = True  # minimum value is white; inverted after windowing, as the standard's pipeline does
    return out.astype(np.float32, copy=False), meta
