"""Lexical alignment between concept graphs: candidate ``same_as`` pairs from names, synonyms and shared xrefs.

This is the ontology-level half of cross-ontology alignment (the other half, GNN embedding similarity, lives in
:mod:`kgclip.kg.suggest`, which re-ranks these candidates). Nothing here edits a graph: the result is a list of
:class:`~kgclip.ontology.suggestions.Suggestion` for a curator to review.

How a pair is scored (highest applicable evidence wins):

- ``xref``: both concepts carry the same cross-reference (``UMLS:C0034067``, ``MESH:D011656``), or one names the
  other's id; score 1.0 (only with ``AlignConfig.use_xrefs``);
- ``name``: their preferred names are equal after normalisation (case, punctuation, plural ``s``, word order and a
  few function words are ignored); score 1.0;
- ``synonym``: a name or synonym of one equals a name or synonym of the other; score 0.95;
- otherwise the best IDF-weighted Dice overlap of their terms' words, times 0.9 (``"emphysema"`` and
  ``"pulmonary emphysema"`` share the rare word, so they score high; ``"lung"`` and ``"lung cancer"`` less).

Candidates come from an inverted index over the words of the larger graph, probing each term's rarest words only,
so RadLex (45k concepts) against the Disease Ontology (13k) takes seconds. With ``mutual_best`` a pair is kept only
when each concept is the other's best match, which trades a little recall for much precision.

Example:
    >>> from kgclip.ontology.model import Concept
    >>> a = ConceptGraph.from_records([Concept("RADLEX:RID1", "emphysema"), Concept("RADLEX:RID2", "lung")])
    >>> b = ConceptGraph.from_records([Concept("DOID:9675", "pulmonary emphysema", synonyms=("emphysema",))])
    >>> [(s.source, s.target, s.method) for s in align(a, b)]
    [('RADLEX:RID1', 'DOID:9675', 'synonym')]
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.ontology.ids import IS_A, SAME_AS
from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.suggestions import Suggestion

__all__ = ["AlignConfig", "TermIndex", "align", "normalize_words", "name_parents", "name_similarity",
           "word_weights"]

_WORD = re.compile(r"[a-z0-9]+")
_FUNCTION_WORDS = frozenset({"of", "the", "and", "or", "in", "with", "a", "an", "to", "by", "for", "on", "nos",
                             "due", "other", "unspecified"})


def _fold(word: str) -> str:
    """Plural folding: ``arteries`` -> ``artery``, ``nodules`` -> ``nodule``; ``-ss``, ``-us``, ``-is`` stay."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def normalize_words(text: str) -> tuple[str, ...]:
    """The content words of a term, lower-cased and plural-folded, in order."""
    return tuple(_fold(w) for w in _WORD.findall(text.casefold()) if w not in _FUNCTION_WORDS)


@dataclasses.dataclass(frozen=True)
class AlignConfig(Config):
    """Settings of :func:`align`."""

    min_score: float = 0.6  # pairs scoring below this are not suggested
    use_synonyms: bool = True  # match synonyms too, not only preferred names
    use_xrefs: bool = True  # shared cross-references are evidence (turn off when xrefs are the judge)
    xref_prefixes: tuple[str, ...] = ("UMLS", "MESH", "NCIT", "SNOMEDCT")  # which shared xrefs count
    mutual_best: bool = True  # keep a pair only when each concept is the other's best match
    probe_words: int = 2  # rarest words of a term looked up in the inverted index
    max_word_share: float = 0.01  # words in more than this share of the terms are never probed (too common)
    limit: int = 1000  # at most this many suggestions

    def __post_init__(self) -> None:
        if not 0.0 < self.min_score <= 1.0:
            raise ConfigError(f"AlignConfig.min_score must be in (0, 1], got {self.min_score}")
        if self.probe_words < 1 or self.limit < 1:
            raise ConfigError("AlignConfig.probe_words and limit must be >= 1")
        if not 0.0 < self.max_word_share <= 1.0:
            raise ConfigError(f"AlignConfig.max_word_share must be in (0, 1], got {self.max_word_share}")


class TermIndex:
    """Every live concept's names as normalised word tuples, with an inverted index ``word -> concepts``.

    Attributes:
        terms: ``{concept id: [(words, is_preferred_name, raw term)]}``.
        postings: ``{word: concept ids whose terms use it}``.
    """

    def __init__(self, graph: ConceptGraph, ids: Iterable[str] | None = None, *, synonyms: bool = True) -> None:
        self.graph = graph
        self.terms: dict[str, list[tuple[tuple[str, ...], bool, str]]] = {}
        self.postings: dict[str, set[str]] = defaultdict(set)
        self.exact: dict[tuple[str, ...], set[str]] = defaultdict(set)  # sorted words -> concepts
        wanted = set(ids) if ids is not None else None
        for c in graph.concepts(include_deprecated=False):
            if wanted is not None and c.id not in wanted:
                continue
            raw = [c.name, *(c.synonyms if synonyms else ())]
            entries = []
            for k, term in enumerate(dict.fromkeys(t for t in raw if t)):
                words = normalize_words(term)
                if words:
                    entries.append((words, k == 0, term))
                    self.exact[tuple(sorted(words))].add(c.id)
                    for w in words:
                        self.postings[w].add(c.id)
            if entries:
                self.terms[c.id] = entries

    def __len__(self) -> int:
        return len(self.terms)


