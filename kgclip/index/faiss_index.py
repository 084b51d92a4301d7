"""FAISS backend of :class:`~kgclip.index.base.VectorIndex`: factory strings, explicit ids, remove/update, filters.

How ids, removal and filters work per index family (chosen from the factory string):

- ``"idmap"`` (``Flat``, ``SQ8``, ``PQ16``... flat-code indexes): wrapped in ``IndexIDMap2``; FAISS removes natively.
- ``"ivf"`` (``IVF4096,Flat``, ``IVF1024,PQ32``, ``OPQ16,IVF…``): native ``add_with_ids`` with a hash-table direct
  map, so ids can be removed and vectors reconstructed; the index must be trained first (on the first ``add`` or
  with :meth:`FaissIndex.train`), and too few training vectors is a clear error saying how many are needed.
- ``"graph"`` (``HNSW32``, ``HNSW32,SQ8``... anything FAISS cannot remove from): vectors are stored by position;
  removing marks a tombstone that searches exclude with an ``IDSelectorBitmap`` (FAISS skips excluded entries
  while it walks the graph, so no result is lost), and :meth:`compact` (run by ``save``) rebuilds without them.

The class is assembled from four modules: this one (the ids, writes and reads), :mod:`kgclip.index.faiss_factory`
(:class:`IndexConfig`, building and training the FAISS index), :mod:`kgclip.index.faiss_search` (search, filters
and their exact fallback) and :mod:`kgclip.index.faiss_store` (persistence and the GPU copy).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kgclip.errors import EncoderMismatchError, IndexError_
from kgclip.index.base import INDEX_BACKENDS
from kgclip.index.faiss_factory import (IndexConfig, build_index, hnsw_of, index_family, needed_training_vectors,
                                        train_index)
from kgclip.index.faiss_search import FaissSearchMixin
from kgclip.index.faiss_store import FaissPersistenceMixin
from kgclip.index.metadata import MetadataStore
from kgclip.index.persistence import DirectoryLock
from kgclip.index.vectors import as_ids, checked_batch, normalised

__all__ = ["IndexConfig", "FaissIndex"]


class FaissIndex(FaissSearchMixin, FaissPersistenceMixin):
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
        self._set_index(build_index(self.config))

    # ------------------------------------------------------------------ construction
    def _set_index(self, index: Any, pos2id: np.ndarray | None = None, alive: np.ndarray | None = None) -> None:
        self._index = index
        self._family = index_family(index)
        hnsw = hnsw_of(index)
        if hnsw is not None and index.ntotal == 0:
            hnsw.efConstruction = self.config.ef_construction
        n = index.ntotal if self._family == "graph" else 0
        self._pos2id = pos2id if pos2id is not None else np.full(n, -1, dtype=np.int64)
        self._alive = alive if alive is not None else np.zeros(n, dtype=bool)
        self._id2pos = {int(i): p for p, i in enumerate(self._pos2id.tolist()) if self._alive[p]}
        self._alive_bitmap: np.ndarray | None = None
        self._gpu_stale = True
        self._reset_search_caches()

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
        return needed_training_vectors(self._index)

    def train(self, vectors: np.ndarray) -> None:
        """Train the (IVF / PQ / SQ) index on representative vectors.

        Shapes: ``vectors`` ``[N, dim]``; N must be at least :meth:`min_training_vectors`.
        """
        x = normalised(vectors, self.dim)
        with self._lock:
            train_index(self._index, x, self.config.factory)

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
        self._reset_search_caches()
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
        self._reset_search_caches()
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
            fresh = build_index(self.config)
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
            return self._index.reconstruct_batch(self._faiss_keys(ids))


INDEX_BACKENDS.register("faiss")(FaissIndex)
