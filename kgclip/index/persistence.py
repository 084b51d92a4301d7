"""On-disk layout shared by index backends: manifest, checksummed files, consistent reads, and the writer lock.

A saved index is a directory::

    index.faiss          the FAISS index (faiss.write_index format; never pickle)
    metadata.sqlite      the SQLite metadata store
    positions.safetensors  (only for indexes that keep tombstones) position -> id map and live mask
    manifest.json        dimension, metric, factory, encoder fingerprint, counts, versions, file checksums

The directory is written into a sibling temporary directory and swapped in (:func:`kgclip.atomic.atomic_directory`),
so a crash mid-save leaves the previous index. Readers read every file through one directory handle and check
each file's checksum, so a reader racing a writer's swap sees either the old or the new index, never a mix; a
truncated or corrupted file raises :class:`~kgclip.errors.ArtifactCorruptError`. Writers take an exclusive
``fcntl`` lock on a lock file beside the directory (``.<name>.lock``), so concurrent writers are serialised.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kgclip.artifacts import read_json_header
from kgclip.atomic import atomic_directory
from kgclip.errors import ArtifactCorruptError, IndexError_, LockedError
from kgclip.fingerprint import fingerprint_bytes
from kgclip.locking import FileLock

__all__ = ["DirectoryLock", "read_snapshot", "read_manifest", "write_snapshot", "saved_generation", "file_entry",
           "library_versions", "recover_interrupted_save", "restore_abandoned", "FORMAT_NAME", "FORMAT_VERSION",
           "MANIFEST_NAME", "updating"]

FORMAT_NAME = "kgclip-index"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def lock_path(directory: str | os.PathLike[str]) -> Path:
    """The lock file of an index directory (beside it, since the directory itself is swapped on save)."""
    target = Path(directory)
    return target.parent / f".{target.name}.lock"


class DirectoryLock(FileLock):
    """Exclusive inter-process writer lock for an index directory (``fcntl.flock`` on ``.<name>.lock`` beside it).

    Args:
        directory: the index directory to protect.
        timeout: seconds to wait for another writer; ``0`` refuses at once. Raises ``LockedError`` on expiry.

    The lock is released when the process dies, so a killed writer never leaves a stale lock.
    """

    def __init__(self, directory: str | os.PathLike[str], timeout: float = 60.0) -> None:
        super().__init__(lock_path(directory), timeout, activity=f"writing the index at {Path(directory)}",
                         advice="Retry when it finishes, or pass a longer lock timeout.")


def file_entry(data: bytes) -> dict[str, Any]:
    """Manifest entry of one file: size and blake2b checksum."""
    return {"bytes": len(data), "blake2b": fingerprint_bytes(data)}


def library_versions() -> dict[str, str]:
    import faiss
    import numpy

    from importlib.metadata import PackageNotFoundError, version

    try:
        kgclip_version = version("kgclip")
    except PackageNotFoundError:
        kgclip_version = "unknown"
    return {
        "kgclip": kgclip_version,
        "faiss": getattr(faiss, "__version__", "unknown"),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _swapped_away(directory: Path, dir_fd: int) -> bool:
    """Whether ``directory`` no longer names the directory open as ``dir_fd`` (a writer swapped in a new version).

    Checking the path for a manifest is not enough: after a swap the path holds the *new* version, manifest
    included, while the files of the version being read are gone.
    """
    try:
        now = os.stat(directory)
    except FileNotFoundError:
        return True
    opened = os.fstat(dir_fd)
    return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)


def _read_all(directory: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    # One directory handle for every file: if a writer swaps the directory meanwhile, we keep reading the one we
    # opened (or get FileNotFoundError when the old one was already deleted, and the caller retries).
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        def read(name: str) -> bytes:
            fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as handle:
                return handle.read()

        try:
            manifest = json.loads(read("manifest.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactCorruptError(
                f"{directory}/manifest.json is unreadable ({exc}); rebuild the index or restore a backup"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ArtifactCorruptError(f"{directory}/manifest.json is not a {FORMAT_NAME} manifest")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise ArtifactCorruptError(f"{directory}/manifest.json lists no files; rebuild the index")
        blobs: dict[str, bytes] = {}
        for name, entry in files.items():
            try:
                data = read(name)
            except FileNotFoundError:
                if _swapped_away(directory, dir_fd):
                    raise  # a writer replaced the directory we opened and deleted its files: the caller retries
                raise ArtifactCorruptError(
                    f"{directory}/{name} is missing; rebuild the index or restore a backup"
                ) from None
            if len(data) != entry.get("bytes") or fingerprint_bytes(data) != entry.get("blake2b"):
                raise ArtifactCorruptError(
                    f"{directory}/{name} is corrupted or truncated ({len(data)} bytes, manifest says "
                    f"{entry.get('bytes')}; checksum mismatch). Rebuild the index or restore a backup."
                )
            blobs[name] = data
        return manifest, blobs
    finally:
        os.close(dir_fd)


def read_snapshot(directory: str | os.PathLike[str], attempts: int = 40) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read the manifest and every file it lists, checksum-verified, from one consistent directory version.

    Retries briefly when a concurrent writer swaps the directory during the read, and restores the previous
    version when a writer died between the two renames of its swap (no writer holds the lock any more).
    """
    target = Path(directory)
    for attempt in range(attempts):
        try:
            return _read_all(target)
        except FileNotFoundError:
            if target.exists() and not (target / "manifest.json").exists():
                raise ArtifactCorruptError(
                    f"{target} is not a kgclip index (no manifest.json); rebuild it or restore a backup"
                ) from None
            if not target.exists():
                leftovers = sorted(target.parent.glob(f".{target.name}.old-*"))
                if not leftovers and not any(target.parent.glob(f".{target.name}.new-*")):
                    raise IndexError_(
                        f"no index at {target}; build one with `kgclip index build` or FaissIndex.save()"
                    ) from None
                if leftovers and _restore_if_abandoned(target):
                    continue
            time.sleep(min(0.5, 0.02 * (attempt + 1)))
    raise IndexError_(f"{target} kept changing while being read; retry when the writer has finished")


