"""Engine results as JSON for the web app (plain values only; the page escapes everything it shows)."""

from __future__ import annotations

from typing import Any

__all__ = ["answer_json", "draft_json", "hit_json"]

_TEXT_PREVIEW = 400


def hit_json(hit: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.evidence.CaseHit` (similar case or search result)."""
    meta = {k: v for k, v in (hit.metadata or {}).items() if k in ("modality", "body_part", "matched_through")}
    return {"case_id": hit.case_id, "score": round(float(hit.score), 4), "via": hit.via,
            "text": (hit.text or "")[:_TEXT_PREVIEW], "metadata": meta}


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


def _sentence_json(s: Any) -> dict[str, Any]:
    return {"text": s.text, "case_id": s.case_id, "cases": list(s.citations), "facts": list(s.facts),
            "concepts": list(s.concepts)}


def draft_json(report: Any) -> dict[str, Any]:
    """A :class:`~kgclip.rag.report.DraftReport`: findings and impression sentences, each citing its case."""
    return {
        "findings": [_sentence_json(s) for s in report.findings],
        "impression": [_sentence_json(s) for s in report.impression],
        "cases": [hit_json(h) for h in report.similar_cases],
        "removed": [{"text": s.text, "case_id": s.case_id, "reason": why} for s, why in report.removed[:20]],
        "flags": dict(report.flags),
        "notice": report.notice,
        "confidence": report.confidence,
        "abstained": report.abstained,
        "region": list(report.region),
        "modality": report.modality,
    }
