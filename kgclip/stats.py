"""Small statistics shared by the evaluations and benchmarks: one bootstrap, so every reported interval is computed
the same way (a percentile bootstrap over the evaluated queries or cases, seeded)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_ci"]


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                 digits: int | None = 4) -> list[float]:
    """Percentile bootstrap ``[low, high]`` of the mean of per-query ``values`` (queries resampled with replacement).

    For a paired comparison pass the per-query differences (``a - b``): the interval is then that of the mean
    difference. ``digits`` rounds for JSON output (``None`` keeps full precision). No values: ``[0.0, 0.0]``.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    [1.0, 1.0]
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    bounds = [float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))]
    return bounds if digits is None else [round(b, digits) for b in bounds]
