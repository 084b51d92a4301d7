"""FAISS backend of :class:`~kgclip.index.protocol.VectorIndex`: explicit ids, remove/update, filters, persistence.

How ids, removal and filters work per index family (chosen from the factory string, see
:mod:`kgclip.index.faiss_factory`):

- ``"idmap"`` (``Flat``, ``SQ8``, ``PQ16``... flat-code indexes): wrapped in ``IndexIDMap2``; FAISS removes natively.
- ``"ivf"`` (``IVF4096,Flat``, ``IVF1024,PQ32``, ``OPQ16,IVF…``): native ``add_with_ids`` with a hash-table direct
  map, so ids can be removed and vectors reconstructed; the index must be trained first (on the first ``add`` or
  with :meth:`FaissIndex.train`), and too few training vectors is a clear error saying how many are needed.
- ``"graph"`` (``HNSW32``, ``HNSW32,SQ8``... anything FAISS cannot remove from): vectors are stored by position;
  removing marks a tombstone that searches exclude with an ``IDSelectorBitmap`` (FAISS skips excluded entries
  while it walks the graph, so no result is lost), and :meth:`FaissIndex.compact` (run by ``save``) rebuilds
  without them.

Filtered search returns the true top-k among matching items: when few items match (``exact_filter_max``) their
vectors are reconstructed and scored exactly; otherwise FAISS searches with an id selector (exact for flat indexes,
the index's own recall for IVF / HNSW), and a query that comes back short falls back to the exact path.
Reconstructed subsets, selectors and the IDMap's position -> id array are cached until the next write.

Persistence (the on-disk layout, checksums, consistent reads, the writer lock) is :mod:`kgclip.index.persistence`;
the GPU copy (faiss-gpu, ``device="auto"|"cuda"``) serves unfiltered searches and is re-uploaded after writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kgclip.errors import ArtifactCorruptError, EncoderMismatchError, IndexError_, StaleArtifactError
from kgclip.index.faiss_factory import (IndexConfig, build_index, hnsw_of, index_family, needed_training_vectors,
                                        train_index)
from kgclip.index.metadata import MetadataStore, normalise_filters
from kgclip.index.persistence import (FORMAT_NAME, FORMAT_VERSION, DirectoryLock, file_entry,
                                      library_versions, maybe_locked, read_snapshot, saved_generation, write_snapshot)
from kgclip.index.protocol import INDEX_BACKENDS, SearchHit, SearchResults
from kgclip.index.vectors import as_ids, checked_batch, checked_k, exact_top_k, normalised

__all__ = ["IndexConfig", "FaissIndex"]


_GPU_MAX_K = 2048  # faiss-gpu's largest top-k; larger k is served by the CPU index


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@INDEX_BACKENDS.register("faiss")
class FaissIndex:
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
        # The IVF / HNSW parts whose search parameters each search sets (looked up once: a SWIG downcast per
        # query is a measurable share of a single small query).
        self._ivf = faiss.try_extract_index_ivf(index)
        self._hnsw = hnsw_of(index)
        if self._hnsw is not None and index.ntotal == 0:
            self._hnsw.efConstruction = self.config.ef_construction
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
        if (fingerprint is not None and self._encoder_fingerprint is not None
                and fingerprint != self._encoder_fingerprint):
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


    # ------------------------------------------------------------------ search
    def _reset_search_caches(self) -> None:
        """Forget cached subsets, selectors and the IDMap's id array (after every write)."""
        self._subset_cache: OrderedDict[Any, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._selector_cache: OrderedDict[Any, tuple[np.ndarray, Any, np.ndarray]] = OrderedDict()
        self._id_map_cache: np.ndarray | None = None

    def search(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
               ) -> list[list[SearchHit]]:
        """Top-``k`` hits per query among items matching ``filters``
        (see :func:`kgclip.index.metadata.normalise_filters`).

        Shapes: ``query`` ``[Q, dim]`` or ``[dim]`` -> Q lists of at most ``k`` :class:`SearchHit`, best first.
        """
        scores, labels = self.search_arrays(query, k, filters)
        # One metadata fetch for the whole batch, not one query per hit.
        valid = labels >= 0
        meta = self._store.get_many(labels[valid].tolist())
        out: list[list[SearchHit]] = []
        for row_s, row_l, row_v in zip(scores.tolist(), labels.tolist(), valid.tolist()):
            out.append(SearchResults(SearchHit(i, s, meta.get(i, {})) for s, i, v in zip(row_s, row_l, row_v) if v))
        return out

    def search_arrays(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search` but returns arrays, without metadata.

        Shapes: ``query`` ``[Q, dim]`` -> scores ``[Q, k']`` float32 and ids ``[Q, k']`` int64 (``-1`` padding),
        where ``k'`` is ``k`` capped at the number of stored vectors (at most :data:`~kgclip.index.vectors.MAX_K`).
        """
        q = normalised(query, self.dim, "query")
        with self._lock:
            k = checked_k(k, self._index.ntotal, len(q))
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
        """Exact top-``k`` among the ids ``allowed`` (their vectors reconstructed, cached per filter)."""
        if len(allowed) == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        scores, positions = exact_top_k(q, self._subset_vectors(allowed, cache_key), k)
        return scores, np.where(positions >= 0, allowed[np.maximum(positions, 0)], -1)

    def _search_index(self, q: np.ndarray, k: int, allowed: np.ndarray | None, cache_key: Any = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        ivf, hnsw = self._ivf, self._hnsw
        if ivf is not None:
            ivf.nprobe = self.config.nprobe
        ef = max(self.config.ef_search, k)
        if hnsw is not None:
            hnsw.efSearch = ef
        selector, keep = self._selector(allowed, cache_key)
        gpu = self._gpu() if selector is None and k <= _GPU_MAX_K else None
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
            boost = self._filter_boost(allowed)
            if ivf is not None:
                params.nprobe = min(int(ivf.nlist), int(np.ceil(self.config.nprobe * boost)))
            if hnsw is not None:
                params.efSearch = int(np.ceil(ef * boost))
            scores, labels = self._index.search(q, k, params=params)
            del keep
        if self._family == "graph":
            labels = np.where(labels >= 0, self._pos2id[np.maximum(labels, 0)], -1)
        return scores, labels

    def _filter_boost(self, allowed: np.ndarray | None) -> float:
        """How much to widen a search that skips non-matching (or removed) entries: 1 / matching fraction, capped.

        FAISS's HNSW walks every entry but keeps only selected ones, so of an ``efSearch`` candidate list only the
        matching fraction counts towards the result; an IVF search likewise finds only the matching fraction of
        its ``nprobe`` lists. Widening both by the inverse (at most ``filter_boost`` times) keeps recall at about
        that of an unfiltered search.
        """
        total = max(1, self._index.ntotal)
        matching = len(self) if allowed is None else len(allowed)
        return max(1.0, min(self.config.filter_boost, total / max(1, matching)))

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

    # ------------------------------------------------------------------ GPU
    def _gpu(self) -> Any:
        """The GPU copy used for unfiltered searches (``None`` on CPU); refreshed lazily after writes."""
        device = self.config.device
        if device == "cpu" or self._family == "graph":
            return None
        if not _gpu_available():
            if device == "cuda":
                raise IndexError_("device='cuda' needs faiss-gpu and a CUDA GPU (pip install faiss-gpu-cu12); "
                                  "use device='auto' to fall back to the CPU")
            return None
        if self._gpu_index is None or self._gpu_stale:
            # GPU indexes cannot remove ids, so the CPU index stays the master copy and is re-uploaded after writes.
            if not hasattr(self, "_gpu_resources"):
                self._gpu_resources = faiss.StandardGpuResources()
            options = faiss.GpuClonerOptions()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._index, options)
            ivf = faiss.try_extract_index_ivf(self._gpu_index)
            if ivf is not None:
                ivf.nprobe = self.config.nprobe
            self._gpu_stale = False
        return self._gpu_index

    @property
    def on_gpu(self) -> bool:
        """Whether unfiltered searches currently run on the GPU."""
        with self._lock:
            return self._gpu() is not None

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str], *, lock_timeout: float = 60.0) -> Path:
        """Save atomically into ``directory`` (replacing an earlier save), under the writer lock.

        Raises ``StaleArtifactError`` when this instance was loaded from ``directory`` and another writer has
        saved there since (use :meth:`updating` for a serialised load-modify-save).
        """
        target = Path(directory)
        with self._lock, maybe_locked(target, self._writer_lock, lock_timeout):
            if self._source is not None and self._source[0] == target.resolve():
                on_disk = saved_generation(target)
                if on_disk is not None and on_disk != self._source[1]:
                    raise StaleArtifactError(
                        f"{target} was saved by another writer (generation {on_disk}) after this index was loaded "
                        f"(generation {self._source[1]}); reload it and re-apply your changes, or use "
                        "FaissIndex.updating() to serialise writers"
                    )
            if self._family == "graph" and self.tombstones > 0 and \
                    self.tombstones / max(1, len(self._alive)) > self.config.compact_min_dead_fraction:
                self.compact()
            self._generation = max(self._generation, saved_generation(target) or 0) + 1
            blobs = {"index.faiss": faiss.serialize_index(self._index).tobytes(),
                     "metadata.sqlite": self._store.to_bytes()}
            if self._family == "graph":
                from safetensors.numpy import save as st_save

                blobs["positions.safetensors"] = st_save({"pos2id": self._pos2id,
                                                          "alive": self._alive.astype(np.uint8)})
            write_snapshot(target, blobs, self._manifest(blobs))
            self._source = (target.resolve(), self._generation)
        return target

    def _manifest(self, blobs: Mapping[str, bytes]) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "backend": "faiss",
            "dimension": self.dim,
            "metric": "inner_product",
            "normalized": True,
            "factory": self.config.factory,
            "family": self._family,
            "config": self.config.to_dict(),
            "encoder_fingerprint": self._encoder_fingerprint,
            "encoder_name": self.encoder_name,
            "counts": {"items": len(self), "vectors": int(self._index.ntotal), "tombstones": self.tombstones},
            "generation": self._generation,
            "versions": library_versions(),
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "files": {name: file_entry(data) for name, data in blobs.items()},
        }

    @classmethod
    def load(cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, *,
             device: str | None = None) -> "FaissIndex":
        """Load a saved index; ``encoder_fingerprint`` (of the query encoder) must match the one it was built with.

        Raises:
            EncoderMismatchError: the fingerprints differ.
            ArtifactCorruptError: a file is missing, truncated or corrupted.
        """
        target = Path(directory)
        manifest, blobs = read_snapshot(target)
        if manifest.get("backend") != "faiss":
            raise IndexError_(f"{target} holds a {manifest.get('backend')!r} index; load it with that backend")
        stored = manifest.get("encoder_fingerprint")
        if encoder_fingerprint is not None and stored is not None and encoder_fingerprint != stored:
            raise EncoderMismatchError(
                f"the index at {target} was built with encoder fingerprint {stored}, but the query encoder has "
                f"{encoder_fingerprint}; query with the encoder used to build it, or rebuild the index"
            )
        config = IndexConfig.from_dict(manifest["config"])
        if device is not None:
            config = dataclasses.replace(config, device=device)
        try:
            index = faiss.deserialize_index(np.frombuffer(blobs["index.faiss"], dtype=np.uint8))
        except (RuntimeError, KeyError) as exc:
            raise ArtifactCorruptError(
                f"{target}/index.faiss cannot be read by FAISS ({exc}); rebuild the index") from exc
        store = MetadataStore.from_bytes(blobs["metadata.sqlite"], name=str(target / "metadata.sqlite"))
        self = cls(config, encoder_fingerprint=stored, encoder_name=manifest.get("encoder_name"))
        pos2id = alive = None
        if "positions.safetensors" in blobs:
            from safetensors.numpy import load as st_load

            arrays = st_load(blobs["positions.safetensors"])
            pos2id, alive = arrays["pos2id"].astype(np.int64), arrays["alive"].astype(bool)
        self._store = store
        self._set_index(index, pos2id, alive)
        if self._family == "graph" and len(self._pos2id) != index.ntotal:
            raise ArtifactCorruptError(f"{target}: positions do not match index.faiss; rebuild the index")
        _check_manifest_facts(target, manifest, self, index)
        self._generation = int(manifest.get("generation", 0))
        self._source = (target.resolve(), self._generation)
        return self

    @classmethod
    @contextlib.contextmanager
    def updating(cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, *,
                 lock_timeout: float = 60.0, create: Any = None) -> Iterator["FaissIndex"]:
        """Load (or create with ``create``), modify and save ``directory`` under its writer lock, so concurrent
        writers serialise (:func:`kgclip.index.persistence.updating`)."""
        from kgclip.index.persistence import updating

        with updating(cls, directory, encoder_fingerprint, lock_timeout=lock_timeout, create=create) as index:
            yield index


def _check_manifest_facts(target: Path, manifest: Mapping[str, Any], loaded: "FaissIndex", index: Any) -> None:
    """The manifest's ``dimension`` and ``counts`` must describe the files beside it (a hand edit or a mixed-up copy
    is refused, not served with the wrong shape).

    Raises:
        ArtifactCorruptError: they disagree.
    """
    counts = manifest.get("counts") or {}
    facts = {"dimension": (manifest.get("dimension"), int(index.d)),
             "counts.vectors": (counts.get("vectors"), int(index.ntotal)),
             "counts.items": (counts.get("items"), len(loaded))}
    wrong = [f"{key} says {said!r}, the files hold {real}" for key, (said, real) in facts.items()
             if said is not None and said != real]
    if wrong:
        raise ArtifactCorruptError(f"{target}/manifest.json does not match its index ({'; '.join(wrong)}); restore "
                                   "the directory from a copy or rebuild the index")
