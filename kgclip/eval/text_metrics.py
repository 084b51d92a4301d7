"""Text metrics for drafted reports: corpus BLEU-4, ROUGE-L and concept-set F1 (no external dependency)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["bleu4", "rouge_l", "concept_f1", "bootstrap_bleu4_ci"]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (one reference each, uniform weights, brevity penalty, +1 smoothing on higher orders)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = _tokens(hyp), _tokens(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0:
        return 0.0
    logp = sum(math.log((matches[i] + (i > 0)) / max(totals[i] + (i > 0), 1)) if matches[i] + (i > 0) else -1e9
               for i in range(4)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return float(bp * math.exp(logp))


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F-measure (beta = 1.2 as in the original) over word tokens."""
    h, r = _tokens(hypothesis), _tokens(reference)
    if not h or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for a in h:
        cur = [0]
        for j, b in enumerate(r):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    beta2 = 1.2 ** 2
    return float((1 + beta2) * p * rec / (rec + beta2 * p))


def concept_f1(pred: set[str], gold: set[str]) -> float:
    """F1 of two concept-id sets (1.0 when both are empty)."""
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    tp = len(pred & gold)
    return 0.0 if tp == 0 else 2 * tp / (len(pred) + len(gold))


def bootstrap_bleu4_ci(hypotheses: Sequence[str], references: Sequence[str], *, n: int = 300, seed: int = 0,
                       alpha: float = 0.05) -> list[float]:
    """Percentile bootstrap ``[low, high]`` of corpus BLEU-4 (cases resampled with replacement)."""
    import numpy as np

    if not hypotheses:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n):
        idx = rng.integers(0, len(hypotheses), size=len(hypotheses))
        scores.append(bleu4([hypotheses[i] for i in idx], [references[i] for i in idx]))
    return [round(float(np.quantile(scores, alpha / 2)), 4), round(float(np.quantile(scores, 1 - alpha / 2)), 4)]
