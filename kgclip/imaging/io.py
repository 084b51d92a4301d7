"""Read DICOM, PNG and JPEG into display-ready float32 pixels plus metadata that carries no patient identity.

>>> image = read_image("scan.dcm")                       # doctest: +SKIP
>>> image.pixels.shape, image.meta["modality"]          # doctest: +SKIP
((1955, 1841), 'CR')

Pixels are always float32 in ``[0, 1]`` with 0 = black as displayed (MONOCHROME1 already inverted):

- grey: ``[H, W]``; grey multi-frame: ``[F, H, W]``;
- colour: ``[H, W, 3]`` RGB; colour multi-frame: ``[F, H, W, 3]``.

Sizes are checked from the header before any pixel is decoded (``max_pixels``), so a 20000 x 20000 image is
refused with bounded memory. Tiny images (even 1 x 1) are readable; :mod:`kgclip.imaging.transforms` refuses
images below its ``min_side`` when preparing model input. PHI never leaves this package: see
:mod:`kgclip.imaging.dicom` for the de-identification profile; PNG/JPEG text chunks and EXIF are not copied.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kgclip.errors import ConfigError, ImageReadError
from kgclip.imaging.dicom import read_dicom, read_dicom_header
from kgclip.imaging.window import apply_window, resolve_window, scale_range

__all__ = ["ImageData", "read_image", "read_header", "DEFAULT_MAX_PIXELS", "sniff_format"]

# 100 M values = 400 MB as float32: a whole CT series as one enhanced multi-frame fits; a 20000^2 image does not.
DEFAULT_MAX_PIXELS = 100_000_000
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """Pixels and safe metadata of one image.

    Attributes:
        pixels: float32 in ``[0, 1]``; ``[H, W]``, ``[F, H, W]``, ``[H, W, 3]`` or ``[F, H, W, 3]``.
        meta: ``source_format`` (``dicom``/``png``/``jpeg``/...), ``modality``, ``body_part``, ``view_position``,
            ``plane``, pseudonymised ``study_uid``/``series_uid``, ``photometric``, ``bits_stored``, ``frames``,
            ``window`` (what mapped values to ``[0, 1]``) and more; never names, ids, dates or institutions.
    """

    pixels: np.ndarray
    meta: dict[str, Any]

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim >= 3 and self.pixels.shape[-1] == 3 and self.meta.get("channels", 1) == 3

    @property
    def n_frames(self) -> int:
        return int(self.pixels.shape[0]) if self.pixels.ndim == (4 if self.is_color else 3) else 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-3] if self.is_color else self.pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-2] if self.is_color else self.pixels.shape[-1])

    def frame(self, index: int | str = "middle") -> np.ndarray:
        """One frame (``[H, W]`` or ``[H, W, 3]``); ``"middle"`` picks the central slice of a series."""
        if self.n_frames == 1:
            return self.pixels[0] if self.pixels.ndim == (4 if self.is_color else 3) else self.pixels
        i = self.n_frames // 2 if index == "middle" else int(index)
        return self.pixels[i]

    def to_uint8(self, index: int | str = "middle") -> np.ndarray:
        """One frame as uint8 for display or thumbnails."""
        return np.round(self.frame(index) * 255.0).astype(np.uint8)

    def _repr_html_(self) -> str:
        from PIL import Image

        thumb = Image.fromarray(self.to_uint8())
        thumb.thumbnail((256, 256))
        buf = io.BytesIO()
        thumb.save(buf, format="PNG")
        shown = {k: v for k, v in self.meta.items() if k in ("source_format", "modality", "body_part",
                                                              "view_position", "plane", "photometric")}
        # Header values come from the file (BodyPartExamined, Modality...): escaped, never trusted as markup.
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in shown.items() if v is not None)
        img = base64.b64encode(buf.getvalue()).decode("ascii")
        return (f'<div><img src="data:image/png;base64,{img}"/><table>{rows}'
                f"<tr><td>size</td><td>{self.height}x{self.width}x{self.n_frames}</td></tr></table></div>")


def sniff_format(head: bytes) -> str:
    """``dicom``, ``png``, ``jpeg`` or ``other`` from a file's first 132+ bytes."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    # DICOM without the preamble ("raw" datasets): starts with a group 0x0002 or 0x0008 tag, little endian.
    if len(head) >= 8 and head[1:2] == b"\x00" and head[0:1] in (b"\x02", b"\x08") and head[3:4] == b"\x00":
        return "dicom-raw"
    return "other"


