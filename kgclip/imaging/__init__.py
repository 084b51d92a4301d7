"""Imaging: read DICOM / PNG / JPEG into float32 pixels with safe metadata (:mod:`kgclip.imaging.io`) and turn them
into model input (:mod:`kgclip.imaging.transforms`).

``from kgclip.imaging import read_image`` works; the submodules (and pydicom, Pillow, torch) are imported only when
a name is first used, so importing this package is free.
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


__all__ = ["ImageData", "read_image", "ImageTransform", "TransformConfig", "WINDOW_PRESETS"]

_WHERE = {"ImageData": "io", "read_image": "io", "ImageTransform": "transforms", "TransformConfig": "transforms",
          "WINDOW_PRESETS": "window"}

__getattr__, __dir__ = lazy_exports(__name__, {name: f"kgclip.imaging.{module}" for name, module in _WHERE.items()})
