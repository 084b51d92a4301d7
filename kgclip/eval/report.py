"""Report-drafting evaluation on MedPix 2.0: draft findings for each case of a split from its first image, retrieving
among ``train`` cases only, and compare with the case's own Findings.

Honest protocol (see :mod:`kgclip.eval.report_data` and :mod:`kgclip.eval.report_select`):

1. ``val`` is carved from MedPix *train* (20 % of its cases, seeded, by case); every choice of both drafters is
   selected there, retrieving among the remaining train cases;
2. ``dev`` is touched once, with the selected configurations, retrieving among all train cases.

Four systems, each scored with BLEU-4 (corpus), ROUGE-L (mean F) and concept F1 (mean over cases of the F1 between
the linked, non-negated concepts of the draft and of the reference):

* ``engine``: retrieval by image among cases sharing the query's acquisition metadata (modality, body region: what
  a DICOM header carries), findings chosen by concept consensus through the knowledge graph
  (:func:`kgclip.rag.report.draft_from_cases`), mixed (``DraftConfig.prior_mix``) with a concept prior learned on
  the pool cases from frozen image features and the query's modality / region (:mod:`kgclip.eval.report_prior`);
* ``engine_nokg`` (ablation): the same drafter without the KG: consensus on content words, no concepts, no graph,
  no negation; its configuration selected on ``val`` the same way;
* ``random``: the findings of a random training case (seeded);
* ``image_only``: the findings of the nearest training case by image alone, without KG or metadata.

The engine's draft confidence (:mod:`kgclip.rag.draft_confidence`): every figure above counts each query as drafted
(declined drafts scored as they would have been drafted, so the figures compare with runs before drafts could be
declined); ``draft_coverage`` is the share of queries whose confidence reaches ``DraftConfig.min_confidence``,
``concept_f1_drafted`` (with ``_ci``) their mean concept F1, ``risk_coverage`` the concept F1 of the most confident
100 / 80 / 60 / 40 % of queries, and ``confidence_auroc`` / ``confidence_spearman`` (``_within``: inside each
modality and body region) how well the confidence ranks drafts by their concept F1
(:mod:`kgclip.eval.report_confidence`).

Besides the text figures (each with a bootstrap 95 % interval over cases, ``*_ci``), every system's drafted
sentences are checked: ``region_violations`` (sentences per report whose linked anatomy lies outside the query's
body region, through the graph: :class:`~kgclip.rag.regions.BodyRegions`), ``history_sentences`` (sentences that
are history, lab values or question/answer text) and ``modality_violations`` (sentences per report that open by
naming another modality than the query's: "Chest radiograph demonstrates ..." in a CT draft). The copying
baselines show what the checks catch. ``impression_supported`` is the share of engine drafts with an impression
whose leading line rests on the draft's own findings (a graph fact from a drafted finding, or a drafted finding
from a case the line cites): a draft whose impression names a disease none of its findings describe reads as a
collage (:attr:`~kgclip.rag.report.DraftConfig.anchor_impression`). ``impression_dx_lead`` / ``impression_dx_any``
are the shares of drafts whose leading / any impression line names the case's own diagnosis (or an is-a relative
within 3 levels): what a reader would check first, and (MedPix val, 3 seeds, session 10) right for 3 % of drafts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgclip.data.sections import report_sentences, sentence_kind
from kgclip.eval.report_data import RETRIEVAL_FEATURES, MedPixReportData, ReportSplit
from kgclip.eval.report_confidence import confidence_figures
from kgclip.eval.report_prior import PRIOR_FEATURES, split_priors, train_split_prior
from kgclip.eval.report_select import (DrafterChoice, MemoTagger, ReportScorer, RetrievalConfig, baseline_drafts,
                                       draft_reports, select_draft_config)
from kgclip.eval.text_metrics import bleu4, bootstrap_bleu4_ci, concept_f1, rouge_l
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concept_prior import ConceptPriorConfig
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import GraphExpander
from kgclip.rag.regions import BodyRegions, regions_of_label
from kgclip.rag.report import DraftConfig, split_sentences
from kgclip.rag.report_scope import other_modality
from kgclip.stats import bootstrap_ci

__all__ = ["bleu4", "rouge_l", "concept_f1", "evaluate_report", "carved_val", "draft_figures",
           "NOKG_RETRIEVAL", "NOKG_DRAFT", "ENGINE_RETRIEVAL",
           "ENGINE_DRAFT", "PRIOR_CONFIG"]

# The configurations as selected on val (used when ``select=False``): `--split val --rounds 2` with the concept
# prior and ``select_on="concept_f1"`` (both drafters), 2 rounds of coordinate ascent, 11 minutes.
# No-KG drafter: 0.1162 [0.0983, 0.1326] val concept F1 (k=160 over all regions, as chosen).
NOKG_RETRIEVAL = RetrievalConfig(k=160, filter="none")
NOKG_DRAFT = DraftConfig(max_findings=5, nearest_bonus=2.0)
# The engine with the learned concept prior: val concept F1 0.1437 [0.1224, 0.1648] as selected. Selection also
# chose case_text="findings+caption" (+0.001, noise); left out, since a caption is not a report section and a
# draft's sentences must come from findings / impression only.
# Session 7, on val (scratch runs, nothing adopted): cases retrieved cross-modally, CXR-RePaiR style (KG-CLIP
# trained on the pool cases' captions; query image -> each pool case's findings or caption embedding) instead of by
# image: concept F1 0.144 / 0.141 (findings, 2 seeds) and 0.134 / 0.131 (captions) vs 0.143, although the nearest
# case alone gets better (image_only 0.035 -> 0.053); preferring the nearest cases' sentences
# (DraftConfig.nearest_bonus 1 / 3 / 10) costs 0.008-0.010 [paired CI below 0] and drafts still cite 4.5 cases for
# 4.9 sentences (4.6 at 0): the consensus, not the neighbour order, decides a draft.
# Session 8, on val (paired per case, 104 drafts): findings drawn toward the leading diagnosis (the similar cases
# whose diagnosis is, or lies below by is-a, the best-supported one weigh 1 + f in the findings vote, so a draft
# describes one disease instead of a collage) cost f=1 -0.005 [-0.013, 0.003], f=3 -0.009 [-0.019, -0.001], f=10
# -0.016 [-0.031, -0.003] concept F1; not adopted. Keeping to the query's modality (DraftConfig.keep_modality, now on)
# costs -0.005 [-0.014, 0.004] and takes the drafted sentences naming another modality from 0.154 to 0 per report.
# Session 9, on val (seeds 0/1/2 of the carve, paired per case): drafts grown from a finding of a case with the
# impression's lead diagnosis (DraftConfig.anchor_impression, now on) take impression_supported from 0.35 to 0.80
# at -0.002 concept F1 (seed 0, this default: 0.1377 -> 0.1363, benchmarks/results/eval_report_medpix_val_anchor.json);
# anchoring on any supported sentence (no min_support) reaches 1.0 but costs -0.012 [-0.017, -0.006].
ENGINE_RETRIEVAL = RetrievalConfig()
ENGINE_DRAFT = DraftConfig()  # the Engine's own defaults (prior_mix 0.5, word_weight 0, graph_hops 2)
# The concept prior's training knobs (compared on val at the draft above: image weights +0.003 concept F1 over
# metadata rates alone, min_cases 5 over 3 / 10, no ancestor credit: all within noise).
PRIOR_CONFIG = ConceptPriorConfig()

_SYSTEMS = (("engine", ""), ("engine_nokg", "_engine_nokg"), ("random", "_random"), ("image_only", "_image_only"))


def _safety(data: MedPixReportData, split: ReportSplit, sentences: list[list[str]], tagger: MemoTagger,
            regions: BodyRegions, history_keys: set[str]) -> dict[str, float]:
    """``region_violations``: drafted sentences per report naming anatomy outside the query's body region;
    ``history_sentences``: drafted sentences (all reports) that are history, lab values or question/answer text
    (by their form, or found verbatim in a pool case's History / Exam); ``modality_violations``: drafted sentences
    per report whose opening words name a modality other than the query's (a sentence under a case's "US:"
    sub-heading is not seen here, only by the drafter)."""
    violations = history = off_modality = 0
    for qi, sents in enumerate(sentences):
        meta = data.query_metadata(split, qi)
        query = regions_of_label(meta["region"])
        for text in sents:
            concepts = tagger.concept_ids(text, include_negated=True)
            violations += bool(regions.outside(concepts, query))
            history += sentence_kind(text) in ("history", "lab", "question") or _key(text) in history_keys
            opening = report_sentences(text)[:1]
            off_modality += bool(opening) and other_modality(opening[0].modality, meta["modality"])
    n = max(len(sentences), 1)
    return {"region_violations": round(violations / n, 4), "history_sentences": history,
            "modality_violations": round(off_modality / n, 4)}


def impression_supported(report: Any) -> bool | None:
    """Whether a draft's leading impression rests on its own findings: a graph fact from a drafted finding, or a
    drafted finding taken from a case the line cites. ``None`` for a draft without an impression."""
    if not report.impression:
        return None
    lead = report.impression[0]
    return bool(lead.facts) or any(s.case_id in lead.citations for s in report.findings)


def carved_val(path: str | Path, seed: int, tagger: MemoTagger, graph: ConceptGraph
               ) -> tuple[MedPixReportData, ReportSplit, list[Any], ReportScorer]:
    """One validation carve of MedPix *train* (``seed``) as the val experiments draft it: the data, the val split,
    each query's concept prior (learned on the carve's pool only) and a scorer against the queries' Findings."""
    data = MedPixReportData(path, splits=(), val_fraction=0.2, seed=seed, show_progress=False)
    val = data.split("val")
    trained = train_split_prior(data, val, tagger, graph, PRIOR_CONFIG, PRIOR_FEATURES)
    return data, val, split_priors(data, val, trained, PRIOR_FEATURES), ReportScorer(tagger, val.references)