def _read_pil(data: BinaryIO, name: str, max_pixels: int, window: Any,
              max_side: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(data)  # lazy: reads only the header
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"{name}: not an image: neither DICOM nor a format Pillow reads (PNG, JPEG, TIFF...). "
            "Pass a DICOM, PNG or JPEG file."
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{name}: image too large to decode safely ({exc}); refused before decoding. Downscale "
                             "it (or tile it) before passing it in.") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # a file cut inside its header (Pillow: "Truncated File Read")
        raise ImageReadError(f"{name}: the image header is truncated or corrupt ({exc}); pass the complete file.") \
            from exc
    width, height = img.size
    if width * height * len(img.getbands()) > max_pixels or width * height == 0:
        raise ImageReadError(
            f"{name}: image of {height}x{width} px ({width * height:,} pixels) is outside the readable range "
            f"(1 to {max_pixels:,} values); refused before decoding. Raise max_pixels if it is genuine."
        )
    fmt = (img.format or "other").lower()
    try:
        if max_side and fmt == "jpeg" and max(width, height) > 2 * max_side:
            # DCT-domain downscaling by 1/2, 1/4 or 1/8 while decoding, never below max_side: a 2000 px
            # radiograph headed for a 160 px model input decodes several times faster.
            img.draft(img.mode, (max_side, max_side))
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError/SyntaxError/ValueError on damaged files
        raise ImageReadError(f"{name}: {fmt.upper()} data is truncated or corrupt ({exc}).") from exc
    mode = img.mode
    meta: dict[str, Any] = {"source_format": fmt, "mode": mode, "modality": None, "body_part": None,
                            "view_position": None, "plane": None, "frames": 1,
                            "deidentification": "pixels only: text chunks and EXIF not copied",
                            "original_size": [height, width]}
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float32)
        bits = 16 if (mode.startswith("I;16") or arr.max(initial=0) <= 65535) else 32
        meta.update(photometric="MONOCHROME2", bits_stored=bits, channels=1)
        values, full = arr, float(2**bits - 1)
    elif mode == "F":
        values = np.asarray(img, dtype=np.float32)
        meta.update(photometric="MONOCHROME2", bits_stored=32, channels=1)
        full = None
    elif mode in ("L", "1", "LA", "P") and (mode != "P" or _palette_is_grey(img)):
        values = np.asarray(img.convert("L"), dtype=np.float32)
        meta.update(photometric="MONOCHROME2", bits_stored=8, channels=1)
        full = 255.0
    else:  # RGB, RGBA, CMYK, YCbCr, colour palettes: alpha dropped, colour kept
        values = np.asarray(img.convert("RGB"), dtype=np.float32)
        meta.update(photometric="RGB", bits_stored=8, channels=3)
        full = 255.0
    if window in ("auto", "bits") and full is not None:
        meta["window"] = {"source": "bits", "low": 0.0, "high": full}
        return scale_range(values, 0.0, full), meta
    if window in ("auto", "minmax", "bits"):
        lo, hi = float(values.min()), float(values.max())
        meta["window"] = {"source": "minmax", "low": lo, "high": hi}
        return scale_range(values, lo, hi), meta
    center, width = resolve_window(window)
    meta["window"] = {"source": "explicit", "center": center, "width": width}
    return apply_window(values, center, width), meta


