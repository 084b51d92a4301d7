"""FAISS backend of :class:`~kgclip.index.base.VectorIndex`: factory strings, explicit ids, remove/update, filters.

How ids, removal and filters work per index family (chosen from the factory string):

- ``"idmap"`` (``Flat``, ``SQ8``, ``PQ16``... flat-code indexes): wrapped in ``IndexIDMap2``; FAISS removes natively.
- ``"ivf"`` (``IVF4096,Flat``, ``IVF1024,PQ32``, ``OPQ16,IVF…``): native ``add_with_ids`` with a hash-table direct
  map, so ids can be removed and vectors reconstructed; the index must be trained first (on the first ``add`` or
  with :meth:`FaissIndex.train`), and too few training vectors is a clear error saying how many are needed.
- ``"graph"`` (``HNSW32``, ``HNSW32,SQ8``... anything FAISS cannot remove from): vectors are stored by position;
  removing marks a tombstone that searches exclude with an ``IDSelectorBitmap`` (FAISS skips excluded entries
  while it walks the graph, so no result is lost), and :meth:`compact` (run by ``save``) rebuilds without them.

Filtered search returns the true top-k among matching items: when few items match (``exact_filter_max``) their
vectors are reconstructed and scored exactly; otherwise FAISS searches with an id selector (exact for flat indexes,
the index's own recall for IVF / HNSW), and a query that comes back short falls back to the exact path.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError, EncoderMismatchError, IndexError_
from kgclip.index.vectors import as_ids, checked_batch, normalised
from kgclip.index.base import INDEX_BACKENDS, SearchHit, SearchResults
from kgclip.index.faiss_store import FaissPersistenceMixin
from kgclip.index.metadata import MetadataStore, normalise_filters
from kgclip.index.persistence import DirectoryLock

__all__ = ["IndexConfig", "FaissIndex"]

_DEVICES = ("cpu", "auto", "cuda")


@dataclass(frozen=True)
class IndexConfig(Config):
    """Configuration of a :class:`FaissIndex` (saved in its manifest)."""

    dim: int = 384  # vector dimension
    factory: str = "Flat"  # FAISS factory string without ids/metric: Flat, IVF4096,Flat, IVF1024,PQ32, HNSW32...
    nprobe: int = 16  # IVF lists visited per query (recall vs speed)
    ef_search: int = 64  # HNSW candidate list size per query (recall vs speed); raised to k when smaller
    ef_construction: int = 40  # HNSW build-time candidate list size (graph quality vs build time)
    device: str = "cpu"  # cpu | auto (GPU via faiss-gpu when present) | cuda (GPU required)
    exact_filter_max: int = 50_000  # filtered searches matching at most this many items are scored exactly
    compact_min_dead_fraction: float = 0.0  # save() rebuilds a graph index when tombstones exceed this fraction
    spherical: bool = True  # IVF training: normalise centroids (spherical k-means suits cosine similarity)

    def __post_init__(self) -> None:
        if int(self.dim) <= 0:
            raise ConfigError(f"dim must be positive, got {self.dim}")
        if not self.factory or "idmap" in self.factory.lower():
            raise ConfigError(
                f"factory {self.factory!r}: give a FAISS factory string such as 'Flat', 'IVF1024,Flat' or "
                "'HNSW32', without IDMap (ids are handled by FaissIndex)"
            )
        if self.device not in _DEVICES:
            raise ConfigError(f"device must be one of {_DEVICES}, got {self.device!r}")
        if self.nprobe < 1 or self.ef_search < 1 or self.ef_construction < 1:
            raise ConfigError("nprobe, ef_search and ef_construction must be >= 1")
        if self.exact_filter_max < 0 or not 0.0 <= self.compact_min_dead_fraction <= 1.0:
            raise ConfigError("exact_filter_max must be >= 0 and compact_min_dead_fraction within [0, 1]")


class FaissIndex(FaissPersistenceMixin):
    """A FAISS index with explicit int64 ids, an SQLite metadata store, filters and crash-safe persistence.

    Args:
        config: an :class:`IndexConfig`; or give its fields as keywords (``FaissIndex(dim=384, factory="HNSW32")``).
        encoder_fingerprint: fingerprint of the encoder whose vectors this index holds (checked at load time).

    Example:
        >>> idx = FaissIndex(dim=4)
        >>> idx.add([7, 8], np.eye(4, dtype="float32")[:2], [{"modality": "CT"}, {"modality": "MR"}])
        >>> [h.id for h in idx.search(np.eye(4, dtype="float32")[:1], k=1, filters={"modality": "MR"})[0]]
        [8]
    """

    def __init__(self, config: IndexConfig | None = None, *, encoder_fingerprint: str | None = None,
                 encoder_name: str | None = None, **fields: Any) -> None:
        if config is None:
            config = IndexConfig(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        self.config = config
        self._encoder_fingerprint = encoder_fingerprint
        self.encoder_name = encoder_name  # informational: lets `kgclip index search` pick the same text encoder
        self._lock = threading.RLock()
        self._store = MetadataStore()
        self._generation = 0
        self._source: tuple[Path, int] | None = None  # (directory, generation) this instance was loaded from
        self._writer_lock: DirectoryLock | None = None
        self._gpu_index: Any = None
        self._gpu_stale = True
        self._set_index(self._new_faiss_index())

    # ------------------------------------------------------------------ construction
    def _new_faiss_index(self) -> Any:
        try:
            index = faiss.index_factory(self.config.dim, self.config.factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(f"FAISS cannot build factory {self.config.factory!r}: {exc}".strip()) from exc
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            ivf.cp.spherical = self.config.spherical
            concrete = faiss.downcast_index(ivf)
            if hasattr(concrete, "do_polysemous_training"):
                # Polysemous code re-ordering is only used with polysemous_ht and takes minutes to train.
                concrete.do_polysemous_training = False
            return index
        if isinstance(faiss.downcast_index(index), faiss.IndexFlatCodes):
            return faiss.IndexIDMap2(index)
        return index

    def _set_index(self, index: Any, pos2id: np.ndarray | None = None, alive: np.ndarray | None = None) -> None:
        self._index = index
        if faiss.try_extract_index_ivf(index) is not None:
            self._family = "ivf"
        elif isinstance(index, faiss.IndexIDMap2):
            self._family = "idmap"
        else:
            self._family = "graph"
        hnsw = self._hnsw()
        if hnsw is not None and index.ntotal == 0:
            hnsw.efConstruction = self.config.ef_construction
        n = index.ntotal if self._family == "graph" else 0
        self._pos2id = pos2id if pos2id is not None else np.full(n, -1, dtype=np.int64)
        self._alive = alive if alive is not None else np.zeros(n, dtype=bool)
        self._id2pos = {int(i): p for p, i in enumerate(self._pos2id.tolist()) if self._alive[p]}
        self._alive_bitmap: np.ndarray | None = None
        self._gpu_stale = True
        self._subset_cache: OrderedDict[Any, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._selector_cache: OrderedDict[Any, tuple[np.ndarray, Any, np.ndarray]] = OrderedDict()
        self._id_map_cache: np.ndarray | None = None

    def _hnsw(self) -> Any:
        inner = faiss.downcast_index(self._index)
        return getattr(inner, "hnsw", None)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def encoder_fingerprint(self) -> str | None:
        return self._encoder_fingerprint

    @property
    def family(self) -> str:
        """``"idmap"``, ``"ivf"`` or ``"graph"`` (see the module docstring)."""
        return self._family

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def metadata(self) -> MetadataStore:
        return self._store

    @property
    def tombstones(self) -> int:
        """Removed entries still physically in a graph index (0 for other families)."""
        return int(len(self._alive) - self._alive.sum()) if self._family == "graph" else 0

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return (f"FaissIndex(factory={self.config.factory!r}, dim={self.dim}, items={len(self)}, "
                f"family={self._family!r}, device={self.config.device!r})")

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change IVF ``nprobe`` / HNSW ``efSearch`` for later searches."""
        changes = {k: v for k, v in (("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            self._gpu_stale = True

    def check_encoder(self, fingerprint: str | None) -> None:
        """Raise ``EncoderMismatchError`` when ``fingerprint`` differs from the one the index was built with."""
        if fingerprint is not None and self._encoder_fingerprint is not None and fingerprint != self._encoder_fingerprint:
            raise EncoderMismatchError(
                f"this index was built with encoder fingerprint {self._encoder_fingerprint}, but the query encoder "
                f"has {fingerprint}; query with the same encoder, or rebuild the index with this one"
            )

    # ------------------------------------------------------------------ training
    def min_training_vectors(self) -> int:
        """The fewest vectors FAISS can train this index on (0 when no training is needed)."""
        if self._index.is_trained:
            return 0
        need = 1
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            need = max(need, int(ivf.nlist))
            ivf = faiss.downcast_index(ivf)
        inner = faiss.downcast_index(self._index)
        if isinstance(inner, faiss.IndexIDMap2):
            inner = faiss.downcast_index(inner.index)
        for holder in (ivf, inner):
            pq = getattr(holder, "pq", None)
            if pq is not None:
                need = max(need, int(pq.ksub))
        return need

    def train(self, vectors: np.ndarray) -> None:
        """Train the (IVF / PQ / SQ) index on representative vectors.

        Shapes: ``vectors`` ``[N, dim]``; N must be at least :meth:`min_training_vectors`.
        """
        x = normalised(vectors, self.dim)
        with self._lock:
            need = self.min_training_vectors()
            if len(x) < need:
                raise IndexError_(
                    f"factory {self.config.factory!r} needs at least {need} training vectors (about {39 * need} "
                    f"for good clusters), got {len(x)}. Add more vectors in the first batch, call train() with a "
                    f"larger sample, or choose a smaller index (e.g. fewer IVF lists, or 'Flat')."
                )
            ivf = faiss.try_extract_index_ivf(self._index)
            if ivf is not None and len(x) < 39 * int(ivf.nlist):
                warnings.warn(
                    f"training IVF with {len(x)} vectors for {ivf.nlist} lists; FAISS recommends >= "
                    f"{39 * int(ivf.nlist)}", stacklevel=2)
            self._index.train(x)

    # ------------------------------------------------------------------ writes
    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any] | None] | None = None) -> None:
        """Add (or replace) items. Untrained indexes train on this batch first.

        Shapes: ``ids`` ``[N]``, ``vectors`` ``[N, dim]`` (normalised here), ``metadata`` length N or ``None``.
        """
        ids, x = checked_batch(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        with self._lock:
            if not self._index.is_trained:
                self.train(x)
            existing = ids[self._store.contains(ids)]
            self._store.upsert(ids, metadata)  # validates metadata before any vector changes
            if len(existing):
                self._remove_vectors(existing)
            self._add_vectors(ids, x)
            self._gpu_stale = True

    def _add_vectors(self, ids: np.ndarray, x: np.ndarray) -> None:
        self._subset_cache.clear()
        self._selector_cache.clear()
        self._id_map_cache = None
        if self._family == "graph":
            start = self._index.ntotal
            self._index.add(x)
            self._pos2id = np.concatenate([self._pos2id, ids])
            self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
            self._id2pos.update(zip(ids.tolist(), range(start, start + len(ids))))
            self._alive_bitmap = None
        else:
            self._index.add_with_ids(x, ids)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items by id (unknown ids are ignored); returns how many were removed."""
        ids = as_ids(ids)
        with self._lock:
            present = self._store.delete(ids)
            if len(present):
                self._remove_vectors(present)
                self._gpu_stale = True
            return int(len(present))

    def _remove_vectors(self, ids: np.ndarray) -> None:
        self._subset_cache.clear()
        self._selector_cache.clear()
        self._id_map_cache = None
        if self._family == "graph":
            positions = [self._id2pos.pop(i) for i in ids.tolist() if i in self._id2pos]
            self._alive[positions] = False
            self._alive_bitmap = None
        elif self._family == "ivf":
            # The hash-table direct map only removes through an IDSelectorArray.
            self._index.remove_ids(faiss.IDSelectorArray(ids))
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def compact(self) -> int:
        """Rebuild a graph index without its tombstones; returns how many entries were dropped."""
        with self._lock:
            dead = self.tombstones
            if dead == 0:
                return 0
            live = np.flatnonzero(self._alive)
            vectors = self._index.reconstruct_batch(live) if len(live) else np.zeros((0, self.dim), np.float32)
            ids = self._pos2id[live]
            fresh = self._new_faiss_index()
            self._set_index(fresh)
            if len(ids):
                if not self._index.is_trained:
                    self.train(vectors)
                self._add_vectors(ids, normalised(vectors, self.dim))
            return dead

    # ------------------------------------------------------------------ reads
    def get(self, ids: Sequence[int] | np.ndarray) -> list[dict[str, Any] | None]:
        """Stored metadata per id (``None`` for unknown ids), in the order given."""
        ids = as_ids(ids)
        found = self._store.get_many(ids.tolist())
        return [found.get(i) for i in ids.tolist()]

    def ids(self) -> np.ndarray:
        """All stored ids, sorted."""
        return self._store.all_ids()

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored (normalised; approximate for PQ/SQ) vectors of ``ids``. Shapes: ``[N]`` -> ``[N, dim]``."""
        ids = as_ids(ids)
        with self._lock:
            missing = ids[~self._store.contains(ids)]
            if len(missing):
                raise IndexError_(f"ids not in the index: {missing[:10].tolist()}")
            if len(ids) == 0:
                return np.zeros((0, self.dim), dtype=np.float32)
            if self._family == "graph":
                keys = np.fromiter((self._id2pos[i] for i in ids.tolist()), dtype=np.int64, count=len(ids))
            else:
                keys = ids
            return self._index.reconstruct_batch(keys)

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

    def _subset_vectors(self, allowed: np.ndarray, cache_key: Any) -> np.ndarray:
        # Reconstructed vectors of a filter's matches are cached until the next write, so repeated filtered
        # queries cost one matrix product each.
        cached = self._subset_cache.get(cache_key) if cache_key is not None else None
        if cached is not None and cached[0] is allowed:
            self._subset_cache.move_to_end(cache_key)
            return cached[1]
        if self._family == "graph":
            keys = np.fromiter((self._id2pos[i] for i in allowed.tolist()), dtype=np.int64, count=len(allowed))
        else:
            keys = allowed
        vectors = self._index.reconstruct_batch(keys)
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
        hnsw = self._hnsw()
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


INDEX_BACKENDS.register("faiss")(FaissIndex)
