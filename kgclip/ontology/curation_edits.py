"""The edits a :class:`~kgclip.ontology.curation.Curator` offers, and the checks each runs before changing anything.

Every edit validates its arguments against the current graph first (unknown or deprecated ids, duplicates, an
``is_a`` edge or a merge that would close a cycle) and raises :class:`~kgclip.errors.CurationError` with nothing
changed. A valid edit hands :meth:`Curator._commit <kgclip.ontology.curation.Curator._commit>` what to apply, the
changelog arguments, the concepts it touches and the revert patch that undoes it exactly
(:func:`kgclip.ontology.changelog.apply_revert`). This mixin is a part of ``Curator``, not a class to use alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kgclip.errors import CurationError
from kgclip.ontology.changelog import ChangeEntry, concept_to_json, relation_to_json
from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation, normalize_relation_type
from kgclip.ontology.query import IsAParents

__all__ = ["CurationEditsMixin", "REPLACED_BY"]

REPLACED_BY = "replaced_by"  # relation from a deprecated / merged-away concept to the one that replaces it
_ID_RE = re.compile(r"^[^\s:]+:\S(?:.*\S)?$")


class CurationEditsMixin:
    """The validated edits of :class:`~kgclip.ontology.curation.Curator`; each returns the entry it logged."""

    # State created by Curator.__init__ (declared here for readers and type checkers).
    graph: ConceptGraph
    _parents: IsAParents | None
    _parents_version: int

    if TYPE_CHECKING:  # defined on Curator
        def _commit(self, op: str, args: dict[str, Any], ids: Iterable[str], revert: dict[str, Any],
                    reason: str | None, author: str | None, apply: Any, parent_updates: Any = dict) -> ChangeEntry: ...

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

    def _check_id(self, op: str, concept_id: str) -> None:
        if not isinstance(concept_id, str) or not _ID_RE.match(concept_id) or "\t" in concept_id:
            raise self._fail(op, f"invalid id {concept_id!r}: ids are namespaced like 'RADLEX:RID3441' or "
                                 "'DOID:1324', without spaces at either end")

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
                            {"add_relations": [relation_to_json(found[0])]}, reason, author,
                            lambda: self.graph.remove_relation(source, rtype, target), updates)

    def _is_a_parents_now(self, concept_id: str) -> set[str]:
        return set(self._parents.of(concept_id)) if self._parents is not None else set()
