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
import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kgclip.errors import CurationError
from kgclip.ontology import store
from kgclip.ontology.changelog import (CHANGELOG_FILE, ChangeEntry, Changelog, apply_revert,
                                      concept_from_json, concept_to_json, relation_to_json)
from kgclip.ontology.commit import recover
from kgclip.ontology.ids import REPLACED_BY, id_problem, normalize_relation_type, relation_type_problem, text_problem
from kgclip.ontology.locking import LOCK_TIMEOUT, graph_dir_lock, meta_stamp
from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation, ValidationReport
from kgclip.ontology.query import IsAParents, find_concepts

__all__ = ["Curator", "Changelog", "ChangeEntry", "find_concepts", "REPLACED_BY"]

_TYPE_SPELLING = re.compile(r"^[A-Za-z][A-Za-z0-9 _-]*$")  # other spellings of a type name ("Has Symptom")
_UNSEEN = object()  # a curator built from a graph has not seen its directory: its first save does not check


class Curator:
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

    Every edit checks its arguments against the current graph first (unknown or deprecated ids, duplicates, an
    ``is_a`` edge or a merge that would close a cycle), then hands :meth:`_commit` what to apply, the changelog
    arguments, the concepts it touches and the revert patch that undoes it exactly
    (:func:`kgclip.ontology.changelog.apply_revert`). Every edit method returns the :class:`ChangeEntry` it
    appended and raises :class:`CurationError` (changing nothing) when the edit is invalid.
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
        if Path(directory).is_dir():
            recover(directory)  # finish a save that a crash interrupted, before taking the stamp it changes
        seen = meta_stamp(Path(directory))  # read before the graph: a save in between shows up as a conflict
        graph = store.load_graph_dir(directory)
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

    # ------------------------------------------------------------------ checks
    def _fail(self, op: str, message: str) -> CurationError:
        return CurationError(f"{op} refused: {message}. Nothing was changed.")

    def _require(self, op: str, *ids: str, live: bool = False) -> None:
        for cid in ids:
            if cid not in self.graph:
                raise self._fail(op, f"concept {cid!r} is not in graph {self.graph.name!r} (find ids with "
                                     "`kgclip ontology search DIR TEXT`)")
            if live and self.graph.concept(cid).deprecated:
                raise self._fail(op, f"concept {cid!r} is deprecated; edit its replacement instead")

    def _is_a_parents(self) -> IsAParents:
        if self._parents is None or self._parents_version != self.graph.version:
            self._parents, self._parents_version = IsAParents(self.graph), self.graph.version
        return self._parents

    def _is_a_path(self, starts: Iterable[str], goals: set[str]) -> list[str] | None:
        return self._is_a_parents().path(starts, goals)

    def _check_id(self, op: str, concept_id: str, what: str = "id") -> None:
        problem = id_problem(concept_id)
        if problem:
            raise self._fail(op, f"invalid {what} {concept_id!r}: {problem}")

    def _check_text(self, op: str, field: str, value: object, *, empty: bool = False,
                    multiline: bool = False) -> None:
        problem = text_problem(value, empty=empty, multiline=multiline)
        if problem:
            raise self._fail(op, f"invalid {field} {value!r}: {problem}")

    def _check_fields(self, op: str, *, name: object = None, synonyms: Iterable[object] = (),
                      semantic_types: Iterable[object] = (), definition: object = None, source: object = None,
                      xrefs: Iterable[object] = ()) -> None:
        """Names, synonyms and types are non-empty single-line text; definitions may hold newlines; no field holds
        a control or line-separator character; xrefs are namespaced ids. ``None`` skips a field."""
        if name is not None:
            self._check_text(op, "name", name)
        for synonym in synonyms:
            self._check_text(op, "synonym", synonym)
        for semantic_type in semantic_types:
            self._check_text(op, "semantic type", semantic_type)
        if definition is not None:
            self._check_text(op, "definition", definition, empty=True, multiline=True)
        if source is not None:
            self._check_text(op, "source", source, empty=True)
        for xref in xrefs:
            self._check_id(op, xref, "xref")  # type: ignore[arg-type]

    def _check_relation_type(self, op: str, relation_type: str, *, declared: bool = True) -> str:
        """The relation type to store: as given, or a declared type written with spaces, hyphens or capitals
        (``"Has Symptom"`` -> ``has_symptom``). Anything else invalid (empty, a path) is refused, never renamed."""
        problem = relation_type_problem(relation_type)
        if problem and isinstance(relation_type, str) and _TYPE_SPELLING.match(relation_type):
            spelled = normalize_relation_type(relation_type)
            if spelled in self.graph.declared_relation_types:
                return spelled
        if problem:
            raise self._fail(op, f"invalid relation type {relation_type!r}: {problem}")
        if declared and relation_type not in self.graph.declared_relation_types:
            raise self._fail(op, f"relation type {relation_type!r} is not declared in graph {self.graph.name!r} "
                                 f"(declared: {', '.join(self.graph.declared_relation_types)}); declare it first with "
                                 f"`kgclip ontology declare-relation DIR {relation_type}` "
                                 "(Curator.declare_relation_type), or import a source that uses it")
        return relation_type

    def add_concept(self, concept_id: str | Concept, name: str = "", *, synonyms: Sequence[str] = (),
                    semantic_types: Sequence[str] = (), definition: str = "", source: str = "curator",
                    xrefs: Sequence[str] = (), parents: Sequence[str] = (), reason: str | None = None,
                    author: str | None = None) -> ChangeEntry:
        """Add a new concept (optionally with ``is_a`` parents, in the same edit)."""
        op = "add_concept"
        if isinstance(concept_id, Concept):
            concept = concept_id
        else:
            concept = Concept(concept_id, name, tuple(synonyms), tuple(semantic_types), definition, source, False,
                              tuple(xrefs))
        self._check_id(op, concept.id)
        self._check_fields(op, name=concept.name, synonyms=concept.synonyms, semantic_types=concept.semantic_types,
                           definition=concept.definition, source=concept.source, xrefs=concept.xrefs)
        for parent in parents:
            self._check_id(op, parent, "parent id")
        if concept.id in self.graph:
            raise self._fail(op, f"concept {concept.id!r} already exists; use update_concept to change it")
        parents = list(dict.fromkeys(parents))
        self._require(op, *parents, live=True)
        relations = [Relation(concept.id, IS_A, p, "curator") for p in parents]

        def apply() -> None:
            self.graph.add_concept(concept)
            for r in relations:
                self.graph.add_relation(r)

        return self._commit(
            op, {"concept": concept_to_json(concept), "parents": parents}, [concept.id, *parents],
            {"remove_relations": [[r.source, r.type, r.target] for r in relations], "remove_concepts": [concept.id]},
            reason, author, apply, lambda: {concept.id: set(parents)})

    def update_concept(self, concept_id: str, *, name: str | None = None, synonyms: Sequence[str] | None = None,
                       add_synonyms: Sequence[str] = (), remove_synonyms: Sequence[str] = (),
                       semantic_types: Sequence[str] | None = None, definition: str | None = None,
                       source: str | None = None, xrefs: Sequence[str] | None = None, add_xrefs: Sequence[str] = (),
                       reason: str | None = None, author: str | None = None) -> ChangeEntry:
        """Change fields of a concept; ``None`` leaves a field as it is."""
        op = "update_concept"
        self._require(op, concept_id)
        self._check_fields(op, name=name, synonyms=[*(synonyms or ()), *add_synonyms],
                           semantic_types=semantic_types or (), definition=definition, source=source,
                           xrefs=[*(xrefs or ()), *add_xrefs])
        old = self.graph.concept(concept_id)
        syn = tuple(synonyms) if synonyms is not None else old.synonyms
        missing = [s for s in remove_synonyms if s not in syn]
        if missing:
            raise self._fail(op, f"{concept_id!r} has no synonym(s) {missing}; its synonyms are {list(syn)}")
        syn = tuple(dict.fromkeys(s for s in (*syn, *add_synonyms) if s not in remove_synonyms))
        new = dataclasses.replace(
            old, name=old.name if name is None else name,
            semantic_types=old.semantic_types if semantic_types is None else tuple(semantic_types),
            definition=old.definition if definition is None else definition,
            source=old.source if source is None else source,
            xrefs=tuple(dict.fromkeys((*(old.xrefs if xrefs is None else xrefs), *add_xrefs))))
        new = dataclasses.replace(new, synonyms=tuple(s for s in syn if s != new.name))
        if new == old:
            raise self._fail(op, f"the update leaves {concept_id!r} unchanged")
        args = {k: v for k, v in dict(name=name, synonyms=synonyms, add_synonyms=add_synonyms,
                                      remove_synonyms=remove_synonyms, semantic_types=semantic_types,
                                      definition=definition, source=source, xrefs=xrefs, add_xrefs=add_xrefs).items()
                if v not in (None, ())}
        args = {"id": concept_id, **{k: list(v) if isinstance(v, (tuple, list)) else v for k, v in args.items()}}
        return self._commit(op, args, [concept_id], {"restore_concepts": [concept_to_json(old)]}, reason, author,
                            lambda: self.graph.replace_concept(new))

    def deprecate(self, concept_id: str, *, replaced_by: str | None = None, reason: str | None = None,
                  author: str | None = None) -> ChangeEntry:
        """Mark a concept deprecated (its relations stay); ``replaced_by`` adds a ``replaced_by`` relation."""
        op = "deprecate"
        self._require(op, concept_id)
        if self.graph.concept(concept_id).deprecated:
            raise self._fail(op, f"concept {concept_id!r} is already deprecated")
        relations = []
        if replaced_by is not None:
            self._require(op, replaced_by, live=True)
            if replaced_by == concept_id:
                raise self._fail(op, "a concept cannot replace itself")
            relations.append(Relation(concept_id, REPLACED_BY, replaced_by, "curator"))
        old = self.graph.concept(concept_id)

        def apply() -> None:
            self.graph.replace_concept(dataclasses.replace(old, deprecated=True))
            for r in relations:
                self.graph.add_relation(r)

        return self._commit(
            op, {"id": concept_id, "replaced_by": replaced_by}, [concept_id, *([replaced_by] if replaced_by else [])],
            {"remove_relations": [[r.source, r.type, r.target] for r in relations],
             "restore_concepts": [concept_to_json(old)]}, reason, author, apply)

    def merge(self, keep: str, other: str, *, reason: str | None = None, author: str | None = None) -> ChangeEntry:
        """Unify ``other`` into ``keep``: its relations move to ``keep``, its names, synonyms, xrefs and types are
        added to ``keep``'s, and ``other`` is deprecated with a ``replaced_by`` relation to ``keep``."""
        op = "merge"
        self._require(op, keep, other, live=True)
        if keep == other:
            raise self._fail(op, "cannot merge a concept with itself")
        parents = self._is_a_parents()
        merged_parents = (set(parents.of(keep)) | set(parents.of(other))) - {keep, other}
        path = self._is_a_path(merged_parents, {keep, other})
        if path:
            cycle = " -is_a-> ".join([keep, *path[:-1], keep])
            raise self._fail(op, f"merging {other!r} into {keep!r} would create the is_a cycle {cycle}; remove one "
                                 "of those is_a relations first")
        g = self.graph
        a, b = g.concept(keep), g.concept(other)
        snapshot = {(r.source, r.type, r.target): r
                    for cid in (keep, other) for r in g.relations(cid, direction="both")}
        names = tuple(dict.fromkeys(n for n in (*a.synonyms, *b.all_names) if n != a.name))
        union = dataclasses.replace(
            a, synonyms=names, xrefs=tuple(dict.fromkeys((*a.xrefs, *b.xrefs))),
            semantic_types=tuple(dict.fromkeys((*a.semantic_types, *b.semantic_types))),
            definition=a.definition or b.definition)

        def apply() -> None:
            g.redirect_relations(other, keep)
            g.replace_concept(union)
            g.replace_concept(dataclasses.replace(b, deprecated=True))
            g.add_relation(Relation(other, REPLACED_BY, keep, "curator"))

        def parent_updates() -> dict[str, set[str] | None]:
            updates: dict[str, set[str] | None] = {keep: None, other: set()}
            for child in g.children(keep):
                updates[child] = None
            return updates

        neighbours = {x for r in snapshot.values() for x in (r.source, r.target)}
        return self._commit(
            op, {"keep": keep, "other": other}, [keep, other, *sorted(neighbours - {keep, other})],
            {"remove_touching": [keep, other], "restore_concepts": [concept_to_json(a), concept_to_json(b)],
             "add_relations": [relation_to_json(r) for r in snapshot.values()]}, reason, author, apply, parent_updates)

    def declare_relation_type(self, relation_type: str, *, reason: str | None = None,
                              author: str | None = None) -> ChangeEntry:
        """Let curated edits use ``relation_type`` (``add_relation`` refuses undeclared types, so that a typo such as
        ``locatd_in`` never becomes a new type). Types a source used, and the built-in ones, need no declaration."""
        op = "declare_relation_type"
        self._check_relation_type(op, relation_type, declared=False)
        if relation_type in self.graph.declared_relation_types:
            raise self._fail(op, f"relation type {relation_type!r} is already declared in graph {self.graph.name!r}")
        return self._commit(op, {"type": relation_type}, [], {"undeclare_relation_types": [relation_type]}, reason,
                            author, lambda: self.graph.declare_relation_type(relation_type))

    def add_relation(self, source: str, relation_type: str, target: str, *, origin: str = "curator",
                     reason: str | None = None, author: str | None = None) -> ChangeEntry:
        """Add ``source --relation_type--> target``; an ``is_a`` edge that would close a cycle is refused."""
        op = "add_relation"
        rtype = self._check_relation_type(op, relation_type)
        self._require(op, source, target, live=True)
        if source == target:
            raise self._fail(op, f"a relation from {source!r} to itself is not allowed")
        if self.graph.has_relation(source, rtype, target):
            raise self._fail(op, f"{source} -{rtype}-> {target} already exists")
        if rtype == IS_A:
            path = self._is_a_path([target], {source})
            if path:
                cycle = " -is_a-> ".join([source, *path])
                raise self._fail(op, f"{source} -is_a-> {target} would create the is_a cycle {cycle}; remove one of "
                                     "those is_a relations first")
        relation = Relation(source, rtype, target, origin)
        updates = (lambda: {source: self._is_a_parents_now(source) | {target}}) if rtype == IS_A else dict
        return self._commit(op, {"source": source, "type": rtype, "target": target, "origin": origin},
                            [source, target], {"remove_relations": [[source, rtype, target]]}, reason, author,
                            lambda: self.graph.add_relation(relation), updates)

    def remove_relation(self, source: str, relation_type: str, target: str, *, reason: str | None = None,
                        author: str | None = None) -> ChangeEntry:
        """Remove ``source --relation_type--> target``."""
        op = "remove_relation"
        rtype = self._check_relation_type(op, relation_type, declared=False)
        self._require(op, source, target)
        found = [r for r in self.graph.relations(source, rtype, "out") if r.target == target]
        if not found:
            raise self._fail(op, f"{source} -{rtype}-> {target} does not exist (see `kgclip ontology show DIR "
                                 f"{source}`)")
        updates = (lambda: {source: self._is_a_parents_now(source) - {target}}) if rtype == IS_A else dict
        return self._commit(op, {"source": source, "type": rtype, "target": target}, [source, target],
                            {"add_relations": [relation_to_json(found[0])]}, reason, author,
                            lambda: self.graph.remove_relation(source, rtype, target), updates)

    def _is_a_parents_now(self, concept_id: str) -> set[str]:
        return set(self._parents.of(concept_id)) if self._parents is not None else set()

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
            failed = entry
            for entry in reversed(done):  # put back what was already reverted, then report
                self._reapply(entry)
            raise CurationError(f"undo of #{failed.seq} ({failed.op}) failed: {exc}; the graph was left as it was. "
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
        elif entry.op in ("add_relation", "remove_relation", "declare_relation_type"):
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
