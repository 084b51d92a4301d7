"""Search of :class:`~kgclip.index.faiss_index.FaissIndex` (a mixin, to keep modules small): top-k with filters.

Filtered search returns the true top-k among matching items: when few items match (``exact_filter_max``) their
vectors are reconstructed and scored exactly; otherwise FAISS searches with an id selector (exact for flat indexes,
the index's own recall for IVF / HNSW), and a query that comes back short falls back to the exact path. Removed
entries of a graph index (tombstones) are excluded the same way, with a bitmap selector. Reconstructed subsets,
selectors and the IDMap's position -> id array are cached until the next write (:meth:`_reset_search_caches`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from kgclip.errors import IndexError_
from kgclip.index.base import SearchHit, SearchResults
from kgclip.index.faiss_factory import hnsw_of
from kgclip.index.metadata import MetadataStore, normalise_filters
from kgclip.index.vectors import normalised

__all__ = ["FaissSearchMixin"]


class FaissSearchMixin:
    """``search`` / ``search_arrays`` of a FaissIndex, the exact and selector paths, and their caches."""

    # State kept by FaissIndex (declared here for readers and type checkers).
    config: Any
    dim: int
    tombstones: int
    _lock: threading.RLock
    _index: Any
    _store: MetadataStore
    _family: str
    _pos2id: np.ndarray
    _alive: np.ndarray
    _id2pos: dict[int, int]
    _alive_bitmap: np.ndarray | None

    if TYPE_CHECKING:  # FaissPersistenceMixin: the GPU copy for unfiltered searches, or None
        def _gpu(self) -> Any: ...

    def _reset_search_caches(self) -> None:
        """Forget cached subsets, selectors and the IDMap's id array (after every write)."""
        self._subset_cache: OrderedDict[Any, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._selector_cache: OrderedDict[Any, tuple[np.ndarray, Any, np.ndarray]] = OrderedDict()
        self._id_map_cache: np.ndarray | None = None

    def search(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
               ) -> list[list[SearchHit]]:
        """Top-``k`` hits per query among items matching ``filters`` (see :func:`kgclip.index.metadata.normalise_filters`).

        Shapes: ``query`` ``[Q, dim]`` or ``[dim]`` -> Q lists of at most ``k`` :class:`SearchHit`, best first.
        """
        scores, labels = self.search_arrays(query, k, filters)
        # One vectorised metadata fetch for the whole batch, not one query per hit.
        valid = labels >= 0
        meta = self._store.get_many(np.unique(labels[valid]).tolist())
        out: list[list[SearchHit]] = []
        for row_s, row_l, row_v in zip(scores.tolist(), labels.tolist(), valid.tolist()):
            out.append(SearchResults(SearchHit(i, s, meta.get(i, {})) for s, i, v in zip(row_s, row_l, row_v) if v))
        return out

    def search_arrays(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search` but returns arrays, without metadata.

        Shapes: ``query`` ``[Q, dim]`` -> scores ``[Q, k]`` float32 and ids ``[Q, k]`` int64 (``-1`` padding).
        """
        if k < 1:
            raise IndexError_(f"k must be >= 1, got {k}")
        q = normalised(query, self.dim, "query")
        with self._lock:
            if self._index.ntotal == 0:  # also covers an IVF index that has not been trained yet
                return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
            allowed = self._store.match(filters)
            if allowed is not None and len(allowed) <= self.config.exact_filter_max:
                return self._exact_subset(q, allowed, k, cache_key=normalise_filters(filters))
            scores, labels = self._search_index(q, k, allowed, normalise_filters(filters))
            if allowed is not None and self._family != "idmap":
                short = np.flatnonzero((labels >= 0).sum(1) < min(k, len(allowed)))
                if len(short):  # the approximate index missed matches for these queries: score them exactly
                    scores[short], labels[short] = self._exact_subset(q[short], allowed, k)
            return scores, labels

    def _faiss_keys(self, ids: np.ndarray) -> np.ndarray:
        """What FAISS addresses stored ``ids`` by: their positions in a graph index, else the ids themselves."""
        if self._family == "graph":
            return np.fromiter((self._id2pos[i] for i in ids.tolist()), dtype=np.int64, count=len(ids))
        return ids

    def _subset_vectors(self, allowed: np.ndarray, cache_key: Any) -> np.ndarray:
        # Reconstructed vectors of a filter's matches are cached until the next write, so repeated filtered
        # queries cost one matrix product each.
        cached = self._subset_cache.get(cache_key) if cache_key is not None else None
        if cached is not None and cached[0] is allowed:
            self._subset_cache.move_to_end(cache_key)
            return cached[1]
        vectors = self._index.reconstruct_batch(self._faiss_keys(allowed))
        if cache_key is not None:
            self._subset_cache[cache_key] = (allowed, vectors)
            while len(self._subset_cache) > 4:
                self._subset_cache.popitem(last=False)
        return vectors

    def _exact_subset(self, q: np.ndarray, allowed: np.ndarray, k: int, cache_key: Any = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        labels = np.full((len(q), k), -1, dtype=np.int64)
        if len(allowed) == 0:
            return scores, labels
        vectors = self._subset_vectors(allowed, cache_key)
        kk = min(k, len(allowed))
        step = max(1, 50_000_000 // max(1, len(allowed)))  # bound the [Q, M] score matrix to ~200 MB
        for start in range(0, len(q), step):
            sims = q[start:start + step] @ vectors.T
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < len(allowed) else \
                np.broadcast_to(np.arange(len(allowed)), (len(sims), len(allowed)))
            top_scores = np.take_along_axis(sims, top, 1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            scores[start:start + step, :kk] = np.take_along_axis(top_scores, order, 1)
            labels[start:start + step, :kk] = allowed[np.take_along_axis(top, order, 1)]
        return scores, labels

    def _search_index(self, q: np.ndarray, k: int, allowed: np.ndarray | None, cache_key: Any = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            ivf.nprobe = self.config.nprobe
        hnsw = hnsw_of(self._index)
        if hnsw is not None:
            hnsw.efSearch = max(self.config.ef_search, k)
        selector, keep = self._selector(allowed, cache_key)
        gpu = self._gpu() if selector is None else None
        if selector is None and gpu is None and self._family == "idmap":
            # Search the wrapped index and map positions to ids in numpy: IndexIDMap2.search maps them in an OpenMP
            # loop whose thread wake-up costs milliseconds per call on a busy machine (single queries suffer most).
            scores, positions = self._index.index.search(q, k)
            labels = np.where(positions >= 0, self._id_map()[np.maximum(positions, 0)], -1)
        elif selector is None:
            scores, labels = (gpu or self._index).search(q, k)
        else:
            params = faiss.SearchParametersIVF() if ivf is not None else (
                faiss.SearchParametersHNSW() if hnsw is not None else faiss.SearchParameters())
            params.sel = selector
            if ivf is not None:
                params.nprobe = self.config.nprobe
            if hnsw is not None:
                params.efSearch = max(self.config.ef_search, k)
            scores, labels = self._index.search(q, k, params=params)
            del keep
        if self._family == "graph":
            labels = np.where(labels >= 0, self._pos2id[np.maximum(labels, 0)], -1)
        return scores, labels

    def _id_map(self) -> np.ndarray:
        """Position -> id array of an IndexIDMap2 (cached until the next write)."""
        if self._id_map_cache is None:
            self._id_map_cache = faiss.vector_to_array(self._index.id_map)
        return self._id_map_cache

    def _selector(self, allowed: np.ndarray | None, cache_key: Any = None) -> tuple[Any, Any]:
        """A FAISS id selector for ``allowed`` (and the array it points into, which must outlive the search).

        Selectors are cached per filter until the next write: building one over 100,000s of ids costs more than
        the search itself.
        """
        if allowed is None:
            if self._family != "graph" or self.tombstones == 0:
                return None, None
            if self._alive_bitmap is None:
                self._alive_bitmap = np.packbits(self._alive, bitorder="little")
            return faiss.IDSelectorBitmap(len(self._alive), faiss.swig_ptr(self._alive_bitmap)), self._alive_bitmap
        cached = self._selector_cache.get(cache_key) if cache_key is not None else None
        if cached is not None and cached[0] is allowed:
            return cached[1], cached[2]
        if self._family == "graph":  # positions, not ids: live entries whose id matches
            mask = self._alive & np.isin(self._pos2id, allowed)
        elif len(allowed) and allowed[-1] < 32 * len(allowed):
            # Dense ids (allowed is sorted): a bitmap tests membership in O(1) and is quick to build.
            mask = np.zeros(int(allowed[-1]) + 1, dtype=bool)
            mask[allowed] = True
        else:
            mask = None
        if mask is not None:
            keep: np.ndarray = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(keep))
        else:
            keep, selector = allowed, faiss.IDSelectorBatch(allowed)
        if cache_key is not None:
            self._selector_cache[cache_key] = (allowed, selector, keep)
            while len(self._selector_cache) > 8:
                self._selector_cache.popitem(last=False)
        return selector, keep