def _restore_if_abandoned(target: Path) -> bool:
    """Put back the previous version left aside by a writer that died mid-swap; False if a writer is active."""
    try:
        with DirectoryLock(target, timeout=0):
            restore_abandoned(target)
            return True
    except LockedError:
        return False


def restore_abandoned(directory: str | os.PathLike[str]) -> None:
    """Finish what a writer that died mid-save left behind; the caller holds the writer lock.

    A save builds ``.<name>.new-*``, renames the live directory to ``.<name>.old-*`` and the new one into place,
    then deletes the old one. A crash between the two renames leaves no live directory: the newest ``.old-*``
    version is put back. Any other ``.new-*`` / ``.old-*`` leftover is an abandoned temporary copy and is removed.
    """
    target = Path(directory)
    olds = list(target.parent.glob(f".{target.name}.old-*"))
    if not target.exists() and olds:
        newest = max(olds, key=lambda p: (saved_generation(p) or 0, p.stat().st_mtime))
        os.replace(newest, target)
        olds.remove(newest)
    for stale in [*olds, *target.parent.glob(f".{target.name}.new-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def recover_interrupted_save(directory: str | os.PathLike[str]) -> None:
    """:func:`restore_abandoned` when a dead writer left something behind and no writer is active now.

    Cheap when there is nothing to do (two directory globs); run before reading a manifest, so an index whose save
    was interrupted between its two renames opens again instead of looking absent.
    """
    target = Path(directory)
    if any(target.parent.glob(f".{target.name}.old-*")) or any(target.parent.glob(f".{target.name}.new-*")):
        _restore_if_abandoned(target)


@contextlib.contextmanager
def maybe_locked(directory: Path, lock: DirectoryLock | None, timeout: float) -> Iterator[None]:
    """Hold the writer lock for ``directory`` unless the caller already holds ``lock`` on it."""
    if lock is not None and lock.held and lock.path == lock_path(directory):
        yield
        return
    with DirectoryLock(directory, timeout=timeout):
        yield


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a saved index directory (raises ``ArtifactCorruptError`` when missing or unreadable).

    An interrupted save is recovered first (:func:`recover_interrupted_save`).
    """
    recover_interrupted_save(directory)
    path = Path(directory) / MANIFEST_NAME
    manifest = read_json_header(
        path, missing=f"{directory} is not a kgclip index (no {MANIFEST_NAME}). Build one with `kgclip index build` "
                      "or FaissIndex.save().", recover="rebuild the index or restore a backup.")
    if "backend" not in manifest:
        raise ArtifactCorruptError(f"{path} has no 'backend' field; rebuild the index or restore a backup.")
    return manifest


def saved_generation(directory: str | os.PathLike[str]) -> int | None:
    """The ``generation`` counter of the index saved in ``directory`` (``None`` when there is none)."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))
        return int(manifest.get("generation", 0))
    except (OSError, ValueError, AttributeError):
        return None


def write_snapshot(directory: str | os.PathLike[str], blobs: Mapping[str, bytes], manifest: Mapping[str, Any]) -> None:
    """Write ``blobs`` (file name -> bytes, each fsynced) and the manifest as one atomic directory swap.

    Call under the writer lock: any leftover temporary directory then belongs to a writer that died, and is removed.
    """
    target = Path(directory)
    restore_abandoned(target)
    with atomic_directory(target) as tmp:
        for name, data in blobs.items():
            _write_synced(tmp / name, data)
        _write_synced(tmp / MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def updating(cls: Any, directory: str | os.PathLike[str], encoder_fingerprint: str | None, *, lock_timeout: float,
             create: Any) -> Iterator[Any]:
    """Load (or create from the config ``create`` when ``directory`` holds no index yet), modify and save an index of
    backend ``cls`` while holding the directory's writer lock, so concurrent writers serialise (every backend's
    ``updating`` classmethod)."""
    target = Path(directory)
    with DirectoryLock(target, timeout=lock_timeout) as lock:
        restore_abandoned(target)  # a previous version left aside by a dead writer is not "no index yet"
        if (target / MANIFEST_NAME).exists() or create is None:
            index = cls.load(target, encoder_fingerprint)
        else:
            index = cls(create, encoder_fingerprint=encoder_fingerprint)
        index._writer_lock = lock
        try:
            yield index
            index.save(target)
        finally:
            index._writer_lock = None
