"""The optional LLM step, wired to langchain_core's fake chat models: rewrites keep citations or fall back."""

from __future__ import annotations

import time

from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from kgclip.rag.evidence import CaseHit, Evidence, QANeighbor
from kgclip.rag.llm import LLMRewriter
from kgclip.rag.report import DraftReport, ReportSentence
from kgclip.rag.vqa import Answer


def _answer() -> Answer:
    ev = Evidence(question="Is there a pleural effusion?",
                  similar_cases=[CaseHit("synpic1", 0.9, "There is a pleural effusion.")],
                  similar_questions=[QANeighbor("Is there an effusion?", "Yes", "synpic2", 0.8)])
    return Answer("Yes", 0.8, "closed", ev, question="Is there a pleural effusion?")


def _report() -> DraftReport:
    return DraftReport(findings=[ReportSentence("Small left pleural effusion.", "c1", 1.0),
                                 ReportSentence("No pneumothorax.", "c2", 0.9)],
                       impression=[ReportSentence("Findings most consistent with pneumonia.", "c1", 1.0)])


def test_answer_rewrite_keeps_citations():
    model = GenericFakeChatModel(messages=iter([AIMessage(content="Yes, a pleural effusion is present [synpic1].")]))
    out = LLMRewriter(model).rewrite_answer(_answer())
    assert out.text == "Yes, a pleural effusion is present [synpic1]."
    assert out.flags["llm"] == "rewritten" and out.flags["builtin_answer"] == "Yes"


def test_answer_without_or_with_unknown_citations_falls_back():
    for reply, reason in (("Yes, there is an effusion.", "citations dropped"),
                          ("Yes [made-up-case].", "unknown citation")):
        out = LLMRewriter(FakeListChatModel(responses=[reply])).rewrite_answer(_answer())
        assert out.text == "Yes" and reason in out.flags["llm_fallback"]


class _SlowModel(FakeListChatModel):
    def _call(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        time.sleep(2.0)
        return super()._call(*args, **kwargs)


def test_timeout_and_errors_fall_back_to_builtin():
    out = LLMRewriter(_SlowModel(responses=["Yes [synpic1]."]), timeout_s=0.2).rewrite_answer(_answer())
    assert out.text == "Yes" and out.flags["llm_fallback"].startswith("timeout")

    class Broken(FakeListChatModel):
        def _call(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise ConnectionError("server down")

    out = LLMRewriter(Broken(responses=["x"])).rewrite_answer(_answer())
    assert out.text == "Yes" and "ConnectionError" in out.flags["llm_fallback"]


def test_report_rewrite_must_cite_every_source():
    good = ("FINDINGS:\nA small pleural effusion on the left [c1]. There is no pneumothorax [c2].\n"
            "IMPRESSION:\nMost consistent with pneumonia [c1].")
    out = LLMRewriter(FakeListChatModel(responses=[good])).rewrite_report(_report())
    assert out.flags["llm"] == "rewritten"
    assert [s.case_id for s in out.findings] == ["c1", "c2"]
    assert out.impression[0].text == "Most consistent with pneumonia."
    dropped = "FINDINGS:\nA small pleural effusion on the left [c1].\nIMPRESSION:\nPneumonia [c1]."
    out = LLMRewriter(FakeListChatModel(responses=[dropped])).rewrite_report(_report())
    assert out.flags["llm_fallback"] == "citations dropped" and out.findings == _report().findings
    uncited = "FINDINGS:\nA small pleural effusion.\nNo pneumothorax [c2]."
    out = LLMRewriter(FakeListChatModel(responses=[uncited])).rewrite_report(_report())
    assert out.flags["llm_fallback"] == "citations dropped"
