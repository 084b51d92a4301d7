"""Grey-level windowing in numpy: DICOM VOI window functions, presets in Hounsfield units, range scaling.

Every function maps values to ``[0, 1]`` float32 (0 = black on a MONOCHROME2 display). Used by
:mod:`kgclip.imaging.io` on modality values (e.g. HU for CT) and re-exported by :mod:`kgclip.imaging.transforms`.
"""

from __future__ import annotations

import numpy as np

from kgclip.errors import ConfigError

__all__ = ["WINDOW_PRESETS", "apply_window", "scale_range", "resolve_window"]

# (center, width) in Hounsfield units; common radiology presets (e.g. Radiopaedia "Windowing (CT)").
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "temporal-bone": (600.0, 2800.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft-tissue": (50.0, 400.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "bone": (400.0, 1800.0),
}


def resolve_window(name_or_window: str | tuple[float, float]) -> tuple[float, float]:
    """A preset name (``"lung"``) or an explicit ``(center, width)`` -> ``(center, width)``."""
    if isinstance(name_or_window, str):
        key = name_or_window.lower().replace("_", "-").replace(" ", "-")
        if key not in WINDOW_PRESETS:
            raise ConfigError(
                f"unknown window preset {name_or_window!r}; choose one of {sorted(WINDOW_PRESETS)}, "
                "pass (center, width), or use 'auto' / 'minmax' / 'bits'"
            )
        return WINDOW_PRESETS[key]
    try:
        center, width = (float(v) for v in name_or_window)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a window is a preset name or (center, width), got {name_or_window!r}") from exc
    if not width > 0:
        raise ConfigError(f"window width must be > 0, got {width}")
    return center, width


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 window (``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``) to ``[0, 1]`` float32.

    Shapes: any -> same shape.
    """
    x = np.asarray(values, dtype=np.float32)
    function = (function or "LINEAR").upper().replace(" ", "_")
    if function == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-6)))
        return out.astype(np.float32)
    if function == "LINEAR_EXACT":
        lo, span = center - width / 2.0, width
    else:  # LINEAR: the standard's half-pixel offsets, width >= 1
        width = max(width, 1.0)
        lo, span = center - 0.5 - (width - 1.0) / 2.0, width - 1.0
    out = (x - lo) / max(span, 1e-6)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


def scale_range(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of ``[lo, hi]`` to ``[0, 1]`` (clipped); a constant image maps to zeros.

    Shapes: any -> same shape, float32.
    """
    x = np.asarray(values, dtype=np.float32)
    if not hi > lo:
        return np.zeros_like(x, dtype=np.float32)
    out = (x - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)
