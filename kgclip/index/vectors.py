"""Input checks every index backend applies to ids and vectors (one rule set, so backends agree), and exact top-k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgclip.errors import IndexError_

__all__ = ["as_ids", "normalised", "checked_batch", "exact_top_k"]


def as_ids(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """``ids`` as a 1-D ``int64`` array of non-negative ids (FAISS uses -1 for 'no result')."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise IndexError_(f"ids must be a 1-D sequence of integers, got shape {arr.shape} dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise IndexError_("ids must be >= 0 (FAISS uses -1 for 'no result')")
    return arr


def normalised(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """A fresh C-contiguous ``float32`` copy with unit rows. Shapes: ``[N, dim]`` or ``[dim]`` -> ``[N, dim]``."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise IndexError_(f"{what} must have shape [N, {dim}], got {tuple(np.shape(vectors))}")
    if not np.isfinite(arr).all():
        raise IndexError_(f"{what} contain NaN or infinite values")
    arr = np.array(arr, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise IndexError_(f"{what} contain an all-zero vector, which has no direction to compare")
    arr /= norms
    return arr


def checked_batch(ids: Sequence[int] | np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one ``add`` batch: one unique id per vector. Returns ``(ids [N] int64, unit vectors [N, dim])``."""
    id_array = as_ids(ids)
    x = normalised(vectors, dim)
    if len(id_array) != len(x):
        raise IndexError_(f"got {len(id_array)} ids for {len(x)} vectors; give one id per vector")
    if len(np.unique(id_array)) != len(id_array):
        raise IndexError_("ids repeat within one add() call; give each item once")
    return id_array, x


def exact_top_k(q: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``vectors`` by inner product with each query, best first.

    Shapes: ``q`` ``[Q, dim]``, ``vectors`` ``[M, dim]`` -> scores ``[Q, k]`` float32 (``-inf`` padding) and row
    positions ``[Q, k]`` int64 (``-1`` padding, when ``M < k``).
    """
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    positions = np.full((len(q), k), -1, dtype=np.int64)
    if len(vectors) == 0:
        return scores, positions
    kk = min(k, len(vectors))
    step = max(1, 50_000_000 // len(vectors))  # bound the [Q, M] score matrix to ~200 MB
    for start in range(0, len(q), step):
        sims = q[start:start + step] @ vectors.T
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < len(vectors) else \
            np.broadcast_to(np.arange(len(vectors)), (len(sims), len(vectors)))
        top_scores = np.take_along_axis(sims, top, 1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores[start:start + step, :kk] = np.take_along_axis(top_scores, order, 1)
        positions[start:start + step, :kk] = np.take_along_axis(top, order, 1)
    return scores, positions
