"""Concepts, relations and the columnar :class:`ConceptGraph` that holds them.

A concept id is namespaced text (``RADLEX:RID3441``, ``UMLS:C0014869``, ``DOID:1324``). The graph stores concepts
column by column (Python lists of strings, one entry per concept) and relations as four ``int32`` arrays
(source, relation type, target, origin; type and origin names interned), so that a UMLS-scale graph (millions of
concepts, tens of millions of relations) fits in memory. Walks (neighbourhoods, is-a cycles) run on a compressed
adjacency built with numpy (:mod:`kgclip.ontology.adjacency`) and cached until the next mutation; networkx graphs
are *views* built on demand (:meth:`ConceptGraph.subgraph_nx`).

Relations are directed and typed; ``part_of`` and ``has_part`` stay two types. Cross-references (RadLex
``UMLS_ID``, Disease Ontology ``xref``) are kept on each concept and become ``same_as`` relations wherever the
referenced concept is in the same graph (:meth:`ConceptGraph.link_xrefs`), which is how several sources merge.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from kgclip.errors import DuplicateConceptError, InputFormatError, UnknownConceptError
from kgclip.fingerprint import Hasher
from kgclip.ontology import adjacency
from kgclip.ontology.ids import (  # noqa: F401 - re-exported: model is the import path users know
    BUILTIN_RELATION_TYPES,
    HAS_PART,
    IS_A,
    PART_OF,
    SAME_AS,
    normalize_curie,
    normalize_relation_type,
)
from kgclip.ontology.records import Concept, GraphColumns, Relation, ValidationReport

if TYPE_CHECKING:  # networkx is imported lazily: a curator's CLI call should not pay for it
    import networkx as nx

__all__ = [
    "Concept",
    "Relation",
    "ConceptGraph",
    "ValidationReport",
    "GraphColumns",
    "IS_A",
    "PART_OF",
    "HAS_PART",
    "SAME_AS",
    "normalize_curie",
    "normalize_relation_type",
    "Direction",
]


Direction = Literal["out", "in", "both"]


def _int32(buf: array) -> np.ndarray:
    """An ``array("i")`` edge column as ``int32 [E]`` (a view, shared with the buffer)."""
    return np.frombuffer(buf, dtype=np.int32) if len(buf) else np.zeros(0, dtype=np.int32)


class ConceptGraph:
    """A typed, directed concept graph with a columnar core.

    Build one with :meth:`from_records` (what readers yield) or edit one in place with :meth:`add_concept`,
    :meth:`add_relation`... (the curation layer wraps these with a changelog and undo).

    Example:
        >>> g = ConceptGraph.from_records([
        ...     Concept("DOID:4", "disease"), Concept("DOID:1324", "lung cancer", synonyms=("lung neoplasm",)),
        ...     Relation("DOID:1324", "is_a", "DOID:4")])
        >>> g.concept("DOID:1324").synonyms, g.parents("DOID:1324")
        (('lung neoplasm',), ['DOID:4'])
    """

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._synonyms: list[tuple[str, ...]] = []
        self._types: list[tuple[str, ...]] = []
        self._definitions: list[str] = []
        self._sources: list[str] = []
        self._deprecated = bytearray()
        self._xrefs: list[tuple[str, ...]] = []
        # Edges: parallel int32 arrays; relation types and origins interned.
        self._src = array("i")
        self._rel = array("i")
        self._dst = array("i")
        self._org = array("i")
        self._rel_types: list[str] = []
        self._rel_index: dict[str, int] = {}
        self._origins: list[str] = [""]
        self._origin_index: dict[str, int] = {"": 0}
        self._dangling: list[Relation] = []
        self._duplicates: dict[str, None] = {}
        self._declared: dict[str, None] = {}  # relation types declared without (yet) having relations
        self._used_cache: tuple[int, list[str]] | None = None  # (version, used_relation_types)
        self._csr_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._version = 0  # bumped on every mutation; caches key on it
        self._fingerprint: tuple[int, str] | None = None  # (version, digest): fingerprint() is ~1 s on 59k concepts

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(
        cls,
        records: Iterable[Concept | Relation],
        *,
        name: str = "graph",
        link_xrefs: bool = True,
    ) -> "ConceptGraph":
        """Build a graph from reader records, in one pass.

        Repeated concept records of one id are merged (:meth:`Concept.merged_with`); repeated relations are kept
        once. A relation whose endpoint never appears is kept aside and reported by :meth:`validate` as dangling.
        """
        graph = cls(name=name)
        pending: list[Relation] = []
        for record in records:
            if isinstance(record, Concept):
                graph.upsert_concept(record)
            elif isinstance(record, Relation):
                if record.source in graph._index and record.target in graph._index:
                    graph._append_edge(record)
                else:  # its endpoint may come later in the stream
                    pending.append(record)
            else:
                raise TypeError(f"expected Concept or Relation records, got {type(record).__name__}")
        for relation in pending:
            if relation.source in graph._index and relation.target in graph._index:
                graph._append_edge(relation)
            else:
                graph._dangling.append(relation)
        graph._dedupe_edges()
        if link_xrefs:
            graph.link_xrefs()
        return graph

    @classmethod
    def union(cls, graphs: Sequence["ConceptGraph"], *, name: str = "merged") -> "ConceptGraph":
        """One graph from several (e.g. RadLex + Disease Ontology + UMLS), joined through ``same_as`` xrefs."""

        def records() -> Iterator[Concept | Relation]:
            for graph in graphs:
                yield from graph.concepts()
            for graph in graphs:
                yield from graph.relations()
                yield from graph._dangling

        merged = cls.from_records(records(), name=name)
        for graph in graphs:
            merged._declared.update(graph._declared)
        return merged

    def copy(self) -> "ConceptGraph":
        """An independent copy (edits to it do not touch this graph)."""
        other = ConceptGraph(self.name)
        for attr in ("_ids", "_names", "_synonyms", "_types", "_definitions", "_sources", "_xrefs",
                     "_rel_types", "_origins", "_dangling"):
            setattr(other, attr, list(getattr(self, attr)))
        for attr in ("_index", "_rel_index", "_origin_index", "_duplicates", "_declared"):
            setattr(other, attr, dict(getattr(self, attr)))
        for attr in ("_src", "_rel", "_dst", "_org"):
            setattr(other, attr, array("i", getattr(self, attr)))
        other._deprecated = bytearray(self._deprecated)
        return other

    # ------------------------------------------------------------------ columnar import / export
    def columns(self) -> "GraphColumns":
        """The columnar core as plain lists and arrays (for fast stores and caches; do not mutate them)."""
        src, rel, dst = self.edge_arrays()
        org = _int32(self._org)
        return GraphColumns(
            ids=self._ids, names=self._names, synonyms=self._synonyms, semantic_types=self._types,
            definitions=self._definitions, sources=self._sources, deprecated=bytes(self._deprecated),
            xrefs=self._xrefs, edge_source=src, edge_type=rel, edge_target=dst, edge_origin=org,
            relation_types=list(self._rel_types), origins=list(self._origins), dangling=list(self._dangling),
            duplicate_ids=list(self._duplicates), declared_relation_types=list(self._declared),
        )

    @classmethod
    def from_columns(cls, columns: "GraphColumns", *, name: str = "graph") -> "ConceptGraph":
        """Rebuild a graph from :meth:`columns` output without per-record work (the inverse of ``columns``).

        Raises ``ValueError`` when the columns disagree in length or edges point outside the node range.
        """
        columns.check()
        n = len(columns.ids)
        graph = cls(name=name)
        graph._ids = list(columns.ids)
        graph._index = {cid: i for i, cid in enumerate(graph._ids)}
        if len(graph._index) != n:
            raise ValueError("concept ids are not unique")
        graph._names = list(columns.names)
        graph._synonyms = [tuple(x) for x in columns.synonyms]
        graph._types = [tuple(x) for x in columns.semantic_types]
        graph._definitions = list(columns.definitions)
        graph._sources = list(columns.sources)
        graph._deprecated = bytearray(columns.deprecated)
        graph._xrefs = [tuple(x) for x in columns.xrefs]
        graph._src = array("i", np.asarray(columns.edge_source, dtype=np.int32).tobytes())
        graph._rel = array("i", np.asarray(columns.edge_type, dtype=np.int32).tobytes())
        graph._dst = array("i", np.asarray(columns.edge_target, dtype=np.int32).tobytes())
        graph._org = array("i", np.asarray(columns.edge_origin, dtype=np.int32).tobytes())
        graph._rel_types = list(columns.relation_types)
        graph._rel_index = {t: i for i, t in enumerate(graph._rel_types)}
        graph._origins = list(columns.origins) or [""]
        graph._origin_index = {o: i for i, o in enumerate(graph._origins)}
        graph._dangling = list(columns.dangling)
        graph._duplicates = dict.fromkeys(columns.duplicate_ids)
        graph._declared = dict.fromkeys(columns.declared_relation_types)
        return graph

    # ------------------------------------------------------------------ concepts
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __repr__(self) -> str:
        return (f"ConceptGraph(name={self.name!r}, concepts={len(self)}, relations={self.num_relations}, "
                f"relation_types={len(self._rel_types)})")

    @property
    def ids(self) -> Sequence[str]:
        """Concept ids in insertion order (position ``i`` is node ``i`` of :meth:`edge_arrays`). Do not mutate."""
        return self._ids

    def index_of(self, concept_id: str) -> int:
        """Integer position of a concept (its node index in :meth:`edge_arrays`)."""
        try:
            return self._index[concept_id]
        except KeyError:
            raise UnknownConceptError(self._unknown_message(concept_id)) from None

    def _unknown_message(self, concept_id: str) -> str:
        hint = ""
        if ":" not in concept_id:
            hint = f" Ids are namespaced; did you mean {normalize_curie(concept_id)!r}?"
        return f"concept {concept_id!r} is not in graph {self.name!r}.{hint} Use `kgclip ontology search` to find ids."

    def concept(self, concept_id: str) -> Concept:
        """The concept with this id; :class:`UnknownConceptError` if absent."""
        return self._concept_at(self.index_of(concept_id))

    def get(self, concept_id: str) -> Concept | None:
        i = self._index.get(concept_id)
        return None if i is None else self._concept_at(i)

    def _concept_at(self, i: int) -> Concept:
        return Concept(
            id=self._ids[i], name=self._names[i], synonyms=self._synonyms[i], semantic_types=self._types[i],
            definition=self._definitions[i], source=self._sources[i], deprecated=bool(self._deprecated[i]),
            xrefs=self._xrefs[i],
        )

    def concepts(self, include_deprecated: bool = True) -> Iterator[Concept]:
        for i in range(len(self._ids)):
            if include_deprecated or not self._deprecated[i]:
                yield self._concept_at(i)

    def name_of(self, concept_id: str) -> str:
        return self._names[self.index_of(concept_id)]

    def add_concept(self, concept: Concept) -> int:
        """Add a new concept; :class:`DuplicateConceptError` if the id exists. Returns its node index."""
        if concept.id in self._index:
            raise DuplicateConceptError(
                f"concept {concept.id!r} already exists in graph {self.name!r}; update it or choose another id"
            )
        return self._append_concept(concept)

    def upsert_concept(self, concept: Concept) -> int:
        """Add a concept, or merge it into the existing one of the same id. Returns its node index."""
        i = self._index.get(concept.id)
        if i is None:
            return self._append_concept(concept)
        old = self._concept_at(i)
        if (old.name and concept.name and old.name.casefold() != concept.name.casefold()
                and old.source == concept.source):
            self._duplicates[concept.id] = None
        self._set_concept(i, old.merged_with(concept))
        return i

    def replace_concept(self, concept: Concept) -> None:
        """Overwrite every field of an existing concept."""
        self._set_concept(self.index_of(concept.id), concept)

    def _append_concept(self, c: Concept) -> int:
        if not isinstance(c.id, str) or not c.id or c.id != c.id.strip():
            raise InputFormatError(f"invalid concept id {c.id!r}: ids are non-empty and carry no surrounding spaces; "
                                   "fix the record (a reader skips it with --on-error skip)")
        i = len(self._ids)
        self._index[c.id] = i
        self._ids.append(c.id)
        self._names.append(c.name)
        self._synonyms.append(tuple(c.synonyms))
        self._types.append(tuple(c.semantic_types))
        self._definitions.append(c.definition)
        self._sources.append(c.source)
        self._deprecated.append(1 if c.deprecated else 0)
        self._xrefs.append(tuple(c.xrefs))
        self._touch()
        return i

    def _set_concept(self, i: int, c: Concept) -> None:
        self._names[i] = c.name
        self._synonyms[i] = tuple(c.synonyms)
        self._types[i] = tuple(c.semantic_types)
        self._definitions[i] = c.definition
        self._sources[i] = c.source
        self._deprecated[i] = 1 if c.deprecated else 0
        self._xrefs[i] = tuple(c.xrefs)
        self._touch()

    def remove_concept(self, concept_id: str) -> list[Relation]:
        """Delete a concept and every relation touching it; returns the removed relations.

        Curators normally *deprecate* concepts; deletion exists to undo an ``add``. Node indices after the removed
        concept shift down by one (O(N) work).
        """
        i = self.index_of(concept_id)
        removed = self.relations(concept_id, direction="both")
        src, _, dst = self.edge_arrays()
        if len(src):
            self._keep_edges((src != i) & (dst != i))
            src, dst = _int32(self._src).copy(), _int32(self._dst).copy()
            src[src > i] -= 1
            dst[dst > i] -= 1
            self._src, self._dst = array("i", src.tobytes()), array("i", dst.tobytes())
        for column in (self._ids, self._names, self._synonyms, self._types, self._definitions, self._sources,
                       self._xrefs):
            del column[i]
        del self._deprecated[i]
        del self._index[concept_id]
        for k in range(i, len(self._ids)):
            self._index[self._ids[k]] = k
        self._touch()
        return removed

    # ------------------------------------------------------------------ relations
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

    @property
    def declared_relation_types(self) -> list[str]:
        """Relation types this graph accepts in curated edits, sorted: the built-in ones
        (:data:`~kgclip.ontology.ids.BUILTIN_RELATION_TYPES`), every type that has relations (from a source or an
        edit), and the types declared with :meth:`declare_relation_type`."""
        return sorted(BUILTIN_RELATION_TYPES.union(self.used_relation_types, self._declared))

    @property
    def used_relation_types(self) -> list[str]:
        """Relation types that have at least one relation (unlike :attr:`relation_types`, which also keeps the names
        of types whose relations were all removed)."""
        cached = self._used_cache
        if cached is None or cached[0] != self._version:
            _, rel, _ = self.edge_arrays()
            present = np.bincount(rel, minlength=len(self._rel_types)) > 0 if len(rel) else ()
            cached = self._used_cache = (self._version, [t for t, p in zip(self._rel_types, present) if p])
        return list(cached[1])

    def declare_relation_type(self, relation_type: str) -> bool:
        """Accept ``relation_type`` in curated edits from now on (:meth:`declared_relation_types`); ``False`` if it
        already was. The name is checked by the curator; this only records it."""
        if relation_type in self.declared_relation_types:
            return False
        self._declared[relation_type] = None
        self._touch()
        return True

    def undeclare_relation_type(self, relation_type: str) -> bool:
        """Forget a declaration made with :meth:`declare_relation_type` (types in use stay accepted)."""
        if relation_type not in self._declared:
            return False
        del self._declared[relation_type]
        self._touch()
        return True

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
        row = (self._index[r.source], self.relation_type_id(r.type, create=True), self._index[r.target],
               self._origin_id(r.origin))
        try:
            for column, value in zip((self._src, self._rel, self._dst, self._org), row):
                column.append(value)
        except BufferError:
            # A numpy view from edge_arrays() is still alive (held by a caller, or by a traceback): an array that
            # exports its buffer cannot grow. Undo the partial append and grow copies instead; the view keeps the
            # old data.
            n = len(self._org)
            self._src, self._rel, self._dst, self._org = (array("i", c[:n]) for c in
                                                          (self._src, self._rel, self._dst, self._org))
            for column, value in zip((self._src, self._rel, self._dst, self._org), row):
                column.append(value)
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
        org = _int32(self._org)
        self._src, self._rel, self._dst, self._org = (array("i", x[keep].tobytes()) for x in (src, rel, dst, org))
        self._touch()

    def redirect_relations(self, old_id: str, new_id: str) -> int:
        """Point every relation of ``old_id`` at ``new_id`` instead (used by curation's merge). Returns the count.

        Self-loops created by the redirect and duplicates are dropped.
        """
        old, new = self.index_of(old_id), self.index_of(new_id)
        src, dst = _int32(self._src).copy(), _int32(self._dst).copy()
        moved = int(np.count_nonzero(src == old) + np.count_nonzero(dst == old))
        src[src == old] = new
        dst[dst == old] = new
        self._src, self._dst = array("i", src.tobytes()), array("i", dst.tobytes())
        self._keep_edges(src != dst)
        self._dedupe_edges()
        return moved

    def _dedupe_edges(self) -> None:
        keep = adjacency.first_occurrences(*self.edge_arrays(), len(self._rel_types), len(self._ids))
        if keep is not None:
            self._keep_edges(keep)

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(source, relation_type, target)`` as ``int32`` arrays of shape ``[num_relations]`` (read-only views).

        Node indices follow :attr:`ids`; relation type ids follow :attr:`relation_types`.
        """
        def view(buf: array) -> np.ndarray:
            out = _int32(buf)
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
        org = _int32(self._org)
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

    # ------------------------------------------------------------------ walks and views
    def _csr(self, direction: Literal["out", "in"]) -> adjacency.Csr:
        """Compressed adjacency: ``(indptr, neighbour, edge_id)``, cached until the next mutation."""
        key = f"{direction}:{self._version}"
        cached = self._csr_cache.get(key)
        if cached is not None:
            return cached
        src, _, dst = self.edge_arrays()
        a, b = (src, dst) if direction == "out" else (dst, src)
        result = adjacency.compressed_adjacency(a, b, len(self._ids))
        self._csr_cache = {k: v for k, v in self._csr_cache.items() if k.endswith(f":{self._version}")}
        self._csr_cache[key] = result
        return result

    def neighborhood(self, concept_ids: Iterable[str], hops: int = 1, direction: Direction = "both") -> list[str]:
        """Ids within ``hops`` relations of any of ``concept_ids`` (the seeds included), in breadth-first order."""
        seeds = [self.index_of(c) for c in concept_ids]
        tables = [self._csr(d) for d in (("out", "in") if direction == "both" else (direction,))]
        return [self._ids[i] for i in adjacency.walk(tables, seeds, hops)]

    def subgraph_nx(self, concept_ids: Iterable[str], hops: int = 0) -> "nx.MultiDiGraph":
        """A networkx view of some concepts and everything within ``hops`` of them.

        Nodes carry ``name``, ``synonyms``, ``definition``, ``source``, ``deprecated``; edges carry ``type``.
        """
        import networkx as nx

        keep = self.neighborhood(concept_ids, hops=hops) if hops else [self._ids[self.index_of(c)] for c in concept_ids]
        idx = np.array([self._index[c] for c in keep], dtype=np.int64)
        graph = nx.MultiDiGraph(name=self.name)
        for i in idx.tolist():
            c = self._concept_at(i)
            graph.add_node(c.id, name=c.name, synonyms=list(c.synonyms), definition=c.definition, source=c.source,
                           deprecated=c.deprecated)
        src, rel, dst = self.edge_arrays()
        inside = np.zeros(len(self._ids), dtype=bool)
        inside[idx] = True
        mask = inside[src] & inside[dst] if len(src) else np.zeros(0, dtype=bool)
        for s, r, d in zip(src[mask].tolist(), rel[mask].tolist(), dst[mask].tolist()):
            graph.add_edge(self._ids[s], self._ids[d], key=self._rel_types[r], type=self._rel_types[r])
        return graph

    def to_networkx(self) -> "nx.MultiDiGraph":
        """The whole graph as networkx (for small graphs: costs ~1 KB per concept)."""
        return self.subgraph_nx(self._ids, hops=0)

    def is_a_cycles(self, limit: int = 100) -> list[list[str]]:
        """Up to ``limit`` is-a cycles, each as the list of ids around it."""
        r = self._rel_index.get(IS_A)
        if r is None:
            return []
        src, rel, dst = self.edge_arrays()
        mask = rel == r
        return [[self._ids[i] for i in cycle]
                for cycle in adjacency.cycles(src[mask], dst[mask], len(self._ids), limit)]

    # ------------------------------------------------------------------ checks and identity
    def validate(self) -> ValidationReport:
        """Check for dangling ids, is-a cycles and conflicting duplicate ids (like PyG's ``Data.validate``)."""
        return ValidationReport(dangling=list(self._dangling), is_a_cycles=self.is_a_cycles(),
                                duplicate_ids=list(self._duplicates))

    def remember_fingerprint(self, fingerprint: str) -> None:
        """Take ``fingerprint`` as this version's fingerprint without recomputing it: for a graph just read
        from a file whose bytes were checked against a checksum taken when it was saved (see ``load_cache``)."""
        self._fingerprint = (self._version, fingerprint)

    def fingerprint(self) -> str:
        """Content hash of concepts and relations, independent of insertion order.

        Relations are hashed as integer triples over the *sorted* id and type orders, so the cost is a numeric
        sort (about a second for millions of relations), not a sort of strings. Memoised until the next mutation
        (every mutation goes through ``_touch``, which bumps :attr:`version`).
        """
        if self._fingerprint is not None and self._fingerprint[0] == self._version:
            return self._fingerprint[1]
        h = Hasher()
        order = sorted(range(len(self._ids)), key=self._ids.__getitem__)
        for i in order:
            h.update_json([self._ids[i], self._names[i], self._synonyms[i], self._types[i], self._definitions[i],
                           self._sources[i], self._deprecated[i], self._xrefs[i]])
        src, rel, dst = self.edge_arrays()
        # Only types that have relations count: an undone edit may leave an unused type name behind.
        used_types = np.unique(rel).tolist()
        type_order = sorted(used_types, key=self._rel_types.__getitem__)
        h.update_json([self._rel_types[t] for t in type_order])
        if len(src):
            node_rank = np.empty(len(self._ids), dtype=np.int64)
            node_rank[np.asarray(order, dtype=np.int64)] = np.arange(len(self._ids), dtype=np.int64)
            type_rank = np.zeros(len(self._rel_types), dtype=np.int64)
            type_rank[np.asarray(type_order, dtype=np.int64)] = np.arange(len(type_order), dtype=np.int64)
            triples = np.stack([node_rank[src], type_rank[rel], node_rank[dst]], axis=1)
            triples = triples[np.lexsort((triples[:, 2], triples[:, 1], triples[:, 0]))]
            h.update_array(triples)
        self._fingerprint = (self._version, h.hexdigest())
        return self._fingerprint[1]

    def _touch(self) -> None:
        self._version += 1

    @property
    def version(self) -> int:
        """A counter bumped by every mutation (for caches keyed on the graph's state within a process)."""
        return self._version
