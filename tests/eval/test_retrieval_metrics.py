"""Recall@K and MRR on cases with known ranks."""

from __future__ import annotations

import pytest
import torch

from kgclip.errors import ConfigError
from kgclip.eval.retrieval import (mean_reciprocal_rank, ranks_of_first_relevant, recall_at_k, relevance_from_keys,
                                   retrieval_metrics)


def test_known_ranks() -> None:
    # Query 0: relevant item ranked 1st; query 1: 3rd; query 2: 12th (of 12).
    scores = torch.zeros(3, 12)
    relevant = torch.zeros(3, 12, dtype=torch.bool)
    relevant[0, 0] = relevant[1, 1] = relevant[2, 2] = True
    scores[0] = torch.linspace(0, -1, 12)
    scores[1, 1] = 0.5
    scores[1, 5] = scores[1, 6] = 0.9
    scores[2] = torch.arange(12, dtype=torch.float)
    scores[2, 2] = -1.0
    ranks = ranks_of_first_relevant(scores, relevant)
    assert ranks.tolist() == [1.0, 3.0, 12.0]
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranks, 5) == pytest.approx(2 / 3)
    assert recall_at_k(ranks, 10) == pytest.approx(2 / 3)
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 1 / 12) / 3)


def test_ties_are_pessimistic_and_best_relevant_counts() -> None:
    scores = torch.zeros(1, 5)  # a constant scorer must not look perfect
    relevant = torch.tensor([[True, False, False, False, False]])
    assert ranks_of_first_relevant(scores, relevant).tolist() == [5.0]
    relevant = torch.tensor([[False, True, False, True, False]])
    scores = torch.tensor([[0.9, 0.1, 0.8, 0.7, 0.0]])
    assert ranks_of_first_relevant(scores, relevant).tolist() == [3.0]  # item 3 (0.7) beats item 1 (0.1)


def test_perfect_and_duplicate_captions() -> None:
    emb = torch.eye(4)
    m = retrieval_metrics(emb, emb)
    assert m.i2t == {"r1": 1.0, "r5": 1.0, "r10": 1.0, "mrr": 1.0}
    assert m.t2i["mrr"] == 1.0
    # Images 0 and 1 carry the same caption text: either text counts as a hit.
    texts = ["a", "a", "b", "c"]
    img = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    txt = torch.tensor([[0.9, 0.1, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    plain = retrieval_metrics(img, txt)
    dedup = retrieval_metrics(img, txt, relevance_from_keys(texts, texts))
    assert dedup.i2t["r1"] == 1.0 and plain.i2t["r1"] < 1.0
    assert set(dedup.flat("_x")) >= {"r10_i2t_x", "mrr_t2i_x"}
    assert "<table" in dedup._repr_html_()


def test_bad_shapes() -> None:
    with pytest.raises(ConfigError):
        retrieval_metrics(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ConfigError):
        retrieval_metrics(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ConfigError):
        ranks_of_first_relevant(torch.zeros(2, 2), torch.zeros(2, 3, dtype=torch.bool))
