"""Engine results as JSON for the web app (plain values only; the page escapes everything it shows)."""

from __future__ import annotations

from typing import Any

__all__ = ["answer_json", "draft_json", "hit_json"]

_TEXT_PREVIEW = 400


def hit_json(hit: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.evidence.CaseHit` (similar case or search result)."""
    return hit.to_dict(preview=_TEXT_PREVIEW)


def _concepts_json(concepts: Any) -> list[dict[str, Any]]:
    return [{"id": c.concept_id, "name": c.name, "negated": bool(c.negated), "uncertain": bool(c.uncertain)}
            for c in concepts or []]


def answer_json(answer: Any) -> dict[str, Any]:
    """An :class:`~kgclip.rag.vqa.Answer` with its evidence."""
    ev = answer.evidence
    return {
        "question": answer.question,
        "text": answer.text,
        "confidence": round(float(answer.confidence), 4),
        "kind": answer.kind,
        "abstained": bool(answer.abstained),
        "abstain_reason": answer.abstain_reason or "",
        "route": answer.route,
        "flags": dict(answer.flags),
        "candidates": [[str(t), round(float(p), 4)] for t, p in answer.candidates[:5]],
        "cases": [hit_json(h) for h in (ev.similar_cases if ev else [])],
        "concepts": _concepts_json(ev.concepts if ev else []),
        "facts": [str(f) for f in (ev.kg_facts if ev else [])],
        "similar_questions": [{"question": q.question, "answer": q.answer, "case_id": q.case_id}
                              for q in (ev.similar_questions if ev else [])[:5]],
    }


def draft_json(report: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.report.DraftReport`, in the shape ``kgclip report draft --json`` prints
    (:meth:`~kgclip.rag.report.DraftReport.to_dict`)."""
    return report.to_dict()
