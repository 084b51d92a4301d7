"""Report drafting: citations, de-duplication by concept, contradiction removal, impression; the metrics."""

from __future__ import annotations

from kgclip.eval.report import bleu4, concept_f1, rouge_l
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit
from kgclip.rag.report import draft_from_cases, split_sentences
from kgclip.testing import tiny_graph


def _hits():
    return [
        CaseHit("case-a", 0.9, "Small left pleural effusion. Mild cardiomegaly.", metadata={"concepts": ["DOID:552"]}),
        CaseHit("case-b", 0.8, "There is a pleural effusion on the left. No pneumothorax. Heart size normal."),
        CaseHit("case-c", 0.7, "No pleural effusion. Right lower lobe consolidation, suspicious for pneumonia.",
                metadata={"concepts": ["DOID:552"]}),
    ]


def test_every_sentence_cites_its_case_and_concepts_are_not_repeated():
    g = tiny_graph()
    report = draft_from_cases(_hits(), tagger=ConceptTagger(g), graph=g)
    texts = [s.text for s in report.findings]
    assert texts[0] == "Small left pleural effusion."
    assert all(s.case_id in {"case-a", "case-b", "case-c"} for s in report.findings + report.impression)
    # "There is a pleural effusion on the left." repeats case-a's concept: dropped as a duplicate.
    assert "There is a pleural effusion on the left." not in texts
    # "No pleural effusion." contradicts the chosen positive sentence: removed, with the reason kept.
    assert "No pleural effusion." not in texts
    reasons = {s.text: why for s, why in report.removed}
    assert "contradicts" in reasons["No pleural effusion."]
    assert "No pneumothorax." in texts  # negated findings are reported too
    # Impression from the top diagnosis concept (DOID) of the similar cases, citing a case.
    assert report.impression and "pneumonia" in report.impression[0].text
    out = report.text()
    assert "FINDINGS:" in out and "[case-a]" in out
    assert "case-a" in report._repr_html_()


def test_without_kg_no_concept_dedupe_but_text_dedupe():
    hits = _hits() + [CaseHit("case-d", 0.6, "Mild cardiomegaly.")]
    report = draft_from_cases(hits, tagger=None, graph=None, use_kg=False, max_findings=10)
    texts = [s.text for s in report.findings]
    assert texts.count("Mild cardiomegaly.") == 1
    assert "No pleural effusion." in texts  # no contradiction check without the KG


def test_split_sentences_and_metrics():
    assert split_sentences("A b c. D e f.\nG h i") == ["A b c.", "D e f.", "G h i."]
    assert bleu4(["the heart is normal in size"], ["the heart is normal in size"]) > 0.99
    assert bleu4(["completely different words here"], ["the heart is normal in size"]) < 0.1
    assert rouge_l("heart normal", "the heart is normal") > 0.5
    assert rouge_l("", "x") == 0.0
    assert concept_f1({"a", "b"}, {"b", "c"}) == 0.5
    assert concept_f1(set(), set()) == 1.0
