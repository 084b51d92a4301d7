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

Only findings and impression sentences of a case are candidates (:mod:`kgclip.data.sections`): its history, lab
values, figure citations and question/answer statements never are. With a query body region (from the DICOM header,
an image classifier, or else a vote of the similar cases' own regions), only cases of that region are drafted from
and a sentence naming anatomy outside it (:class:`~kgclip.rag.regions.BodyRegions`) is removed; with a query
modality, so is a sentence describing another modality ("US: ..." in a CT case). When no similar case of the region
has findings, the draft is empty and says so in ``notice``, never drafted from another region. Left and right:
each sentence keeps its own case's side; a later sentence giving the other side of a finding already reported is
removed. A sentence opening by pointing back ("It measures 8 mm.", "These findings are consistent with ...") votes
but is never drafted: alone in a draft it would point at another patient's finding (MedPix val, carve seeds 0-2, 312
drafts: such sentences 0.18 -> 0 per draft, concept F1 0.1327 -> 0.1335, paired +0.0008 [-0.0009, 0.0027]). The
impression is reasoned through the graph (:mod:`kgclip.rag.impression`).

Every draft with the KG gets a ``confidence`` in [0, 1], the calibrated agreement of its similar cases
(:mod:`kgclip.rag.draft_confidence`); below ``DraftConfig.min_confidence`` the draft is declined: no sentences, a
notice saying that the similar cases disagree, and the similar cases still listed for the reader.

With ``word_weight > 0`` content words the similar cases share count too, beside concepts (phrasing that BLEU and
ROUGE reward). Without the graph (``use_kg=False``, or no tagger) the same selection runs on content words alone: no
concepts, no negation, no contradiction check. The defaults of :class:`DraftConfig` were chosen on a validation split
carved from MedPix *train* (:func:`kgclip.eval.report_select.select_draft_config`), never on dev.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from kgclip.config import Config
from kgclip.data.sections import SectionSentence, report_sentences
from kgclip.errors import ConfigError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import ConceptSupport, GraphExpander, case_weights, concept_support, content_words
from kgclip.rag.draft_confidence import judge_draft
from kgclip.rag.evidence import CaseHit
from kgclip.rag.image_metadata import ImageLabels
from kgclip.rag.impression import reason_impression, supported_first
from kgclip.rag.regions import BodyRegions
from kgclip.rag.report_scope import (DraftQuery, case_text_sentences, link_sentence, normalize_modality,
                                     other_modality, scope_hits)

__all__ = ["ReportSentence", "DraftReport", "DraftConfig", "draft_from_cases", "split_sentences", "case_text_sentences",
           "normalize_modality"]

_SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DraftConfig(Config):
    """How findings are chosen from the retrieved cases (defaults: selected on MedPix validation, see module doc)."""

    max_findings: int = 5  # most findings sentences in a draft
    min_support: float = 0.1  # a new concept adds (support - min_support) to a sentence's gain; 0 < x < 1
    temperature: float = 0.2  # case votes exp((s - s_max) / T); <= 0: every retrieved case votes 1
    graph_hops: int = 2  # is-a levels through which a specific mention supports a general concept
    graph_credit: float = 1.0  # vote given through the graph, relative to a mention of the concept itself
    nearest_bonus: float = 0.0  # gain x (1 + bonus x case vote): prefer sentences of the nearest cases
    dedupe_concepts: bool = True  # a concept already in the draft adds nothing (else every mention counts again)
    remove_contradictions: bool = True  # drop sentences contradicting the draft or the similar cases' negations
    # With the graph: weight of content-word agreement beside concept agreement (phrasing the similar cases share,
    # which BLEU / ROUGE reward); without the graph words are the only units, with weight 1. 0 and graph_hops 2:
    # what `kgclip eval report` measures (kgclip.eval.report.ENGINE_DRAFT); the Engine drafted with 1 and 1 until
    # session 13. MedPix val, 3 carve seeds, 312 drafts (benchmarks/exp_engine_draft_defaults.py): concept F1 with
    # the workspace's concept prior 0.116 -> 0.134, +0.018 [0.009, 0.026]; without a prior 0.118 -> 0.129, +0.011
    # [0.004, 0.018]; ROUGE-L 0.139 -> 0.124 (shared technique phrasing no longer counts).
    word_weight: float = 0.0
    order: str = "case"  # "case": chosen sentences in source-case order (reads like a report); "score": by gain
    max_impression: int = 2  # diagnosis concepts in the impression
    keep_region: bool = True  # drop sentences naming anatomy outside the query's body region
    # Drop sentences that describe another modality than the query's ("US: ..." or "Chest radiograph shows ..." in a
    # CT draft): a case's findings describe all its studies, and a CT report does not describe a radiograph. MedPix
    # val (104 drafts, paired per case): drafted sentences naming another modality 0.154 -> 0 per report, concept
    # F1 0.1427 -> 0.1377, -0.005 [-0.014, 0.004] (noise). Cases of another modality are left out at retrieval.
    keep_modality: bool = True
    # A query without a region or modality (no header, classifiers unsure) takes them from a weighted vote of its
    # ``region_voters`` nearest similar cases: a region (or modality) stands when ``region_vote`` of that vote
    # supports it. MedPix val, 3 carve seeds, 312 header-less queries (benchmarks/bench_draft_scope.py): the 160
    # cases a draft retrieves at share 0.5 named a region sharing the query's for 48 %, a wrong one for 5.8 %;
    # the nearest 20 at 0.7 for 59 % and 5.4 % (10 at 0.5: 77 % / 13.5 %; 20 at 0.8: 52 % / 2.9 %).
    region_vote: float = 0.7
    region_voters: int = 20
    fact_weight: float = 0.5  # impression: weight of graph facts from the drafted findings beside case diagnoses
    # "gain": a sentence gains sum(support - min_support) over what it adds; "expected_f1": it gains the rise of
    # the draft's expected F1 against a reference drawn from the similar cases (stops by itself, no min_support).
    objective: str = "gain"
    # With a learned concept prior (``draft_from_cases(concept_prior=...)``, :mod:`kgclip.rag.concept_prior`): the
    # score a concept brings to a sentence's gain is ``prior_mix x prior + (1 - prior_mix) x consensus``. The
    # similar cases' consensus still decides contradictions and the impression. 0: consensus alone. 0.5: chosen on
    # MedPix validation (concept F1 0.125 -> 0.142 with the prior; no effect when no prior is given).
    prior_mix: float = 0.5
    # A sentence is only added when its best new concept scores at least this (the mixed score above): a draft
    # stops growing once what it would add is unlikely. 0: no floor (``min_support`` alone decides).
    min_new_score: float = 0.0
    # Decline to draft (no sentences; a notice, the similar cases still listed) when the draft's confidence, the
    # calibrated agreement of its similar cases (:mod:`kgclip.rag.draft_confidence`), is below this. 0 (default):
    # never decline; the confidence is still reported. 0.44 (``draft_confidence.VAL_MIN_CONFIDENCE``) was chosen on
    # MedPix validation (keeps 53 % of drafts, concept F1 0.163 vs 0.135), but the signal is weak (AUROC 0.59 on dev)
    # and it declines by kind of study (most CT head and abdomen drafts) more than by draft.
    min_confidence: float = 0.0
    # Grow the draft from one findings sentence of a similar case whose diagnosis is the impression's lead (the
    # best-scoring such sentence), so the findings describe what the impression names instead of a collage of
    # other patients' findings under an unrelated diagnosis. MedPix val, carve seeds 0/1/2 (312 drafts, paired per
    # case): the share of drafts whose leading impression rests on a drafted finding (a graph fact, or a finding from
    # a case it cites; ``kgclip eval report``'s ``impression_supported``) 0.35 -> 0.80, concept F1 0.1364 -> 0.1346
    # (-0.0014 / -0.0014 / -0.0028 per seed; seeds 1-2 pooled -0.002 [-0.008, 0.003]).
    anchor_impression: bool = True

    def __post_init__(self) -> None:
        if self.max_findings < 1 or self.max_impression < 0:
            raise ConfigError("max_findings must be >= 1 and max_impression >= 0")
        if not 0.0 <= self.min_support < 1.0:
            raise ConfigError(f"min_support must be in [0, 1), got {self.min_support}")
        if self.graph_hops < 0 or not 0.0 <= self.graph_credit <= 1.0:
            raise ConfigError("graph_hops must be >= 0 and graph_credit in [0, 1]")
        if self.word_weight < 0 or self.fact_weight < 0:
            raise ConfigError(f"word_weight and fact_weight must be >= 0, got {self.word_weight}, {self.fact_weight}")
        if self.order not in ("case", "score"):
            raise ConfigError(f"order must be 'case' or 'score', got {self.order!r}")
        if self.objective not in ("gain", "expected_f1"):
            raise ConfigError(f"objective must be 'gain' or 'expected_f1', got {self.objective!r}")
        if not 0.0 <= self.prior_mix <= 1.0 or not 0.0 <= self.min_new_score < 1.0:
            raise ConfigError(f"prior_mix must be in [0, 1] and min_new_score in [0, 1), got {self.prior_mix}, "
                              f"{self.min_new_score}")
        if not 0.0 < self.region_vote <= 1.0:
            raise ConfigError(f"region_vote must be in (0, 1], got {self.region_vote}")
        if self.region_voters < 1:
            raise ConfigError(f"region_voters must be >= 1, got {self.region_voters}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1] (0: never decline to draft), got "
                              f"{self.min_confidence}")


