"""Where a concept sits in its ``is_a`` tree: depth, descendant counts, and the ancestor worth naming.

"Heart is a organ with cavitated organ parts" is true and useless: the first ``is_a`` hop of an ontology is often
a bookkeeping class. :func:`useful_ancestor` walks up instead and returns the nearest ancestor a reader would name
("pneumonia is a lung disease", "glioblastoma is a malignant astrocytoma"): a real category (enough descendants),
not a top-level one (too close to a root, or covering a large share of the graph), and not a composite class whose
name carries its definition ("organ with cavitated organ parts", "disease of anatomical entity", "disease by
infectious agent"). These are structural rules, the same for every ontology.

Depths and descendant counts are computed once per graph version (one topological pass, O(V + E)) and cached.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> g = tiny_graph()
    >>> useful_ancestor(g, "DOID:3910", min_depth=1, min_descendants=1, max_share=0.5)
    'DOID:1324'
"""

from __future__ import annotations

import re
import weakref
from collections import deque

import numpy as np

from kgclip.ontology.ids import IS_A
from kgclip.ontology.model import ConceptGraph

__all__ = ["TaxonomyStats", "taxonomy_stats", "useful_ancestor"]

_COMPOSITE = re.compile(r"\b(with|without|of|by|and|or|other|not|non)\b", re.IGNORECASE)


class TaxonomyStats:
    """``depth[i]`` (is_a steps up to the nearest root; roots are 0) and ``descendants[i]`` (approximate count of
    is_a descendants: children's counts summed, so a concept under two parents counts twice) per node index."""

    def __init__(self, graph: ConceptGraph) -> None:
        n = len(graph)
        src, rel, dst = graph.edge_arrays()
        types = graph.relation_types
        mask = rel == types.index(IS_A) if IS_A in types else np.zeros(len(rel), dtype=bool)
        child, parent = src[mask].astype(np.int64), dst[mask].astype(np.int64)
        children: list[list[int]] = [[] for _ in range(n)]
        for c, p in zip(child.tolist(), parent.tolist()):
            children[p].append(c)
        has_parent = np.zeros(n, dtype=bool)
        has_parent[child] = True
        self.depth = np.full(n, -1, dtype=np.int64)
        queue = deque(int(i) for i in np.flatnonzero(~has_parent))
        self.depth[list(queue)] = 0
        order: list[int] = []
        while queue:  # breadth first from the roots: the shortest distance to a root
            node = queue.popleft()
            order.append(node)
            for c in children[node]:
                if self.depth[c] < 0:
                    self.depth[c] = self.depth[node] + 1
                    queue.append(c)
        self.descendants = np.zeros(n, dtype=np.int64)
        for node in reversed(order):  # children before parents (a cycle's members keep what they got)
            self.descendants[node] = sum(int(self.descendants[c]) + 1 for c in children[node])
        self.size = n


_CACHE: "weakref.WeakKeyDictionary[ConceptGraph, tuple[int, TaxonomyStats]]" = weakref.WeakKeyDictionary()


def taxonomy_stats(graph: ConceptGraph) -> TaxonomyStats:
    """:class:`TaxonomyStats` of ``graph``, cached until the graph's next edit."""
    cached = _CACHE.get(graph)
    if cached is None or cached[0] != graph.version:
        cached = (graph.version, TaxonomyStats(graph))
        _CACHE[graph] = cached
    return cached[1]


def useful_ancestor(graph: ConceptGraph, concept_id: str, *, min_depth: int = 3, min_descendants: int = 5,
                    max_share: float = 0.02, max_steps: int = 6) -> str | None:
    """The nearest ``is_a`` ancestor worth naming, or ``None`` (see the module docstring).

    Args:
        min_depth: the ancestor is at least this many steps below a root.
        min_descendants: it has at least this many descendants (a real category, not a one-child hop).
        max_share: it covers at most this share of the graph's concepts (not "disease", "clinical finding"), or
            50 descendants, whichever is more (small graphs).
        max_steps: look at most this many steps up.
    """
    stats = taxonomy_stats(graph)
    cap = max(max_share * stats.size, 50)
    frontier, seen = [concept_id], {concept_id}
    for _ in range(max_steps):
        nxt = []
        for node in frontier:
            for p in graph.parents(node):
                if p in seen:
                    continue
                seen.add(p)
                nxt.append(p)
        best = None
        for p in sorted(nxt, key=lambda x: -int(stats.descendants[graph.index_of(x)])):
            i = graph.index_of(p)
            c = graph.concept(p)
            if (stats.depth[i] >= min_depth and min_descendants <= stats.descendants[i] <= cap
                    and not c.deprecated and not _COMPOSITE.search(c.name or "")):
                best = p
                break
        if best is not None:
            return best
        frontier = nxt
        if not frontier:
            break
    return None
