"""The records readers yield (:class:`Concept`, :class:`Relation`) and the plain results the graph hands out."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kgclip.errors import GraphValidationError

__all__ = ["Concept", "Relation", "ValidationReport", "GraphColumns"]


@dataclasses.dataclass(frozen=True)
class Concept:
    """One concept. Readers yield these; the graph stores them column by column.

    Attributes:
        id: namespaced id, e.g. ``"RADLEX:RID3441"``.
        name: preferred name.
        synonyms: other names (exact and related synonyms, abbreviations), without the preferred name.
        semantic_types: e.g. UMLS semantic types (``"T047"``) or source categories.
        definition: free-text definition, or ``""``.
        source: the ontology it came from (``"radlex"``, ``"doid"``, ``"umls"``...).
        deprecated: obsolete / deprecated in its source, or deprecated by a curator.
        xrefs: namespaced ids of the same concept in other vocabularies (become ``same_as`` relations).
    """

    id: str
    name: str = ""
    synonyms: tuple[str, ...] = ()
    semantic_types: tuple[str, ...] = ()
    definition: str = ""
    source: str = ""
    deprecated: bool = False
    xrefs: tuple[str, ...] = ()

    def merged_with(self, other: "Concept") -> "Concept":
        """Combine two records of the same id: fill empty fields, union the tuples (first record's order wins)."""

        def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(a + b))

        name = self.name or other.name
        synonyms = union(self.synonyms, other.synonyms)
        if other.name and other.name != name:
            synonyms = union(synonyms, (other.name,))
        return Concept(
            id=self.id,
            name=name,
            synonyms=tuple(s for s in synonyms if s != name),
            semantic_types=union(self.semantic_types, other.semantic_types),
            definition=self.definition or other.definition,
            source=self.source or other.source,
            deprecated=self.deprecated or other.deprecated,
            xrefs=union(self.xrefs, other.xrefs),
        )

    @property
    def all_names(self) -> tuple[str, ...]:
        """Preferred name first, then synonyms."""
        return ((self.name,) if self.name else ()) + self.synonyms


@dataclasses.dataclass(frozen=True)
class Relation:
    """A directed, typed relation ``source --type--> target`` (``DOID:1324 --is_a--> DOID:3905``).

    Attributes:
        origin: which source asserted it (``"doid"``, ``"curator"``, ``"xref"``), or ``""``.
    """

    source: str
    type: str
    target: str
    origin: str = ""


@dataclasses.dataclass
class ValidationReport:
    """What :meth:`ConceptGraph.validate` found. ``ok`` is true when there is nothing to fix."""

    dangling: list[Relation] = dataclasses.field(default_factory=list)
    is_a_cycles: list[list[str]] = dataclasses.field(default_factory=list)
    duplicate_ids: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.dangling or self.is_a_cycles or self.duplicate_ids)

    def summary(self) -> str:
        if self.ok:
            return "graph is valid"
        lines = []
        if self.dangling:
            sample = ", ".join(f"{r.source} -{r.type}-> {r.target}" for r in self.dangling[:5])
            lines.append(f"{len(self.dangling)} relation(s) point to unknown ids (e.g. {sample}); "
                         "import the missing source or remove them")
        if self.is_a_cycles:
            sample = " -> ".join(self.is_a_cycles[0] + self.is_a_cycles[0][:1])
            lines.append(f"{len(self.is_a_cycles)} is_a cycle(s) (e.g. {sample}); remove one is_a edge of each")
        if self.duplicate_ids:
            lines.append(f"{len(self.duplicate_ids)} id(s) defined more than once with conflicting names "
                         f"(e.g. {', '.join(self.duplicate_ids[:5])}); merge or rename them")
        return "; ".join(lines)

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise GraphValidationError(self.summary())


@dataclasses.dataclass(frozen=True)
class GraphColumns:
    """The columnar core of a :class:`ConceptGraph` (see :meth:`ConceptGraph.columns` / ``from_columns``).

    Concept columns have one entry per concept; edge arrays are ``int32`` of shape ``[num_relations]``, indexing
    ``ids``, ``relation_types`` and ``origins``.
    """

    ids: Sequence[str]
    names: Sequence[str]
    synonyms: Sequence[Sequence[str]]
    semantic_types: Sequence[Sequence[str]]
    definitions: Sequence[str]
    sources: Sequence[str]
    deprecated: bytes
    xrefs: Sequence[Sequence[str]]
    edge_source: np.ndarray
    edge_type: np.ndarray
    edge_target: np.ndarray
    edge_origin: np.ndarray
    relation_types: list[str]
    origins: list[str]
    dangling: list[Relation]
    duplicate_ids: list[str]
    declared_relation_types: list[str] = dataclasses.field(default_factory=list)  # declared, without relations yet

    def check(self) -> None:
        """Raise ``ValueError`` when the columns disagree in length or edges point outside the node range."""
        n = len(self.ids)
        lengths = {len(self.names), len(self.synonyms), len(self.semantic_types), len(self.definitions),
                   len(self.sources), len(self.deprecated), len(self.xrefs)}
        if lengths != {n}:
            raise ValueError(f"concept columns have different lengths {sorted(lengths)} (expected {n})")
        e = len(self.edge_source)
        if {len(self.edge_type), len(self.edge_target), len(self.edge_origin)} != {e}:
            raise ValueError("edge columns have different lengths")
        for arr, bound, what in ((self.edge_source, n, "source"), (self.edge_target, n, "target"),
                                 (self.edge_type, len(self.relation_types), "type"),
                                 (self.edge_origin, len(self.origins), "origin")):
            if e and (int(np.min(arr)) < 0 or int(np.max(arr)) >= bound):
                raise ValueError(f"edge {what} index out of range")
