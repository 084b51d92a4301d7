"""Engine results as JSON for the web app (plain values only; the page escapes everything it shows)."""

from __future__ import annotations

from typing import Any

__all__ = ["answer_json", "draft_json", "hit_json"]


def hit_json(hit: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.evidence.CaseHit` (similar case or search result)."""
    return hit.to_dict()


def answer_json(answer: Any) -> dict[str, Any]:
    """An :class:`~kgclip.rag.vqa.Answer` with its evidence, in the shape ``kgclip ask --json`` prints
    (:meth:`~kgclip.rag.vqa.Answer.to_dict`)."""
    return answer.to_dict()


def draft_json(report: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.report.DraftReport`, in the shape ``kgclip report draft --json`` prints
    (:meth:`~kgclip.rag.report.DraftReport.to_dict`)."""
    return report.to_dict()
