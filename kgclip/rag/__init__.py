"""Retrieval-augmented answering and drafting: evidence, VQA, report drafting, the optional LLM step.

Most users go through :class:`kgclip.engine.Engine`; these are the building blocks and result types. Names load
lazily (PEP 562) so that importing one ``kgclip.rag`` module does not import torch through the others.
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


_EXPORTS = {
    "CaseHit": "kgclip.rag.evidence",
    "Evidence": "kgclip.rag.evidence",
    "KGFact": "kgclip.rag.evidence",
    "QANeighbor": "kgclip.rag.evidence",
    "DraftConfig": "kgclip.rag.report",
    "DraftReport": "kgclip.rag.report",
    "ReportSentence": "kgclip.rag.report",
    "Answer": "kgclip.rag.vqa",
    "AnswererConfig": "kgclip.rag.vqa",
    "VQAAnswerer": "kgclip.rag.vqa",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
