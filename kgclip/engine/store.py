"""Crash-safe, locked mutations of a workspace directory.

Every change to a workspace (a build or rebuild, :meth:`~kgclip.engine.Engine.add_cases`, an accepted suggestion)
is one :func:`mutation`: under the workspace's writer lock, the new version is written into a sibling staging
directory (``.<name>.new-*``; files the change does not touch are hard-linked from the current version, so a
mutation costs the files it changes), then swapped in with two renames: the current version aside
(``.<name>.old-*``), the staging directory into place. A crash at any point leaves the previous version or the new
one; the next writer, or the next :meth:`~kgclip.engine.Engine.load`, restores the previous version when the crash
fell between the two renames and removes the leftovers (:func:`recover`).

The lock (``fcntl.flock`` on ``.<name>.lock`` beside the workspace, since the directory itself is swapped) dies with
its process, so a killed writer never leaves a stale lock. Readers take no lock: :func:`read_consistently` retries a
load that raced a swap.

Backends that keep their vectors in an external store (Milvus) are updated in place by the writer holding the lock;
their directory in the workspace (a manifest, and a Milvus Lite file when the store is local) is carried into the
new version by hard links. Their updates are upserts by case position, so repeating an interrupted mutation
converges.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from kgclip.atomic import fsync_dir
from kgclip.errors import ArtifactCorruptError, ConfigError, LockedError, StaleArtifactError
from kgclip.locking import FileLock

__all__ = ["WorkspaceLock", "mutation", "recover", "read_consistently", "link_tree", "LOCK_TIMEOUT_S"]

T = TypeVar("T")

LOCK_TIMEOUT_S = 120.0  # how long a writer waits for another writer of the same workspace


def _checkpoint(stage: str) -> None:
    """Called after each durable step of a mutation (``"staged"``, ``"aside"``, ``"swapped"``); crash-injection
    tests replace it to stop a mutation right there."""


class WorkspaceLock(FileLock):
    """The writer lock of a workspace (``.<name>.lock`` beside it)."""

    def __init__(self, workspace: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT_S) -> None:
        target = Path(workspace)
        super().__init__(target.parent / f".{target.name}.lock", timeout,
                         activity=f"writing the workspace at {target}",
                         advice="Retry when it finishes (each add_cases or build holds the lock while it writes).")


def _leftovers(workspace: Path, kind: str) -> list[Path]:
    return sorted(workspace.parent.glob(f".{workspace.name}.{kind}-*"))


def _recover_locked(workspace: Path) -> None:
    olds = _leftovers(workspace, "old")
    if not workspace.exists() and olds:  # a crash between the two renames: the previous version is aside
        os.replace(olds.pop(), workspace)
        fsync_dir(workspace.parent)
    for path in olds + _leftovers(workspace, "new"):  # a finished swap's old version, or unfinished staging
        shutil.rmtree(path, ignore_errors=True)


def recover(workspace: str | os.PathLike[str]) -> None:
    """Restore or clean up after a writer that died mid-mutation; does nothing while a writer is active."""
    target = Path(workspace)
    if not _leftovers(target, "old") and not _leftovers(target, "new"):
        return
    with contextlib.suppress(LockedError):
        with WorkspaceLock(target, timeout=0):
            _recover_locked(target)


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (a file or a directory tree) to ``dst``; a copy where the filesystem has no hard links."""
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            link_tree(child, dst / child.name)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def mutation(workspace: str | os.PathLike[str], *, carry: Callable[[Path], Iterable[str]] | None = None,
             timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Write a new version of ``workspace`` into the yielded staging directory; swap it in when the block ends.

    Args:
        carry: given the current workspace directory, the names of its entries to carry into the new version
            unchanged (hard-linked before the block runs); ``None``: nothing (a build writes everything).
        timeout: seconds to wait for another writer (then ``LockedError``).

    The caller reads the current version (``workspace``) inside the block: it holds the lock, so no other writer
    changes it meanwhile. An exception in the block leaves the workspace as it was.
    """
    target = Path(workspace)
    target.parent.mkdir(parents=True, exist_ok=True)
    with WorkspaceLock(target, timeout):
        _recover_locked(target)
        _refuse_foreign(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        try:
            if carry is not None and target.is_dir():
                for name in carry(target):
                    if (target / name).exists():
                        link_tree(target / name, staging / name)
            yield staging
        except Exception:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _commit(target, staging)


def _refuse_foreign(target: Path) -> None:
    """A swap replaces ``target`` whole: never let that be a user's file or a folder that is not a workspace."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    if target.is_dir() and any((target / name).is_file() for name in ("manifest.json", "engine_config.json")):
        return
    what = "a file" if not target.is_dir() else "a folder that is not a kgclip workspace"
    raise ConfigError(f"{target} is {what}; nothing was written. Pass a new or empty directory for the workspace")


def _commit(target: Path, staging: Path) -> None:
    fsync_dir(staging)
    _checkpoint("staged")
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
        _checkpoint("aside")
    os.replace(staging, target)
    fsync_dir(target.parent)
    _checkpoint("swapped")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def read_consistently(workspace: str | os.PathLike[str], read: Callable[[], T], attempts: int = 20) -> T:
    """Run ``read`` (which loads files of ``workspace``) until it ran against one version of the directory.

    A writer's swap during the read shows as a vanished file or a manifest mismatch, or as a changed directory
    identity afterwards; then the read is retried on the new version. The last failure is raised.
    """
    target = Path(workspace)
    recover(target)
    for attempt in range(attempts):
        before = _identity(target)
        try:
            value = read()
        except (FileNotFoundError, ArtifactCorruptError, StaleArtifactError):
            if _identity(target) == before and not _leftovers(target, "old") or attempt == attempts - 1:
                raise
            recover(target)
            time.sleep(min(0.5, 0.02 * (attempt + 1)))
            continue
        if _identity(target) == before:
            return value
        time.sleep(min(0.5, 0.02 * (attempt + 1)))
    raise LockedError(f"workspace {target} kept changing while being read; retry when the writer has finished")
