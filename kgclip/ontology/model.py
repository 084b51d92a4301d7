"""Concepts, relations and the columnar :class:`ConceptGraph` that holds them.

A concept id is namespaced text (``RADLEX:RID3441``, ``UMLS:C0014869``, ``DOID:1324``). The graph stores concepts
column by column (Python lists of strings, one entry per concept) and relations as three ``int32`` arrays
(source, relation type, target), so that a UMLS-scale graph (millions of concepts, tens of millions of relations)
fits in memory. networkx graphs are *views* built on demand (:meth:`ConceptGraph.subgraph_nx`).

Relations are directed and typed; ``part_of`` and ``has_part`` stay two types. Cross-references (RadLex
``UMLS_ID``, Disease Ontology ``xref``) are kept on each concept and become ``same_as`` relations wherever the
referenced concept is in the same graph (:meth:`ConceptGraph.link_xrefs`), which is how several sources merge.

The class is assembled from three modules: this one (storage, construction, concepts, validation and fingerprint),
:mod:`kgclip.ontology.graph_relations` (the relation columns: edits, queries, xref linking) and
:mod:`kgclip.ontology.graph_views` (neighbourhoods, networkx views, is-a cycles).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from kgclip.errors import DuplicateConceptError, UnknownConceptError
from kgclip.fingerprint import Hasher
from kgclip.ontology.graph_relations import Direction
from kgclip.ontology.graph_views import GraphViewsMixin
from kgclip.ontology.ids import (  # noqa: F401 - re-exported: model is the import path users know
    HAS_PART,
    IS_A,
    PART_OF,
    SAME_AS,
    normalize_curie,
    normalize_relation_type,
)
from kgclip.ontology.records import Concept, GraphColumns, Relation, ValidationReport

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


class ConceptGraph(GraphViewsMixin):  # GraphViewsMixin builds on GraphRelationsMixin
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

        return cls.from_records(records(), name=name)

    def copy(self) -> "ConceptGraph":
        """An independent copy (edits to it do not touch this graph)."""
        other = ConceptGraph(self.name)
        for attr in ("_ids", "_names", "_synonyms", "_types", "_definitions", "_sources", "_xrefs",
                     "_rel_types", "_origins", "_dangling"):
            setattr(other, attr, list(getattr(self, attr)))
        for attr in ("_index", "_rel_index", "_origin_index", "_duplicates"):
            setattr(other, attr, dict(getattr(self, attr)))
        for attr in ("_src", "_rel", "_dst", "_org"):
            setattr(other, attr, array("i", getattr(self, attr)))
        other._deprecated = bytearray(self._deprecated)
        return other

    # ------------------------------------------------------------------ columnar import / export
    def columns(self) -> "GraphColumns":
        """The columnar core as plain lists and arrays (for fast stores and caches; do not mutate them)."""
        src, rel, dst = self.edge_arrays()
        org = np.frombuffer(self._org, dtype=np.int32) if len(self._org) else np.zeros(0, np.int32)
        return GraphColumns(
            ids=self._ids, names=self._names, synonyms=self._synonyms, semantic_types=self._types,
            definitions=self._definitions, sources=self._sources, deprecated=bytes(self._deprecated),
            xrefs=self._xrefs, edge_source=src, edge_type=rel, edge_target=dst, edge_origin=org,
            relation_types=list(self._rel_types), origins=list(self._origins), dangling=list(self._dangling),
            duplicate_ids=list(self._duplicates),
        )

    @classmethod
    def from_columns(cls, columns: "GraphColumns", *, name: str = "graph") -> "ConceptGraph":
        """Rebuild a graph from :meth:`columns` output without per-record work (the inverse of ``columns``).

        Raises ``ValueError`` when the columns disagree in length or edges point outside the node range.
        """
        n = len(columns.ids)
        lengths = {len(columns.names), len(columns.synonyms), len(columns.semantic_types), len(columns.definitions),
                   len(columns.sources), len(columns.deprecated), len(columns.xrefs)}
        if lengths != {n}:
            raise ValueError(f"concept columns have different lengths {sorted(lengths)} (expected {n})")
        e = len(columns.edge_source)
        if {len(columns.edge_type), len(columns.edge_target), len(columns.edge_origin)} != {e}:
            raise ValueError("edge columns have different lengths")
        for arr, bound, what in ((columns.edge_source, n, "source"), (columns.edge_target, n, "target"),
                                 (columns.edge_type, len(columns.relation_types), "type"),
                                 (columns.edge_origin, len(columns.origins), "origin")):
            if e and (int(np.min(arr)) < 0 or int(np.max(arr)) >= bound):
                raise ValueError(f"edge {what} index out of range")
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
        if old.name and concept.name and old.name.casefold() != concept.name.casefold() and old.source == concept.source:
            self._duplicates[concept.id] = None
        self._set_concept(i, old.merged_with(concept))
        return i

    def replace_concept(self, concept: Concept) -> None:
        """Overwrite every field of an existing concept."""
        self._set_concept(self.index_of(concept.id), concept)

    def _append_concept(self, c: Concept) -> int:
        if not c.id or c.id != c.id.strip():
            raise ValueError(f"invalid concept id {c.id!r}: ids are non-empty and carry no surrounding spaces")
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
            src = np.frombuffer(self._src, dtype=np.int32).copy() if len(self._src) else np.zeros(0, np.int32)
            dst = np.frombuffer(self._dst, dtype=np.int32).copy() if len(self._dst) else np.zeros(0, np.int32)
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

    def _pop_last_concept(self, concept_id: str) -> None:
        """Remove the most recently added concept (undo of an add); it must have no relations left."""
        if not self._ids or self._ids[-1] != concept_id:
            raise ValueError(f"{concept_id!r} is not the last concept added")
        i = len(self._ids) - 1
        src, _, dst = self.edge_arrays()
        if np.any(src == i) or np.any(dst == i):
            raise ValueError(f"{concept_id!r} still has relations; remove them first")
        del self._index[concept_id]
        for column in (self._ids, self._names, self._synonyms, self._types, self._definitions, self._sources,
                       self._xrefs):
            column.pop()
        self._deprecated.pop()
        self._touch()

    # ------------------------------------------------------------------ checks and identity
    def validate(self) -> ValidationReport:
        """Check for dangling ids, is-a cycles and conflicting duplicate ids (like PyG's ``Data.validate``)."""
        return ValidationReport(dangling=list(self._dangling), is_a_cycles=self.is_a_cycles(),
                                duplicate_ids=list(self._duplicates))

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
