"""Retrieval metrics: Recall@K and mean reciprocal rank for image->text and text->image search.

Pure functions over embeddings and relevance matrices (torch only). Training uses them for model selection;
:mod:`kgclip.eval.retrieval` re-exports them for the evaluation runners.

A query may have several relevant items (two images of one case can carry the same caption text), so relevance is
a boolean matrix rather than one index per query; the rank of a query is that of its best-ranked relevant item.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Hashable, Sequence

import torch

from kgclip.errors import ConfigError

__all__ = ["RetrievalMetrics", "ranks_of_first_relevant", "recall_at_k", "mean_reciprocal_rank",
           "relevance_from_keys", "retrieval_metrics"]


def relevance_from_keys(query_keys: Sequence[Hashable], item_keys: Sequence[Hashable]) -> torch.Tensor:
    """``relevant[q, i]`` is True when query ``q`` and item ``i`` share a key (e.g. the same caption text).

    Shapes: -> ``[Q, I]`` bool.
    """
    codes: dict[Hashable, int] = {}
    q = torch.tensor([codes.setdefault(k, len(codes)) for k in query_keys], dtype=torch.long)
    i = torch.tensor([codes.setdefault(k, len(codes)) for k in item_keys], dtype=torch.long)
    return q[:, None] == i[None, :]


def ranks_of_first_relevant(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """1-based rank of the best-ranked relevant item for every query.

    Ties are broken pessimistically (an irrelevant item with the same score ranks first), so a constant scorer
    cannot look good. A query without any relevant item gets rank ``inf``.

    Shapes: ``scores`` ``[Q, I]`` float, ``relevant`` ``[Q, I]`` bool -> ``[Q]`` float.
    """
    if scores.shape != relevant.shape or scores.dim() != 2:
        raise ConfigError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} must be equal [Q, I]")
    scores = scores.float()
    best = scores.masked_fill(~relevant, float("-inf")).max(dim=1).values  # [Q]
    # Items strictly better than the best relevant one, plus irrelevant ties (pessimistic).
    better = (scores > best[:, None]) | ((scores == best[:, None]) & ~relevant)
    ranks = better.sum(dim=1).float() + 1.0
    return torch.where(relevant.any(dim=1), ranks, torch.full_like(ranks, float("inf")))


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Fraction of queries whose first relevant item is within the top ``k``."""
    return float((ranks <= k).float().mean()) if len(ranks) else 0.0


def mean_reciprocal_rank(ranks: torch.Tensor) -> float:
    """Mean of ``1 / rank`` (0 for queries without a relevant item)."""
    return float((1.0 / ranks).mean()) if len(ranks) else 0.0


@dataclasses.dataclass(frozen=True)
class RetrievalMetrics:
    """Recall@1/5/10 and MRR in both directions.

    Attributes:
        i2t: image->text metrics, keys ``r1``, ``r5``, ``r10``, ``mrr``.
        t2i: text->image metrics, same keys.
        n_images: number of image queries / image items.
        n_texts: number of text queries / text items.
    """

    i2t: dict[str, float]
    t2i: dict[str, float]
    n_images: int
    n_texts: int

    def flat(self, suffix: str = "") -> dict[str, float]:
        """``{"r10_i2t<suffix>": ..., "mrr_t2i<suffix>": ...}`` (the benchmark key layout)."""
        out: dict[str, float] = {}
        for direction, values in (("i2t", self.i2t), ("t2i", self.t2i)):
            for key, value in values.items():
                out[f"{key}_{direction}{suffix}"] = round(value, 4)
        return out

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(d)}</td>" + "".join(f"<td>{v[k]:.3f}</td>" for k in ("r1", "r5", "r10", "mrr"))
            + "</tr>" for d, v in (("image→text", self.i2t), ("text→image", self.t2i)))
        return (f"<table><caption>retrieval over {self.n_images} images / {self.n_texts} texts</caption>"
                "<tr><th></th><th>R@1</th><th>R@5</th><th>R@10</th><th>MRR</th></tr>" + rows + "</table>")


def _summary(ranks: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    out = {f"r{k}": recall_at_k(ranks, k) for k in ks}
    out["mrr"] = mean_reciprocal_rank(ranks)
    return out


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor,
                      relevant: torch.Tensor | None = None, ks: Sequence[int] = (1, 5, 10)) -> RetrievalMetrics:
    """Image->text and text->image retrieval metrics by cosine similarity.

    Args:
        image_emb: image embeddings (normalised here).
        text_emb: text embeddings (normalised here).
        relevant: ``relevant[i, t]`` True when text ``t`` describes image ``i``; default the identity (pair ``i``
            is image ``i`` with text ``i``). Use :func:`relevance_from_keys` to count duplicate captions as hits.
        ks: the cut-offs.

    Shapes: ``image_emb`` ``[N, D]``, ``text_emb`` ``[M, D]``, ``relevant`` ``[N, M]`` bool.
    """
    if image_emb.dim() != 2 or text_emb.dim() != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ConfigError(f"embeddings must be [N, D] and [M, D]; got {tuple(image_emb.shape)}, "
                          f"{tuple(text_emb.shape)}")
    if relevant is None:
        if len(image_emb) != len(text_emb):
            raise ConfigError("without a relevance matrix, image and text counts must be equal (pair i <-> i)")
        relevant = torch.eye(len(image_emb), dtype=torch.bool)
    img = torch.nn.functional.normalize(image_emb.float(), dim=-1)
    txt = torch.nn.functional.normalize(text_emb.float(), dim=-1)
    scores = img @ txt.T
    return RetrievalMetrics(
        i2t=_summary(ranks_of_first_relevant(scores, relevant), ks),
        t2i=_summary(ranks_of_first_relevant(scores.T.contiguous(), relevant.T.contiguous()), ks),
        n_images=len(img), n_texts=len(txt),
    )
