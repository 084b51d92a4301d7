"""Concept search over the hierarchy: the set of concepts a query concept stands for, with the path to each.

Asking for "pneumonia" should find a case of "lobar pneumonia" (a descendant through ``is_a``) and one linked to
the UMLS or RadLex concept that is the same thing (a ``same_as`` partner, and *its* descendants). Every concept in
the expansion keeps the path that brought it in, so a result can say which concept it matched through::

    lobar pneumonia ⊂ pneumonia          (is_a: lobar pneumonia is a pneumonia)
    Pneumonia ≡ pneumonia                (same_as)

Walks run on compressed adjacency tables (numpy) built once per call, so expanding "disease" in the Disease
Ontology (thousands of descendants) takes milliseconds. Deprecated concepts are never part of an expansion.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> exp = expand_concept(tiny_graph(), "DOID:1324")
    >>> [(m.concept_id, m.path_text) for m in exp.matches]
    [('DOID:1324', 'lung cancer'), ('DOID:3910', 'lung adenocarcinoma ⊂ lung cancer')]
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator

import numpy as np

from kgclip.ontology.adjacency import compressed_adjacency
from kgclip.ontology.ids import IS_A, SAME_AS
from kgclip.ontology.model import ConceptGraph

__all__ = ["ConceptMatch", "ConceptExpansion", "expand_concept", "IS_A_SYMBOL", "SAME_AS_SYMBOL"]

IS_A_SYMBOL = "⊂"  # "a ⊂ b": a is a kind of b
SAME_AS_SYMBOL = "≡"  # "a ≡ b": a is the same concept as b (in another vocabulary)


@dataclasses.dataclass(frozen=True)
class ConceptMatch:
    """One concept of an expansion.

    Attributes:
        concept_id: the concept.
        name: its preferred name.
        via: ``"query"`` (the query concept itself), ``"is_a"`` (a descendant) or ``"same_as"`` (reached through a
            ``same_as`` partner, possibly followed by ``is_a`` steps).
        path: concept ids from this concept up to the query concept.
        path_text: the path in words, e.g. ``"lobar pneumonia ⊂ pneumonia"``.
        synonyms: the concept's synonyms (what a text search may also look for).
    """

    concept_id: str
    name: str
    via: str
    path: tuple[str, ...]
    path_text: str
    synonyms: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        """Steps from the query concept (0 for the query itself)."""
        return len(self.path) - 1


@dataclasses.dataclass
class ConceptExpansion:
    """The concepts a query concept stands for (itself, descendants, ``same_as`` partners), each with its path."""

    query: str
    name: str
    matches: list[ConceptMatch]
    truncated: bool = False

    def __iter__(self) -> Iterator[ConceptMatch]:
        return iter(self.matches)

    def __len__(self) -> int:
        return len(self.matches)

    def __contains__(self, concept_id: object) -> bool:
        return any(m.concept_id == concept_id for m in self.matches)

    def ids(self) -> list[str]:
        """Concept ids, the query first, then by distance."""
        return [m.concept_id for m in self.matches]

    def match(self, concept_id: str) -> ConceptMatch | None:
        for m in self.matches:
            if m.concept_id == concept_id:
                return m
        return None

    def terms(self) -> list[str]:
        """Every name and synonym of the expansion (for text matching), without repeats."""
        return list(dict.fromkeys(t for m in self.matches for t in (m.name, *m.synonyms) if t))

    def describe(self, limit: int = 5) -> str:
        counts = {v: sum(1 for m in self.matches if m.via == v) for v in ("is_a", "same_as")}
        shown = "; ".join(m.path_text for m in self.matches[1:limit + 1])
        more = f"; ... {len(self.matches) - limit - 1} more" if len(self.matches) > limit + 1 else ""
        return (f"{self.name} ({self.query}) + {counts['is_a']} descendant(s), {counts['same_as']} via same_as"
                f"{': ' + shown + more if shown else ''}")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(m.concept_id)}</code></td><td>{html.escape(m.path_text)}</td>"
                       f"<td>{html.escape(m.via)}</td></tr>" for m in self.matches[:100])
        return (f"<table><caption>{html.escape(self.name)} and what it stands for ({len(self.matches)} concepts)"
                f"</caption><tr><th>id</th><th>path</th><th>via</th></tr>{rows}</table>")


def _tables(graph: ConceptGraph) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """CSR ``parent -> children`` over is_a and ``concept -> partners`` over same_as (both directions)."""
    src, rel, dst = graph.edge_arrays()
    n = len(graph)
    types = graph.relation_types

    def mask(t: str) -> np.ndarray:
        return rel == types.index(t) if t in types else np.zeros(len(rel), dtype=bool)

    m = mask(IS_A)
    down = compressed_adjacency(dst[m], src[m], n)[:2]
    m = mask(SAME_AS)
    a, b = np.concatenate([src[m], dst[m]]), np.concatenate([dst[m], src[m]])
    same = compressed_adjacency(a, b, n)[:2]
    return down, same


def expand_concept(graph: ConceptGraph, concept_id: str, *, descendants: bool = True, same_as: bool = True,
                   max_depth: int | None = None, max_concepts: int = 20000) -> ConceptExpansion:
    """The concept, its ``is_a`` descendants and its ``same_as`` partners (with their descendants), breadth first.

    Args:
        graph: the concept graph.
        concept_id: the query concept (:class:`~kgclip.errors.UnknownConceptError` if absent).
        descendants: follow ``is_a`` down.
        same_as: follow ``same_as`` (either direction).
        max_depth: at most this many steps from the query (``None``: no limit).
        max_concepts: stop after this many concepts (``truncated`` is then set).
    """
    start = graph.index_of(concept_id)
    (down_ptr, down_nbr), (same_ptr, same_nbr) = _tables(graph)
    ids = graph.ids
    back: dict[int, tuple[int, str] | None] = {start: None}  # node -> (the node it was reached from, how)
    order = [start]
    frontier = [start]
    depth = 0
    truncated = False
    while frontier and (max_depth is None or depth < max_depth) and not truncated:
        nxt = []
        for node in frontier:
            steps = []
            if same_as:
                steps += [(int(j), SAME_AS) for j in same_nbr[same_ptr[node]:same_ptr[node + 1]]]
            if descendants:
                steps += [(int(j), IS_A) for j in down_nbr[down_ptr[node]:down_ptr[node + 1]]]
            for j, how in steps:
                if j in back or graph.get(ids[j]) is None or graph.concept(ids[j]).deprecated:
                    continue
                back[j] = (node, how)
                order.append(j)
                nxt.append(j)
                if len(order) >= max_concepts:
                    truncated = True
                    break
            if truncated:
                break
        frontier = nxt
        depth += 1
    return ConceptExpansion(concept_id, graph.name_of(concept_id), [_match(graph, j, back) for j in order], truncated)


def _match(graph: ConceptGraph, node: int, back: dict[int, tuple[int, str] | None]) -> ConceptMatch:
    ids = graph.ids
    path, text, hows = [node], graph.name_of(ids[node]) or ids[node], []
    while back[path[-1]] is not None:
        prev, how = back[path[-1]]  # type: ignore[misc]
        hows.append(how)
        text += f" {IS_A_SYMBOL if how == IS_A else SAME_AS_SYMBOL} {graph.name_of(ids[prev]) or ids[prev]}"
        path.append(prev)
    via = "query" if not hows else SAME_AS if SAME_AS in hows else IS_A
    c = graph.concept(ids[node])
    return ConceptMatch(c.id, c.name, via, tuple(ids[i] for i in path), text, c.synonyms)
