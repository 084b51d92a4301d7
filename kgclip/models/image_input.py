"""Any image a user hands the engine (a path, bytes, an array, a PIL image) as one grey frame.

Files and bytes are read by :func:`kgclip.imaging.io.read_image` only (DICOM windowing, size limits, safe metadata);
this module just picks one frame and one channel:

- a multi-frame series is described by its middle frame;
- a PNG / JPEG keeps its display values (colour becomes ITU-R 601-2 luma, exactly as Pillow's ``convert("L")``);
- a DICOM, an array or a PIL image of unknown range is stretched to ``[0, 1]`` (channel mean for colour), so a
  descriptor does not depend on how much of the window or the value range the image uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgclip.errors import ImageReadError

__all__ = ["ImageLike", "LoadedImage", "load_image", "grey_luma", "stretch_grey"]

ImageLike = str | os.PathLike | bytes | np.ndarray


@dataclass
class LoadedImage:
    """A decoded image.

    Attributes:
        pixels: ``[H, W]`` float32 grey values in ``[0, 1]``.
        meta: the safe metadata :func:`kgclip.imaging.io.read_image` returns (modality, body part...); ``{}`` for
            arrays.
        source: the path it came from, or ``"<bytes>"`` / ``"<array>"`` / ``"<PIL>"``.
    """

    pixels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def stretch_grey(array: np.ndarray) -> np.ndarray:
    """``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` values -> ``[H, W]`` float32 min-max stretched to ``[0, 1]``.

    Raises:
        ImageReadError: not a single 2-D image.
    """
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 3:
        if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):  # CHW -> HWC
            arr = np.moveaxis(arr, 0, -1)
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise ImageReadError(f"expected a 2-D image (or H x W x C), got shape {tuple(np.shape(array))}; "
                             "pass a single image, not a volume or a batch")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 1e-8:
        return np.zeros_like(arr)
    return (arr - lo) / (hi - lo)


def grey_luma(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` RGB in ``[0, 1]`` (8-bit steps) -> ``[H, W]`` float32 luma in ``[0, 1]``.

    The integer ITU-R 601-2 transform of Pillow's ``convert("L")`` (``L = R 299/1000 + G 587/1000 + B 114/1000``,
    rounded), so an RGB JPEG gives the same grey values as Pillow's own conversion.
    """
    q = np.rint(np.asarray(rgb, dtype=np.float32) * 255.0).astype(np.uint32)
    luma = (q[..., 0] * 19595 + q[..., 1] * 38470 + q[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.float32) / np.float32(255.0)


def _from_image_data(data: Any, name: str) -> LoadedImage:
    frame = data.frame("middle")
    if data.meta.get("source_format") == "dicom":
        pixels = stretch_grey(frame)
    elif frame.ndim == 3:
        pixels = grey_luma(frame)
    else:
        pixels = np.asarray(frame, dtype=np.float32)
    return LoadedImage(pixels, dict(data.meta), name)


def load_image(image: ImageLike | LoadedImage | Any) -> LoadedImage:
    """Read a path, raw bytes, an array or a PIL image into a :class:`LoadedImage` (see the module docstring).

    Raises:
        ImageReadError: the file is missing, empty, too large or not a decodable image (from
            :func:`kgclip.imaging.io.read_image`), or the object is not an image.
    """
    if isinstance(image, LoadedImage):
        return image
    from kgclip.imaging.io import ImageData, read_image

    if isinstance(image, ImageData):  # already decoded (e.g. a de-identified upload): its header drives routing
        return _from_image_data(image, "<ImageData>")
    if isinstance(image, np.ndarray):
        return LoadedImage(stretch_grey(image), {}, "<array>")
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        return LoadedImage(stretch_grey(np.asarray(image.convert("L"), dtype=np.float32)), {}, "<PIL>")
    if isinstance(image, (bytes, bytearray, memoryview)):
        name = "<bytes>"
    elif isinstance(image, (str, os.PathLike)):
        image = os.path.expanduser(os.fspath(image))
        name = str(image)
    else:
        raise ImageReadError(f"cannot read an image from a {type(image).__name__}; pass a path, bytes or an array")
    return _from_image_data(read_image(image), name)
