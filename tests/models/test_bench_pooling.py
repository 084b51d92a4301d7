"""How the MedPix retrieval bench pools per-seed hits: averaged over seeds on shared queries (dev), concatenated
when each seed holds out its own validation cases (val)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_retrieval_medpix import seed_pooled  # noqa: E402


def test_same_queries_are_averaged_over_seeds() -> None:
    out = seed_pooled([np.array([1.0, 0.0]), np.array([0.0, 0.0])], same_queries=True)
    assert out.tolist() == [0.5, 0.0]


def test_per_seed_validation_queries_are_concatenated() -> None:
    out = seed_pooled([np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0])], same_queries=False)
    assert out.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
