"""Filtered link-prediction ranking (MRR, Hits@k), shared by training's validation and the benchmark.

A test triple ``(h, r, t)`` is ranked twice: ``t`` among all nodes for the query ``(h, r, ?)`` and ``h`` among
all nodes for ``(?, r, t)``. "Filtered" (Bordes et al. 2013): other answers known to be true are removed from the
candidates before ranking, so a model is not penalised for ranking another true parent first. Ties count half.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

__all__ = ["Scorer", "DistMultScorer", "CosineScorer", "KnownTriples", "filtered_ranks", "rank_metrics"]


class Scorer:
    """Scores every node as the tail of ``(h, r, ?)`` or the head of ``(?, r, t)``."""

    def tails(self, h: Tensor, r: Tensor) -> Tensor:
        """Shapes: ``h``, ``r`` ``[B]`` -> ``[B, N]``."""
        raise NotImplementedError

    def heads(self, r: Tensor, t: Tensor) -> Tensor:
        """Shapes: ``r``, ``t`` ``[B]`` -> ``[B, N]``."""
        raise NotImplementedError


@dataclasses.dataclass
class DistMultScorer(Scorer):
    """``score(h, r, t) = <e_h, w_r, e_t>``. Shapes: ``embeddings`` ``[N, D]``, ``relations`` ``[R, D]``."""

    embeddings: Tensor
    relations: Tensor

    def tails(self, h: Tensor, r: Tensor) -> Tensor:
        return (self.embeddings[h] * self.relations[r]) @ self.embeddings.T

    def heads(self, r: Tensor, t: Tensor) -> Tensor:
        return (self.embeddings[t] * self.relations[r]) @ self.embeddings.T


@dataclasses.dataclass
class CosineScorer(Scorer):
    """Relation-blind cosine similarity of node features (the text-only baseline). Shapes: ``features`` ``[N, F]``."""

    features: Tensor

    def __post_init__(self) -> None:
        self.features = torch.nn.functional.normalize(self.features.float(), dim=-1)

    def tails(self, h: Tensor, r: Tensor) -> Tensor:
        return self.features[h] @ self.features.T

    def heads(self, r: Tensor, t: Tensor) -> Tensor:
        return self.features[t] @ self.features.T


class KnownTriples:
    """Every true ``(h, r, t)``, indexed for filtering: ``(h, r) -> tails`` and ``(r, t) -> heads``."""

    def __init__(self, triples: Iterable[Tensor], num_nodes: int, num_relations: int) -> None:
        all_triples = torch.cat([t.reshape(-1, 3) for t in triples]).numpy().astype(np.int64)
        self.num_nodes, self.num_relations = num_nodes, max(1, num_relations)
        self._tails = self._group(all_triples[:, 0] * self.num_relations + all_triples[:, 1], all_triples[:, 2])
        self._heads = self._group(all_triples[:, 2] * self.num_relations + all_triples[:, 1], all_triples[:, 0])

    @staticmethod
    def _group(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
        if not len(keys):
            return {}
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        unique, starts = np.unique(keys, return_index=True)
        return dict(zip(unique.tolist(), np.split(values, starts[1:])))

    def tails(self, h: int, r: int) -> np.ndarray:
        return self._tails.get(h * self.num_relations + r, np.zeros(0, np.int64))

    def heads(self, r: int, t: int) -> np.ndarray:
        return self._heads.get(t * self.num_relations + r, np.zeros(0, np.int64))


def _ranks(scores: Tensor, target: Tensor, filters: list[np.ndarray], query: Tensor | None = None) -> Tensor:
    if query is not None:  # a concept is never its own answer (curation refuses self-relations)
        rows_q = torch.nonzero(query != target).view(-1)  # a true self-relation stays rankable
        scores[rows_q, query[rows_q]] = float("-inf")
    rows = np.concatenate([np.full(len(f), i) for i, f in enumerate(filters)]) if filters else np.zeros(0)
    cols = np.concatenate(filters) if filters else np.zeros(0)
    arange = torch.arange(scores.size(0))
    true_score = scores[arange, target].clone()
    if len(rows):
        scores[torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64))] = float("-inf")
    scores[arange, target] = true_score
    greater = (scores > true_score.unsqueeze(1)).sum(1).float()
    ties = (scores == true_score.unsqueeze(1)).sum(1).float() - 1.0
    return 1.0 + greater + 0.5 * ties


@torch.no_grad()
def filtered_ranks(scorer: Scorer, triples: Tensor, known: KnownTriples, batch_size: int = 256,
                   candidates: Tensor | None = None, exclude_self: bool = True) -> Tensor:
    """Filtered ranks of each triple's tail and head.

    Args:
        scorer: scores candidates.
        triples: ``[T, 3]`` long (head, relation, tail) to rank.
        known: every true triple (train, validation and test) for filtering.
        batch_size: queries per matrix product.
        candidates: optional ``[N]`` bool mask of nodes allowed as answers (e.g. exclude held-out concepts).
        exclude_self: never rank the query concept itself (ontologies hold no self-relations; without this a
            symmetric scorer such as DistMult or cosine puts the query concept first for every query).

    Shapes:
        returns ``[2 * T]`` float ranks (tail queries first, then head queries).
    """
    out: list[Tensor] = []
    for direction in ("tail", "head"):
        for start in range(0, triples.size(0), batch_size):
            batch = triples[start:start + batch_size]
            h, r, t = batch[:, 0], batch[:, 1], batch[:, 2]
            if direction == "tail":
                scores, target, query = scorer.tails(h, r).float(), t, h
                filters = [known.tails(a, b) for a, b in zip(h.tolist(), r.tolist())]
            else:
                scores, target, query = scorer.heads(r, t).float(), h, t
                filters = [known.heads(b, c) for b, c in zip(r.tolist(), t.tolist())]
            if candidates is not None:
                scores = scores.masked_fill(~candidates.unsqueeze(0), float("-inf"))
            out.append(_ranks(scores, target, filters, query if exclude_self else None))
    return torch.cat(out) if out else torch.zeros(0)


def rank_metrics(ranks: Tensor) -> dict[str, float]:
    """``{"mrr", "hits1", "hits3", "hits10"}`` from filtered ranks (empty input -> zeros)."""
    if ranks.numel() == 0:
        return {"mrr": 0.0, "hits1": 0.0, "hits3": 0.0, "hits10": 0.0}
    return {
        "mrr": float((1.0 / ranks).mean()),
        "hits1": float((ranks <= 1).float().mean()),
        "hits3": float((ranks <= 3).float().mean()),
        "hits10": float((ranks <= 10).float().mean()),
    }
