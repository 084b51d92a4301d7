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
        "bits_stored": int(ds.BitsStored) if "BitsStored" in ds else None,
        "bits_allocated": int(ds.BitsAllocated) if "BitsAllocated" in ds else None,
        "pixel_representation": int(ds.get("PixelRepresentation", 0) or 0),
        "rows": int(ds.Rows) if "Rows" in ds else None,
        "columns": int(ds.Columns) if "Columns" in ds else None,
        "frames": int(ds.get("NumberOfFrames", 1) or 1),
        "pixel_spacing": [float(v) for v in ds.PixelSpacing] if "PixelSpacing" in ds else None,
        "sop_class_uid": str(ds.SOPClassUID) if "SOPClassUID" in ds else None,  # a standard class, not an instance
        "burned_in_annotation": _text(ds, "BurnedInAnnotation"),
        "deidentification": DEID_PROFILE,
    }
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


def _pixel_count(ds: Any) -> int:
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
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


def read_dicom(source: str | os.PathLike[str] | bytes | BinaryIO, *, window: Any = "auto", frame: int | None = None,
               max_pixels: int, uid_salt: str = "", name: str = "<bytes>",
               force: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM into ``[0, 1]`` float32 pixels and safe metadata (see :func:`kgclip.imaging.io.read_image`).

    Shapes: grey ``[H, W]`` or ``[F, H, W]``; colour ``[H, W, 3]`` or ``[F, H, W, 3]`` (one frame when ``frame``).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        # defer_size keeps large pixel data on disk until the size check below has passed (bounded memory).
        ds = pydicom.dcmread(source, defer_size="4 MB", force=force)
    except InvalidDicomError as exc:
        raise ImageReadError(f"{name}: not a DICOM file ({exc}). Pass a DICOM, PNG or JPEG image.") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt headers
        raise ImageReadError(f"{name}: corrupt or truncated DICOM header ({type(exc).__name__}: {exc}).") from exc
    if not any(tag in ds for tag in _PIXEL_TAGS):
        sop = ds.SOPClassUID.name if "SOPClassUID" in ds else "unknown SOP class"
        if "SOPClassUID" not in ds or "Image" in sop or "Rows" in ds:
            # pydicom stops quietly at the end of a cut file; an image class without pixel data means truncation.
            raise ImageReadError(
                f"{name}: the DICOM ends before its pixel data ({sop}): the file is truncated or incomplete. "
                "Copy or download it again."
            )
        raise ImageReadError(
            f"{name}: DICOM without pixel data ({sop}, modality {ds.get('Modality', '?')}); it is not an image. "
            "Pass an image instance (e.g. CT, MR, CR, DX)."
        )
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise ImageReadError(
            f"{name}: unsupported photometric interpretation {photometric or '(missing)'!r}; supported are "
            f"{', '.join(SUPPORTED_PHOTOMETRIC)}. Convert the file (e.g. with dcmtk's dcmconv) first."
        )
    _lift_functional_groups(ds, 0 if frame is None else frame)
    meta = _safe_meta(ds, uid_salt)
    n_frames = meta["frames"]
    if frame is not None and not -n_frames <= frame < n_frames:
        raise ImageReadError(f"{name}: frame {frame} requested but the file has {n_frames} frame(s)")
    count = _pixel_count(ds) // (n_frames if frame is not None else 1)
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
    except (RuntimeError, NotImplementedError) as exc:
        raise ImageReadError(
            f"{name}: cannot decode {meta['transfer_syntax'] or 'this transfer syntax'}: {exc}. {_CODEC_HELP}."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise ValueError/EOFError/OSError on damaged data
        raise ImageReadError(f"{name}: pixel data is truncated or corrupt ({type(exc).__name__}: {exc}).") from exc
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
