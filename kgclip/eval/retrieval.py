"""Retrieval metrics for evaluation runners: Recall@K and MRR for image->text and text->image search.

The metrics themselves live in :mod:`kgclip.models.retrieval_metrics` (model selection during training needs them,
and models sit below eval); this module is their evaluation-layer name.
"""

from __future__ import annotations

from kgclip.models.retrieval_metrics import (RetrievalMetrics, mean_reciprocal_rank, ranks_of_first_relevant,
                                             recall_at_k, relevance_from_keys, retrieval_metrics)

__all__ = ["RetrievalMetrics", "ranks_of_first_relevant", "recall_at_k", "mean_reciprocal_rank",
           "relevance_from_keys", "retrieval_metrics"]
