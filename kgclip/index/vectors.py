"""Input checks every index backend applies to ids and vectors (one rule set, so backends agree), and exact top-k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgclip.errors import IndexError_

__all__ = ["as_ids", "normalised", "checked_batch", "checked_k", "exact_top_k", "MAX_ID", "MAX_K"]

#: Largest item id (ids are int64; FAISS uses -1 for "no result", so ids are >= 0).
MAX_ID = 2**63 - 1
#: Most hits one query returns (beyond the index size, ``k`` is capped at the index size first).
MAX_K = 100_000
#: Most result slots (queries x k) one search call allocates; more queries are searched in several calls.
_MAX_RESULT_SLOTS = 50_000_000


def as_ids(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """``ids`` as a 1-D ``int64`` array of non-negative ids (FAISS uses -1 for 'no result')."""
    try:
        arr = np.asarray(ids)
    except (OverflowError, ValueError, TypeError) as exc:
        raise IndexError_(f"ids must be a 1-D sequence of integers ({exc})") from None
    if arr.ndim == 1 and arr.size and (arr.dtype == object or arr.dtype == np.uint64):
        # Python ints beyond int64 (or a uint64 array): say which id is too large instead of overflowing.
        values = arr.tolist()
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise IndexError_(f"ids must be integers, got {next(v for v in values if not isinstance(v, int))!r}")
        too_big = [v for v in values if v > MAX_ID]
        if too_big:
            raise IndexError_(f"id {too_big[0]} is above the largest id {MAX_ID} (2^63 - 1); use smaller integer "
                              "ids (the CLI also takes string ids)")
        arr = np.array(values, dtype=np.int64)
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
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))[:, None]
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


def checked_k(k: int, size: int, n_queries: int = 1) -> int:
    """``k`` validated and capped at the index ``size`` (so a huge ``k`` never allocates beyond the index).

    Raises ``IndexError_`` for ``k < 1``, a non-integer ``k``, or more than :data:`MAX_K` hits per query (or
    queries x k result slots beyond what one call allocates) after the cap.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise IndexError_(f"k must be an integer, got {k!r}")
    if k < 1:
        raise IndexError_(f"k must be >= 1, got {k}")
    capped = max(1, min(int(k), int(size)))
    if capped > MAX_K:
        raise IndexError_(f"k={k} asks for more than {MAX_K} hits per query; ask for fewer, or narrow the search "
                          "with filters")
    if capped * max(1, n_queries) > _MAX_RESULT_SLOTS:
        raise IndexError_(f"{n_queries} queries x k={capped} is more than {_MAX_RESULT_SLOTS} results in one call; "
                          "search fewer queries at a time")
    return capped


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
