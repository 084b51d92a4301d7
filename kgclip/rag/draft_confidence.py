"""How far a draft can be trusted: the agreement of the similar cases it is drafted from, as a confidence in [0, 1].

A retrieval draft is only as good as the consensus it rests on. When the similar cases describe the same findings,
their shared sentences make a coherent report; when each describes another disease, the "consensus" sentences are
a collage of different patients. :func:`case_agreement` measures this: the vote-weighted mean, over pairs of
voting cases, of the Jaccard overlap of their findings concepts, each set widened through the graph (is-a ancestors
within :data:`AGREEMENT_HOPS` levels and ``same_as`` equivalents, as the consensus votes are), so "lobar pneumonia" and
"pneumonia" count as shared. :func:`draft_confidence` maps it through a logistic fitted on MedPix validation
(carved from train): the confidence is the estimated chance that the draft's concept F1 reaches the median
validation draft's.

How the signal was chosen (``benchmarks/bench_draft_confidence.py``: 520 val queries of 349 cases over five train
carve-outs; results in ``benchmarks/results/bench_draft_confidence_val.json``): the agreement of the voting cases
ranked drafts best of the candidates tried (AUROC 0.62 for a concept F1 at or above the median draft's, Spearman
0.29), ahead of the consensus support, concept-prior probability or expected F1 of the drafted concepts, the best
sentence gain and the nearest case's similarity (AUROC 0.52-0.59); a logistic combination of several did no
better. It is a weak signal, and it ranks mostly *between* kinds of study: MR spine cases agree more, and draft
better, than CT head or abdomen cases; within one modality and body region it barely ranks (Spearman 0.04
pooled). Those figures were for cases retrieved by the 32x32 thumbnail; since session 9 the evaluation retrieves by
the engine's EfficientNet-Lite0 tower, as the engine does, and the mapping below was refitted on such drafts (the
same 520 queries): agreement AUROC 0.655, Spearman 0.32, within a kind of study 0.10; still the best signal.
Calibrated on MedPix with the evaluation's drafter: on other collections the number orders drafts the same way but
is not a probability.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kgclip.rag.consensus import GraphExpander

__all__ = ["case_agreement", "draft_confidence", "abstain_notice", "judge_draft", "AGREEMENT_LOGIT",
           "AGREEMENT_HOPS", "VAL_MIN_CONFIDENCE"]

# Is-a levels through which case concepts are widened before they are compared (fixed, whatever the drafter's own
# graph_hops, so the calibration below holds for every DraftConfig; the evaluation's drafter uses 2 as well).
AGREEMENT_HOPS = 2
# confidence = sigmoid(offset + slope x agreement), fitted (logistic regression, target: concept F1 >= the median
# draft's) on the MedPix val carve-outs of benchmarks/bench_draft_confidence.py with the evaluation's drafter.
# (Thumbnail-retrieved drafts, before session 9: (-1.98, 24.16).)
AGREEMENT_LOGIT = (-2.88, 38.59)
# The highest threshold keeping >= 50 % of the MedPix val drafts (53 %; their concept F1 0.163 [0.150, 0.177] vs
# 0.135 for all). Not the default (DraftConfig.min_confidence is 0): the thumbnail-era threshold (0.49) kept 45 % of
# the MedPix dev drafts, run once, for a concept F1 gain whose 95 % interval included 0, so declining is offered, not
# imposed. On dev with tower retrieval the most confident 40 % of drafts score 0.193 against 0.147 for all (AUROC
# 0.59; benchmarks/results/eval_report_medpix_dev.json).
VAL_MIN_CONFIDENCE = 0.44


def case_agreement(concept_sets: Sequence[Iterable[str]], weights: np.ndarray,
                   expander: GraphExpander | None = None) -> float:
    """Vote-weighted mean pairwise Jaccard overlap of the voting cases' concept sets, widened through the graph.

    Pairs weigh ``w_i x w_j``; a pair of cases without concepts counts as overlap 0. Fewer than two cases: 0.

    Shapes:
        ``concept_sets`` ``K`` sets (each case's asserted concepts), ``weights`` ``[K]`` case votes -> a float in
        ``[0, 1]``.
    """
    sets = []
    for cs in concept_sets:
        s = set(cs)
        if expander is not None:
            s.update(a for c in list(s) for a in expander.ancestors(c))
        sets.append(s)
    if len(sets) < 2:
        return 0.0
    index: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for c in s:
            rows.append(i)
            cols.append(index.setdefault(c, len(index)))
    member = np.zeros((len(sets), max(len(index), 1)), dtype=np.float32)
    member[rows, cols] = 1.0
    inter = member @ member.T
    size = member.sum(1)
    union = size[:, None] + size[None, :] - inter
    jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    w = np.asarray(weights, dtype=np.float64)
    pair = np.triu(np.outer(w, w), k=1)
    total = float(pair.sum())
    return float((pair * jaccard).sum() / total) if total > 0 else 0.0


def draft_confidence(agreement: float, logit: tuple[float, float] = AGREEMENT_LOGIT) -> float:
    """``sigmoid(offset + slope x agreement)``: the draft's confidence in ``[0, 1]`` (see module docstring)."""
    offset, slope = logit
    return float(1.0 / (1.0 + np.exp(-(offset + slope * agreement))))


def abstain_notice(confidence: float, threshold: float, agreement: float, n_cases: int) -> str:
    """Why a draft was declined, for the reader (its similar cases stay listed in the report)."""
    return (f"similar cases disagree: cannot draft a reliable report (confidence {confidence:.2f} < "
            f"{threshold:.2f}; the {n_cases} similar case{'s' if n_cases != 1 else ''} share "
            f"{agreement:.0%} of their findings concepts on average); review the similar cases listed instead")


def judge_draft(report: Any, case_concepts: Sequence[Iterable[str]], weights: np.ndarray,
                expander: GraphExpander, threshold: float) -> None:
    """Set a :class:`~kgclip.rag.report.DraftReport`'s ``agreement`` and ``confidence`` from its similar cases'
    concepts (in the order of ``report.similar_cases``, with their ``weights``); below ``threshold`` withhold its
    findings and impression (moved to ``removed`` with the reason), mark it ``abstained`` and say why in
    ``notice``.
    ``expander`` widens the concepts, at :data:`AGREEMENT_HOPS` levels whatever its own depth
    (:meth:`GraphExpander.with_hops`, memoised on it, so repeated drafts reuse it)."""
    expander = expander.with_hops(AGREEMENT_HOPS)
    report.agreement = agreement = case_agreement(case_concepts, weights, expander)
    report.confidence = round(draft_confidence(agreement), 4)
    if report.confidence >= threshold or not (report.findings or report.impression):
        return
    report.abstained = True
    report.notice = abstain_notice(report.confidence, threshold, agreement, len(report.similar_cases))
    why = f"withheld: similar cases disagree (confidence {report.confidence:.2f} < {threshold:.2f})"
    report.removed.extend((s, why) for s in report.findings + report.impression)
    report.findings, report.impression = [], []
