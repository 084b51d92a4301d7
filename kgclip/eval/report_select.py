"""Model selection for report drafting, on the validation split carved from MedPix *train* (never on dev).

Every choice a drafter makes (how many cases it retrieves and which metadata they must share, how their votes are
weighted, the support a concept needs, how many sentences, graph depth and credit, concept de-duplication,
contradiction removal, word agreement, sentence order) is a field of :class:`RetrievalConfig` or
:class:`~kgclip.rag.report.DraftConfig`. :func:`select_draft_config` searches them by coordinate ascent (one field at
a time over a fixed list of values, repeated until a round changes nothing) and keeps the configuration with the best
**selection score = concept_f1 + bleu4 + rouge_l** on ``val``. The same search, with the same score, chooses the
no-KG drafter's configuration, so the ablation is tuned as carefully as the engine.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.eval.report_data import CASE_TEXTS, RETRIEVAL_FILTERS, MedPixReportData, ReportSplit
from kgclip.eval.text_metrics import bleu4, concept_f1, rouge_l
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger, LinkedConcept
from kgclip.rag.consensus import GraphExpander
from kgclip.rag.regions import BodyRegions
from kgclip.rag.report import DraftConfig, DraftReport, draft_from_cases, split_sentences

__all__ = ["RetrievalConfig", "DrafterChoice", "MemoTagger", "ReportScorer", "draft_split", "draft_reports",
           "select_draft_config",
           "SELECTION_METRICS", "selection_score",
           "KG_SEARCH_SPACE", "NOKG_SEARCH_SPACE", "baseline_drafts"]


@dataclass(frozen=True)
class RetrievalConfig(Config):
    """Which training cases a draft is made from (defaults: the engine's choice on MedPix validation)."""

    k: int = 80  # retrieved cases (best image per case)
    filter: str = "modality+region"  # metadata a retrieved case must share: one of RETRIEVAL_FILTERS
    case_text: str = "findings"  # text each case contributes: one of CASE_TEXTS
    meta_bonus: float = 0.3  # cosine bonus for sharing location / acquisition detail / plane with the query

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.filter not in RETRIEVAL_FILTERS:
            raise ConfigError(f"filter must be one of {RETRIEVAL_FILTERS}, got {self.filter!r}")
        if self.case_text not in CASE_TEXTS:
            raise ConfigError(f"case_text must be one of {CASE_TEXTS}, got {self.case_text!r}")


# Values tried per field. "r." fields belong to RetrievalConfig, "d." fields to DraftConfig.
_SHARED_SPACE: dict[str, tuple[Any, ...]] = {
    "r.k": (5, 10, 20, 40, 80, 160),
    "r.filter": RETRIEVAL_FILTERS,
    # Captions are left out of the search: a caption is not a report section, and a draft's sentences come from
    # findings / impression only (CASE_TEXTS keeps "findings+caption" for analyses outside drafting).
    "r.case_text": ("findings",),
    "r.meta_bonus": (0.0, 0.3, 1.0),
    "d.temperature": (0.0, 0.05, 0.1, 0.2, 0.5),
    "d.min_support": (0.05, 0.1, 0.15, 0.2, 0.3),
    "d.max_findings": (2, 3, 5, 8, 12),
    "d.nearest_bonus": (0.0, 0.5, 2.0),
    "d.order": ("case", "score"),
}
KG_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    **_SHARED_SPACE,
    "d.graph_hops": (0, 1, 2, 3),
    "d.graph_credit": (0.25, 0.5, 1.0),
    "d.dedupe_concepts": (True, False),
    "d.remove_contradictions": (True, False),
    "d.word_weight": (0.0, 0.25, 0.5, 1.0, 2.0),
    "d.objective": ("gain", "expected_f1"),
    "d.keep_modality": (True, False),
    "d.prior_mix": (0.0, 0.25, 0.5, 0.75, 1.0),  # only changes drafts when a learned concept prior is given
    "d.min_new_score": (0.0, 0.1, 0.15),
}
NOKG_SEARCH_SPACE: dict[str, tuple[Any, ...]] = dict(_SHARED_SPACE)


class MemoTagger:
    """A :class:`~kgclip.rag.concepts.ConceptTagger` whose ``link`` results are memoised by text (a sweep drafts
    from the same sentences thousands of times)."""

    def __init__(self, tagger: ConceptTagger) -> None:
        self.tagger = tagger
        self.graph = tagger.graph
        self._memo: dict[str, list[LinkedConcept]] = {}

    def link(self, text: str) -> list[LinkedConcept]:
        hit = self._memo.get(text)
        if hit is None:
            hit = self._memo[text] = self.tagger.link(text)
        return hit

    def concept_ids(self, text: str, *, include_negated: bool = True) -> list[str]:
        return list(dict.fromkeys(m.concept_id for m in self.link(text) if include_negated or not m.negated))


