"""Retrieval-based report drafting (after CXR-RePaiR): findings sentences taken from the most similar cases, chosen
by concept consensus across those cases (measured through the concept graph), de-duplicated by concept, with
contradictions removed using negation and the graph, and an impression from the best-supported diagnosis concepts.
Every sentence cites the case it came from.

How a draft is chosen (with the knowledge graph):

1. every sentence of every retrieved case is linked to concepts (asserted vs negated);
2. each case votes for its concepts, weighted by its similarity to the query (:func:`~kgclip.rag.consensus.
   case_weights`); a mention also votes, with ``graph_credit``, for its is-a ancestors (:mod:`kgclip.rag.consensus`);
3. sentences are picked greedily by the support of the concepts they add that the draft does not have yet, minus
   ``min_support`` per concept (a concept only a few similar cases share costs more than it brings), until nothing
   gains or ``max_findings`` is reached;
4. a sentence asserting a concept the similar cases mostly negate, or one contradicting an already chosen sentence
   (a concept and its negation, or an is-a relative's), is removed and kept in ``removed`` with the reason.

With ``word_weight > 0`` content words the similar cases share count too, beside concepts (phrasing that BLEU and
ROUGE reward). Without the graph (``use_kg=False``, or no tagger) the same selection runs on content words alone: no
concepts, no negation, no contradiction check. The defaults of :class:`DraftConfig` were chosen on a validation split
carved from MedPix *train* (:func:`kgclip.eval.report_select.select_draft_config`), never on dev.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import ConceptSupport, GraphExpander, case_weights, concept_support, content_words
from kgclip.rag.evidence import CaseHit

__all__ = ["ReportSentence", "DraftReport", "DraftConfig", "draft_from_cases", "split_sentences"]

# Sentence ends, line breaks, and list bullets ("• ...", " - Extends ...") all start a new sentence.
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|\n+|\s*•\s*|\s+-\s+(?=[A-Z])")


@dataclass(frozen=True)
class DraftConfig(Config):
    """How findings are chosen from the retrieved cases (defaults: selected on MedPix validation, see module doc)."""

    max_findings: int = 5  # most findings sentences in a draft
    min_support: float = 0.1  # a new concept adds (support - min_support) to a sentence's gain; 0 < x < 1
    temperature: float = 0.2  # case votes exp((s - s_max) / T); <= 0: every retrieved case votes 1
    graph_hops: int = 1  # is-a levels through which a specific mention supports a general concept
    graph_credit: float = 0.5  # vote given through the graph, relative to a mention of the concept itself
    nearest_bonus: float = 0.0  # gain x (1 + bonus x case vote): prefer sentences of the nearest cases
    dedupe_concepts: bool = True  # a concept already in the draft adds nothing (else every mention counts again)
    remove_contradictions: bool = True  # drop sentences contradicting the draft or the similar cases' negations
    # With the graph: weight of content-word agreement beside concept agreement (phrasing the similar cases share,
    # which BLEU / ROUGE reward); without the graph words are the only units, with weight 1.
    word_weight: float = 1.0
    order: str = "case"  # "case": chosen sentences in source-case order (reads like a report); "score": by gain
    max_impression: int = 2  # diagnosis concepts in the impression

    def __post_init__(self) -> None:
        if self.max_findings < 1 or self.max_impression < 0:
            raise ConfigError("max_findings must be >= 1 and max_impression >= 0")
        if not 0.0 <= self.min_support < 1.0:
            raise ConfigError(f"min_support must be in [0, 1), got {self.min_support}")
        if self.graph_hops < 0 or not 0.0 <= self.graph_credit <= 1.0:
            raise ConfigError("graph_hops must be >= 0 and graph_credit in [0, 1]")
        if self.word_weight < 0:
            raise ConfigError(f"word_weight must be >= 0, got {self.word_weight}")
        if self.order not in ("case", "score"):
            raise ConfigError(f"order must be 'case' or 'score', got {self.order!r}")


@dataclass(frozen=True)
class ReportSentence:
    """One sentence of a draft with its citation.

    Attributes:
        text: the sentence.
        case_id: the case it was taken from (its citation).
        score: why it ranked where it did (its consensus gain with the KG; its case's similarity without).
        concepts: linked, non-negated concept ids; ``negated``: linked, negated ones.
    """

    text: str
    case_id: str
    score: float
    concepts: tuple[str, ...] = ()
    negated: tuple[str, ...] = ()


@dataclass
class DraftReport:
    """A drafted report: findings and impression sentences, each citing its source case.

    Attributes:
        findings: findings sentences, in report order.
        impression: impression sentences (top diagnosis concepts), each citing the case(s) they come from.
        similar_cases: the retrieved cases the sentences came from.
        removed: sentences dropped as duplicates or contradictions, with the reason (for auditing).
        flags: how it was produced, e.g. ``{"llm_fallback": "citations dropped"}``.
    """

    findings: list[ReportSentence] = field(default_factory=list)
    impression: list[ReportSentence] = field(default_factory=list)
    similar_cases: list[CaseHit] = field(default_factory=list)
    removed: list[tuple[ReportSentence, str]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def findings_text(self) -> str:
        return " ".join(s.text for s in self.findings)

    def text(self, citations: bool = True) -> str:
        def line(s: ReportSentence) -> str:
            return f"{s.text} [{s.case_id}]" if citations else s.text

        findings = "\n".join(line(s) for s in self.findings) or "No findings could be drafted."
        impression = "\n".join(line(s) for s in self.impression) or "-"
        return f"FINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}"

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from kgclip.display import report_html

        return report_html(self)


def split_sentences(text: str) -> list[str]:
    """Sentences of a findings text (also splitting bullet lists), each ending in punctuation."""
    parts = [p.strip(" \t-*•") for p in _SPLIT.split(text or "")]
    return [p if p.endswith((".", "!", "?")) else p + "." for p in parts if len(p) > 3]


def _text_key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass
class _Candidate:
    sentence: ReportSentence
    rank: int  # source case rank (0 = most similar)
    position: int  # sentence index within its case
    words: tuple[str, ...]  # content words (the units of agreement without the graph, or beside it)
    weight: float = 0.0  # the source case's vote
    key: str = ""  # normalised text, for exact-duplicate checks


@dataclass
class _Cases:
    """Candidate sentences of all retrieved cases and each case's asserted / negated concepts and words."""

    cands: list[_Candidate] = field(default_factory=list)
    pos: list[list[str]] = field(default_factory=list)
    neg: list[list[str]] = field(default_factory=list)
    words: list[list[str]] = field(default_factory=list)


def _read_cases(hits: Sequence[CaseHit], tagger: ConceptTagger | None) -> _Cases:
    out = _Cases()
    for rank, hit in enumerate(hits):
        pos_all: list[str] = list(hit.metadata.get("concepts", []) or []) if tagger is not None else []
        neg_all: list[str] = []
        words_all: list[str] = []
        for i, sent in enumerate(split_sentences(hit.text)):
            pos: tuple[str, ...] = ()
            neg: tuple[str, ...] = ()
            if tagger is not None:
                mentions = tagger.link(sent)
                # Uncertain mentions ("suspicious for pneumonia") are reported findings too.
                pos = tuple(dict.fromkeys(m.concept_id for m in mentions if not m.negated))
                neg = tuple(dict.fromkeys(m.concept_id for m in mentions if m.negated))
            words = tuple(content_words(sent))
            pos_all += pos
            neg_all += neg
            words_all += words
            out.cands.append(_Candidate(ReportSentence(sent, hit.case_id, float(hit.score), pos, neg),
                                        rank, i, words, key=_text_key(sent)))
        out.pos.append(list(dict.fromkeys(pos_all)))
        asserted = set(pos_all)  # a case that asserts a concept somewhere does not count as negating it
        out.neg.append([c for c in dict.fromkeys(neg_all) if c not in asserted])
        out.words.append(list(dict.fromkeys(words_all)))
    return out


def _contradiction(cand: ReportSentence, chosen_pos: set[str], chosen_neg: set[str], support: ConceptSupport,
                   expander: GraphExpander) -> str | None:
    for c in cand.concepts:
        if support.neg(c) > support.pos(c):
            return f"asserts {c}, which the similar cases mostly negate"
        for n in chosen_neg:
            if expander.related(c, n):
                return f"contradicts an earlier sentence about {n}"
    for n in cand.negated:
        for c in chosen_pos:
            if expander.related(c, n):
                return f"contradicts an earlier sentence about {c}"
    return None


def draft_from_cases(hits: Sequence[CaseHit], *, tagger: ConceptTagger | None, graph: ConceptGraph | None,
                     config: DraftConfig | None = None,
                     sentence_scorer: Callable[[list[str]], np.ndarray] | None = None, max_findings: int | None = None,
                     max_impression: int | None = None, use_kg: bool = True,
                     expander: GraphExpander | None = None) -> DraftReport:
    """Draft a report from retrieved cases (best first); see the module docstring for how.

    Args:
        hits: similar cases with their text; ``metadata["concepts"]`` (the case's linked concepts), when present,
            also counts as the case's votes.
        tagger: concept linker; ``None`` or ``use_kg=False``: agreement on content words only, no concepts.
        graph: the concept graph (is-a support and contradictions); ``None``: exact concept matches only.
        config: drafting knobs (default :class:`DraftConfig`); ``max_findings`` / ``max_impression`` override it.
        sentence_scorer: optional ``sentences -> [S]`` similarity of each sentence to the query image (a KG-CLIP
            model's image-text score), added to the vote of the sentence's case in the nearest-case bonus.
        expander: a :class:`GraphExpander` to reuse across calls (it memoises ancestors); built from ``graph``
            and ``config.graph_hops`` when omitted.
    """
    cfg = config or DraftConfig()
    n_find = cfg.max_findings if max_findings is None else max_findings
    n_imp = cfg.max_impression if max_impression is None else max_impression
    report = DraftReport(similar_cases=list(hits))
    kg = use_kg and tagger is not None
    cases = _read_cases(hits, tagger if kg else None)
    if kg and (expander is None or expander.graph is not graph or expander.hops != cfg.graph_hops):
        expander = GraphExpander(graph, cfg.graph_hops)
    weights = case_weights([h.score for h in hits], cfg.temperature)
    ids = [h.case_id for h in hits]
    support = (concept_support(ids, cases.pos, cases.neg, weights, expander=expander, credit=cfg.graph_credit)
               if kg else ConceptSupport())
    word_weight = cfg.word_weight if kg else 1.0
    words = concept_support(ids, cases.words, [[] for _ in hits], weights) if word_weight else ConceptSupport()
    extra = np.zeros(len(cases.cands))
    if sentence_scorer is not None and cases.cands:
        extra = np.asarray(sentence_scorer([c.sentence.text for c in cases.cands]), dtype=np.float64)
    for c, e in zip(cases.cands, extra.tolist()):
        c.weight = float(weights[c.rank]) + e

    chosen: list[_Candidate] = []
    chosen_pos: set[str] = set()
    chosen_neg: set[str] = set()
    chosen_words: set[str] = set()
    seen_text: set[str] = set()
    pool = list(cases.cands)
    dedupe = cfg.dedupe_concepts
    while pool and len(chosen) < n_find:
        best, best_gain, keep = None, 0.0, []
        for cand in pool:
            s = cand.sentence
            if cand.key in seen_text:
                report.removed.append((s, "duplicate text"))
                continue
            if kg and not (s.concepts or s.negated):  # acquisition boilerplate, no finding
                report.removed.append((s, "no finding concept"))
                continue
            new_pos = [c for c in s.concepts if c not in chosen_pos] if dedupe else list(s.concepts)
            new_neg = [c for c in s.negated if c not in chosen_neg]
            new_words = [w for w in cand.words if w not in chosen_words] if dedupe or not kg else list(cand.words)
            if (kg and not new_pos and not new_neg) or (not kg and not new_words):
                report.removed.append((s, "concepts already reported" if kg else "words already reported"))
                continue
            why = _contradiction(s, chosen_pos, chosen_neg, support, expander) if kg and cfg.remove_contradictions \
                else None
            if why:
                report.removed.append((s, why))
                continue
            keep.append(cand)
            gain = (sum(support.pos(c) - cfg.min_support for c in new_pos)
                    + word_weight * sum(words.pos(w) - cfg.min_support for w in new_words))
            gain *= 1.0 + cfg.nearest_bonus * cand.weight
            if gain > best_gain:
                best, best_gain = cand, gain
        if best is None:
            break
        b = best.sentence
        chosen.append(_Candidate(ReportSentence(b.text, b.case_id, round(best_gain, 4), b.concepts, b.negated),
                                 best.rank, best.position, best.words, best.weight, best.key))
        seen_text.add(best.key)
        chosen_pos.update(b.concepts)
        chosen_neg.update(b.negated)
        chosen_words.update(best.words)
        pool = [c for c in keep if c is not best]
    if cfg.order == "case":
        chosen.sort(key=lambda c: (c.rank, c.position))
    report.findings = [c.sentence for c in chosen]
    report.impression = _impression(expander, support, chosen_neg, n_imp) if kg else []
    if not report.impression and report.findings:
        first = max(report.findings, key=lambda s: s.score)
        report.impression.append(ReportSentence(first.text, first.case_id, first.score, first.concepts))
    return report


def _impression(expander: GraphExpander, support: ConceptSupport, chosen_neg: set[str],
                n: int) -> list[ReportSentence]:
    """The best-supported diagnosis concepts (asserted by at least one case, not negated in the draft)."""
    graph = expander.graph
    if graph is None or n <= 0:
        return []
    ranked: list[str] = []
    for c in sorted(support.best_case, key=lambda c: (-support.pos(c), c)):
        if len(ranked) >= n:
            break
        if c not in chosen_neg and expander.is_diagnosis(c):
            ranked.append(c)
    out = []
    for i, cid in enumerate(ranked):
        name = graph.name_of(cid)
        text = f"Findings most consistent with {name}." if i == 0 else f"Consider {name}."
        out.append(ReportSentence(text, support.best_case[cid], round(support.pos(cid), 4), (cid,)))
    return out
