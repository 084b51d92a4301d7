"""Uploaded scans, de-identified on arrival and kept in memory only.

An upload is decoded once by :func:`kgclip.imaging.io.read_image` (pixels + the allow-listed header, with this
server's random UID salt); the raw bytes, and with them names, ids, dates and institutions, are dropped at once. What
is kept: the decoded pixels, the safe metadata and small PNG renders (one per window preset for CT-like images). The
upload's file name is never kept, logged or shown.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgclip.errors import ImageReadError
from kgclip.imaging.io import ImageData, read_image
from kgclip.imaging.window import WINDOW_PRESETS

__all__ = ["Upload", "UploadStore", "png_bytes", "SAFE_META_KEYS"]

# Header fields shown to the user (all already allow-listed by imaging.io; UIDs stay server-side).
SAFE_META_KEYS = ("source_format", "modality", "body_part", "view_position", "plane", "photometric", "window")
# Window presets offered for images in Hounsfield units.
_HU_PRESETS = tuple(p for p in ("lung", "mediastinum", "soft-tissue", "brain", "bone", "abdomen")
                    if p in WINDOW_PRESETS)


def png_bytes(pixels: np.ndarray, max_side: int = 768) -> bytes:
    """A PNG of ``[0, 1]`` pixels (``[H, W]`` or ``[H, W, 3]``), at most ``max_side`` pixels per side."""
    from PIL import Image

    img = Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Upload:
    """One de-identified upload: ``image`` (pixels + safe header), PNG ``renders`` by window name."""

    upload_id: str
    image: ImageData
    renders: dict[str, bytes] = field(default_factory=dict)

    def public_meta(self) -> dict[str, Any]:
        """The header fields worth showing, as short strings (the window as ``center/width``)."""
        meta: dict[str, Any] = {}
        for key in SAFE_META_KEYS:
            value = self.image.meta.get(key)
            if isinstance(value, dict):  # the window that mapped values to [0, 1]
                value = "/".join(f"{value[k]:g}" for k in ("center", "width") if isinstance(value.get(k), int | float))
            if value not in (None, "", []):
                meta[key] = str(value)
        meta["size"] = f"{self.image.width}x{self.image.height}"
        return meta


class UploadStore:
    """Uploads by id, newest ``capacity`` kept (thread-safe)."""

    def __init__(self, *, capacity: int, max_pixels: int) -> None:
        self.capacity = capacity
        self.max_pixels = max_pixels
        self.uid_salt = secrets.token_hex(16)  # pseudonymised UIDs cannot be linked across server runs
        self._items: OrderedDict[str, Upload] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, raw: bytes) -> Upload:
        """Decode ``raw`` (DICOM / PNG / JPEG), keep its de-identified form, return it.

        Raises:
            ImageReadError: not an image kgclip can read, or larger than ``max_pixels``.
        """
        image = read_image(raw, max_pixels=self.max_pixels, uid_salt=self.uid_salt)
        renders = {"auto": png_bytes(image.frame())}
        if image.meta.get("source_format") == "dicom" and image.meta.get("modality") in ("CT", "PT", "NM"):
            for preset in _HU_PRESETS:  # re-read while the bytes are still here; only the renders are kept
                try:
                    renders[preset] = png_bytes(read_image(raw, window=preset, max_pixels=self.max_pixels,
                                                           uid_salt=self.uid_salt).frame())
                except ImageReadError:
                    continue
        digest = hashlib.sha256(np.ascontiguousarray(image.pixels).tobytes()).hexdigest()[:24]
        upload = Upload(f"u{digest}", image, renders)
        with self._lock:
            self._items[upload.upload_id] = upload
            self._items.move_to_end(upload.upload_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return upload

    def get(self, upload_id: str) -> Upload | None:
        with self._lock:
            return self._items.get(upload_id)
