"""Concept linking for the RAG layer: the text layer's :class:`~kgclip.text.linker.ConceptLinker` when installed,
otherwise a small longest-match dictionary linker with NegEx-style negation, so the engine works either way.

Both give :class:`LinkedConcept` records; the rest of ``kgclip.rag`` only sees these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kgclip.ontology.model import IS_A, ConceptGraph

__all__ = ["LinkedConcept", "ConceptTagger", "expand_concepts"]

_WORD = re.compile(r"[a-z0-9]+")
_NEG = {"no", "not", "without", "negative", "free", "absent", "absence", "denies", "neither", "nor", "none"}
_UNCERTAIN = {"may", "might", "possible", "possibly", "probable", "suspicious", "questionable", "cannot",
              "likely", "versus", "vs", "differential", "consider", "concerning"}
_TERMINATORS = {"but", "however", "although", "except", "which", "with"}
# Words that are RadLex / DO terms but carry no meaning in a question ("image", "left", "normal"...).
_STOP = {"a", "an", "the", "is", "are", "of", "in", "on", "this", "that", "there", "image", "images", "left",
         "right", "normal", "abnormal", "present", "seen", "side", "what", "which", "where", "how", "does", "do",
         "type", "view", "or", "and", "to", "be", "it", "patient", "finding", "findings", "structure", "organ",
         "part", "size", "shape", "small", "large", "body", "area", "region", "location", "level", "mass"}


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


class _DictLinker:
    """Longest-match lookup of word n-grams (up to 6 words) in a name -> concept table."""

    max_words = 6

    def __init__(self, graph: ConceptGraph) -> None:
        table: dict[str, str] = {}
        for concept in graph.concepts(include_deprecated=False):
            for name in concept.all_names:
                key = " ".join(_WORD.findall(name.lower()))
                if len(key) < 3 or key in _STOP or key.isdigit():
                    continue
                table.setdefault(key, concept.id)
                if key.endswith("s") and len(key) > 4:  # crude singular for plurals in synonyms
                    table.setdefault(key[:-1], concept.id)
        self.table = table

    def link(self, text: str) -> list[tuple[int, int, str, str]]:
        words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text.lower())]
        out = []
        i = 0
        while i < len(words):
            hit = None
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                key = " ".join(w for _, _, w in words[i:i + n])
                cid = self.table.get(key) or (self.table.get(key[:-1]) if key.endswith("s") else None)
                if cid is not None:
                    hit = (words[i][0], words[i + n - 1][1], cid, text[words[i][0]:words[i + n - 1][1]], n)
                    break
            if hit:
                out.append(hit[:4])
                i += hit[4]
            else:
                i += 1
        return out


def _negation_flags(text: str, start: int) -> tuple[bool, bool]:
    """NegEx-style: a trigger within the 6 words before the mention, in the same clause, negates it."""
    clause = re.split(r"[.;:!?]", text[:start].lower())[-1]
    window = _WORD.findall(clause)[-6:]
    negated = uncertain = False
    for word in reversed(window):
        if word in _TERMINATORS:
            break
        negated = negated or word in _NEG
        uncertain = uncertain or word in _UNCERTAIN
    if "no increase" in clause or "not only" in clause:  # pseudo-negations
        negated = False
    return negated, uncertain


class ConceptTagger:
    """Link text to concepts of ``graph``; uses the text layer's linker when it is installed.

    Example:
        >>> from kgclip.testing import tiny_graph
        >>> [c.name for c in ConceptTagger(tiny_graph()).link("No pleural effusion. Cardiomegaly.")]
        ['pleural effusion', 'cardiomegaly']
    """

    def __init__(self, graph: ConceptGraph, *, use_text_linker: bool = True) -> None:
        self.graph = graph
        self._linker = None
        if use_text_linker:
            try:
                from kgclip.text.linker import ConceptLinker

                self._linker = ConceptLinker.from_graph(graph)
            except Exception:  # noqa: BLE001 - not installed yet, or failed: the built-in linker still works
                self._linker = None
        self._fallback = None if self._linker is not None else _DictLinker(graph)
        self.backend = "text.linker" if self._linker is not None else "builtin"

    def link(self, text: str) -> list[LinkedConcept]:
        """Mentions in reading order. Empty or non-text input gives ``[]``."""
        if not text or not text.strip():
            return []
        text = text[:20_000]  # bounded time on pathological input
        out: list[LinkedConcept] = []
        if self._linker is not None:
            for m in self._linker.link(text):
                cid = m.concept_id
                concept = self.graph.get(cid)
                if concept is None:
                    continue
                matched = getattr(m, "matched", text[m.start:m.end])
                if " ".join(_WORD.findall(str(matched).lower())) in _STOP:
                    continue
                out.append(LinkedConcept(cid, concept.name, m.start, m.end, str(matched),
                                         bool(getattr(m, "negated", False)), bool(getattr(m, "uncertain", False)),
                                         float(getattr(m, "score", 1.0))))
            return out
        for start, end, cid, matched in self._fallback.link(text):
            negated, uncertain = _negation_flags(text, start)
            out.append(LinkedConcept(cid, self.graph.name_of(cid), start, end, matched, negated, uncertain))
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