class ReportScorer:
    """BLEU-4 (corpus), ROUGE-L (mean F) and concept F1 (mean over cases) of drafts against one split's Findings.

    ``exact=False`` links a draft sentence by sentence (memoised; what a sweep needs), ``exact=True`` links the
    whole draft text at once (the reported figures).
    """

    def __init__(self, tagger: MemoTagger, references: Sequence[str]) -> None:
        self.tagger = tagger
        self.references = list(references)
        self.gold = [set(tagger.concept_ids(r, include_negated=False)) for r in self.references]

    def concepts(self, text: str, exact: bool) -> set[str]:
        if exact:
            return set(self.tagger.concept_ids(text, include_negated=False))
        out: set[str] = set()
        for sent in split_sentences(text):
            out.update(self.tagger.concept_ids(sent, include_negated=False))
        return out

    def per_case(self, hyps: Sequence[str], *, exact: bool = False) -> dict[str, np.ndarray]:
        """``concept_f1`` and ``rouge_l`` of each draft (``[Q]`` arrays), for bootstrap intervals."""
        if len(hyps) != len(self.references):
            raise ValueError(f"{len(hyps)} drafts for {len(self.references)} references")
        return {"concept_f1": np.array([concept_f1(self.concepts(h, exact), g) for h, g in zip(hyps, self.gold)]),
                "rouge_l": np.array([rouge_l(h, r) for h, r in zip(hyps, self.references)])}

    def score(self, hyps: Sequence[str], *, exact: bool = False) -> dict[str, float]:
        cases = self.per_case(hyps, exact=exact)
        return {"concept_f1": float(np.mean(cases["concept_f1"])) if len(hyps) else 0.0,
                "bleu4": bleu4(hyps, self.references),
                "rouge_l": float(np.mean(cases["rouge_l"])) if len(hyps) else 0.0}


# What model selection may maximise: "concept_f1" (the headline figure: what the drafter is for, findings a
# reader can check) or "all" (concept F1 + BLEU-4 + ROUGE-L, unweighted, which also rewards shared phrasing).
SELECTION_METRICS = ("concept_f1", "all")


def selection_score(figures: dict[str, float], metric: str = "all") -> float:
    """What model selection maximises (see :data:`SELECTION_METRICS`)."""
    if metric == "concept_f1":
        return figures["concept_f1"]
    if metric == "all":
        return figures["concept_f1"] + figures["bleu4"] + figures["rouge_l"]
    raise ConfigError(f"selection metric must be one of {SELECTION_METRICS}, got {metric!r}")


def draft_reports(data: MedPixReportData, split: ReportSplit, retrieval: RetrievalConfig, draft: DraftConfig, *,
                  tagger: MemoTagger | ConceptTagger | None, graph: ConceptGraph | None, use_kg: bool = True,
                  expander: GraphExpander | None = None, regions: BodyRegions | None = None,
                  impression: bool = True, priors: Sequence[Mapping[str, float]] | None = None,
                  max_cases: int | None = None) -> list[DraftReport]:
    """The report drafted for every query of ``split``, told the query's modality and body region (what its header
    carries); ``impression=False`` skips the impression (selection only scores findings). ``priors``: each
    query's learned concept probabilities (:mod:`kgclip.eval.report_prior`), used by ``draft.prior_mix``.
    ``max_cases``: draft from at most that many retrieved cases of the query's region and modality (as
    ``Engine.draft_report``; :func:`~kgclip.rag.report.draft_from_cases`).

    No draft is declined here (``min_confidence`` is set to 0): every query is scored as drafted, each report
    carries its ``confidence``, and the evaluation applies the threshold itself (:mod:`kgclip.eval.report_confidence`).
    """
    if use_kg and graph is not None and regions is None:
        regions = BodyRegions(graph)
    draft = dataclasses.replace(draft, min_confidence=0.0)
    out = []
    for qi in range(len(split)):
        hits = data.retrieve(split, qi, retrieval.k, filter_=retrieval.filter, case_text=retrieval.case_text,
                             meta_bonus=retrieval.meta_bonus)
        meta = data.query_metadata(split, qi)
        out.append(draft_from_cases(hits, tagger=tagger, graph=graph, config=draft, use_kg=use_kg,
                                    expander=expander, regions=regions, query_region=meta["region"],
                                    query_modality=meta["modality"], max_impression=None if impression else 0,
                                    concept_prior=priors[qi] if priors is not None else None,
                                    max_cases=max_cases))
    return out


