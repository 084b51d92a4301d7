"""Replacing several files of a directory as one atomic commit, with a roll-forward journal.

A curated graph is four files (``concepts.tsv``, ``relations.tsv``, ``changelog.jsonl``, ``meta.json``) that must
change together: a changelog or relations file ahead of ``concepts.tsv`` makes undo fail. Renaming four files is
not atomic, so :func:`commit_files` works like a database's redo log:

1. every new file is written beside its target as ``.NAME.TOKEN.new`` and fsynced;
2. the journal ``.commit-TOKEN.json`` (the list of renames) is written atomically: this is the commit point;
3. the renames run in the journal's order (``meta.json`` last), then the journal is deleted.

A crash before step 2 leaves the old files (and staged ``.new`` files that the next writer deletes); a crash after it
leaves a journal that :func:`recover` rolls forward, which is safe at any time, by anyone, any number of times: every
file it names was complete before the journal existed. Readers call :func:`recover` before reading; writers call
:func:`recover` with ``clean=True`` (under the directory's writers' lock) to also delete orphaned staged files.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from kgclip.atomic import atomic_write_bytes, fsync_dir
from kgclip.errors import ArtifactCorruptError

__all__ = ["commit_files", "recover", "pending_journals", "JOURNAL_GLOB"]

JOURNAL_GLOB = ".commit-*.json"
_STAGED_SUFFIX = ".new"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o644)  # shared, reviewable files


def pending_journals(directory: str | os.PathLike[str]) -> list[Path]:
    """Journals of commits that were interrupted after their commit point (oldest first)."""
    found = []
    for path in Path(directory).glob(JOURNAL_GLOB):
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_mtime_ns, path.name, path))
    return [p for _, _, p in sorted(found)]


def _roll_forward(directory: Path, journal: Path) -> None:
    try:
        renames = json.loads(journal.read_text(encoding="utf-8"))["renames"]
    except FileNotFoundError:
        return  # another process finished this commit meanwhile
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactCorruptError(f"{journal} is unreadable ({exc}); the commit it records cannot be finished. "
                                   "Restore the graph directory from git (or re-import it)") from exc
    for staged, name in renames:
        if "/" in staged or "/" in name or name.startswith("."):
            raise ArtifactCorruptError(f"{journal} names a file outside its directory; delete it and restore the "
                                       "graph directory from git")
        with contextlib.suppress(FileNotFoundError):  # already renamed (by us before a crash, or by a reader)
            os.replace(directory / staged, directory / name)
    fsync_dir(directory)
    with contextlib.suppress(FileNotFoundError):
        journal.unlink()
    fsync_dir(directory)


def recover(directory: str | os.PathLike[str], *, clean: bool = False) -> bool:
    """Finish every interrupted commit in ``directory``; returns whether there was one.

    Args:
        clean: also delete staged files no journal names (a commit that crashed before its commit point). Only a
            writer holding the directory's lock may do this: the files could belong to a commit in progress.
    """
    directory = Path(directory)
    journals = pending_journals(directory)
    for journal in journals:
        _roll_forward(directory, journal)
    if clean:  # staged files and the temporary file of a journal that was never completed
        for path in [*directory.glob(f".*{_STAGED_SUFFIX}"), *directory.glob("..commit-*.tmp")]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return bool(journals)


def commit_files(directory: str | os.PathLike[str], payloads: Mapping[str, bytes],
                 order: Sequence[str] = ()) -> list[str]:
    """Replace files of ``directory`` with ``payloads`` (``{file name: bytes}``) all together or not at all.

    The caller holds the directory's writers' lock. Files whose bytes are unchanged are not rewritten. ``order``
    names files to rename last, in that order (e.g. ``["meta.json"]``, the file that vouches for the others).

    Returns:
        The names of the files that changed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recover(directory, clean=True)
    changed = [name for name, data in payloads.items()
               if not ((directory / name).is_file() and (directory / name).read_bytes() == data)]
    if not changed:
        return []
    changed.sort(key=lambda name: (name in order, order.index(name) if name in order else 0, name))
    token = secrets.token_hex(6)
    renames: list[tuple[str, str]] = []
    try:
        for name in changed:
            staged = f".{name}.{token}{_STAGED_SUFFIX}"
            _write_synced(directory / staged, payloads[name])
            renames.append((staged, name))
        fsync_dir(directory)
    except BaseException:
        for staged, _ in renames:
            with contextlib.suppress(FileNotFoundError):
                (directory / staged).unlink()
        raise
    journal = directory / f".commit-{token}.json"
    atomic_write_bytes(journal, json.dumps({"renames": renames}).encode("utf-8"))  # the commit point
    _roll_forward(directory, journal)
    return changed
