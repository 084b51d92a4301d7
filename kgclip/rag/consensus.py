"""Concept consensus across retrieved cases, measured through the concept graph (for report drafting).

Each similar case votes for the concepts its text mentions, with a weight that grows with its similarity to the
query. A mention also votes, with less weight, for the concept's is-a ancestors within a few levels and for its
``same_as`` equivalents, so "left lower lobe pneumonia" in one case supports "pneumonia" in another. Negated
mentions vote separately, which lets the drafter drop a sentence asserting what most similar cases rule out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgclip.ontology.model import IS_A, SAME_AS, ConceptGraph

__all__ = ["case_weights", "content_words", "GraphExpander", "ConceptSupport", "concept_support", "is_diagnosis",
           "is_finding"]

_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
# Function words and report boilerplate verbs: they agree across any two reports and say nothing about the image.
_STOPWORDS = frozenset("""
the and with was were are for from this that there these those into onto than then also which who has have had
not but its his her their all any both each few more most other some such only own same very can will just now
one two three image images shows show showed shown demonstrate demonstrates demonstrated demonstrating reveal
reveals revealed noted note seen see within without upon over under after before between here is are been being
""".split())


def content_words(text: str) -> list[str]:
    """Lower-cased words of three or more characters, function words and boilerplate verbs left out, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS))


