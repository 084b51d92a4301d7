"""The near-duplicate check that keeps VQA-RAD images out of the MedPix acquisition heads."""

from __future__ import annotations

import numpy as np

from kgclip.eval.acquisition_heads import near_duplicates


def test_near_duplicates():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 16))
    x = np.vstack([y[2] * 3.0 + 1e-4 * rng.normal(size=16), rng.normal(size=16)])  # a rescaled copy, an unrelated
    assert near_duplicates(x, y).tolist() == [True, False]
    assert near_duplicates(x, y[:0]).tolist() == [False, False]
