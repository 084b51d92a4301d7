"""Curating a concept graph: validated edits, a changelog, undo.

A :class:`Curator` wraps a :class:`~kgclip.ontology.model.ConceptGraph` (and, optionally, the directory it is stored
in). Every edit is checked *before* anything changes (unknown ids, duplicates, an ``is_a`` edge that would close a
cycle), so a refused edit (:class:`~kgclip.errors.CurationError`) leaves the graph and its files exactly as they were.
Every accepted edit becomes one :class:`ChangeEntry` in the :class:`Changelog` (``changelog.jsonl`` beside the graph),
carrying what is needed to revert it, so :meth:`Curator.undo` restores the graph exactly (same fingerprint), even in
a later process.

Incremental refresh: each entry lists the ``concept_ids`` it touched. ``Changelog.changed_ids(since=seq)`` returns
every id touched by entries after sequence number ``seq`` (``Changelog.last_seq`` is the number to remember), and
``Changelog.full_refresh_needed(since=seq)`` says whether an import since then was too large to list its ids.

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
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import CurationError
from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation, ValidationReport, normalize_relation_type

__all__ = ["Curator", "Changelog", "ChangeEntry", "find_concepts", "REPLACED_BY"]

REPLACED_BY = "replaced_by"  # relation from a deprecated / merged-away concept to the one that replaces it
_ID_RE = re.compile(r"^[^\s:]+:\S(?:.*\S)?$")
_IMPORT_ID_LIMIT = 10_000  # an import touching more ids than this records "full refresh" instead of the list


def _now() -> str:
    # SOURCE_DATE_EPOCH (the reproducible-builds convention) pins timestamps so rebuilt files are byte-identical.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = float(epoch) if epoch else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _concept_to_json(c: Concept) -> dict[str, Any]:
    return {f.name: list(v) if isinstance(v := getattr(c, f.name), tuple) else v for f in dataclasses.fields(c)}


def _concept_from_json(d: dict[str, Any]) -> Concept:
    return Concept(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class ChangeEntry:
    """One changelog line.

    Attributes:
        seq: 1-based sequence number, increasing through the log.
        op: ``add_concept``, ``update_concept``, ``deprecate``, ``merge``, ``add_relation``, ``remove_relation``,
            ``import`` or ``undo``.
        args: the edit's arguments, as given.
        concept_ids: ids whose concept or relations changed (what an incremental refresh must re-encode).
        timestamp: UTC, ISO 8601.
        author: who made the edit, if known.
        reason: why, if given.
        revert: the data that undoes the edit (``None``: cannot be undone, e.g. an import).
    """

    seq: int
    op: str
    args: dict[str, Any]
    concept_ids: tuple[str, ...]
    timestamp: str
    author: str | None = None
    reason: str | None = None
    revert: dict[str, Any] | None = None

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["concept_ids"] = list(self.concept_ids)
        return json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> "ChangeEntry":
        d = json.loads(line)
        d["concept_ids"] = tuple(d.get("concept_ids", ()))
        return cls(**d)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items() if v not in (None, (), [], ""))
        who = f" by {self.author}" if self.author else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"#{self.seq} {self.timestamp}{who}: {self.op}({args}){why}"


class Changelog:
    """The ordered list of edits made to a graph; stored as ``changelog.jsonl`` (one JSON entry per line)."""

    def __init__(self, entries: Iterable[ChangeEntry] = ()) -> None:
        self.entries: list[ChangeEntry] = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ChangeEntry]:
        return iter(self.entries)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry (0 for an empty log): remember it, pass it to :meth:`changed_ids`."""
        return self.entries[-1].seq if self.entries else 0

    def append(self, op: str, args: dict[str, Any], concept_ids: Iterable[str], *, author: str | None = None,
               reason: str | None = None, revert: dict[str, Any] | None = None) -> ChangeEntry:
        entry = ChangeEntry(self.last_seq + 1, op, args, tuple(dict.fromkeys(concept_ids)), _now(), author, reason,
                            revert)
        self.entries.append(entry)
        return entry

    def since(self, since: int = 0) -> list[ChangeEntry]:
        """Entries with ``seq > since``."""
        return [e for e in self.entries if e.seq > since]

    def changed_ids(self, since: int = 0) -> set[str]:
        """Ids touched by every entry after ``since`` (undos included: an undone edit changed its ids back).

        Check :meth:`full_refresh_needed` too: a large import records no id list.
        """
        return {cid for e in self.since(since) for cid in e.concept_ids}

    def full_refresh_needed(self, since: int = 0) -> bool:
        """True when an entry after ``since`` changed too much to list (a large import): rebuild everything."""
        return any(e.args.get("full_refresh") for e in self.since(since))

    def undoable(self) -> list[ChangeEntry]:
        """Edits not yet undone, oldest first, up to the last entry that cannot be undone (an import)."""
        undone = {s for e in self.entries if e.op == "undo" for s in e.args.get("undone", ())}
        out: list[ChangeEntry] = []
        for e in self.entries:
            if e.op == "undo" or e.seq in undone:
                continue
            if e.revert is None:
                out = []  # cannot undo past this entry
            else:
                out.append(e)
        return out

    def to_jsonl(self) -> str:
        return "".join(e.to_json() + "\n" for e in self.entries)

    @classmethod
    def from_jsonl(cls, text: str, *, path: str = "<changelog>") -> "Changelog":
        from kgclip.errors import InputFormatError

        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(ChangeEntry.from_json(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise InputFormatError(f"not a changelog entry ({exc}); restore the file from git", path=path,
                                       line=number) from exc
        return cls(entries)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Changelog":
        from kgclip.errors import InputFormatError

        path = Path(path)
        if not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputFormatError(f"byte {exc.start} is not UTF-8; restore the changelog from git",
                                   path=str(path)) from exc
        return cls.from_jsonl(text, path=str(path))

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{e.seq}</td><td>{e.timestamp}</td><td>{html.escape(e.op)}</td>"
                       f"<td>{html.escape(', '.join(e.concept_ids[:5]))}</td><td>{html.escape(e.author or '')}</td>"
                       f"<td>{html.escape(e.reason or '')}</td></tr>" for e in self.entries[-50:])
        return ("<table><tr><th>#</th><th>when</th><th>op</th><th>ids</th><th>author</th><th>reason</th></tr>"
                f"{rows}</table>")


def find_concepts(graph: ConceptGraph, text: str, limit: int = 20, include_deprecated: bool = False) -> list[Concept]:
    """Concepts whose id, name or a synonym matches ``text`` (case-insensitive): exact first, then prefix, then
    substring; shorter names first within a rank."""
    query = text.strip().casefold()
    ranked: list[tuple[int, int, str, Concept]] = []
    for c in graph.concepts(include_deprecated=include_deprecated):
        best = 0 if c.id.casefold() == query else 9
        for name in c.all_names:
            low = name.casefold()
            rank = 0 if low == query else 1 if low.startswith(query) else 2 if query in low else 9
            best = min(best, rank)
        if best < 9:
            ranked.append((best, len(c.name), c.id, c))
    ranked.sort(key=lambda t: t[:3])
    return [t[3] for t in ranked[:limit]]



def _rel_json(r: Relation) -> list[str]:
    return [r.source, r.type, r.target, r.origin]


class Curator:
    """Validated, logged, undoable edits on a graph, optionally persisted to a graph directory after each edit.

    Args:
        graph: the graph to edit in place.
        directory: where the graph is stored (:func:`~kgclip.ontology.store.save_graph`); ``None`` keeps edits in
            memory until :meth:`save` is called with a directory.
        changelog: the graph's history (default: empty, or the directory's ``changelog.jsonl`` via :meth:`open`).
        author: recorded on every entry unless an edit names another.
        autosave: write the directory after every edit (use :meth:`batch` to write once for many edits).

    Every edit method returns the :class:`ChangeEntry` it appended and raises :class:`CurationError` (changing
    nothing) when the edit is invalid.
    """

    def __init__(self, graph: ConceptGraph, directory: str | os.PathLike[str] | None = None, *,
                 changelog: Changelog | None = None, author: str | None = None, autosave: bool = True) -> None:
        self.graph = graph
        self.directory = Path(directory) if directory is not None else None
        self.changelog = changelog if changelog is not None else Changelog()
        self.author = author
        self.autosave = autosave
        self._deferred = 0
        # is_a parents for cycle checks without O(E) scans: a CSR table built once (numpy) plus per-id overrides
        # for what our own edits changed since; valid while the graph's version is the one recorded.
        self._parents: _ParentTable | None = None
        self._parents_version = -1

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, author: str | None = None, autosave: bool = True) -> "Curator":
        """A curator over the graph stored in ``directory`` (and its changelog)."""
        from kgclip.ontology.store import CHANGELOG_FILE, load_graph_dir

        graph = load_graph_dir(directory)
        return cls(graph, directory, changelog=Changelog.load(Path(directory) / CHANGELOG_FILE), author=author,
                   autosave=autosave)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str] | None = None) -> None:
        """Write graph and changelog to ``directory`` (default: the curator's own)."""
        from kgclip.ontology.store import save_graph

        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise CurationError("this curator has no directory; pass one to save()")
        save_graph(self.graph, target, changelog=self.changelog)

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

    def _is_a_parents(self) -> "_ParentTable":
        if self._parents is None or self._parents_version != self.graph.version:
            self._parents, self._parents_version = _ParentTable(self.graph), self.graph.version
        return self._parents

    def _is_a_path(self, starts: Iterable[str], goals: set[str]) -> list[str] | None:
        """An is_a path from one of ``starts`` up to one of ``goals`` (breadth-first), or ``None``."""
        parents = self._is_a_parents()
        back: dict[str, str | None] = {s: None for s in starts}
        frontier = list(back)
        while frontier:
            nxt = []
            for node in frontier:
                if node in goals:
                    path = [node]
                    while back[path[-1]] is not None:
                        path.append(back[path[-1]])  # type: ignore[arg-type]
                    return path[::-1]
                for p in parents.of(node):
                    if p not in back:
                        back[p] = node
                        nxt.append(p)
            frontier = nxt
        return None

    def _check_id(self, op: str, concept_id: str) -> None:
        if not isinstance(concept_id, str) or not _ID_RE.match(concept_id) or "\t" in concept_id:
            raise self._fail(op, f"invalid id {concept_id!r}: ids are namespaced like 'RADLEX:RID3441' or "
                                 "'DOID:1324', without spaces at either end")

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
        g = self.graph
        touching = [g.index_of(c) for c in patch.get("remove_touching", ()) if c in g]
        if touching:
            src, _, dst = g.edge_arrays()
            g._keep_edges(~(np.isin(src, touching) | np.isin(dst, touching)))  # noqa: SLF001
        for s, t, d in patch.get("remove_relations", ()):
            g.remove_relation(s, t, d)
        for c in patch.get("restore_concepts", ()):
            g.replace_concept(_concept_from_json(c))
        for cid in patch.get("remove_concepts", ()):
            _remove_concept(g, cid)
        for s, t, d, o in patch.get("add_relations", ()):
            g.add_relation(Relation(s, t, d, o))
        self._parents = None  # rebuilt on the next cycle check

    # ------------------------------------------------------------------ edits
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
            op, {"concept": _concept_to_json(concept), "parents": parents}, [concept.id, *parents],
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
        return self._commit(op, args, [concept_id], {"restore_concepts": [_concept_to_json(old)]}, reason, author,
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
             "restore_concepts": [_concept_to_json(old)]}, reason, author, apply)

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
        snapshot = {(r.source, r.type, r.target): r for cid in (keep, other) for r in g.relations(cid, direction="both")}
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
            {"remove_touching": [keep, other], "restore_concepts": [_concept_to_json(a), _concept_to_json(b)],
             "add_relations": [_rel_json(r) for r in snapshot.values()]}, reason, author, apply, parent_updates)

    def add_relation(self, source: str, relation_type: str, target: str, *, origin: str = "curator",
                     reason: str | None = None, author: str | None = None) -> ChangeEntry:
        """Add ``source --relation_type--> target``; an ``is_a`` edge that would close a cycle is refused."""
        op = "add_relation"
        rtype = normalize_relation_type(relation_type)
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
        rtype = normalize_relation_type(relation_type)
        self._require(op, source, target)
        found = [r for r in self.graph.relations(source, rtype, "out") if r.target == target]
        if not found:
            raise self._fail(op, f"{source} -{rtype}-> {target} does not exist (see `kgclip ontology show DIR "
                                 f"{source}`)")
        updates = (lambda: {source: self._is_a_parents_now(source) - {target}}) if rtype == IS_A else dict
        return self._commit(op, {"source": source, "type": rtype, "target": target}, [source, target],
                            {"add_relations": [_rel_json(found[0])]}, reason, author,
                            lambda: self.graph.remove_relation(source, rtype, target), updates)

    def _is_a_parents_now(self, concept_id: str) -> set[str]:
        return set(self._parents.of(concept_id)) if self._parents is not None else set()

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
            args["concept_id"] = _concept_from_json(args.pop("concept"))
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


