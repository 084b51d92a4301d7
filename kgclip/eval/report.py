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
  (:func:`kgclip.rag.report.draft_from_cases`);
* ``engine_nokg`` (ablation): the same drafter without the KG: consensus on content words, no concepts, no graph,
  no negation; its configuration selected on ``val`` the same way;
* ``random``: the findings of a random training case (seeded);
* ``image_only``: the findings of the nearest training case by image alone, without KG or metadata.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kgclip.eval.report_data import MedPixReportData, ReportSplit
from kgclip.eval.report_select import (DrafterChoice, MemoTagger, ReportScorer, RetrievalConfig, baseline_drafts,
                                       draft_split, select_draft_config)
from kgclip.eval.text_metrics import bleu4, concept_f1, rouge_l
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import GraphExpander
from kgclip.rag.report import DraftConfig

__all__ = ["bleu4", "rouge_l", "concept_f1", "evaluate_report", "NOKG_RETRIEVAL", "NOKG_DRAFT"]

# The no-KG drafter's configuration as selected on val (used when ``select=False``; the engine's is the defaults).
NOKG_RETRIEVAL = RetrievalConfig(k=80)
NOKG_DRAFT = DraftConfig(max_findings=3, nearest_bonus=2.0)

_SYSTEMS = (("engine", ""), ("engine_nokg", "_engine_nokg"), ("random", "_random"), ("image_only", "_image_only"))


def _figures(data: MedPixReportData, split: ReportSplit, tagger: MemoTagger, graph: ConceptGraph,
             engine: DrafterChoice, nokg: DrafterChoice, seed: int) -> dict[str, float]:
    """All four systems on one split, concept F1 linked on whole drafts (exact)."""
    scorer = ReportScorer(tagger, split.references)
    drafts = {
        "engine": draft_split(data, split, engine.retrieval, engine.draft, tagger=tagger, graph=graph,
                              expander=GraphExpander(graph, engine.draft.graph_hops)),
        "engine_nokg": draft_split(data, split, nokg.retrieval, nokg.draft, tagger=None, graph=None, use_kg=False),
        **baseline_drafts(data, split, seed),
    }
    out: dict[str, float] = {}
    for name, suffix in _SYSTEMS:
        for metric, value in scorer.score(drafts[name], exact=True).items():
            out[metric + suffix] = round(value, 4)
    return out


def evaluate_report(path: str | Path, *, split: str = "dev", graph: ConceptGraph, seed: int = 0,
                    val_fraction: float = 0.2, select: bool = True, rounds: int = 3,
                    show_progress: bool = True) -> dict[str, Any]:
    """Select both drafters on ``val``, then score the four systems on ``split`` (see module docstring).

    Args:
        split: ``"val"`` (carved from train: development runs, never touching dev) or ``"dev"`` (the reported
            figures; ``val`` figures of the selected configurations come along under ``val_*`` keys).
        seed: seeds the val carve-out and the random baseline.
        select: run the selection on val (a few minutes); ``False`` uses the configurations selected before
            (:class:`~kgclip.rag.report.DraftConfig` / :class:`RetrievalConfig` defaults, :data:`NOKG_DRAFT`).
        rounds: coordinate-ascent passes of the selection.

    Returns:
        One flat dict of figures (``concept_f1``, ``bleu4``, ``rouge_l`` and their ``_engine_nokg`` / ``_random``
        / ``_image_only`` variants), counts, and the selected configurations under ``selected``.
    """
    start = time.perf_counter()
    tagger = MemoTagger(ConceptTagger(graph))
    data = MedPixReportData(path, splits=() if split == "val" else (split,), val_fraction=val_fraction, seed=seed,
                            show_progress=show_progress)
    val = data.split("val")
    if select:
        engine = select_draft_config(data, tagger, graph, use_kg=True, rounds=rounds, show_progress=show_progress)
        nokg = select_draft_config(data, tagger, None, use_kg=False, start=(NOKG_RETRIEVAL, NOKG_DRAFT),
                                   rounds=rounds, show_progress=show_progress)
    else:
        engine = DrafterChoice(RetrievalConfig(), DraftConfig(), {})
        nokg = DrafterChoice(NOKG_RETRIEVAL, NOKG_DRAFT, {})
    val_figures = _figures(data, val, tagger, graph, engine, nokg, seed)
    out: dict[str, Any] = {"split": split}
    if split == "val":
        out.update(val_figures)
        out["n_cases"] = len(val)
    else:
        test = data.split(split)
        out.update(_figures(data, test, tagger, graph, engine, nokg, seed))
        out["n_cases"] = len(test)
        out.update({f"val_{k}": v for k, v in val_figures.items()})
    out.update({
        "n_val_cases": len(val), "val_fraction": val_fraction, "seed": seed,
        "n_pool_images": int(len(data.split(split).pool)),
        "selected_on": "val" if select else "val (earlier run; defaults)",
        "selected": {"engine": engine.to_dict(), "engine_nokg": nokg.to_dict()},
        "image_features": data.featurizer.name,
        "seconds": round(time.perf_counter() - start, 1),
    })
    return out