def draft_split(data: MedPixReportData, split: ReportSplit, retrieval: RetrievalConfig, draft: DraftConfig, *,
                tagger: MemoTagger | ConceptTagger | None, graph: ConceptGraph | None, use_kg: bool = True,
                expander: GraphExpander | None = None, regions: BodyRegions | None = None,
                priors: Sequence[Mapping[str, float]] | None = None) -> list[str]:
    """The findings text drafted for every query of ``split`` (:func:`draft_reports`)."""
    return [r.findings_text for r in draft_reports(data, split, retrieval, draft, tagger=tagger, graph=graph,
                                                   use_kg=use_kg, expander=expander, regions=regions,
                                                   impression=False, priors=priors)]


def baseline_drafts(data: MedPixReportData, split: ReportSplit, seed: int = 0) -> dict[str, list[str]]:
    """``random``: the Findings of a random pool case (seeded); ``image_only``: of the nearest pool image's case."""
    rng = random.Random(seed)
    pool = data.pool_case_ids(split)
    return {"random": [data.findings(rng.choice(pool)) for _ in range(len(split))],
            "image_only": [data.findings(data.nearest_case(split, qi)) for qi in range(len(split))]}


@dataclass
class DrafterChoice:
    """The configuration selection kept, its validation figures, and every configuration it tried."""

    retrieval: RetrievalConfig
    draft: DraftConfig
    figures: dict[str, float]
    trials: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"retrieval": self.retrieval.to_dict(), "draft": self.draft.to_dict()}


def _apply(retrieval: RetrievalConfig, draft: DraftConfig, key: str, value: Any) -> tuple[RetrievalConfig,
                                                                                           DraftConfig]:
    part, name = key.split(".", 1)
    if part == "r":
        return dataclasses.replace(retrieval, **{name: value}), draft
    return retrieval, dataclasses.replace(draft, **{name: value})


def select_draft_config(data: MedPixReportData, tagger: MemoTagger, graph: ConceptGraph | None, *,
                        use_kg: bool = True, space: dict[str, tuple[Any, ...]] | None = None,
                        start: tuple[RetrievalConfig, DraftConfig] | None = None, rounds: int = 3,
                        show_progress: bool = False, log: Callable[[str], None] | None = None,
                        priors: Sequence[Mapping[str, float]] | None = None,
                        metric: str = "all") -> DrafterChoice:
    """Coordinate ascent of :func:`selection_score` on the ``val`` split (see module docstring).

    Args:
        space: ``{"r.k": values, "d.min_support": values, ...}``; default :data:`KG_SEARCH_SPACE` with the KG,
            :data:`NOKG_SEARCH_SPACE` without.
        start: where the search starts (default: the dataclass defaults).
        rounds: at most this many passes over the fields.
        priors: each val query's learned concept probabilities (for ``d.prior_mix``; ``None``: none).
        metric: what is maximised, one of :data:`SELECTION_METRICS`.
    """
    from tqdm.auto import tqdm

    if metric not in SELECTION_METRICS:
        raise ConfigError(f"selection metric must be one of {SELECTION_METRICS}, got {metric!r}")
    split = data.split("val")
    scorer = ReportScorer(tagger, split.references)
    space = space or (KG_SEARCH_SPACE if use_kg else NOKG_SEARCH_SPACE)
    retrieval, draft = start or (RetrievalConfig(), DraftConfig())
    expanders: dict[int, GraphExpander] = {}
    regions = BodyRegions(graph) if use_kg and graph is not None else None
    memo: dict[str, tuple[float, dict[str, float]]] = {}
    trials: list[tuple[dict[str, Any], float]] = []

    def evaluate(r: RetrievalConfig, d: DraftConfig) -> tuple[float, dict[str, float]]:
        key = repr((r, d))
        if key not in memo:
            exp = expanders.setdefault(d.graph_hops, GraphExpander(graph, d.graph_hops))
            hyps = draft_split(data, split, r, d, tagger=tagger, graph=graph, use_kg=use_kg, expander=exp,
                               regions=regions, priors=priors)
            figures = scorer.score(hyps)
            memo[key] = (selection_score(figures, metric), figures)
            trials.append(({"retrieval": r.to_dict(), "draft": d.to_dict()}, memo[key][0]))
        return memo[key]

    best, figures = evaluate(retrieval, draft)
    bar = tqdm(total=rounds * sum(len(v) for v in space.values()), desc="selecting on val", disable=not show_progress)
    for round_ in range(rounds):
        changed = False
        for key, values in space.items():
            for value in values:
                bar.update(1)
                r, d = _apply(retrieval, draft, key, value)
                score, figs = evaluate(r, d)
                if score > best + 1e-9:
                    retrieval, draft, best, figures, changed = r, d, score, figs, True
                    if log:
                        log(f"round {round_ + 1}: {key}={value!r} -> {score:.4f}")
        if not changed:
            break
    bar.close()
    return DrafterChoice(retrieval, draft, figures, trials)