def word_weights(indexes: Sequence[TermIndex]) -> dict[str, float]:
    """IDF of every word over the concepts of ``indexes``: ``log(total / (1 + concepts using it)) + 1``."""
    df: dict[str, int] = defaultdict(int)
    for index in indexes:
        for word, ids in index.postings.items():
            df[word] += len(ids)
    total = sum(len(i) for i in indexes) + 1
    return {w: math.log(total / (1 + n)) + 1.0 for w, n in df.items()}


def name_similarity(a: tuple[str, ...], b: tuple[str, ...], idf: dict[str, float]) -> float:
    """IDF-weighted Dice overlap of two terms' words (1.0 when they hold the same words)."""
    sa, sb = set(a), set(b)
    if sa == sb:
        return 1.0
    common = sum(idf.get(w, 1.0) for w in sa & sb)
    return 2.0 * common / (sum(idf.get(w, 1.0) for w in sa) + sum(idf.get(w, 1.0) for w in sb))


def _pair_score(ta: list[tuple[tuple[str, ...], bool, str]], tb: list[tuple[tuple[str, ...], bool, str]],
                idf: dict[str, float]) -> tuple[float, str, str]:
    """Best (score, method, why) over every term pair of two concepts."""
    best = (0.0, "", "")
    for wa, pref_a, raw_a in ta:
        for wb, pref_b, raw_b in tb:
            sim = name_similarity(wa, wb, idf)
            if sim == 1.0:
                both = pref_a and pref_b
                score, method = (1.0, "name") if both else (0.95, "synonym")
                why = (f"{'name' if pref_a else 'synonym'} {raw_a!r} = {'name' if pref_b else 'synonym'} {raw_b!r}")
            else:
                score, method = 0.9 * sim, "name" if pref_a and pref_b else "synonym"
                why = f"{raw_a!r} ~ {raw_b!r} ({sim:.2f} word overlap)"
            if score > best[0]:
                best = (score, method, why)
    return best


def _xref_pairs(a: ConceptGraph, b: ConceptGraph, ids_a: Iterable[str], ids_b: Iterable[str],
                prefixes: tuple[str, ...]) -> dict[tuple[str, str], tuple[float, str, str]]:
    """Pairs sharing a cross-reference with one of ``prefixes`` (or one naming the other's id)."""
    by_xref: dict[str, set[str]] = defaultdict(set)
    ids_b = set(ids_b)
    for cid in ids_b:
        for x in b.concept(cid).xrefs:
            if x.split(":", 1)[0].upper() in prefixes:
                by_xref[x.upper()].add(cid)
    out: dict[tuple[str, str], tuple[float, str, str]] = {}
    for cid in ids_a:
        for x in a.concept(cid).xrefs:
            if x in ids_b:
                out[(cid, x)] = (1.0, "xref", f"{cid} lists {x} as a cross-reference")
            for other in by_xref.get(x.upper(), ()):
                if other != cid:
                    out[(cid, other)] = (1.0, "xref", f"both carry {x}")
    return out


def _linked(a: ConceptGraph, b: ConceptGraph) -> set[tuple[str, str]]:
    """Pairs already joined by ``same_as`` (either direction) or by an xref naming the other's id."""
    pairs: set[tuple[str, str]] = set()
    for g in {id(a): a, id(b): b}.values():
        for r in g.relations(relation_type=SAME_AS):
            pairs.update({(r.source, r.target), (r.target, r.source)})
    for c in a.concepts(include_deprecated=False):
        for x in c.xrefs:
            if x in b:
                pairs.update({(c.id, x), (x, c.id)})
    return pairs


