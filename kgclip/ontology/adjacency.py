"""Array algorithms over a graph's edge columns: compressed adjacency, breadth-first walks, repeated edges, cycles.

They work on plain ``int32`` / ``int64`` numpy arrays of node indices (``src[e] -> dst[e]``), know nothing about
concept ids, and cost O(V + E) with numpy doing the heavy part, so a UMLS-scale graph (millions of nodes, tens of
millions of edges) is walked in milliseconds. :class:`~kgclip.ontology.model.ConceptGraph` and
:class:`~kgclip.ontology.query.IsAParents` call them; networkx is imported only to name the nodes of a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["compressed_adjacency", "first_occurrences", "walk", "cycles"]

Csr = tuple[np.ndarray, np.ndarray, np.ndarray]


def compressed_adjacency(keys: np.ndarray, values: np.ndarray, n: int) -> Csr:
    """CSR of edges ``keys[e] -> values[e]`` over ``n`` nodes: ``(indptr [n + 1], values by key, edge order)``."""
    order = np.argsort(keys, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return indptr, values[order], order


def first_occurrences(src: np.ndarray, rel: np.ndarray, dst: np.ndarray, num_types: int,
                      num_nodes: int) -> np.ndarray | None:
    """Mask keeping the first of each repeated ``(source, type, target)`` edge, in order; ``None`` when none repeat.

    Shapes:
        src, rel, dst: ``int32 [E]``; the mask is ``bool [E]``.
    """
    if not len(src):
        return None
    key = (src.astype(np.int64) * (num_types + 1) + rel) * (num_nodes + 1) + dst
    _, first = np.unique(key, return_index=True)
    if len(first) == len(key):
        return None
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    return keep


def walk(tables: Sequence[Csr], seeds: Sequence[int], hops: int) -> list[int]:
    """Nodes within ``hops`` steps of ``seeds`` along any of the CSR ``tables`` (seeds first, breadth-first order)."""
    seen = dict.fromkeys(seeds)
    frontier = list(seen)
    for _ in range(hops):
        found = [nbr[indptr[node]:indptr[node + 1]] for indptr, nbr, _ in tables for node in frontier]
        if not found:
            break
        new = [int(c) for c in np.unique(np.concatenate(found)).tolist() if c not in seen]
        if not new:
            break
        seen.update(dict.fromkeys(new))
        frontier = new
    return list(seen)


def cycles(src: np.ndarray, dst: np.ndarray, n: int, limit: int = 100) -> list[list[int]]:
    """Up to ``limit`` directed cycles of the graph ``src[e] -> dst[e]`` over ``n`` nodes, each as its node list.

    Kahn's algorithm first peels every node that is on no cycle (O(V + E), numpy-fed); networkx then finds one
    cycle per strongly connected component of what is left, which is small in any real ontology.
    """
    s, d = src.astype(np.int64), dst.astype(np.int64)
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
    found: list[list[int]] = []
    for component in nx.strongly_connected_components(sub):
        first = next(iter(component))
        if len(component) > 1 or sub.has_edge(first, first):
            found.append([a for a, _ in nx.find_cycle(sub.subgraph(component))])
            if len(found) >= limit:
                break
    return found
