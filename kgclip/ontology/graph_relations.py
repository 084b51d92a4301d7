"""The relation side of a :class:`~kgclip.ontology.model.ConceptGraph`: typed edges as ``int32`` columns.

Relations are stored as four parallel ``int32`` arrays (source node, relation type, target node, origin) with the
relation type and origin names interned, so a UMLS-scale graph (tens of millions of relations) fits in memory.
This mixin holds what reads and edits those columns: adding, removing and redirecting relations, the
``(source, type, target)`` arrays, per-concept queries, and :meth:`GraphRelationsMixin.link_xrefs`, which turns
cross-references into ``same_as`` relations (how several sources merge). It is a part of ``ConceptGraph``, not a
class to use alone: the graph's constructor creates the columns it works on.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Literal

import numpy as np

from kgclip.errors import UnknownConceptError
from kgclip.ontology.ids import IS_A, SAME_AS
from kgclip.ontology.records import Relation

__all__ = ["GraphRelationsMixin", "Direction"]

Direction = Literal["out", "in", "both"]


class GraphRelationsMixin:
    """Relation storage, edits and queries of :class:`~kgclip.ontology.model.ConceptGraph`."""

    # Columns created by ConceptGraph.__init__ (declared here for readers and type checkers).
    name: str
    _ids: list[str]
    _index: dict[str, int]
    _xrefs: list[tuple[str, ...]]
    _src: array
    _rel: array
    _dst: array
    _org: array
    _rel_types: list[str]
    _rel_index: dict[str, int]
    _origins: list[str]
    _origin_index: dict[str, int]
    _dangling: list[Relation]

    if TYPE_CHECKING:  # defined on ConceptGraph
        def index_of(self, concept_id: str) -> int: ...
        def _unknown_message(self, concept_id: str) -> str: ...
        def _touch(self) -> None: ...

    @property
    def num_relations(self) -> int:
        return len(self._src)

    @property
    def relation_types(self) -> list[str]:
        """Relation type names; position ``r`` is type id ``r`` in :meth:`edge_arrays`."""
        return list(self._rel_types)

    @property
    def dangling(self) -> list[Relation]:
        """Relations whose source or target is not in the graph (kept aside, reported by :meth:`validate`)."""
        return list(self._dangling)

    def relation_type_id(self, relation_type: str, create: bool = False) -> int:
        r = self._rel_index.get(relation_type)
        if r is None:
            if not create:
                raise KeyError(f"relation type {relation_type!r} is not in graph {self.name!r}; "
                               f"known types: {sorted(self._rel_types)}")
            r = len(self._rel_types)
            self._rel_types.append(relation_type)
            self._rel_index[relation_type] = r
        return r

    def _origin_id(self, origin: str) -> int:
        o = self._origin_index.get(origin)
        if o is None:
            o = len(self._origins)
            self._origins.append(origin)
            self._origin_index[origin] = o
        return o

    def _append_edge(self, r: Relation) -> None:
        self._src.append(self._index[r.source])
        self._rel.append(self.relation_type_id(r.type, create=True))
        self._dst.append(self._index[r.target])
        self._org.append(self._origin_id(r.origin))
        self._touch()

    def add_relation(self, relation: Relation) -> bool:
        """Add a relation between two existing concepts. Returns ``False`` if it was already there."""
        for endpoint in (relation.source, relation.target):
            if endpoint not in self._index:
                raise UnknownConceptError(self._unknown_message(endpoint) + " Add the concept before relating it.")
        if self.has_relation(relation.source, relation.type, relation.target):
            return False
        self._append_edge(relation)
        return True

    def _relation_mask(self, source: str, relation_type: str, target: str) -> np.ndarray | None:
        """Which edges are ``source --relation_type--> target`` (``None`` when a name is unknown to the graph)."""
        r = self._rel_index.get(relation_type)
        s, t = self._index.get(source), self._index.get(target)
        if r is None or s is None or t is None:
            return None
        src, rel, dst = self.edge_arrays()
        return (src == s) & (rel == r) & (dst == t)

    def has_relation(self, source: str, relation_type: str, target: str) -> bool:
        hit = self._relation_mask(source, relation_type, target)
        return hit is not None and bool(np.any(hit))

    def remove_relation(self, source: str, relation_type: str, target: str) -> bool:
        """Remove a relation. Returns ``False`` if it was not there."""
        hit = self._relation_mask(source, relation_type, target)
        if hit is None or not hit.any():
            return False
        self._keep_edges(~hit)
        return True

    def _keep_edges(self, keep: np.ndarray) -> None:
        src, rel, dst = self.edge_arrays()
        org = np.frombuffer(self._org, dtype=np.int32) if len(self._org) else np.zeros(0, np.int32)
        self._src = array("i", src[keep].tobytes()) if keep.any() else array("i")
        self._rel = array("i", rel[keep].tobytes()) if keep.any() else array("i")
        self._dst = array("i", dst[keep].tobytes()) if keep.any() else array("i")
        self._org = array("i", org[keep].tobytes()) if keep.any() else array("i")
        self._touch()

    def redirect_relations(self, old_id: str, new_id: str) -> int:
        """Point every relation of ``old_id`` at ``new_id`` instead (used by curation's merge). Returns the count.

        Self-loops created by the redirect and duplicates are dropped.
        """
        old, new = self.index_of(old_id), self.index_of(new_id)
        src = np.frombuffer(self._src, dtype=np.int32).copy()
        dst = np.frombuffer(self._dst, dtype=np.int32).copy()
        moved = int(np.count_nonzero(src == old) + np.count_nonzero(dst == old))
        src[src == old] = new
        dst[dst == old] = new
        self._src, self._dst = array("i", src.tobytes()), array("i", dst.tobytes())
        self._keep_edges(src != dst)
        self._dedupe_edges()
        return moved

    def _dedupe_edges(self) -> None:
        if not len(self._src):
            return
        src, rel, dst = self.edge_arrays()
        key = (src.astype(np.int64) * (len(self._rel_types) + 1) + rel) * (len(self._ids) + 1) + dst
        _, first = np.unique(key, return_index=True)
        if len(first) != len(key):
            keep = np.zeros(len(key), dtype=bool)
            keep[first] = True
            self._keep_edges(keep)

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(source, relation_type, target)`` as ``int32`` arrays of shape ``[num_relations]`` (read-only views).

        Node indices follow :attr:`ids`; relation type ids follow :attr:`relation_types`.
        """
        def view(buf: array) -> np.ndarray:
            out = np.frombuffer(buf, dtype=np.int32) if len(buf) else np.zeros(0, dtype=np.int32)
            out.flags.writeable = False
            return out

        return view(self._src), view(self._rel), view(self._dst)

    def relations(self, concept_id: str | None = None, relation_type: str | None = None,
                  direction: Direction = "out") -> list[Relation]:
        """Relations, optionally of one concept (``direction`` out / in / both) and one type."""
        src, rel, dst = self.edge_arrays()
        mask = np.ones(len(src), dtype=bool)
        if relation_type is not None:
            r = self._rel_index.get(relation_type)
            if r is None:
                return []
            mask &= rel == r
        if concept_id is not None:
            i = self.index_of(concept_id)
            if direction == "out":
                mask &= src == i
            elif direction == "in":
                mask &= dst == i
            else:
                mask &= (src == i) | (dst == i)
        org = np.frombuffer(self._org, dtype=np.int32) if len(self._org) else np.zeros(0, np.int32)
        return [
            Relation(self._ids[s], self._rel_types[r], self._ids[d], self._origins[o])
            for s, r, d, o in zip(src[mask].tolist(), rel[mask].tolist(), dst[mask].tolist(), org[mask].tolist())
        ]

    def parents(self, concept_id: str, relation_type: str = IS_A) -> list[str]:
        return [r.target for r in self.relations(concept_id, relation_type, "out")]

    def children(self, concept_id: str, relation_type: str = IS_A) -> list[str]:
        return [r.source for r in self.relations(concept_id, relation_type, "in")]

    def link_xrefs(self) -> int:
        """Add ``same_as`` relations for every xref whose target concept is in this graph. Returns how many."""
        existing: set[tuple[int, int]] = set()
        r = self._rel_index.get(SAME_AS)
        if r is not None:  # one pass over the edges, not one scan per xref
            src, rel, dst = self.edge_arrays()
            mask = rel == r
            existing = set(zip(src[mask].tolist(), dst[mask].tolist()))
            del src, rel, dst  # views of the edge buffers: appending below must not find them exported
        added = 0
        for i, xrefs in enumerate(self._xrefs):
            for xref in xrefs:
                j = self._index.get(xref)
                if j is not None and j != i and (i, j) not in existing:
                    self._append_edge(Relation(self._ids[i], SAME_AS, xref, "xref"))
                    existing.add((i, j))
                    added += 1
        return added