def _palette_is_grey(img: Any) -> bool:
    palette = img.getpalette() or []
    triples = np.array(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(len(triples)) and bool((triples == triples[:, :1]).all())


def read_image(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    *,
    window: str | tuple[float, float] = "auto",
    frame: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    uid_salt: str = "",
    max_side: int | None = None,
) -> ImageData:
    """Read a DICOM, PNG or JPEG (or anything Pillow reads) into ``[0, 1]`` float32 pixels and safe metadata.

    Args:
        source: a path, the file's bytes, or a binary file object.
        window: ``"auto"`` (DICOM: VOI LUT, else the file's window center/width, else min-max; PNG/JPEG: the bit
            depth's full range), ``"minmax"``, ``"bits"`` (the ``BitsStored`` range), a preset in HU
            (``"lung"``, ``"brain"``, ``"bone"``... see :data:`kgclip.imaging.window.WINDOW_PRESETS`) or an explicit
            ``(center, width)`` in modality units.
        frame: decode only this frame of a multi-frame DICOM (bounded memory for long series); ``None``: all.
        max_pixels: refuse images with more values than this (checked from the header, before decoding).
        uid_salt: secret mixed into the UID pseudonyms (see :func:`kgclip.imaging.dicom.pseudonymise_uid`).
        max_side: a hint that the caller needs at most this many pixels per side: JPEGs more than twice as large
            are decoded at a reduced scale (still >= ``max_side``; ``meta["original_size"]`` keeps the full size).
            Other formats are returned at full size.

    Returns:
        :class:`ImageData`. Shapes: ``[H, W]``, ``[F, H, W]``, ``[H, W, 3]`` or ``[F, H, W, 3]`` float32.

    Raises:
        ImageReadError: a missing, non-image, truncated or corrupt file, a DICOM without pixel data, an unsupported
            photometric interpretation or transfer syntax (the message names the plugin to install), or an image
            above ``max_pixels``.
    """
    if max_pixels < 1:
        raise ConfigError(f"max_pixels must be >= 1, got {max_pixels}")
    if isinstance(window, str) and window not in ("auto", "minmax", "bits"):
        resolve_window(window)  # fail on a bad preset name before any I/O
    name = "the image data"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise ImageReadError(f"{name}: no such file. Check the path.")
        with open(path, "rb") as handle:
            head = handle.read(132)
        if not head:
            raise ImageReadError(f"{name}: empty file (0 bytes); it is not an image.")
        opener: Any = path
    elif isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        head = data[:132]
        if not head:
            raise ImageReadError("the image data is empty (0 bytes); it is not an image.")
        opener = data
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "the image stream"))
        data = source.read()
        head = data[:132]
        if not head:
            raise ImageReadError(f"{name}: empty input; it is not an image.")
        opener = data
    else:
        raise ImageReadError(f"read_image takes a path, bytes or a binary file, got {type(source).__name__}")

    kind = sniff_format(head)
    if kind.startswith("dicom"):
        # A dataset without the 128-byte preamble is read with force=True only because its first bytes already
        # look like a DICOM tag; arbitrary bytes never reach pydicom's forced mode.
        pixels, meta = read_dicom(opener, window=window, frame=frame, max_pixels=max_pixels, uid_salt=uid_salt,
                                  name=name, force=kind == "dicom-raw")
        meta["channels"] = 1 if (meta["photometric"] or "").startswith("MONOCHROME") else 3
        return ImageData(pixels, meta)
    stream = open(opener, "rb") if isinstance(opener, Path) else io.BytesIO(opener)
    with stream:
        pixels, meta = _read_pil(stream, name, max_pixels, window, max_side)
    return ImageData(pixels, meta)


def read_header(source: str | os.PathLike[str] | bytes | bytearray) -> dict[str, Any]:
    """What an input is, without decoding pixels: ``{"source_format": "dicom", ...the safe DICOM header...,
    "sop_class", "has_pixels"}`` for a DICOM, ``{"source_format": "png" | "jpeg" | "other"}`` otherwise.

    Raises:
        ImageReadError: a missing or empty file, or a corrupt DICOM header.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ImageReadError(f"{path}: no such file. Check the path.")
        with open(path, "rb") as handle:
            head = handle.read(132)
        name, opener = str(path), path
    else:
        head, name, opener = bytes(source[:132]), "<bytes>", bytes(source)
    if not head:
        raise ImageReadError(f"{name}: empty input; it is not an image.")
    kind = sniff_format(head)
    if not kind.startswith("dicom"):
        return {"source_format": kind}
    return read_dicom_header(opener, name=name, force=kind == "dicom-raw")
