"""Read-only walks over a :class:`~kgclip.ontology.model.ConceptGraph`: neighbourhoods, networkx views, is-a cycles.

Walks run on a compressed adjacency (CSR) built from the edge arrays with numpy and cached until the graph's next
mutation, so a k-hop neighbourhood in a UMLS-scale graph costs milliseconds. networkx graphs are views built on
demand for a subgraph (or, for small graphs, the whole); networkx is imported only when one is asked for.
This mixin is a part of ``ConceptGraph``, not a class to use alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np

from kgclip.ontology.graph_relations import Direction, GraphRelationsMixin
from kgclip.ontology.ids import IS_A
from kgclip.ontology.records import Concept

if TYPE_CHECKING:  # networkx is imported lazily: a curator's CLI call should not pay for it
    import networkx as nx

__all__ = ["GraphViewsMixin", "compressed_adjacency"]


def compressed_adjacency(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of edges ``keys[e] -> values[e]`` over ``n`` nodes: ``(indptr [n + 1], values by key, edge order)``."""
    order = np.argsort(keys, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return indptr, values[order], order


class GraphViewsMixin(GraphRelationsMixin):
    """Neighbourhoods, networkx views and is-a cycle detection of :class:`~kgclip.ontology.model.ConceptGraph`."""

    # State created by ConceptGraph.__init__ beyond the relation columns (declared for readers and type checkers).
    _csr_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    _version: int

    if TYPE_CHECKING:  # defined on ConceptGraph
        def _concept_at(self, i: int) -> Concept: ...

    def _csr(self, direction: Literal["out", "in"]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compressed adjacency: ``(indptr, neighbour, edge_id)``, cached until the next mutation."""
        key = f"{direction}:{self._version}"
        cached = self._csr_cache.get(key)
        if cached is not None:
            return cached
        src, _, dst = self.edge_arrays()
        a, b = (src, dst) if direction == "out" else (dst, src)
        result = compressed_adjacency(a, b, len(self._ids))
        self._csr_cache = {k: v for k, v in self._csr_cache.items() if k.endswith(f":{self._version}")}
        self._csr_cache[key] = result
        return result

    def neighborhood(self, concept_ids: Iterable[str], hops: int = 1, direction: Direction = "both") -> list[str]:
        """Ids within ``hops`` relations of any of ``concept_ids`` (the seeds included), in breadth-first order."""
        seeds = [self.index_of(c) for c in concept_ids]
        seen = dict.fromkeys(seeds)
        frontier = np.array(seeds, dtype=np.int64)
        tables = [self._csr("out")] if direction == "out" else [self._csr("in")] if direction == "in" else [
            self._csr("out"), self._csr("in")]
        for _ in range(hops):
            found: list[np.ndarray] = []
            for indptr, nbr, _ in tables:
                for node in frontier.tolist():
                    found.append(nbr[indptr[node]:indptr[node + 1]])
            if not found:
                break
            candidates = np.unique(np.concatenate(found))
            new = [int(c) for c in candidates.tolist() if c not in seen]
            if not new:
                break
            seen.update(dict.fromkeys(new))
            frontier = np.array(new, dtype=np.int64)
        return [self._ids[i] for i in seen]

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
        s, d = src[mask].astype(np.int64), dst[mask].astype(np.int64)
        n = len(self._ids)
        # Kahn's algorithm peels every node that is not on (or downstream-only of) a cycle, in O(V + E).
        indeg = np.bincount(d, minlength=n)
        indptr, out_nbr, _ = compressed_adjacency(s, d, n)
        stack = list(np.flatnonzero(indeg == 0).tolist())
        removed = np.zeros(n, dtype=bool)
        while stack:
            node = stack.pop()
            removed[node] = True
            for nb in out_nbr[indptr[node]:indptr[node + 1]].tolist():
                indeg[nb] -= 1
                if indeg[nb] == 0:
                    stack.append(nb)
        if removed.all():
            return []
        import networkx as nx

        rest = ~removed
        keep = rest[s] & rest[d]
        sub = nx.DiGraph()
        sub.add_edges_from(zip(s[keep].tolist(), d[keep].tolist()))
        cycles: list[list[str]] = []
        for component in nx.strongly_connected_components(sub):
            if len(component) > 1 or sub.has_edge(next(iter(component)), next(iter(component))):
                cycle = nx.find_cycle(sub.subgraph(component))
                cycles.append([self._ids[a] for a, _ in cycle])
                if len(cycles) >= limit:
                    break
        return cycles