def align(a: ConceptGraph, b: ConceptGraph, config: AlignConfig | None = None, *,
          ids_a: Iterable[str] | None = None, ids_b: Iterable[str] | None = None) -> list[Suggestion]:
    """Candidate ``same_as`` pairs from concepts of ``a`` to concepts of ``b`` (best first), not yet linked.

    Args:
        a, b: the graphs (may be the same graph, e.g. a union: then restrict the sides with ``ids_a`` / ``ids_b``).
        config: thresholds and evidence switches.
        ids_a, ids_b: only these concepts on each side (default: every live concept).
    """
    config = config or AlignConfig()
    ia, ib = TermIndex(a, ids_a, synonyms=config.use_synonyms), TermIndex(b, ids_b, synonyms=config.use_synonyms)
    idf = word_weights([ia, ib])
    # Probe the bigger side's index with the smaller side's terms.
    small, big, flipped = (ia, ib, False) if len(ia) <= len(ib) else (ib, ia, True)
    cap = max(2, int(config.max_word_share * max(1, len(big))))
    scored: dict[tuple[str, str], tuple[float, str, str]] = {}
    for cid, terms in small.terms.items():
        candidates: set[str] = set()
        for words, _, _ in terms:
            candidates |= big.exact.get(tuple(sorted(words)), set())
            probes = sorted((w for w in set(words) if len(big.postings.get(w, ())) <= cap),
                            key=lambda w: len(big.postings.get(w, ())))[:config.probe_words]
            for w in probes:
                candidates |= big.postings.get(w, set())
        for other in candidates:
            if other == cid:
                continue
            score, method, why = _pair_score(terms, big.terms[other], idf)
            if score >= config.min_score:
                scored[(other, cid) if flipped else (cid, other)] = (score, method, why)
    if config.use_xrefs:
        scored.update(_xref_pairs(a, b, ia.terms, ib.terms, config.xref_prefixes))
    linked = _linked(a, b)
    scored = {p: v for p, v in scored.items() if p not in linked and p[0] != p[1]}
    if a is b:  # one unordered pair, once
        scored = {p: v for p, v in scored.items() if p[0] < p[1] or (p[1], p[0]) not in scored}
    if config.mutual_best:
        scored = _mutual_best(scored)
    ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], kv[0]))[:config.limit]
    return [Suggestion(SAME_AS, s, t, round(score, 4), method, why, a.name_of(s), b.name_of(t))
            for (s, t), (score, method, why) in ranked]


_Scored = dict[tuple[str, str], tuple[float, str, str]]  # (source, target) -> (score, method, why)


def _mutual_best(scored: _Scored) -> _Scored:
    best_a: dict[str, float] = defaultdict(float)
    best_b: dict[str, float] = defaultdict(float)
    for (s, t), (score, _, _) in scored.items():
        best_a[s] = max(best_a[s], score)
        best_b[t] = max(best_b[t], score)
    return {p: v for p, v in scored.items() if v[0] >= best_a[p[0]] and v[0] >= best_b[p[1]]}


def name_parents(graph: ConceptGraph, concept_id: str, *, k: int = 10, candidates: Iterable[str] | None = None,
                 index: TermIndex | None = None, idf: dict[str, float] | None = None) -> list[Suggestion]:
    """``is_a`` parents suggested from names alone: the concepts whose names best match ``concept_id``'s.

    A parent's name is usually the head of its child's ("lobar pneumonia" is a "pneumonia"), so a candidate whose
    words end the concept's name scores by how much of the name it covers (IDF-weighted), from 0.5; other candidates
    score by :func:`name_similarity` times 0.8. This is the name-only ranking the link predictor is compared with.

    Args:
        candidates: allowed parents (default: every live concept).
        index, idf: a prebuilt :class:`TermIndex` of the graph and its word weights (for many calls).
    """
    index = index or TermIndex(graph)
    idf = idf or word_weights([index])
    own = index.terms.get(concept_id) or [(normalize_words(graph.name_of(concept_id)), True, graph.name_of(concept_id))]
    allowed = set(candidates) if candidates is not None else set(index.terms)
    existing = set(graph.parents(concept_id))
    # Candidates: concepts named by a tail of the name (the head noun, however common: "disease"), and those
    # sharing one of its three rarest words (common words would pull in thousands).
    cap = max(50, len(index) // 100)
    pool: set[str] = set()
    for words, _, _ in own:
        for k in range(1, len(words)):
            pool |= index.exact.get(tuple(sorted(words[-k:])), set())
        rare = sorted((w for w in set(words) if len(index.postings.get(w, ())) <= cap),
                      key=lambda w: len(index.postings.get(w, ())))[:3]
        for w in rare:
            pool |= index.postings.get(w, set())
    scored: list[tuple[float, str, str]] = []
    for other in pool & allowed:
        if other == concept_id or other in existing:
            continue
        best, why = 0.0, ""
        for words, _, raw in own:
            for w2, _, raw2 in index.terms.get(other, ()):
                if len(w2) < len(words) and words[-len(w2):] == w2:  # the candidate is the head of the name
                    s = sum(idf.get(w, 1.0) for w in w2) / sum(idf.get(w, 1.0) for w in set(words))
                    s, reason = 0.5 + 0.5 * s, f"{raw2!r} is the head of {raw!r}"
                else:
                    s = 0.8 * name_similarity(words, w2, idf)
                    reason = f"{raw2!r} ~ {raw!r}"
                if s > best:
                    best, why = s, reason
        if best > 0:
            scored.append((best, other, why))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [Suggestion(IS_A, concept_id, t, round(s, 4), "head_noun", why, graph.name_of(concept_id),
                       graph.name_of(t)) for s, t, why in scored[:k]]

