"""Contrastive losses: InfoNCE math, concept-overlap soft targets, KAD-style alignment."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kgclip.errors import ConfigError
from kgclip.models.losses import (batch_concept_targets, concept_alignment_loss, concept_jaccard,
                                  concept_soft_targets, info_nce, soft_info_nce)


def _emb(b: int = 6, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (F.normalize(torch.randn(b, d, generator=gen), dim=-1),
            F.normalize(torch.randn(b, d, generator=gen), dim=-1))


def test_info_nce_matches_hand_computation() -> None:
    img, txt = _emb()
    scale = 10.0
    logits = img @ txt.T * scale
    i2t = -sum(math.log(torch.softmax(logits[i], 0)[i]) for i in range(6)) / 6
    t2i = -sum(math.log(torch.softmax(logits[:, i], 0)[i]) for i in range(6)) / 6
    assert float(info_nce(img, txt, scale)) == pytest.approx((i2t + t2i) / 2, rel=1e-5)


def test_info_nce_is_small_for_aligned_pairs() -> None:
    img, _ = _emb(b=4, d=16)
    assert float(info_nce(img, img, 100.0)) < float(info_nce(img, img.roll(1, 0), 100.0))


def test_jaccard_of_known_sets() -> None:
    # item 0: {1, 2}, item 1: {2, 3}, item 2: {} , item 3: {1, 2}
    idx = torch.tensor([[1, 2], [2, 3], [0, 0], [2, 1]])
    mask = torch.tensor([[True, True], [True, True], [False, False], [True, True]])
    jac = concept_jaccard(idx, mask)
    assert jac[0, 1] == pytest.approx(1 / 3)
    assert jac[0, 3] == pytest.approx(1.0)
    assert jac[0, 2] == 0 and jac[2, 0] == 0  # padding index 0 never counts as a concept
    assert torch.equal(jac.diagonal(), torch.ones(4))
    assert torch.allclose(jac, jac.T)


def test_soft_targets_reduce_to_info_nce_with_disjoint_concepts() -> None:
    img, txt = _emb()
    idx = torch.arange(12).view(6, 2)  # pairwise disjoint concept sets
    mask = torch.ones(6, 2, dtype=torch.bool)
    targets = concept_soft_targets(idx, mask, weight=0.7)
    assert torch.allclose(targets, torch.eye(6))
    assert float(soft_info_nce(img, txt, 20.0, targets)) == pytest.approx(float(info_nce(img, txt, 20.0)), rel=1e-6)
    # Weight 0 is plain InfoNCE whatever the overlap.
    same = torch.ones(6, 2, dtype=torch.long)
    assert torch.allclose(concept_soft_targets(same, mask, weight=0.0), torch.eye(6))


def test_soft_targets_share_mass_between_same_findings() -> None:
    idx = torch.tensor([[5, 0], [5, 0], [7, 0]])
    mask = torch.tensor([[True, False], [True, False], [True, False]])
    targets = concept_soft_targets(idx, mask, weight=0.5)
    assert torch.allclose(targets.sum(1), torch.ones(3))
    assert targets[0, 1] == pytest.approx(0.25) and targets[0, 0] == pytest.approx(0.75)
    assert targets[2, 0] == 0 and targets[2, 2] == 1
    # Two captions of the same finding: image 0 sits closer to text 1 than to its own text. Plain InfoNCE
    # punishes that as a negative; the soft targets much less.
    img = F.normalize(torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]), dim=-1)
    txt = F.normalize(torch.tensor([[0.8, 0.6, 0], [1.0, 0, 0], [0, 0, 1.0]]), dim=-1)
    assert float(soft_info_nce(img, txt, 10.0, targets)) < float(info_nce(img, txt, 10.0))


def test_alignment_loss_prefers_aligned_concepts_and_handles_empty_batches() -> None:
    img = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1).requires_grad_()
    concepts = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    right = torch.eye(2)
    with torch.no_grad():
        assert float(concept_alignment_loss(img, concepts, right, 10.0)) < float(
            concept_alignment_loss(img, concepts, 1 - right, 10.0))
    empty = concept_alignment_loss(img, torch.zeros(0, 2), torch.zeros(2, 0), 10.0)
    assert float(empty.detach()) == 0.0
    empty.backward()  # still part of the graph


def test_batch_concept_targets() -> None:
    idx = torch.tensor([[4, 9], [9, 0]])
    mask = torch.tensor([[True, True], [True, False]])
    uniq, targets = batch_concept_targets(idx, mask)
    assert uniq.tolist() == [4, 9]
    assert targets.tolist() == [[1.0, 1.0], [0.0, 1.0]]


def test_shape_errors_are_config_errors() -> None:
    img, txt = _emb()
    with pytest.raises(ConfigError):
        info_nce(img, txt[:3], 1.0)
    with pytest.raises(ConfigError):
        soft_info_nce(img, txt, 1.0, torch.eye(3))
    with pytest.raises(ConfigError):
        concept_jaccard(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ConfigError):
        concept_soft_targets(torch.zeros(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.bool), weight=1.5)
