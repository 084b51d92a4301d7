"""Contrastive losses for the KG-enriched dual encoder.

- :func:`info_nce`: CLIP's symmetric cross-entropy over the in-batch similarity matrix.
- :func:`concept_soft_targets` + :func:`soft_info_nce`: MedCLIP's remedy for false negatives. Two captions that
  link the same findings should not be pushed apart, so the target of each row is spread over the batch in
  proportion to the Jaccard overlap of the linked (non-negated) concept sets. With pairwise-disjoint concept sets
  the targets are the identity and the loss equals :func:`info_nce`.
- :func:`concept_alignment_loss`: KAD's knowledge alignment. Each image is pulled towards the (projected) embeddings
  of the concepts its caption mentions and away from the other concepts of the batch (multi-label, sigmoid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kgclip.errors import ConfigError

__all__ = ["info_nce", "concept_jaccard", "concept_soft_targets", "soft_info_nce", "concept_alignment_loss",
           "batch_concept_targets"]


def _logits(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    if image_emb.shape != text_emb.shape:
        raise ConfigError(f"image and text embeddings must both be [B, D]; got {tuple(image_emb.shape)} and "
                          f"{tuple(text_emb.shape)}")
    return (image_emb @ text_emb.T) * logit_scale


def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): mean of image->text and text->image cross-entropy with pair ``i`` <-> ``i``.

    Args:
        image_emb: unit image embeddings.
        text_emb: unit text embeddings, row ``i`` describes image ``i``.
        logit_scale: multiplier of the cosine similarities (``1 / temperature``), already exponentiated.

    Shapes: ``[B, D]``, ``[B, D]``, scalar -> scalar.
    """
    logits = _logits(image_emb, text_emb, logit_scale)
    labels = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def concept_jaccard(concept_idx: torch.Tensor, concept_mask: torch.Tensor) -> torch.Tensor:
    """Jaccard overlap of the concept sets of every pair of batch items.

    Items are given as padded index lists (duplicates within one row must already be removed). An item without
    concepts overlaps only with itself (diagonal 1), so it keeps the plain one-hot target.

    Shapes: ``concept_idx`` ``[B, K]`` long, ``concept_mask`` ``[B, K]`` bool -> ``[B, B]`` float in [0, 1].
    """
    if concept_idx.shape != concept_mask.shape or concept_idx.dim() != 2:
        raise ConfigError(f"concept_idx {tuple(concept_idx.shape)} and concept_mask {tuple(concept_mask.shape)} "
                          "must both be [B, K]")
    mask = concept_mask.bool()
    # same[i, j, k, l]: concept k of item i equals concept l of item j (both real, not padding).
    same = (concept_idx[:, None, :, None] == concept_idx[None, :, None, :])
    same &= mask[:, None, :, None] & mask[None, :, None, :]
    inter = same.any(dim=3).sum(dim=2).float()  # [B, B]
    sizes = mask.sum(dim=1).float()
    union = sizes[:, None] + sizes[None, :] - inter
    jac = torch.where(union > 0, inter / union.clamp(min=1.0), torch.zeros_like(inter))
    jac.fill_diagonal_(1.0)
    return jac


def concept_soft_targets(concept_idx: torch.Tensor, concept_mask: torch.Tensor, weight: float = 0.5,
                         min_overlap: float = 0.0) -> torch.Tensor:
    """Row-stochastic target matrix: ``(1 - weight) * I + weight * normalise_rows(jaccard)``.

    Args:
        concept_idx: padded concept indices per item.
        concept_mask: which entries of ``concept_idx`` are real.
        weight: how much of each row's mass follows concept overlap (0 gives plain InfoNCE targets).
        min_overlap: overlaps below this are treated as 0 (one shared generic concept is weak evidence).

    Shapes: ``[B, K]``, ``[B, K]`` -> ``[B, B]``, rows sum to 1, symmetric when all concept sets have equal
    overlap structure (Jaccard is symmetric; row normalisation may break exact symmetry).
    """
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"soft-target weight must be in [0, 1], got {weight}")
    jac = concept_jaccard(concept_idx, concept_mask)
    if min_overlap > 0:
        jac = torch.where(jac >= min_overlap, jac, torch.zeros_like(jac))
        jac.fill_diagonal_(1.0)
    eye = torch.eye(len(jac), device=jac.device)
    return (1.0 - weight) * eye + weight * jac / jac.sum(dim=1, keepdim=True)


def soft_info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float,
                  targets: torch.Tensor) -> torch.Tensor:
    """Symmetric contrastive loss with soft targets (cross-entropy against a target distribution per row).

    ``targets[i, j]`` is the probability that text ``j`` matches image ``i``; the text->image direction uses the
    transposed matrix renormalised over its rows. With ``targets = I`` this equals :func:`info_nce`.

    Shapes: ``[B, D]``, ``[B, D]``, scalar, ``[B, B]`` -> scalar.
    """
    logits = _logits(image_emb, text_emb, logit_scale)
    if targets.shape != logits.shape:
        raise ConfigError(f"targets must be [B, B] = {tuple(logits.shape)}, got {tuple(targets.shape)}")
    t_i2t = targets / targets.sum(dim=1, keepdim=True)
    t_t2i = targets.T / targets.T.sum(dim=1, keepdim=True)
    loss_i2t = -(t_i2t * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t2i = -(t_t2i * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_i2t + loss_t2i)


def batch_concept_targets(concept_idx: torch.Tensor, concept_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct concepts of a batch and which item mentions which.

    Returns:
        ``(unique_idx, targets)``: ``unique_idx`` ``[C]`` long (global concept indices), ``targets`` ``[B, C]``
        float, 1 where item ``b`` links concept ``c``.
    """
    mask = concept_mask.bool()
    unique_idx = torch.unique(concept_idx[mask])
    targets = (concept_idx[:, :, None] == unique_idx[None, None, :]) & mask[:, :, None]
    return unique_idx, targets.any(dim=1).float()


def concept_alignment_loss(image_emb: torch.Tensor, concept_emb: torch.Tensor, targets: torch.Tensor,
                           logit_scale: torch.Tensor | float, bias: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KAD-style image-to-concept alignment as multi-label classification over the batch's concepts.

    Args:
        image_emb: unit image embeddings.
        concept_emb: unit embeddings of the batch's distinct concepts, projected into the joint space.
        targets: 1 where the caption of image ``b`` links concept ``c``.
        logit_scale: multiplier of the cosine similarities.
        bias: added to every logit (a learnable bias lets the sigmoid start near the positive rate).

    Shapes: ``[B, D]``, ``[C, D]``, ``[B, C]`` -> scalar (0 when the batch links no concept).
    """
    if concept_emb.numel() == 0:
        return image_emb.sum() * 0.0  # keeps the graph connected so backward() still works
    logits = (image_emb @ concept_emb.T) * logit_scale + bias
    return F.binary_cross_entropy_with_logits(logits, targets)
