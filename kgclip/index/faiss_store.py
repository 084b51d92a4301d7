"""Persistence and GPU placement of :class:`~kgclip.index.faiss_index.FaissIndex` (a mixin, to keep modules small).

See :mod:`kgclip.index.persistence` for the on-disk layout, checksums, consistent reads and the writer lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from kgclip.atomic import atomic_directory
from kgclip.errors import ArtifactCorruptError, EncoderMismatchError, IndexError_, StaleArtifactError
from kgclip.index.metadata import MetadataStore
from kgclip.index.persistence import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DirectoryLock,
    file_entry,
    library_versions,
    maybe_locked,
    read_snapshot,
)

if TYPE_CHECKING:
    from kgclip.index.faiss_index import FaissIndex

__all__ = ["FaissPersistenceMixin"]


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class FaissPersistenceMixin:
    """``save`` / ``load`` / ``updating`` and the lazily refreshed GPU copy of a FaissIndex."""

    _lock: Any
    _index: Any
    _family: str
    config: Any

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
                on_disk = _disk_generation(target)
                if on_disk is not None and on_disk != self._source[1]:
                    raise StaleArtifactError(
                        f"{target} was saved by another writer (generation {on_disk}) after this index was loaded "
                        f"(generation {self._source[1]}); reload it and re-apply your changes, or use "
                        "FaissIndex.updating() to serialise writers"
                    )
            if self._family == "graph" and self.tombstones > 0 and \
                    self.tombstones / max(1, len(self._alive)) > self.config.compact_min_dead_fraction:
                self.compact()
            self._generation = max(self._generation, _disk_generation(target) or 0) + 1
            blobs = {"index.faiss": faiss.serialize_index(self._index).tobytes(),
                     "metadata.sqlite": self._store.to_bytes()}
            if self._family == "graph":
                from safetensors.numpy import save as st_save

                blobs["positions.safetensors"] = st_save({"pos2id": self._pos2id,
                                                          "alive": self._alive.astype(np.uint8)})
            manifest = self._manifest(blobs)
            # Under the writer lock any leftover temporary directory belongs to a writer that died: remove it.
            for stale in target.parent.glob(f".{target.name}.new-*"):
                shutil.rmtree(stale, ignore_errors=True)
            with atomic_directory(target) as tmp:
                for name, data in blobs.items():
                    _write_synced(tmp / name, data)
                _write_synced(tmp / "manifest.json",
                              (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
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
        from kgclip.index.faiss_index import IndexConfig

        config = IndexConfig.from_dict(manifest["config"])
        if device is not None:
            config = dataclasses.replace(config, device=device)
        try:
            index = faiss.deserialize_index(np.frombuffer(blobs["index.faiss"], dtype=np.uint8))
        except (RuntimeError, KeyError) as exc:
            raise ArtifactCorruptError(f"{target}/index.faiss cannot be read by FAISS ({exc}); rebuild the index") from exc
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
        self._generation = int(manifest.get("generation", 0))
        self._source = (target.resolve(), self._generation)
        return self

    @classmethod
    @contextlib.contextmanager
    def updating(cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, *,
                 lock_timeout: float = 60.0, create: Any = None) -> Iterator["FaissIndex"]:
        """Load, modify and save ``directory`` while holding the writer lock, so concurrent writers serialise.

        ``create``: the config of a new, empty index when ``directory`` holds none yet.
        """
        target = Path(directory)
        with DirectoryLock(target, timeout=lock_timeout) as lock:
            if (target / "manifest.json").exists() or create is None:
                index = cls.load(target, encoder_fingerprint)
            else:
                index = cls(create, encoder_fingerprint=encoder_fingerprint)
            index._writer_lock = lock
            try:
                yield index
                index.save(target)
            finally:
                index._writer_lock = None


def _disk_generation(directory: Path) -> int | None:
    try:
        return int(json.loads((directory / "manifest.json").read_text(encoding="utf-8")).get("generation", 0))
    except (OSError, ValueError, AttributeError):
        return None


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