def draft_figures(data: MedPixReportData, split: ReportSplit, reports: Sequence[Any], scorer: ReportScorer,
                  tagger: MemoTagger, graph: ConceptGraph) -> dict[str, Any]:
    """Per-draft ``concept_f1`` and ``rouge_l`` (exact linking, lists for paired bootstraps) and the impression's
    diagnosis hits as counts (``dx_lead``, ``dx_any``; :func:`impression_dx_figures`), to be pooled over seeds."""
    per = scorer.per_case([r.findings_text for r in reports], exact=True)
    dx = impression_dx_figures(data, split, reports, tagger, graph)
    return {"concept_f1": list(per["concept_f1"]), "rouge_l": list(per["rouge_l"]),
            "dx_lead": dx["impression_dx_lead"] * dx["n_impression_dx"],
            "dx_any": dx["impression_dx_any"] * dx["n_impression_dx"]}


def impression_dx_figures(data: MedPixReportData, split: ReportSplit, reports: Sequence[Any], tagger: MemoTagger,
                          graph: ConceptGraph, hops: int = 3) -> dict[str, Any]:
    """How often the impression names the query case's own diagnosis: ``impression_dx_lead`` (its leading line) and
    ``impression_dx_any`` (any line), counting a concept within ``hops`` is-a levels of a diagnosis concept either
    way, over the drafts with an impression whose case's diagnosis links to a concept (``n_impression_dx``)."""
    expander = GraphExpander(graph, hops)
    lead, any_line = [], []
    for qi, report in enumerate(reports):
        case = data.cases[data.images[split.queries[qi]].case_id]
        gold = set(tagger.concept_ids(case.diagnosis or "", include_negated=False))
        if not gold or not report.impression:
            continue

        def names_it(line: Any) -> bool:
            c = line.concepts[0] if line.concepts else ""
            return bool(c) and any(expander.related(c, g) for g in gold)

        lead.append(names_it(report.impression[0]))
        any_line.append(any(names_it(x) for x in report.impression))
    n = max(len(lead), 1)
    return {"impression_dx_lead": round(sum(lead) / n, 4), "impression_dx_any": round(sum(any_line) / n, 4),
            "n_impression_dx": len(lead)}


