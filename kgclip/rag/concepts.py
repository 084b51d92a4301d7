"""Concept tagging for answering and drafting, on the text layer: :class:`~kgclip.text.linker.ConceptLinker`
finds the mentions and its :class:`~kgclip.text.negation.ContextAnnotator` sets their negation / uncertainty.

The tagger adds what answering needs on top: mentions of concepts of the workspace graph only, without the words
that are ontology terms but carry no meaning in a question ("image", "left", "normal"...), as
:class:`LinkedConcept` records; the rest of ``kgclip.rag`` only sees these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kgclip.ontology.model import IS_A, ConceptGraph
from kgclip.text.linker import ConceptLinker

__all__ = ["LinkedConcept", "ConceptTagger", "expand_concepts"]

_WORD = re.compile(r"[a-z0-9]+")
# Terms of RadLex / DO that carry no meaning in a question or a case statement: a mention whose matched term is
# one of these is dropped (the linker still links them in other uses, e.g. `kgclip link`).
_QUESTION_NOISE = frozenset({
    "a", "an", "the", "is", "are", "of", "in", "on", "this", "that", "there", "image", "images", "left", "right",
    "normal", "abnormal", "present", "seen", "side", "what", "which", "where", "how", "does", "do", "type", "view",
    "or", "and", "to", "be", "it", "patient", "finding", "findings", "structure", "organ", "part", "size", "shape",
    "small", "large", "body", "area", "region", "location", "level", "mass"})
_MAX_CHARS = 20_000  # bounded time on pathological input


@dataclass(frozen=True)
class LinkedConcept:
    """One concept mention: span ``[start, end)`` in the text, the concept, and its negation / uncertainty."""

    concept_id: str
    name: str
    start: int
    end: int
    matched: str
    negated: bool = False
    uncertain: bool = False
    score: float = 1.0


class ConceptTagger:
    """Link text to concepts of ``graph`` (a :class:`~kgclip.text.linker.ConceptLinker` over the graph).

    Example:
        >>> from kgclip.testing import tiny_graph
        >>> [c.name for c in ConceptTagger(tiny_graph()).link("No pleural effusion. Cardiomegaly.")]
        ['pleural effusion', 'cardiomegaly']
    """

    def __init__(self, graph: ConceptGraph, linker: ConceptLinker | None = None) -> None:
        self.graph = graph
        self.linker = linker if linker is not None else ConceptLinker.from_graph(graph)

    def link(self, text: str) -> list[LinkedConcept]:
        """Mentions in reading order. Empty or non-text input gives ``[]``."""
        if not isinstance(text, str) or not text.strip():
            return []
        text = text[:_MAX_CHARS]
        out: list[LinkedConcept] = []
        for m in self.linker.link(text):
            concept = self.graph.get(m.concept_id)
            if concept is None or " ".join(_WORD.findall(m.matched.lower())) in _QUESTION_NOISE:
                continue
            out.append(LinkedConcept(m.concept_id, concept.name, m.start, m.end, m.matched, m.negated, m.uncertain,
                                     float(m.score)))
        return out

    def concept_ids(self, text: str, *, include_negated: bool = True) -> list[str]:
        return list(dict.fromkeys(m.concept_id for m in self.link(text) if include_negated or not m.negated))


def expand_concepts(graph: ConceptGraph, concept_ids: list[str], hops: int = 1) -> set[str]:
    """The concepts and their is-a ancestors up to ``hops`` levels (shared parents make related questions meet)."""
    out = set(concept_ids)
    frontier = list(concept_ids)
    for _ in range(hops):
        nxt = []
        for cid in frontier:
            if cid in graph:
                nxt.extend(graph.parents(cid, IS_A))
        frontier = [c for c in nxt if c not in out]
        out.update(frontier)
    return out