def case_weights(scores: Sequence[float], temperature: float) -> np.ndarray:
    """Votes of the retrieved cases: ``exp((s - s_max) / T)``, so the nearest case weighs 1.

    ``temperature <= 0`` gives every case weight 1 (plain majority); a small one lets the nearest cases dominate.

    Shapes:
        ``scores`` ``[K]`` cosine similarities -> ``[K]`` weights in ``(0, 1]``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0 or temperature <= 0:
        return np.ones_like(s)
    return np.exp((s - s.max()) / temperature)


class GraphExpander:
    """Is-a ancestors (within ``hops`` levels) and ``same_as`` equivalents of concepts, memoised per concept.

    The memo makes repeated drafting (an evaluation sweep) cheap: the graph is only asked once per concept.
    """

    def __init__(self, graph: ConceptGraph | None, hops: int = 2) -> None:
        if hops < 0:
            raise ValueError(f"hops must be >= 0, got {hops}")
        self.graph = graph
        self.hops = hops
        self._memo: dict[str, dict[str, int]] = {}
        self._diagnosis: dict[str, bool] = {}
        self._cache: dict[tuple[str, str], object] = {}

    def cached(self, kind: str, key: str, compute: Callable[[], object]) -> object:
        """``compute()`` memoised under ``(kind, key)`` (other per-concept graph look-ups of a drafting sweep)."""
        hit = self._cache.get((kind, key), self)
        if hit is self:
            hit = self._cache[(kind, key)] = compute()
        return hit

    def ancestors(self, concept_id: str) -> dict[str, int]:
        """``{ancestor or equivalent: levels up}`` (equivalents at level 0), the concept itself excluded."""
        hit = self._memo.get(concept_id)
        if hit is not None:
            return hit
        out: dict[str, int] = {}
        g = self.graph
        if g is not None and concept_id in g:
            for eq in g.parents(concept_id, SAME_AS) + g.children(concept_id, SAME_AS):
                out.setdefault(eq, 0)
            frontier = [concept_id]
            for level in range(1, self.hops + 1):
                frontier = [p for c in frontier for p in g.parents(c, IS_A) if p not in out and p != concept_id]
                for p in frontier:
                    out.setdefault(p, level)
        self._memo[concept_id] = out
        return out

    def is_diagnosis(self, concept_id: str) -> bool:
        """:func:`is_diagnosis`, memoised."""
        hit = self._diagnosis.get(concept_id)
        if hit is None:
            hit = self._diagnosis[concept_id] = is_diagnosis(self.graph, concept_id)
        return hit

    def is_finding(self, concept_id: str) -> bool:
        """:func:`is_finding`, memoised."""
        return bool(self.cached("finding", concept_id, lambda: is_finding(self.graph, concept_id, self)))

    def related(self, a: str, b: str) -> bool:
        """Same concept, equivalent, or one an ancestor of the other within ``hops`` ("effusion" vs "pleural
        effusion")."""
        return a == b or b in self.ancestors(a) or a in self.ancestors(b)

    def with_hops(self, hops: int) -> "GraphExpander":
        """This expander when it widens ``hops`` levels, else one over the same graph that does, memoised here
        (a caller needing another depth keeps the memo across calls too)."""
        if hops == self.hops:
            return self
        return self.cached("with_hops", str(hops), lambda: GraphExpander(self.graph, hops))  # type: ignore[return-value]


@dataclass
class ConceptSupport:
    """Weighted share of the similar cases that assert (``positive``) or negate (``negative``) each concept.

    Values lie in ``[0, 1]``: 1 means every case (by weight) mentions the concept itself.
    ``best_case`` names, per concept, the highest-weighted case that mentions it (for citing an impression).
    """

    positive: dict[str, float] = field(default_factory=dict)
    negative: dict[str, float] = field(default_factory=dict)
    best_case: dict[str, str] = field(default_factory=dict)

    def pos(self, concept_id: str) -> float:
        return self.positive.get(concept_id, 0.0)

    def neg(self, concept_id: str) -> float:
        return self.negative.get(concept_id, 0.0)


def _votes(concepts: Iterable[str], expander: GraphExpander | None, credit: float) -> dict[str, float]:
    """One case's vote per concept: 1 for a mention, ``credit`` for an ancestor or equivalent of one."""
    vote: dict[str, float] = {}
    for cid in concepts:
        vote[cid] = 1.0
    if expander is not None and credit > 0:
        for cid in list(vote):
            for anc in expander.ancestors(cid):
                if vote.get(anc, 0.0) < credit:
                    vote[anc] = credit
    return vote


def concept_support(case_ids: Sequence[str], positive: Sequence[Iterable[str]], negative: Sequence[Iterable[str]],
                    weights: np.ndarray, *, expander: GraphExpander | None = None,
                    credit: float = 0.5) -> ConceptSupport:
    """Consensus of ``K`` cases: ``positive[i]`` / ``negative[i]`` are the concepts case ``i`` asserts / negates.

    Shapes:
        ``weights`` ``[K]`` case votes (:func:`case_weights`).
    """
    total = float(np.sum(weights)) or 1.0
    out = ConceptSupport()
    best_w: dict[str, float] = {}
    for cid, pos, neg, w in zip(case_ids, positive, negative, weights.tolist()):
        pos = list(pos)
        for c, v in _votes(pos, expander, credit).items():
            out.positive[c] = out.positive.get(c, 0.0) + w * v / total
        for c, v in _votes(neg, expander, credit).items():
            out.negative[c] = out.negative.get(c, 0.0) + w * v / total
        for c in pos:
            if w > best_w.get(c, -1.0):
                best_w[c], out.best_case[c] = w, cid
    return out


_FINDING_ROOTS = {"clinical finding", "pathophysiologic finding", "disease", "disorder"}


def is_diagnosis(graph: ConceptGraph | None, cid: str) -> bool:
    """A disease (Disease Ontology) or a specific clinical finding: at least two is-a levels below a RadLex
    "clinical finding" / "pathophysiologic finding" root (so "effusion" qualifies, "growth disorder" does not)."""
    if graph is None or cid not in graph:
        return cid.startswith("DOID:")
    concept = graph.get(cid)
    if cid.startswith("DOID:") or (concept is not None and concept.source == "doid"):
        return cid != "DOID:4"  # the root "disease" says nothing
    depth, node = 0, cid
    for _ in range(15):
        parents = graph.parents(node, IS_A)
        if not parents:
            return False
        node, depth = parents[0], depth + 1
        if graph.name_of(node).lower() in _FINDING_ROOTS:
            return depth >= 2
    return False


# How many is-a levels up a finding's root ("clinical finding", "disease", ...) is looked for.
_ROOT_LEVELS = 15


def is_finding(graph: ConceptGraph | None, cid: str, expander: GraphExpander | None = None) -> bool:
    """A disease or any clinical finding: a Disease Ontology concept other than its root, or a concept with a
    "clinical finding" / "pathophysiologic finding" / "disease" / "disorder" ancestor by is-a at any depth (broader
    than :func:`is_diagnosis`: "cardiomegaly" right under "clinical finding" is one). ``expander``: whose memo of
    ancestors to use (:meth:`GraphExpander.is_finding`)."""
    if graph is None or cid not in graph:
        return cid.startswith("DOID:") and cid != "DOID:4"
    concept = graph.get(cid)
    if cid.startswith("DOID:") or (concept is not None and concept.source == "doid"):
        return cid != "DOID:4"
    ancestors = (expander or GraphExpander(graph, _ROOT_LEVELS)).with_hops(_ROOT_LEVELS).ancestors(cid)
    return any(level > 0 and graph.name_of(a).lower() in _FINDING_ROOTS for a, level in ancestors.items())
