"""Draft confidence: the similar cases' agreement through the graph, its calibration, and declining to draft below
the threshold (notice, similar cases kept, sentences withheld), in text, HTML and FHIR."""

from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pytest

from kgclip.errors import ConfigError
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import GraphExpander
from kgclip.rag.draft_confidence import AGREEMENT_HOPS, VAL_MIN_CONFIDENCE, case_agreement, draft_confidence
from kgclip.rag.evidence import CaseHit
from kgclip.rag.report import DraftConfig, draft_from_cases
from kgclip.rag.report_export import CONFIDENCE_EXTENSION
from kgclip.testing import tiny_graph

EFFUSION, PTX, CARDIO = "RADLEX:RID4872", "RADLEX:RID5352", "RADLEX:RID1392"
CANCER, ADENO, PNEUMONIA, COUGH = "DOID:1324", "DOID:3910", "DOID:552", "SYMP:0000614"
# Uniform votes, concepts only: the tests isolate the agreement of the cases.
CFG = DraftConfig(temperature=0.0, min_support=0.3, word_weight=0.0, min_confidence=0.0)


def _hit(case_id, score, text):
    return CaseHit(case_id, score, text, metadata={"body_part": "CHEST"})


AGREE = [_hit("a1", 0.9, "Small left pleural effusion. Mild cardiomegaly."),
         _hit("a2", 0.8, "Pleural effusion on the left. Cardiomegaly."),
         _hit("a3", 0.7, "Left pleural effusion. Cardiomegaly is present.")]
# Each case another finding, from different branches of the graph (nothing shared within two is-a levels).
DISAGREE = [_hit("d1", 0.9, "Pneumothorax on the right."),
            _hit("d2", 0.8, "Chronic cough."),
            _hit("d3", 0.7, "Mass suspicious for lung adenocarcinoma.")]


def test_case_agreement_counts_overlap_through_the_graph():
    g = tiny_graph()
    ones = np.ones(3)
    assert case_agreement([[EFFUSION], [EFFUSION], [EFFUSION]], ones) == pytest.approx(1.0)
    assert case_agreement([[EFFUSION], [COUGH], [PNEUMONIA]], ones) == 0.0
    assert case_agreement([[EFFUSION]], np.ones(1)) == 0.0  # one case: nothing to agree with
    # Lung adenocarcinoma is-a lung cancer: through the graph the two cases share their cancer concept.
    exact = case_agreement([[ADENO], [CANCER]], np.ones(2))
    widened = case_agreement([[ADENO], [CANCER]], np.ones(2), GraphExpander(g, AGREEMENT_HOPS))
    assert exact == 0.0 and widened > 0.3
    # The drafter's own expander (1 level by default) gives the agreement's depth, memoised on it across drafts.
    drafting = GraphExpander(g, 1)
    assert drafting.with_hops(1) is drafting
    assert drafting.with_hops(AGREEMENT_HOPS) is drafting.with_hops(AGREEMENT_HOPS)
    assert drafting.with_hops(AGREEMENT_HOPS).hops == AGREEMENT_HOPS
    assert case_agreement([[ADENO], [CANCER]], np.ones(2), drafting.with_hops(AGREEMENT_HOPS)) == widened
    # Votes weigh the pairs: the agreeing pair counts more when its cases weigh more.
    sets = [[EFFUSION], [EFFUSION], [COUGH]]
    assert case_agreement(sets, np.array([1.0, 1.0, 0.1])) > case_agreement(sets, np.array([0.1, 1.0, 1.0]))
    assert 0.0 < draft_confidence(0.0) < draft_confidence(0.05) < draft_confidence(0.2) < 1.0


def test_cases_that_agree_give_a_more_confident_draft_than_cases_that_disagree():
    g = tiny_graph()
    agree = draft_from_cases(AGREE, tagger=ConceptTagger(g), graph=g, config=CFG)
    disagree = draft_from_cases(DISAGREE, tagger=ConceptTagger(g), graph=g, config=CFG)
    assert agree.findings and disagree.findings  # both drafted: threshold 0 never declines
    assert not agree.abstained and not disagree.abstained
    assert 0.0 <= disagree.confidence < agree.confidence <= 1.0
    assert disagree.agreement < agree.agreement
    assert disagree.confidence < VAL_MIN_CONFIDENCE <= agree.confidence  # the val-chosen threshold tells them apart
    # Without the KG there are no concepts to compare cases by: no confidence, never declined.
    nokg = draft_from_cases(DISAGREE, tagger=None, graph=None, config=dataclasses.replace(CFG, min_confidence=0.9))
    assert nokg.confidence is None and nokg.findings and not nokg.abstained


def test_below_the_threshold_the_draft_is_declined_with_a_notice_and_its_cases():
    g = tiny_graph()
    drafted = draft_from_cases(DISAGREE, tagger=ConceptTagger(g), graph=g, config=CFG)
    threshold = round(drafted.confidence + 0.1, 2)
    declined = draft_from_cases(DISAGREE, tagger=ConceptTagger(g), graph=g,
                                config=dataclasses.replace(CFG, min_confidence=threshold))
    assert declined.abstained and not declined.findings and not declined.impression
    assert declined.confidence == drafted.confidence
    assert declined.notice.startswith(f"similar cases disagree: cannot draft a reliable report (confidence "
                                      f"{drafted.confidence:.2f} < {threshold:.2f}")
    assert [h.case_id for h in declined.similar_cases] == ["d1", "d2", "d3"]  # still listed for the reader
    withheld = [s.text for s, why in declined.removed if why.startswith("withheld: similar cases disagree")]
    assert withheld == [s.text for s in drafted.findings + drafted.impression]
    text = declined.text()
    assert "Similar cases disagree: cannot draft a reliable report" in text and "[d1] [d2] [d3]" in text
    assert f"CONFIDENCE: {drafted.confidence:.2f}" in text
    html = declined._repr_html_()
    assert "Similar cases disagree" in html and "Confidence</b> " in html and "<details open>" in html
    fhir = declined.to_fhir()
    assert fhir["conclusion"] == declined.notice and "contained" not in fhir
    assert fhir["extension"] == [{"url": CONFIDENCE_EXTENSION, "valueDecimal": drafted.confidence}]
    assert "Similar cases disagree" in base64.b64decode(fhir["presentedForm"][0]["data"]).decode()


def test_a_drafted_report_shows_its_confidence_and_the_threshold_is_checked():
    g = tiny_graph()
    config = DraftConfig(min_confidence=VAL_MIN_CONFIDENCE)
    report = draft_from_cases(AGREE, tagger=ConceptTagger(g), graph=g, config=config)
    assert report.findings and not report.abstained and report.notice == ""
    assert report.text().endswith(f"CONFIDENCE: {report.confidence:.2f}")
    assert "CONFIDENCE" not in report.text(confidence=False)
    assert report.to_fhir()["extension"][0]["valueDecimal"] == report.confidence
    assert f"{report.confidence:.2f}" in report._repr_html_()
    with pytest.raises(ConfigError, match="min_confidence"):
        DraftConfig(min_confidence=1.5)
    # No similar case of the region: nothing to rest on, confidence 0, and the notice says why (not declined).
    empty = draft_from_cases(AGREE, tagger=ConceptTagger(g), graph=g, query_region="HEAD")
    assert empty.confidence == 0.0 and not empty.abstained and "no similar head cases" in empty.notice
    assert "CONFIDENCE" not in empty.text()  # nothing drafted: no number beside the notice
