"""Calibrated confidence for answers, and the figures that check it.

:class:`Calibrator` maps the answerer's raw confidence (the blended probability of its answer) to the probability
that the answer is right, by isotonic regression (pool-adjacent-violators) fitted separately per answer form
(``yes/no``, ``choice``, ``open``) on out-of-fold predictions over validation carved from train, and per form and
question kind (``open/location``) where a kind has enough validation answers: the same raw confidence means less
for "where is the lesion?" (free-text places, rarely an exact match) than for "what organ is this?". Each map is
monotone, so ranking answers of one kind by it keeps their order, and it stores as a few numbers in JSON.

The evaluation figures: :func:`expected_calibration_error` (10 equal-width bins) with :func:`calibrated_ece_range`
(what a perfectly calibrated system would score on as many answers), :func:`risk_coverage` and
:func:`accuracy_at_coverage` (answer only the most confident share), :func:`bootstrap_ci`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Calibrator", "isotonic_fit", "expected_calibration_error", "calibrated_ece_range", "risk_coverage",
           "accuracy_at_coverage"]


def isotonic_fit(x: np.ndarray, y: np.ndarray, max_knots: int = 64) -> tuple[list[float], list[float]]:
    """Non-decreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators), each block's rate smoothed by
    one pseudo-count either way, so no knot is exactly 0 or 1.

    Returns knots ``(xs, ys)`` for :func:`numpy.interp` (flat outside the range), thinned to at most ``max_knots``.
    Shapes: ``x``, ``y`` ``[N]`` -> two lists of equal length.
    """
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    # blocks: [sum of y, count, mean of x]
    sums: list[float] = []
    counts: list[float] = []
    xsum: list[float] = []
    for xi, yi in zip(xs, ys):
        sums.append(yi)
        counts.append(1.0)
        xsum.append(xi)
        while len(sums) > 1 and sums[-2] / counts[-2] >= sums[-1] / counts[-1]:
            s, c, xx = sums.pop(), counts.pop(), xsum.pop()
            sums[-1] += s
            counts[-1] += c
            xsum[-1] += xx
    knots_x = [xx / c for xx, c in zip(xsum, counts)]
    # Each block's rate with one pseudo-success and one pseudo-failure (Laplace): a block of 30 answers all right
    # maps to 31/32 = 0.97, not to a certainty no finite sample supports ("confidence 1.00" on an unseen X-ray).
    # The running maximum keeps the map monotone (a small block's rate shrinks more than a large one's).
    knots_y = np.maximum.accumulate([(s + 1.0) / (c + 2.0) for s, c in zip(sums, counts)]).tolist()
    if len(knots_x) > max_knots:
        pick = np.unique(np.linspace(0, len(knots_x) - 1, max_knots).round().astype(int))
        knots_x = [knots_x[i] for i in pick]
        knots_y = [knots_y[i] for i in pick]
    return [float(v) for v in knots_x], [float(v) for v in knots_y]


@dataclass
class Calibrator:
    """Raw confidence -> probability of being right, per answer form. Identity for a form it was not fitted on.

    Attributes:
        knots: form -> ``(xs, ys)`` isotonic knots.
        n: form -> how many validation answers fitted it.
    """

    knots: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, confidence: Sequence[float], correct: Sequence[bool], forms: Sequence[str],
            min_count: int = 20, kinds: Sequence[str] | None = None, min_kind_count: int = 60) -> "Calibrator":
        """Fit one isotonic map per form that has at least ``min_count`` validation answers, and one per
        ``form/kind`` pair that has at least ``min_kind_count`` (when ``kinds`` are given)."""
        conf, hit, form = np.asarray(confidence, float), np.asarray(correct, float), np.asarray(forms)
        keys = [(form, min_count)]
        if kinds is not None:
            keys.append((np.array([f"{f}/{k}" for f, k in zip(form.tolist(), kinds)]), min_kind_count))
        out = cls()
        for key, need in keys:
            for f in sorted(set(key.tolist())):
                sel = key == f
                if sel.sum() >= need:
                    out.knots[f] = isotonic_fit(conf[sel], hit[sel])
                    out.n[f] = int(sel.sum())
        return out

    def __call__(self, confidence: float | np.ndarray, form: str, kind: str | None = None) -> Any:
        """The calibrated confidence: the ``form/kind`` map where one was fitted, else the form's, else as given."""
        knots = self.knots.get(f"{form}/{kind}") if kind else None
        knots = knots or self.knots.get(form)
        if knots is None:
            return confidence
        return np.interp(confidence, knots[0], knots[1])

    def calibrate(self, confidence: Sequence[float], forms: Sequence[str],
                  kinds: Sequence[str | None] | None = None) -> np.ndarray:
        kinds = kinds if kinds is not None else [None] * len(forms)
        return np.array([float(self(c, f, k)) for c, f, k in zip(confidence, forms, kinds)])

    def to_json(self) -> dict[str, Any]:
        return {"knots": {f: [xs, ys] for f, (xs, ys) in self.knots.items()}, "n": dict(self.n)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Calibrator":
        if not data:
            return cls()
        return cls({f: (list(v[0]), list(v[1])) for f, v in data.get("knots", {}).items()}, dict(data.get("n", {})))


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Mean |accuracy - confidence| over ``bins`` equal-width confidence bins, weighted by their share."""
    conf, hit = np.asarray(confidence, float), np.asarray(correct, float)
    if not len(conf):
        return 0.0
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return float(total)


def calibrated_ece_range(confidence: Sequence[float], bins: int = 10, n_sim: int = 500, seed: int = 0
                         ) -> tuple[float, float]:
    """The ECE a *perfectly* calibrated system with these confidences would show on this many answers: each answer
    drawn right with probability equal to its confidence, ``n_sim`` times. Returns ``(mean, 95th percentile)``.

    ECE is biased upwards on small sets (each bin's accuracy is a noisy mean): on 451 VQA-RAD test answers a
    perfectly calibrated answerer shows about 0.04, so an observed ECE is read against this range, not against 0.
    """
    conf = np.asarray(confidence, float)
    if not len(conf):
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    sims = [expected_calibration_error(conf, rng.random(len(conf)) < conf, bins) for _ in range(n_sim)]
    return (float(np.mean(sims)), float(np.quantile(sims, 0.95)))


def risk_coverage(confidence: Sequence[float], correct: Sequence[bool],
                  coverages: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
                  ) -> list[tuple[float, float]]:
    """``(coverage, accuracy)`` when answering only the most confident ``coverage`` share of the questions."""
    return [(float(c), accuracy_at_coverage(confidence, correct, c)) for c in coverages]


def accuracy_at_coverage(confidence: Sequence[float], correct: Sequence[bool], coverage: float) -> float:
    conf, hit = np.asarray(confidence, float), np.asarray(correct, float)
    if not len(conf):
        return 0.0
    keep = max(1, int(round(coverage * len(conf))))
    order = np.argsort(-conf, kind="stable")[:keep]
    return float(hit[order].mean())
