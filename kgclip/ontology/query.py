"""Read-only queries a curator runs: :func:`find_concepts` by id, name or synonym, and :class:`IsAParents`.

:class:`IsAParents` is a fast, incrementally updated view of ``is_a`` parents for the curator's cycle checks.
Checking that a new ``is_a`` edge closes no cycle is a walk up the parents of its target. Asking the graph for
parents costs a scan of every relation (O(E)) per step; :class:`IsAParents` instead builds a CSR table once with
numpy and then records, per id, the parents that edits made since (``overrides``), so a thousand edits on RadLex
need one table build, not a thousand scans.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from kgclip.ontology.adjacency import compressed_adjacency
from kgclip.ontology.model import IS_A, Concept, ConceptGraph

__all__ = ["IsAParents", "find_concepts"]


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


class IsAParents:
    """``is_a`` parents of every concept of ``graph``, as of construction, plus :attr:`overrides`.

    Valid while node indices stay put: appending concepts is fine (a new id needs an override), removing one is not
    (build a new table).

    Attributes:
        overrides: ``{id: parents}`` for ids whose ``is_a`` parents changed since the table was built.
    """

    def __init__(self, graph: ConceptGraph) -> None:
        self.graph = graph
        self.overrides: dict[str, set[str]] = {}
        n = len(graph)
        if IS_A in graph.relation_types:
            src, rel, dst = graph.edge_arrays()
            mask = rel == graph.relation_type_id(IS_A)
            self.indptr, self.nbr, _ = compressed_adjacency(src[mask], dst[mask], n)
        else:
            self.nbr, self.indptr = np.zeros(0, np.int32), np.zeros(n + 1, np.int64)

    def of(self, concept_id: str) -> Iterable[str]:
        """The ``is_a`` parents of ``concept_id`` (empty for an unknown id)."""
        over = self.overrides.get(concept_id)
        if over is not None:
            return over
        if concept_id not in self.graph:
            return ()
        i = self.graph.index_of(concept_id)
        if i + 1 >= len(self.indptr):
            return ()
        ids = self.graph.ids
        return [ids[j] for j in self.nbr[self.indptr[i]:self.indptr[i + 1]].tolist()]

    def path(self, starts: Iterable[str], goals: set[str]) -> list[str] | None:
        """An ``is_a`` path from one of ``starts`` up to one of ``goals`` (breadth-first, shortest), or ``None``."""
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
                for p in self.of(node):
                    if p not in back:
                        back[p] = node
                        nxt.append(p)
            frontier = nxt
        return None