@dataclass(frozen=True)
class ReportSentence:
    """One sentence of a draft with its citations.

    Attributes:
        text: the sentence.
        case_id: the case it was taken from (its citation; an impression line: its best-supporting case).
        score: why it ranked where it did (its consensus gain with the KG; its case's similarity without).
        concepts: linked, non-negated concept ids; ``negated``: linked, negated ones.
        cases: every case it rests on (an impression line cites several; a findings sentence its own).
        facts: the knowledge-graph facts it rests on (impression lines), e.g. ``"pneumonia has symptom cough"``.
        source: the section of the cited case the text came from (``findings``; ``graph`` for impression lines).
    """

    text: str
    case_id: str
    score: float
    concepts: tuple[str, ...] = ()
    negated: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    source: str = "findings"

    @property
    def citations(self) -> tuple[str, ...]:
        return self.cases or (self.case_id,)


@dataclass
class DraftReport:
    """A drafted report: findings and impression sentences, each citing its source case(s).

    Attributes:
        findings: findings sentences, in report order.
        impression: impression lines (diagnoses reasoned through the graph), each citing cases and facts.
        similar_cases: the retrieved cases of the query's region the sentences came from.
        removed: sentences dropped (duplicates, contradictions, other region or modality), with the reason.
        flags: how it was produced, e.g. ``{"llm_fallback": "citations dropped"}``.
        notice: why nothing could be drafted (e.g. ``"no similar chest cases to draft from"``, or the similar cases
            disagree), else ``""``.
        confidence: how far the draft can be trusted, in ``[0, 1]``: the calibrated agreement of its similar cases
            (:mod:`kgclip.rag.draft_confidence`); 0 when no similar case could be drafted from, ``None`` without
            the KG (no concepts to compare cases by).
        agreement: what ``confidence`` is computed from: the vote-weighted mean overlap (Jaccard) of the similar
            cases' findings concepts, widened through the graph (``None`` without the KG).
        abstained: the draft was declined because ``confidence < DraftConfig.min_confidence``: no findings or
            impression; the sentences it would have had are in ``removed`` (reason ``"withheld: ..."``) and the
            similar cases stay listed for the reader.
        region: the query's body regions (``"upper limb"`` / ``"lower limb"`` for ``"limb"`` when its part is known);
            ``region_source``: where they came from (``"query"`` or the similar cases' vote, then the limb
            part's); ``modality``: the query's modality (``""``: unknown), ``modality_source`` where it came from.
    """

    findings: list[ReportSentence] = field(default_factory=list)
    impression: list[ReportSentence] = field(default_factory=list)
    similar_cases: list[CaseHit] = field(default_factory=list)
    removed: list[tuple[ReportSentence, str]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    region: tuple[str, ...] = ()
    region_source: str = ""
    modality: str = ""
    modality_source: str = ""
    confidence: float | None = None
    agreement: float | None = None
    abstained: bool = False

    @property
    def findings_text(self) -> str:
        return " ".join(s.text for s in self.findings)

    def text(self, citations: bool = True, facts: bool = True, confidence: bool = True) -> str:
        """Plain text: ``FINDINGS:`` and ``IMPRESSION:`` sections, each sentence with its ``[case]`` citations and,
        with ``facts``, the graph facts of each impression line; with ``confidence``, a ``CONFIDENCE:`` line."""
        from kgclip.rag.report_export import report_text

        return report_text(self, citations=citations, facts=facts, confidence=confidence)

    def to_dict(self) -> dict:
        """Plain values for JSON, one shape for the CLI and the web app (see :func:`kgclip.rag.report_export.
        report_dict`)."""
        from kgclip.rag.report_export import report_dict

        return report_dict(self)

    def to_fhir(self, **kwargs: object) -> dict:
        """The draft as a FHIR R4 ``DiagnosticReport`` resource (see :func:`kgclip.rag.report_export.to_fhir`)."""
        from kgclip.rag.report_export import to_fhir

        return to_fhir(self, **kwargs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from kgclip.display import report_html

        return report_html(self)


def split_sentences(text: str) -> list[str]:
    """Sentences of a findings text (bullets, numbered lists, citations stripped), each ending in punctuation."""
    return [s.text for s in report_sentences(text)]


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
    sides: frozenset[str] = frozenset()  # "left" / "right" as written


@dataclass
class _Cases:
    """Candidate sentences of all retrieved cases and each case's asserted / negated concepts and words."""

    cands: list[_Candidate] = field(default_factory=list)
    pos: list[list[str]] = field(default_factory=list)
    neg: list[list[str]] = field(default_factory=list)
    words: list[list[str]] = field(default_factory=list)
    diagnoses: list[list[str]] = field(default_factory=list)  # concepts of each case's diagnosis / impression


def _off_query(sent: SectionSentence, concepts: Sequence[str], query: DraftQuery, cfg: DraftConfig) -> str | None:
    """Why a candidate does not belong in this query's report (other modality, anatomy outside the region)."""
    if cfg.keep_modality and other_modality(sent.modality, query.modality):
        return f"describes {sent.modality}, the query is {query.modality}"
    if cfg.keep_region and query.body is not None and query.regions:
        outside = query.body.outside(concepts, query.regions)
        if outside:
            return f"anatomy outside the {'/'.join(sorted(query.regions))} region: {outside[0]}"
        if query.limb_part:
            parts = query.body.limb_parts
            other = [c for c in concepts if parts(c) and query.limb_part not in parts(c)]
            if other:
                return f"anatomy of the other limb part (the query is {query.limb_part}): {other[0]}"
    return None


def _read_cases(hits: Sequence[CaseHit], tagger: ConceptTagger | None, query: DraftQuery, cfg: DraftConfig,
                removed: list[tuple[ReportSentence, str]]) -> _Cases:
    out = _Cases()
    for rank, hit in enumerate(hits):
        pos_all: list[str] = list(hit.metadata.get("concepts", []) or []) if tagger is not None else []
        neg_all: list[str] = []
        words_all: list[str] = []
        diagnoses: list[str] = []
        if tagger is not None and hit.metadata.get("diagnosis"):
            diagnoses += link_sentence(tagger, str(hit.metadata["diagnosis"]))[0]
        for i, sent in enumerate(case_text_sentences(hit)):
            pos, neg = link_sentence(tagger, sent.text)
            if sent.section == "impression":
                diagnoses += pos
            if not sent.draftable:
                continue
            rs = ReportSentence(sent.text, hit.case_id, float(hit.score), pos, neg, source=sent.section)
            why = _off_query(sent, pos + neg, query, cfg)
            if why:
                removed.append((rs, why))
                continue
            words = tuple(content_words(sent.text))
            pos_all += pos
            neg_all += neg
            words_all += words
            if sent.section != "findings" or sent.dangling:
                # Impression sentences vote, only findings sentences are drafted as findings; one pointing back
                # ("It measures 8 mm.") votes but is not drafted without the sentence it points at.
                continue
            sides = frozenset(m.lower() for m in _SIDES.findall(sent.text))
            out.cands.append(_Candidate(rs, rank, i, words, key=_text_key(sent.text), sides=sides))
        out.pos.append(list(dict.fromkeys(pos_all)))
        asserted = set(pos_all)  # a case that asserts a concept somewhere does not count as negating it
        out.neg.append([c for c in dict.fromkeys(neg_all) if c not in asserted])
        out.words.append(list(dict.fromkeys(words_all)))
        out.diagnoses.append(list(dict.fromkeys(diagnoses)))
    return out


def _contradiction(cand: _Candidate, chosen_pos: set[str], chosen_neg: set[str], support: ConceptSupport,
                   expander: GraphExpander) -> str | None:
    s = cand.sentence
    for c in s.concepts:
        if support.neg(c) > support.pos(c):
            return f"asserts {c}, which the similar cases mostly negate"
        for n in chosen_neg:
            if expander.related(c, n):
                return f"contradicts an earlier sentence about {n}"
    for n in s.negated:
        for c in chosen_pos:
            if expander.related(c, n):
                return f"contradicts an earlier sentence about {c}"
    return None


def _side_conflict(cand: _Candidate, chosen: Sequence[_Candidate]) -> str | None:
    """A sentence giving one side (left / right) of a finding another case's chosen sentence gives the other side
    of: each sentence keeps its own case's side, so only one of them can stay."""
    if len(cand.sides) != 1:
        return None
    s = cand.sentence
    for other in chosen:
        o = other.sentence
        if (len(other.sides) == 1 and other.sides != cand.sides and o.case_id != s.case_id
                and set(o.concepts) & set(s.concepts)):
            return f"gives the {next(iter(cand.sides))} side where [{o.case_id}] gives the other"
    return None


def draft_from_cases(hits: Sequence[CaseHit], *, tagger: ConceptTagger | None, graph: ConceptGraph | None,
                     config: DraftConfig | None = None,
                     sentence_scorer: Callable[[list[str]], np.ndarray] | None = None, max_findings: int | None = None,
                     max_impression: int | None = None, use_kg: bool = True,
                     expander: GraphExpander | None = None, query_region: str | Sequence[str] | None = None,
                     query_modality: str | None = None, regions: BodyRegions | None = None,
                     image_labels: ImageLabels | None = None,
                     concept_prior: Mapping[str, float] | None = None,
                     max_cases: int | None = None) -> DraftReport:
    """Draft a report from retrieved cases (best first); see the module docstring for how.

    Args:
        hits: similar cases with their text; ``metadata`` may carry ``findings`` / ``impression`` (sections),
            ``diagnosis``, ``modality``, ``body_part`` (or ``region``), ``concepts`` (the case's linked concepts,
            which also count as its votes) and ``text_source="qa"`` (text made from question/answer pairs).
        tagger: concept linker; ``None`` or ``use_kg=False``: agreement on content words only, no concepts.
        graph: the concept graph (is-a support, contradictions, regions, impression).
        config: drafting knobs (default :class:`DraftConfig`); ``max_findings`` / ``max_impression`` override it.
        sentence_scorer: optional ``sentences -> [S]`` similarity of each sentence to the query image (a KG-CLIP
            model's image-text score), added to the vote of the sentence's case in the nearest-case bonus.
        expander, regions: a :class:`GraphExpander` / :class:`BodyRegions` to reuse across calls (both memoise).
        query_region: the query's body region label(s) (DICOM ``BodyPartExamined``, a classifier's label);
            ``None``: the similar cases' regions vote.
        query_modality: the query's modality (``CT``, ``MR``, ``CR``...); ``None``: unknown.
        image_labels: the query image's metadata classifier probabilities (:mod:`kgclip.rag.image_metadata`); they
            decide the region / modality when ``query_region`` / ``query_modality`` are ``None`` and they are sure
            (:func:`~kgclip.rag.report_scope.scope_hits`).
        concept_prior: ``{concept id: probability}`` for this query from a learned model
            (:meth:`kgclip.rag.concept_prior.ConceptPrior.predict_one`), mixed into the consensus with
            ``config.prior_mix``; concepts it does not cover score 0 on its side. Ignored without the KG.
        max_cases: draft from at most the nearest ``max_cases`` hits of the query's region and modality (``None``:
            all of them). ``Engine.draft_report`` passes many more hits than it drafts from, so that its ``draft_k``
            cases are all of the query's kind rather than what is left of its ``draft_k`` nearest.
    """
    cfg = config or DraftConfig()
    n_find = cfg.max_findings if max_findings is None else max_findings
    n_imp = cfg.max_impression if max_impression is None else max_impression
    kg = use_kg and tagger is not None
    link = tagger if kg else None
    if kg and (expander is None or expander.graph is not graph or expander.hops != cfg.graph_hops):
        expander = GraphExpander(graph, cfg.graph_hops)
    if kg and graph is not None and (regions is None or regions.graph is not graph):
        regions = BodyRegions(graph)
    report = DraftReport()
    hits, query, report.notice = scope_hits(hits, link, regions if kg else None, temperature=cfg.temperature,
                                            region_vote=cfg.region_vote, region_voters=cfg.region_voters,
                                            query_region=query_region,
                                            query_modality=query_modality, image_labels=image_labels,
                                            max_cases=max_cases)
    report.similar_cases = list(hits)
    report.region, report.region_source = query.named_regions, query.region_source
    if query.limb_part:
        report.region_source += f"; {query.limb_part}: {query.limb_part_source}"
    report.modality, report.modality_source = query.modality, query.modality_source
    if report.notice:
        report.confidence, report.agreement = (0.0, 0.0) if kg else (None, None)
        return report
    cases = _read_cases(hits, link, query, cfg, report.removed)
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
    w_total = float(np.sum(weights)) or 1.0
    expected = (float(np.dot(weights, [len(p) for p in cases.pos])) / w_total if kg else 1.0,
                float(np.dot(weights, [len(w) for w in cases.words])) / w_total)
    scores = _mixed_scores(support, concept_prior, cases.cands, cfg.prior_mix) if kg else support
    sizes = (max(expected[0], 1.0), max(expected[1], 1.0))
    anchor = (_impression_anchor(cases, ids, weights, support, words, expander, cfg, word_weight, sizes, scores)
              if kg and cfg.anchor_impression and n_imp > 0 and graph is not None else None)
    chosen = _select(cases.cands, report, support, words, expander, cfg, n_find, kg, word_weight, sizes,
                     scores=scores, seed=[anchor[1]] if anchor else ())
    if cfg.order == "case":
        chosen.sort(key=lambda c: (c.rank, c.position))
    report.findings = [c.sentence for c in chosen]
    if not report.findings:
        report.notice = (f"no findings could be drafted: the similar {'/'.join(report.region)} cases agree on none "
                         f"({len(report.removed)} sentences left out; see .removed)")
    if kg and n_imp > 0:
        chosen_neg = {n for s in report.findings for n in s.negated}
        lines = reason_impression(report.findings, ids, cases.diagnoses, weights, support, expander, chosen_neg,
                                  n_imp, fact_weight=cfg.fact_weight)
        lines = supported_first(lines, report.findings, anchor[0] if anchor else None, graph)
        if anchor and lines and lines[0].concept == anchor[0] and anchor[1].sentence.case_id not in lines[0].cases:
            # The lead line also cites the case whose finding was drafted for it.
            lead = lines[0]
            lines[0] = replace(lead, cases=(*lead.cases, anchor[1].sentence.case_id))
        report.impression = [ReportSentence(x.text, x.cases[0], x.score, (x.concept,), cases=x.cases, facts=x.facts,
                                            source="graph") for x in lines]
    if kg:
        judge_draft(report, cases.pos, weights, expander, cfg.min_confidence)
    return report


# How many of the best-supported diagnoses the anchor tries, in order, for one with a findings sentence that passes
# min_support (MedPix val, seeds 0-2: 1 -> 3 diagnoses, anchored drafts' leads resting on a finding 0.756 -> 0.766,
# concept F1 +0.0009 [-0.0014, 0.0034]; with supported_first, 0.86 -> 0.92).
ANCHOR_CANDIDATES = 3


def _impression_anchor(cases: _Cases, ids: list[str], weights: np.ndarray, support: ConceptSupport,
                       words: ConceptSupport, expander: GraphExpander | None, cfg: DraftConfig, word_weight: float,
                       sizes: tuple[float, float], scores: ConceptSupport) -> tuple[str, _Candidate] | None:
    """``(diagnosis, sentence)``: of the ``ANCHOR_CANDIDATES`` diagnoses the similar cases' own diagnoses support
    best, the first with a findings sentence (of a case with that diagnosis, or one below it by is-a) that passes
    ``min_support``, and its best-scoring such sentence; or ``None``.

    The draft grows from that sentence, so its findings describe what its impression names (see
    ``DraftConfig.anchor_impression``)."""
    if expander is None:
        return None
    lines = reason_impression([], ids, cases.diagnoses, weights, support, expander, set(), ANCHOR_CANDIDATES,
                              fact_weight=cfg.fact_weight)
    for line in lines:
        dx = line.concept
        with_dx = {i for i, dxs in enumerate(cases.diagnoses)
                   if any(d == dx or dx in expander.ancestors(d) for d in dxs)}
        pool = [c for c in cases.cands if c.rank in with_dx]
        # The sentence must still pass min_support: with any support (min_support 0) every draft gets an anchor, but
        # MedPix val concept F1 falls by 0.012 [-0.017, -0.006] (seeds 0-2) for drafts anchored on findings the
        # similar cases hardly share.
        picked = _select(pool, DraftReport(), support, words, expander, cfg, 1, True, word_weight, sizes,
                         scores=scores)
        if picked:
            return dx, picked[0]
    return None


def _mixed_scores(support: ConceptSupport, prior: Mapping[str, float] | None, cands: Sequence[_Candidate],
                  mix: float) -> ConceptSupport:
    """The per-concept score sentences are chosen by: the consensus, or its convex mix with a learned prior."""
    if prior is None or mix <= 0.0:
        return support
    out = ConceptSupport(negative=support.negative, best_case=support.best_case)
    for c in {c for cand in cands for c in cand.sentence.concepts}:
        out.positive[c] = mix * float(prior.get(c, 0.0)) + (1.0 - mix) * support.pos(c)
    return out


def _ef1(support: ConceptSupport, units: set[str] | list[str], expected: float) -> float:
    """Expected F1 of a draft's units against a reference holding each unit with probability ``support.pos`` and
    ``expected`` units in all: ``2 * sum(p) / (|draft| + expected)``."""
    return 2.0 * sum(support.pos(u) for u in units) / (len(units) + expected) if units else 0.0


def _ef1_gain(support: ConceptSupport, chosen: set[str], new: list[str], expected: float) -> float:
    if not new:
        return 0.0
    return _ef1(support, chosen | set(new), expected) - _ef1(support, chosen, expected)


def _select(pool: list[_Candidate], report: DraftReport, support: ConceptSupport, words: ConceptSupport,
            expander: GraphExpander | None, cfg: DraftConfig, n_find: int, kg: bool,
            word_weight: float, expected: tuple[float, float] = (1.0, 1.0),
            scores: ConceptSupport | None = None, seed: Sequence[_Candidate] = ()) -> list[_Candidate]:
    """Greedy choice of findings sentences by the consensus gain of what they add (see module doc, steps 3-4).

    ``expected``: the similar cases' weighted mean count of concepts and of content words (the expected size of
    the reference, for ``objective="expected_f1"``). ``scores``: what a concept is worth to a sentence's gain
    (default: the consensus ``support``, which always decides contradictions). ``seed``: sentences already chosen
    (the draft grows from them)."""
    if scores is None:
        scores = support
    chosen: list[_Candidate] = list(seed)
    chosen_pos = {c for s in seed for c in s.sentence.concepts}
    chosen_neg = {c for s in seed for c in s.sentence.negated}
    chosen_words = {w for s in seed for w in s.words}
    seen_text = {s.key for s in seed}
    pool = [c for c in pool if c.key not in seen_text]
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
            side = _side_conflict(cand, chosen) if kg and cfg.remove_contradictions else None
            if side:
                report.removed.append((s, side))
                continue
            new_pos = [c for c in s.concepts if c not in chosen_pos] if dedupe else list(s.concepts)
            new_neg = [c for c in s.negated if c not in chosen_neg]
            new_words = [w for w in cand.words if w not in chosen_words] if dedupe or not kg else list(cand.words)
            if (kg and not new_pos and not new_neg) or (not kg and not new_words):
                report.removed.append((s, "concepts already reported" if kg else "words already reported"))
                continue
            why = (_contradiction(cand, chosen_pos, chosen_neg, support, expander)
                   if kg and cfg.remove_contradictions and expander is not None else None)
            if why:
                report.removed.append((s, why))
                continue
            if kg and cfg.min_new_score > 0 and max(map(scores.pos, new_pos), default=0.0) < cfg.min_new_score:
                # Its new concepts only shrink as the draft grows, so it can never pass later either.
                report.removed.append((s, "what it would add is unlikely"))
                continue
            keep.append(cand)
            if cfg.objective == "expected_f1":
                gain = (_ef1_gain(scores, chosen_pos, new_pos, expected[0])
                        + word_weight * _ef1_gain(words, chosen_words, new_words, expected[1]))
            else:
                gain = (sum(scores.pos(c) - cfg.min_support for c in new_pos)
                        + word_weight * sum(words.pos(w) - cfg.min_support for w in new_words))
            gain *= 1.0 + cfg.nearest_bonus * cand.weight
            if gain > best_gain:
                best, best_gain = cand, gain
        if best is None:
            break
        b = best.sentence
        chosen.append(_Candidate(ReportSentence(b.text, b.case_id, round(best_gain, 4), b.concepts, b.negated,
                                                (b.case_id,), source=b.source),
                                 best.rank, best.position, best.words, best.weight, best.key, best.sides))
        seen_text.add(best.key)
        chosen_pos.update(b.concepts)
        chosen_neg.update(b.negated)
        chosen_words.update(best.words)
        pool = [c for c in keep if c is not best]
    return chosen