def _key(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")


def _history_keys(data: MedPixReportData) -> set[str]:
    """Every sentence of every case's History and Exam (what a draft must never contain)."""
    return {_key(s.text) for c in data.cases.values() for s in report_sentences(c.sections.history, section="history")}


def _figures(data: MedPixReportData, split: ReportSplit, tagger: MemoTagger, graph: ConceptGraph,
             engine: DrafterChoice, nokg: DrafterChoice, seed: int,
             priors: list[Any] | None = None) -> dict[str, Any]:
    """All four systems on one split: concept F1 linked on whole drafts (exact), bootstrap 95 % CIs, and the
    region / history checks of every drafted sentence."""
    scorer = ReportScorer(tagger, split.references)
    regions = BodyRegions(graph)
    reports = {
        "engine": draft_reports(data, split, engine.retrieval, engine.draft, tagger=tagger, graph=graph,
                                expander=GraphExpander(graph, engine.draft.graph_hops), regions=regions,
                                priors=priors),
        "engine_nokg": draft_reports(data, split, nokg.retrieval, nokg.draft, tagger=None, graph=None, use_kg=False),
    }
    drafts = {name: [r.findings_text for r in rs] for name, rs in reports.items()}
    drafts.update(baseline_drafts(data, split, seed))
    sentences = {name: [[s.text for s in r.findings + r.impression] for r in rs] for name, rs in reports.items()}
    for name in ("random", "image_only"):  # a copied case: every sentence of its findings
        sentences[name] = [split_sentences(t) for t in drafts[name]]
    history_keys = _history_keys(data)
    out: dict[str, Any] = {}
    per_case = {}
    for name, suffix in _SYSTEMS:
        for metric, value in scorer.score(drafts[name], exact=True).items():
            out[metric + suffix] = round(value, 4)
        per_case[name] = scorer.per_case(drafts[name], exact=True)
        for metric in ("concept_f1", "rouge_l"):
            out[f"{metric}{suffix}_ci"] = bootstrap_ci(per_case[name][metric], seed=seed)
        out[f"bleu4{suffix}_ci"] = bootstrap_bleu4_ci(drafts[name], split.references, seed=seed)
        for metric, value in _safety(data, split, sentences[name], tagger, regions, history_keys).items():
            out[metric + suffix] = value
    # Paired: the engine minus its no-KG ablation, case by case.
    out["concept_f1_minus_nokg_ci"] = bootstrap_ci(per_case["engine"]["concept_f1"]
                                                   - per_case["engine_nokg"]["concept_f1"], seed=seed)
    out["n_drafted"] = sum(bool(r.findings) for r in reports["engine"])
    supported = [s for s in map(impression_supported, reports["engine"]) if s is not None]
    out["impression_supported"] = round(sum(supported) / max(len(supported), 1), 4)
    out.update(impression_dx_figures(data, split, reports["engine"], tagger, graph))
    # The engine's confidence: every query above was scored as drafted; "drafted" below means its confidence
    # reaches the threshold (what the engine would do), and the risk-coverage curve drafts the most confident first.
    meta = [data.query_metadata(split, qi) for qi in range(len(split))]
    out.update(confidence_figures([r.confidence or 0.0 for r in reports["engine"]], per_case["engine"]["concept_f1"],
                                  engine.draft.min_confidence, groups=[f"{m['modality']}|{m['region']}" for m in meta],
                                  seed=seed))
    return out


def evaluate_report(path: str | Path, *, split: str = "dev", graph: ConceptGraph, seed: int = 0,
                    val_fraction: float = 0.2, select: bool = True, rounds: int = 3,
                    show_progress: bool = True, prior: bool = True, select_on: str = "concept_f1",
                    prior_config: ConceptPriorConfig = PRIOR_CONFIG,
                    prior_features: str = PRIOR_FEATURES,
                    retrieval_features: str = RETRIEVAL_FEATURES) -> dict[str, Any]:
    """Select both drafters on ``val``, then score the four systems on ``split`` (see module docstring).

    Args:
        split: ``"val"`` (carved from train: development runs, never touching dev) or ``"dev"`` (the reported
            figures; ``val`` figures of the selected configurations come along under ``val_*`` keys).
        seed: seeds the val carve-out and the random baseline.
        select: run the selection on val (a few minutes); ``False`` uses the configurations selected before
            (:class:`~kgclip.rag.report.DraftConfig` / :class:`RetrievalConfig` defaults, :data:`NOKG_DRAFT`).
        rounds: coordinate-ascent passes of the selection.
        prior: give the engine a concept prior learned on each split's pool (``False``: consensus alone, the
            drafter as before).
        prior_features: the image features the prior learns from (a name for
            :func:`kgclip.models.features.load_image_features`, e.g. ``"thumbnail"`` for a training-free one).
        select_on: the selection metric (:data:`~kgclip.eval.report_select.SELECTION_METRICS`).
        retrieval_features: the image features similar cases are retrieved by (a name for
            :func:`~kgclip.models.features.load_image_features`; see :data:`RETRIEVAL_FEATURES`).

    Returns:
        One flat dict of figures (``concept_f1``, ``bleu4``, ``rouge_l`` and their ``_engine_nokg`` / ``_random``
        / ``_image_only`` variants), counts, and the selected configurations under ``selected``.
    """
    start = time.perf_counter()
    tagger = MemoTagger(ConceptTagger(graph))
    data = MedPixReportData(path, splits=() if split == "val" else (split,), val_fraction=val_fraction, seed=seed,
                            show_progress=show_progress, features=retrieval_features)
    val = data.split("val")
    start_cfg = (ENGINE_RETRIEVAL, ENGINE_DRAFT) if prior else (RetrievalConfig(), DraftConfig())
    # Each split's prior learns from that split's pool only: val queries never see their own findings.
    priors = {}
    if prior:
        for name in dict.fromkeys(("val", split)):
            trained = train_split_prior(data, data.split(name), tagger, graph, prior_config, prior_features)
            priors[name] = split_priors(data, data.split(name), trained, prior_features)
    if select:
        engine = select_draft_config(data, tagger, graph, use_kg=True, start=start_cfg, rounds=rounds,
                                     show_progress=show_progress, priors=priors.get("val"), metric=select_on)
        nokg = select_draft_config(data, tagger, None, use_kg=False, start=(NOKG_RETRIEVAL, NOKG_DRAFT),
                                   rounds=rounds, show_progress=show_progress, metric=select_on)
    else:
        engine = DrafterChoice(*start_cfg, {})
        nokg = DrafterChoice(NOKG_RETRIEVAL, NOKG_DRAFT, {})
    val_figures = _figures(data, val, tagger, graph, engine, nokg, seed, priors.get("val"))
    out: dict[str, Any] = {"split": split}
    if split == "val":
        out.update(val_figures)
        out["n_cases"] = len(val)
    else:
        test = data.split(split)
        out.update(_figures(data, test, tagger, graph, engine, nokg, seed, priors.get(split)))
        out["n_cases"] = len(test)
        out.update({f"val_{k}": v for k, v in val_figures.items() if not k.endswith("_ci")})
    out.update({
        "n_val_cases": len(val), "val_fraction": val_fraction, "seed": seed,
        "n_pool_images": int(len(data.split(split).pool)),
        "selected_on": "val" if select else "val (earlier run; defaults)", "select_on": select_on,
        "concept_prior": {"features": prior_features, **prior_config.to_dict()} if prior else None,
        "selected": {"engine": engine.to_dict(), "engine_nokg": nokg.to_dict()},
        "image_features": data.featurizer.name,
        "seconds": round(time.perf_counter() - start, 1),
    })
    return out
