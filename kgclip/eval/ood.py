"""Out-of-range inputs the project makes or ships, for measuring abstention (``abstain_ood_rate``).

Nothing is downloaded: tiny and blank pictures and non-medical drawings are drawn here (deterministically), and the
DICOM objects that are not images are pydicom's own test files (RT dose, RT plan, RT structure set, structured
report, ECG waveform), found with ``pydicom.data.get_testdata_file`` and skipped when a pydicom build lacks one.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["out_of_range_inputs"]

_PYDICOM_NON_IMAGES = ("rtdose.dcm", "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm", "waveform_ecg.dcm")


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _drawings(seed: int) -> list[tuple[str, bytes]]:
    """Colour scenes (landscape, shapes, a chart) and the same landscape in grey."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    land = Image.new("RGB", (320, 240), (110, 170, 235))
    d = ImageDraw.Draw(land)
    d.rectangle([0, 160, 320, 240], fill=(50, 150, 60))
    d.ellipse([230, 20, 290, 80], fill=(250, 215, 50))
    d.polygon([(40, 160), (110, 70), (180, 160)], fill=(120, 110, 100))
    out.append(("drawn-landscape", _png(np.asarray(land))))
    shapes = Image.new("RGB", (256, 256), (255, 255, 255))
    d = ImageDraw.Draw(shapes)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, 200, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        d.rectangle([x, y, x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))], fill=colour)
    out.append(("drawn-shapes", _png(np.asarray(shapes))))
    chart = Image.new("RGB", (300, 200), (255, 255, 255))
    d = ImageDraw.Draw(chart)
    for i, h in enumerate(rng.integers(30, 180, 6)):
        d.rectangle([20 + 45 * i, 190 - int(h), 50 + 45 * i, 190], fill=(30, 90 + 20 * i, 200 - 25 * i))
    d.text((10, 5), "quarterly sales", fill=(0, 0, 0))
    out.append(("drawn-chart", _png(np.asarray(chart))))
    out.append(("drawn-landscape-grey", _png(np.asarray(land.convert("L")))))
    return out


def out_of_range_inputs(seed: int = 0) -> list[tuple[str, bytes | Path]]:
    """``(name, input)`` pairs: PNG bytes the project draws and pydicom's non-image DICOM test files."""
    items: list[tuple[str, bytes | Path]] = [
        ("tiny-3x3-rgb", _png(np.full((3, 3, 3), 120, np.uint8))),
        ("tiny-10x10", _png((np.arange(100).reshape(10, 10) * 2).astype(np.uint8))),
        ("blank-white", _png(np.full((256, 256), 255, np.uint8))),
        ("blank-black", _png(np.zeros((512, 512), np.uint8))),
        ("blank-grey-noise-free", _png(np.full((300, 200), 90, np.uint8))),
    ]
    items += _drawings(seed)
    from pydicom.data import get_testdata_file

    for name in _PYDICOM_NON_IMAGES:
        try:
            path = get_testdata_file(name)
        except Exception:  # noqa: BLE001 - a pydicom build without its test data
            path = None
        if path:
            items.append((name, Path(path)))
    return items
