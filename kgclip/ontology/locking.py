"""The writers' lock of a graph directory, so that two simultaneous edits never lose one.

A curated graph directory (``ontologies/<name>/``) is read, modified and written by
:class:`~kgclip.ontology.curation.Curator` and ``kgclip ontology import``. Each holds :func:`graph_dir_lock`
(``fcntl.flock`` on ``DIR/.lock``) across that whole cycle; a second writer waits up to :data:`LOCK_TIMEOUT`
seconds and then gets :class:`~kgclip.errors.LockedError`. Readers take no lock: every save is atomic.
:func:`meta_stamp` lets a writer that did not hold the lock throughout notice that another one saved meanwhile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from kgclip.locking import FileLock

__all__ = ["graph_dir_lock", "meta_stamp", "LOCK_FILE", "LOCK_TIMEOUT"]

LOCK_FILE = ".lock"  # inside the graph directory; git should ignore it
LOCK_TIMEOUT = 10.0  # seconds a writer waits for another one before LockedError


@contextlib.contextmanager
def graph_dir_lock(directory: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT) -> Iterator[Path]:
    """Hold the exclusive writers' lock of a graph directory (``fcntl.flock`` on ``DIR/.lock``).

    Hold it across a whole read-modify-write cycle (load, edit, :func:`save_graph`) so that two processes editing
    one directory run one after the other instead of one overwriting the other's edit. Readers need no lock: saves
    are atomic. The lock dies with its process, so a killed writer never leaves a stale lock; the (empty) lock file
    stays, since deleting it would race with a waiting writer.

    Args:
        directory: the graph directory (created if missing, so that a first import can lock it).
        timeout: seconds to wait for another writer; ``0`` refuses at once.

    Yields:
        The lock file's path.

    Raises:
        LockedError: another process still held the lock after ``timeout`` seconds.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    lock = FileLock(path, timeout, activity=f"editing the graph in {directory}",
                    advice="Retry when that edit finishes (a lock left by a killed process is released automatically).")
    with lock:
        yield path


def meta_stamp(directory: str | os.PathLike[str]) -> bytes | None:
    """The directory's ``meta.json`` as it is now (``None`` when absent).

    Every save that changes anything rewrites ``meta.json`` (it holds the graph and file fingerprints), so two
    different stamps mean that someone saved in between.
    """
    try:
        return (Path(directory) / "meta.json").read_bytes()
    except FileNotFoundError:
        return None
