"""Optional: let any langchain chat model rewrite an answer or a draft from its evidence, keeping the citations.

The engine never needs this. When a chat model is configured (``Engine.use_llm(ChatOpenAI(base_url=...))`` or any
``langchain_core`` ``BaseChatModel``), its rewrite replaces the built-in text only if it arrives within the timeout
and keeps the citations: for an answer, at least one ``[case id]`` from the evidence and none that is not there; for
a draft, every sentence cited and every source case of the built-in draft still cited. Otherwise the built-in
result is returned unchanged with ``flags["llm_fallback"]`` saying why. Never a silent change.
"""

from __future__ import annotations

import concurrent.futures
import re
from dataclasses import replace
from typing import Any

from kgclip.rag.report import DraftReport, ReportSentence
from kgclip.rag.vqa import Answer

__all__ = ["LLMRewriter", "CITATION"]

CITATION = re.compile(r"\[([A-Za-z0-9_.:\-]+)\]")
_SEGMENT = re.compile(r"[^\[\]]*?(?:\[[A-Za-z0-9_.:\-]+\]\s*)+[.!?;]?")

_ANSWER_PROMPT = """You are a radiology assistant. Rewrite the answer below as one or two sentences, using only the
evidence given. Keep the answer itself. Cite the cases you rely on with their ids in square brackets, e.g. [{example}].

Question: {question}
Built-in answer: {answer} (confidence {confidence:.2f})
Evidence:
{evidence}"""

_REPORT_PROMPT = """You are a radiology assistant. Rewrite this draft report so it reads well, without adding findings.
Every sentence must end with the id of the case it came from in square brackets, exactly as given. Keep the two
headings FINDINGS: and IMPRESSION:.

{draft}"""


def _content(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):  # content blocks
        content = " ".join(str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in content)
    return str(content)


class LLMRewriter:
    """Wraps a langchain ``BaseChatModel``; call :meth:`rewrite_answer` / :meth:`rewrite_report`.

    Args:
        chat_model: anything with ``invoke(messages)`` returning a message (langchain chat models).
        timeout_s: seconds to wait for the model before keeping the built-in result.
    """

    def __init__(self, chat_model: Any, timeout_s: float = 30.0) -> None:
        self.chat_model = chat_model
        self.timeout_s = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgclip-llm")

    def _call(self, prompt: str) -> tuple[str | None, str]:
        """(text, "") or (None, reason)."""
        from langchain_core.messages import HumanMessage

        future = self._pool.submit(self.chat_model.invoke, [HumanMessage(content=prompt)])
        try:
            return _content(future.result(timeout=self.timeout_s)), ""
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None, f"timeout after {self.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any model/server failure means: keep the built-in result
            return None, f"error: {type(exc).__name__}: {exc}"[:200]

    def rewrite_answer(self, answer: Answer) -> Answer:
        ev = answer.evidence
        allowed = ev.citations() if ev is not None else []
        lines = []
        if ev is not None:
            lines += [f"- similar question [{q.case_id}]: {q.question} -> {q.answer}" for q in ev.similar_questions]
            lines += [f"- similar case [{c.case_id}]: {c.text[:300]}" for c in ev.similar_cases]
            lines += [f"- knowledge graph: {f}" for f in ev.kg_facts]
        prompt = _ANSWER_PROMPT.format(example=allowed[0] if allowed else "case-id", question=answer.question,
                                       answer=answer.text, confidence=answer.confidence,
                                       evidence="\n".join(lines) or "(none)")
        text, why = self._call(prompt)
        if text is None:
            return replace(answer, flags={**answer.flags, "llm_fallback": why})
        cited = CITATION.findall(text)
        if allowed and not cited:
            return replace(answer, flags={**answer.flags, "llm_fallback": "citations dropped"})
        unknown = [c for c in cited if c not in allowed]
        if unknown:
            return replace(answer, flags={**answer.flags, "llm_fallback": f"unknown citation [{unknown[0]}]"})
        return replace(answer, text=text.strip(),
                       flags={**answer.flags, "llm": "rewritten", "builtin_answer": answer.text})

    def rewrite_report(self, report: DraftReport) -> DraftReport:
        if not report.findings:  # nothing drafted (its notice says why): nothing to rewrite
            return report
        text, why = self._call(_REPORT_PROMPT.format(draft=report.text(citations=True, facts=False, confidence=False)))
        if text is None:
            return replace(report, flags={**report.flags, "llm_fallback": why})
        required = {c for s in report.findings + report.impression for c in s.citations}
        sections = {"findings": [], "impression": []}
        current = "findings"
        for raw in text.splitlines():
            line = raw.strip(" -*\t")
            if not line:
                continue
            head = line.rstrip(":").strip().lower()
            if head in sections:
                current = head
                continue
            parts = _SEGMENT.findall(line)
            rest = _SEGMENT.sub("", line).strip(" .;")
            if not parts or rest:  # a sentence without a citation
                return replace(report, flags={**report.flags, "llm_fallback": "citations dropped"})
            for part in parts:
                ids = CITATION.findall(part)
                if any(i not in required for i in ids):
                    return replace(report, flags={**report.flags, "llm_fallback": f"unknown citation [{ids[0]}]"})
                sentence = re.sub(r"\s+([.;!?])", r"\1", CITATION.sub("", part)).strip()
                sentence = sentence if sentence.endswith((".", "!", "?")) else sentence.rstrip(";") + "."
                sections[current].append(ReportSentence(sentence, ids[-1], 0.0, cases=tuple(dict.fromkeys(ids))))
        cited = {c for s in sections["findings"] + sections["impression"] for c in s.citations}
        if not sections["findings"] or required - cited:
            return replace(report, flags={**report.flags, "llm_fallback": "citations dropped"})
        impression = sections["impression"] or report.impression
        if len(impression) == len(report.impression):  # same lines reworded: keep the graph facts they rest on
            impression = [replace(new, concepts=old.concepts, facts=old.facts) for new, old in
                          zip(impression, report.impression)]
        return replace(report, findings=sections["findings"], impression=impression,
                       flags={**report.flags, "llm": "rewritten"})
