"""The one bootstrap every evaluation and benchmark reports its intervals with."""

from __future__ import annotations

import numpy as np

from kgclip.stats import bootstrap_ci


def test_interval_brackets_the_mean_and_narrows_with_more_queries():
    small = np.r_[np.ones(30), np.zeros(20)]
    large = np.tile(small, 20)
    lo_s, hi_s = bootstrap_ci(small, seed=3)
    lo_l, hi_l = bootstrap_ci(large, seed=3)
    assert lo_s < 0.6 < hi_s and lo_l < 0.6 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # sqrt(20) narrower, give or take the resampling


def test_paired_differences_and_rounding():
    a = np.array([1, 1, 0, 1, 1, 0, 1, 1], float)
    b = np.array([0, 1, 0, 0, 1, 0, 0, 1], float)
    lo, hi = bootstrap_ci(a - b, digits=None)
    assert 0.0 <= lo < (a - b).mean() < hi <= 1.0  # a is never worse than b: the mean difference cannot go below 0
    assert bootstrap_ci(a - b, seed=0) == [round(v, 4) for v in bootstrap_ci(a - b, seed=0, digits=None)]
    assert bootstrap_ci(a - b, seed=0) == bootstrap_ci(list(a - b), seed=0)  # deterministic for a seed


def test_constant_and_empty_values():
    assert bootstrap_ci([0.7] * 5) == [0.7, 0.7]
    assert bootstrap_ci([]) == [0.0, 0.0]
