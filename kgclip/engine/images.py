"""Images stored in a workspace: de-identified, content-addressed copies.

A case image is read with :func:`kgclip.imaging.io.read_image` (size limits, PHI-free metadata, UID pseudonyms
salted with the workspace's random salt) and stored as a new file that holds only what the engine uses:

- a DICOM becomes a DICOM Secondary Capture of its displayed grey frame (16-bit, or 8-bit RGB for colour) whose
  header is the allow-listed metadata of :mod:`kgclip.imaging.dicom` (modality, body part, view, laterality,
  pixel spacing, pseudonymised study / series UIDs) and nothing else: no names, ids, dates or institutions;
- a PNG or JPEG becomes a lossless PNG of its pixels (no text chunks, no EXIF), so its descriptor is unchanged.

The stored name is the checksum of the stored bytes (``images/<blake2b>.dcm|.png``): two cases whose source files
share a name get distinct images, and the same image added twice is stored once. An image whose header says
``BurnedInAnnotation=YES`` (text such as the patient's name drawn into the pixels) is refused unless the caller
passes ``allow_burned_in=True`` after checking it.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.atomic import atomic_write_bytes
from kgclip.errors import ArtifactCorruptError, ImageReadError
from kgclip.fingerprint import fingerprint_bytes

__all__ = ["deidentified_copy", "store_image", "read_uid_salt", "ensure_uid_salt", "SALT_FILE", "IMAGES_DIR"]

SALT_FILE = "uid_salt.txt"  # the workspace's random UID-pseudonym salt (hex); keep the workspace private
IMAGES_DIR = "images"
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def ensure_uid_salt(directory: Path) -> str:
    """The UID salt of a workspace version being written: the one it carries, or a new random one."""
    salt = read_uid_salt(directory)
    if salt is None:
        salt = secrets.token_hex(16)
        atomic_write_bytes(Path(directory) / SALT_FILE, (salt + "\n").encode("ascii"))
    return salt


def read_uid_salt(workspace: Path) -> str | None:
    """The workspace's UID salt, or ``None`` for a workspace that has none yet."""
    path = Path(workspace) / SALT_FILE
    if not path.is_file():
        return None
    salt = path.read_text(encoding="ascii", errors="replace").strip()
    if len(salt) < 16 or any(c not in "0123456789abcdef" for c in salt):
        raise ArtifactCorruptError(f"{path} is not a UID salt (hex); rebuild the workspace with Engine.build")
    return salt


def _png_bytes(frame: np.ndarray, bits: int) -> bytes:
    from PIL import Image

    if frame.ndim == 3:
        img = Image.fromarray(np.rint(frame * 255.0).astype(np.uint8), mode="RGB")
    elif bits <= 8:
        img = Image.fromarray(np.rint(frame * 255.0).astype(np.uint8), mode="L")
    else:
        img = Image.fromarray(np.rint(frame * 65535.0).astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _dicom_bytes(frame: np.ndarray, meta: dict[str, Any]) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from kgclip.imaging.dicom import DEID_PROFILE
    from kgclip.models.image_input import stretch_grey

    colour = frame.ndim == 3
    pixels = (np.rint(frame * 255.0).astype(np.uint8) if colour
              else np.rint(stretch_grey(frame) * 65535.0).astype(np.uint16))
    uid = "2.25." + str(int(fingerprint_bytes(pixels.tobytes() + repr(sorted(meta.items())).encode())[:32], 16))
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = _SECONDARY_CAPTURE, uid
    ds.StudyInstanceUID = meta.get("study_uid") or uid + ".1"
    ds.SeriesInstanceUID = meta.get("series_uid") or uid + ".2"
    for keyword, key in (("Modality", "modality"), ("BodyPartExamined", "body_part"),
                         ("ViewPosition", "view_position"), ("ImageLaterality", "laterality"),
                         ("BurnedInAnnotation", "burned_in_annotation")):
        if meta.get(key):
            setattr(ds, keyword, str(meta[key])[:64])
    if meta.get("pixel_spacing"):
        ds.PixelSpacing = [float(v) for v in meta["pixel_spacing"]][:2]
    ds.PatientIdentityRemoved, ds.DeidentificationMethod = "YES", DEID_PROFILE[:64]
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8 if colour else 16
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = _SECONDARY_CAPTURE, uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def deidentified_copy(source: str | os.PathLike[str] | bytes, *, uid_salt: str,
                      allow_burned_in: bool = False) -> tuple[str, bytes]:
    """The stored name (``images/<checksum>.<ext>``) and bytes of the de-identified copy of an image.

    Raises:
        ImageReadError: unreadable (from :func:`~kgclip.imaging.io.read_image`), or burned-in annotation without
            ``allow_burned_in``.
    """
    from kgclip.imaging.io import read_image

    name = "<bytes>" if isinstance(source, bytes) else str(source)
    data = read_image(source, uid_salt=uid_salt)
    meta = data.meta
    if str(meta.get("burned_in_annotation") or "").strip().upper() == "YES" and not allow_burned_in:
        raise ImageReadError(f"{name}: its header says BurnedInAnnotation=YES (identifying text may be drawn into "
                             "the pixels), so it is not stored; check the pixels and pass allow_burned_in=True "
                             "(`kgclip cases add --allow-burned-in`) to store it anyway")
    frame = data.frame("middle")
    if meta.get("source_format") == "dicom":
        payload, ext = _dicom_bytes(frame, meta), ".dcm"
    else:
        payload, ext = _png_bytes(frame, int(meta.get("bits_stored") or 8)), ".png"
    return f"{IMAGES_DIR}/{fingerprint_bytes(payload)[:32]}{ext}", payload


def store_image(directory: Path, source: str | os.PathLike[str] | bytes, *, uid_salt: str,
                allow_burned_in: bool = False) -> str:
    """De-identify ``source`` into ``directory`` (a workspace version being written); returns the stored name."""
    name, payload = deidentified_copy(source, uid_salt=uid_salt, allow_burned_in=allow_burned_in)
    path = Path(directory) / name
    if not path.is_file():
        atomic_write_bytes(path, payload)
    return name
