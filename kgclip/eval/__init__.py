"""Metrics and evaluation runners (retrieval here; VQA, report, linking and link prediction beside it)."""

from kgclip.eval.retrieval import RetrievalMetrics, mean_reciprocal_rank, recall_at_k, retrieval_metrics

__all__ = ["RetrievalMetrics", "mean_reciprocal_rank", "recall_at_k", "retrieval_metrics"]