class _ParentTable:
    """is_a parents of every concept: CSR arrays from one numpy pass, plus overrides for ids edited since."""

    def __init__(self, graph: ConceptGraph) -> None:
        self.ids = graph.ids
        self.index = graph._index  # noqa: SLF001 - read-only use; concept removal (undo) drops this table
        self.overrides: dict[str, set[str]] = {}
        n = len(graph)
        if IS_A in graph.relation_types:
            src, rel, dst = graph.edge_arrays()
            mask = rel == graph.relation_type_id(IS_A)
            s, d = src[mask], dst[mask]
            order = np.argsort(s, kind="stable")
            self.nbr = d[order]
            self.indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(s, minlength=n), out=self.indptr[1:])
        else:
            self.nbr, self.indptr = np.zeros(0, np.int32), np.zeros(n + 1, np.int64)

    def of(self, concept_id: str) -> Iterable[str]:
        over = self.overrides.get(concept_id)
        if over is not None:
            return over
        i = self.index.get(concept_id)
        if i is None or i + 1 >= len(self.indptr):
            return ()
        return [self.ids[j] for j in self.nbr[self.indptr[i]:self.indptr[i + 1]].tolist()]


def _remove_concept(graph: ConceptGraph, concept_id: str) -> None:
    """Remove a concept that has no relations (undo of an add), wherever it sits in the columns."""
    i = graph.index_of(concept_id)
    src, _, dst = graph.edge_arrays()
    if np.any(src == i) or np.any(dst == i):
        raise CurationError(f"{concept_id!r} still has relations; remove them first")
    if i == len(graph) - 1:
        graph._pop_last_concept(concept_id)  # noqa: SLF001
        return
    # ConceptGraph has no public removal (concepts are normally deprecated, not deleted): shift the columns.
    g = graph
    for column in (g._ids, g._names, g._synonyms, g._types, g._definitions, g._sources, g._xrefs):  # noqa: SLF001
        del column[i]
    del g._deprecated[i]  # noqa: SLF001
    del g._index[concept_id]  # noqa: SLF001
    for k in range(i, len(g._ids)):  # noqa: SLF001
        g._index[g._ids[k]] = k  # noqa: SLF001
    from array import array

    for name, arr in (("_src", src), ("_dst", dst)):
        shifted = arr.astype(np.int32, copy=True)
        shifted[shifted > i] -= 1
        setattr(g, name, array("i", shifted.tobytes()))
    g._touch()  # noqa: SLF001
