"""Figures of a drafter's confidence (:mod:`kgclip.rag.draft_confidence`) in the report evaluation.

Every query is drafted as it would be without a threshold (``DraftConfig.min_confidence = 0``), so the figures on
all queries stay comparable with runs before drafts had a confidence; a query counts as *drafted* when its draft's
confidence reaches the threshold, which is exactly when :func:`kgclip.rag.report.draft_from_cases` would not decline
it. The confidence's ranking quality is measured against each draft's own concept F1: the AUROC of telling drafts
at or above the split's median F1 from those below, and the Spearman correlation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kgclip.stats import bootstrap_ci
from kgclip.rag.calibration import accuracy_at_coverage

__all__ = ["average_ranks", "auroc", "spearman", "risk_coverage", "within_groups", "confidence_figures",
           "COVERAGES"]

# Coverages of the risk-coverage curve: the share of queries drafted, most confident first.
COVERAGES = (1.0, 0.8, 0.6, 0.4)


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """Ranks ``1..n`` of ``x``, ties sharing their mean rank. Shapes: ``[N]`` -> ``[N]``."""
    v = np.asarray(x, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(1, v.size + 1)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (Mann-Whitney, ties count half); NaN with one class."""
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson of the average ranks); NaN when either side is constant."""
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def risk_coverage(confidence: Sequence[float], values: Sequence[float],
                  coverages: Sequence[float] = COVERAGES) -> dict[str, float]:
    """``{"0.8": mean of values over the round(0.8 x N) most confident queries, ...}`` (ties: query order;
    :func:`kgclip.rag.calibration.accuracy_at_coverage` of each coverage, here of concept F1 values)."""
    return {f"{cov:.1f}": round(accuracy_at_coverage(confidence, values, cov), 4) for cov in coverages}


def within_groups(confidence: Sequence[float], values: Sequence[float], groups: Sequence[str],
                  min_size: int = 10) -> float:
    """Spearman of ``confidence`` and ``values`` inside each group of at least ``min_size`` queries (e.g. one
    modality and body region), averaged with the groups' sizes as weights: how well it ranks *within* a kind of
    study, beyond telling kinds apart. NaN without such a group."""
    c, v, g = np.asarray(confidence, np.float64), np.asarray(values, np.float64), np.asarray(groups, dtype=object)
    total = weighted = 0.0
    for key in dict.fromkeys(g.tolist()):
        mask = g == key
        rho = spearman(c[mask], v[mask]) if mask.sum() >= min_size else float("nan")
        if not np.isnan(rho):
            total += mask.sum()
            weighted += mask.sum() * rho
    return float(weighted / total) if total else float("nan")


def _gain_ci(values: np.ndarray, drafted: np.ndarray, seed: int, n: int = 1000) -> list[float]:
    """Paired bootstrap 95 % interval of (mean over drafted queries - mean over all), queries resampled together."""
    if not drafted.any():
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n, values.size))
    v, d = values[idx], drafted[idx].astype(np.float64)
    gains = (v * d).sum(1) / np.maximum(d.sum(1), 1) - v.mean(1)
    return [round(float(np.quantile(gains, 0.025)), 4), round(float(np.quantile(gains, 0.975)), 4)]


def confidence_figures(confidence: Sequence[float], concept_f1: Sequence[float], threshold: float, *,
                       groups: Sequence[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """The confidence figures of one split (see module docstring).

    Returns:
        ``min_confidence`` (the threshold), ``draft_coverage`` (share of queries drafted), ``n_abstained``,
        ``concept_f1_drafted`` (mean concept F1 of the drafted queries) with its bootstrap 95 % ``_ci`` and
        ``concept_f1_drafted_gain_ci`` (paired interval of drafted minus all queries' concept F1),
        ``risk_coverage`` (:func:`risk_coverage` of concept F1), ``confidence_auroc`` (F1 >= the median draft's)
        and ``confidence_spearman``; with ``groups`` (each query's kind of study, e.g. ``"CT|Thorax"``) also
        ``confidence_spearman_within`` (:func:`within_groups`).

    Shapes:
        ``confidence`` ``[Q]``, ``concept_f1`` ``[Q]`` (each query's draft as drafted without a threshold).
    """
    c, f1 = np.asarray(confidence, dtype=np.float64), np.asarray(concept_f1, dtype=np.float64)
    drafted = c >= threshold
    good = f1 >= np.median(f1) if f1.size else np.zeros(0, bool)
    out = {
        "min_confidence": threshold,
        "draft_coverage": round(float(drafted.mean()), 4) if c.size else 0.0,
        "n_abstained": int((~drafted).sum()),
        "concept_f1_drafted": round(float(f1[drafted].mean()), 4) if drafted.any() else 0.0,
        "concept_f1_drafted_ci": bootstrap_ci(f1[drafted], seed=seed),
        "concept_f1_drafted_gain_ci": _gain_ci(f1, drafted, seed),
        "risk_coverage": risk_coverage(c, f1),
        "confidence_auroc": round(auroc(c, good), 4),
        "confidence_spearman": round(spearman(c, f1), 4),
    }
    if groups is not None:
        out["confidence_spearman_within"] = round(within_groups(c, f1, groups), 4)
    return out
