"""Curating a concept graph: validated edits, a changelog, undo.

A :class:`Curator` wraps a :class:`~kgclip.ontology.model.ConceptGraph` (and, optionally, the directory it is stored
in). Every edit is checked *before* anything changes (unknown ids, duplicates, an ``is_a`` edge that would close a
cycle), so a refused edit (:class:`~kgclip.errors.CurationError`) leaves the graph and its files exactly as they were.
Every accepted edit becomes one :class:`ChangeEntry` in the :class:`Changelog` (:mod:`kgclip.ontology.changelog`,
``changelog.jsonl`` beside the graph), carrying what is needed to revert it, so :meth:`Curator.undo` restores the
graph exactly (same fingerprint), even in a later process. Each entry lists the ``concept_ids`` it touched, for
incremental refresh (``Changelog.changed_ids(since=seq)``).

Concurrent writers: :meth:`Curator.locked` holds the directory's writers' lock from load to the last save (what the
CLI does), so simultaneous edits run one after the other. A curator from :meth:`Curator.open` takes the lock only
while saving. Either way a save first checks that nobody else saved the directory since this curator loaded it, and
otherwise refuses (:class:`~kgclip.errors.CurationError`, the edit rolled back) instead of overwriting that edit.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> cur = Curator(tiny_graph())
    >>> seq = cur.changelog.last_seq
    >>> _ = cur.add_concept("RADLEX:RID99999", "lung nodule", parents=["RADLEX:RID5"], reason="missing term")
    >>> sorted(cur.changelog.changed_ids(since=seq))
    ['RADLEX:RID5', 'RADLEX:RID99999']
    >>> _ = cur.undo()
    >>> "RADLEX:RID99999" in cur.graph
    False
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kgclip.errors import CurationError
from kgclip.ontology.changelog import (CHANGELOG_FILE, IMPORT_ID_LIMIT, ChangeEntry, Changelog, apply_revert,
                                      concept_from_json)
from kgclip.ontology.curation_edits import REPLACED_BY, CurationEditsMixin
from kgclip.ontology.locking import LOCK_TIMEOUT, graph_dir_lock, meta_stamp
from kgclip.ontology.model import ConceptGraph, ValidationReport
from kgclip.ontology.query import IsAParents, find_concepts

__all__ = ["Curator", "Changelog", "ChangeEntry", "find_concepts", "REPLACED_BY"]

_IMPORT_ID_LIMIT = IMPORT_ID_LIMIT  # the old private name, still imported by callers
_UNSEEN = object()  # a curator built from a graph has not seen its directory: its first save does not check


class Curator(CurationEditsMixin):
    """Validated, logged, undoable edits on a graph, optionally persisted to a graph directory after each edit.

    Args:
        graph: the graph to edit in place.
        directory: where the graph is stored (:func:`~kgclip.ontology.store.save_graph`); ``None`` keeps edits in
            memory until :meth:`save` is called with a directory.
        changelog: the graph's history (default: empty, or the directory's ``changelog.jsonl`` via :meth:`open`).
        author: recorded on every entry unless an edit names another.
        autosave: write the directory after every edit (use :meth:`batch` to write once for many edits).
        lock_timeout: seconds to wait for another writer's lock on the directory before
            :class:`~kgclip.errors.LockedError`.

    Every edit method (:mod:`kgclip.ontology.curation_edits`) returns the :class:`ChangeEntry` it appended and raises
    :class:`CurationError` (changing nothing) when the edit is invalid.
    """

    def __init__(self, graph: ConceptGraph, directory: str | os.PathLike[str] | None = None, *,
                 changelog: Changelog | None = None, author: str | None = None, autosave: bool = True,
                 lock_timeout: float | None = None) -> None:
        self.graph = graph
        self.directory = Path(directory) if directory is not None else None
        self.changelog = changelog if changelog is not None else Changelog()
        self.author = author
        self.autosave = autosave
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self._deferred = 0
        self._lock_held = False  # inside Curator.locked: saves need no lock of their own
        self._seen: bytes | None | object = _UNSEEN  # meta.json as last loaded or saved, to detect other writers
        # is_a parents for cycle checks without O(E) scans: a CSR table built once (numpy) plus per-id overrides
        # for what our own edits changed since; valid while the graph's version is the one recorded.
        self._parents: IsAParents | None = None
        self._parents_version = -1

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, author: str | None = None, autosave: bool = True,
             lock_timeout: float | None = None) -> "Curator":
        """A curator over the graph stored in ``directory`` (and its changelog); see also :meth:`locked`."""
        from kgclip.ontology.store import load_graph_dir

        seen = meta_stamp(Path(directory))  # read before the graph: a save in between shows up as a conflict
        graph = load_graph_dir(directory)
        curator = cls(graph, directory, changelog=Changelog.load(Path(directory) / CHANGELOG_FILE), author=author,
                      autosave=autosave, lock_timeout=lock_timeout)
        curator._seen = seen
        return curator

    @classmethod
    @contextlib.contextmanager
    def locked(cls, directory: str | os.PathLike[str], *, author: str | None = None,
               timeout: float | None = None) -> Iterator["Curator"]:
        """Open ``directory`` while holding its writers' lock until the block ends (load, edits, saves).

        A second writer waits up to ``timeout`` seconds (default :data:`~kgclip.ontology.locking.LOCK_TIMEOUT`) and
        then raises :class:`~kgclip.errors.LockedError`, so two simultaneous edits never lose one.

        Example:
            >>> with Curator.locked("ontologies/radlex", author="ann") as cur:   # doctest: +SKIP
            ...     cur.add_relation("RADLEX:RID1301", "part_of", "RADLEX:RID1243")
        """
        from kgclip.ontology import store

        if not store.is_graph_dir(directory):
            store.load_graph_dir(directory)  # raises the "create it with import" error, creating nothing
        timeout = LOCK_TIMEOUT if timeout is None else timeout
        with graph_dir_lock(directory, timeout):
            curator = cls.open(directory, author=author, lock_timeout=timeout)
            curator._lock_held = True
            try:
                yield curator
            finally:
                curator._lock_held = False

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str] | None = None) -> None:
        """Write graph and changelog to ``directory`` (default: the curator's own), under the writers' lock.

        Raises:
            CurationError: someone else saved the curator's directory since this curator loaded or saved it (a
                curator from :meth:`open` that another writer overtook, or a writer that ignores the lock).
            LockedError: another writer held the lock for longer than ``lock_timeout``.
        """
        from kgclip.ontology import store

        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise CurationError("this curator has no directory; pass one to save()")
        own = self.directory is not None and target.resolve() == self.directory.resolve()
        with contextlib.nullcontext() if own and self._lock_held else graph_dir_lock(target, self.lock_timeout):
            if own and self._seen is not _UNSEEN and meta_stamp(target) != self._seen:
                raise CurationError(f"{target} was changed by another writer since this curator loaded it; nothing "
                                    "was written (an autosaved edit is rolled back). Reopen it (Curator.open) and "
                                    "redo the edit, or hold Curator.locked(directory) for the whole edit")
            store.save_graph(self.graph, target, changelog=self.changelog)
            if own:
                self._seen = meta_stamp(target)

    @contextlib.contextmanager
    def batch(self) -> Iterator["Curator"]:
        """Defer autosaving until the block ends (one write for many edits)."""
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1
            if not self._deferred and self.autosave and self.directory is not None:
                self.save()

    # ------------------------------------------------------------------ applying and logging
    def _commit(self, op: str, args: dict[str, Any], ids: Iterable[str], revert: dict[str, Any],
                reason: str | None, author: str | None, apply: Any, parent_updates: Any = dict) -> ChangeEntry:
        """Apply a validated edit, keep the is_a cache in step, log it, and autosave (reverting if saving fails).

        ``parent_updates()`` runs after ``apply`` and returns ``{id: new is_a parents or None (= recompute)}``.
        """
        cache_valid = self._parents is not None and self._parents_version == self.graph.version
        apply()
        if cache_valid and self._parents is not None:
            for cid, parents in parent_updates().items():
                self._parents.overrides[cid] = set(self.graph.parents(cid)) if parents is None else parents
            self._parents_version = self.graph.version
        entry = self.changelog.append(op, args, ids, author=author or self.author, reason=reason, revert=revert)
        if self.autosave and self.directory is not None and not self._deferred:
            try:
                self.save()
            except BaseException:
                self._revert(revert)
                self.changelog.entries.pop()
                raise
        return entry

    def _revert(self, patch: dict[str, Any]) -> None:
        try:
            apply_revert(self.graph, patch)
        finally:
            self._parents = None  # rebuilt on the next cycle check

    def undo(self, n: int = 1, *, reason: str | None = None, author: str | None = None) -> list[ChangeEntry]:
        """Revert the last ``n`` edits (newest first), exactly; logs one ``undo`` entry. Returns the undone edits."""
        candidates = self.changelog.undoable()
        if n < 1 or n > len(candidates):
            raise CurationError(f"cannot undo {n} edit(s): {len(candidates)} can be undone (an import, or the start "
                                "of the changelog, ends the history). Nothing was changed.")
        undone = candidates[::-1][:n]
        ids = [cid for e in undone for cid in e.concept_ids]
        done: list[ChangeEntry] = []
        try:
            for entry in undone:
                self._revert(entry.revert or {})
                done.append(entry)
        except Exception as exc:
            for entry in reversed(done):  # put back what was already reverted, then report
                self._reapply(entry)
            raise CurationError(f"undo of #{entry.seq} ({entry.op}) failed: {exc}; the graph was left as it was. "
                                "Was the graph edited outside the curator?") from exc
        self._parents = None
        self.changelog.append("undo", {"n": n, "undone": [e.seq for e in undone]}, ids, author=author or self.author,
                              reason=reason, revert={})
        if self.autosave and self.directory is not None and not self._deferred:
            try:
                self.save()
            except BaseException:
                self.changelog.entries.pop()
                for entry in reversed(undone):
                    self._reapply(entry)
                raise
        return undone

    def _reapply(self, entry: ChangeEntry) -> None:
        method = getattr(self, entry.op)
        args = dict(entry.args)
        if entry.op == "add_concept":
            args["concept_id"] = concept_from_json(args.pop("concept"))
        elif entry.op in ("update_concept", "deprecate"):
            args["concept_id"] = args.pop("id")
        elif entry.op in ("add_relation", "remove_relation"):
            args["relation_type"] = args.pop("type")
        saved, self.autosave = self.autosave, False
        try:
            method(**args)
            self.changelog.entries.pop()
        finally:
            self.autosave = saved

    def validate(self) -> ValidationReport:
        """Dangling ids, is_a cycles and duplicate ids of the current graph."""
        return self.graph.validate()
