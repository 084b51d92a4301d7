"""Imaging: read DICOM / PNG / JPEG into float32 pixels with safe metadata (:mod:`kgclip.imaging.io`) and turn them
into model input (:mod:`kgclip.imaging.transforms`).

``from kgclip.imaging import read_image`` works; the submodules (and pydicom, Pillow, torch) are imported only when
a name is first used, so importing this package is free.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ImageData", "read_image", "ImageTransform", "TransformConfig", "WINDOW_PRESETS"]

_WHERE = {"ImageData": "io", "read_image": "io", "ImageTransform": "transforms", "TransformConfig": "transforms",
          "WINDOW_PRESETS": "window"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"kgclip.imaging.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kgclip.imaging' has no attribute {name!r}")
