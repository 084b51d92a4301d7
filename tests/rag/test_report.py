"""Report drafting: consensus through the graph, citations, concept de-duplication, contradictions, the no-KG
drafter, the config; and the text metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kgclip.errors import ConfigError
from kgclip.eval.report import bleu4, concept_f1, rouge_l
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import GraphExpander, case_weights, concept_support, content_words
from kgclip.rag.evidence import CaseHit
from kgclip.rag.report import DraftConfig, ReportSentence, draft_from_cases, split_sentences
from kgclip.testing import tiny_graph

EFFUSION, PTX, CARDIO = "RADLEX:RID4872", "RADLEX:RID5352", "RADLEX:RID1392"
CANCER, ADENO, PNEUMONIA = "DOID:1324", "DOID:3910", "DOID:552"
# Uniform votes, no word agreement: the tests below isolate the concept consensus.
KG_ONLY = DraftConfig(temperature=0.0, min_support=0.5, word_weight=0.0, max_findings=6)


def _hit(case_id, score, text, metadata=None):
    """A chest case (the drafter only drafts from cases of the query's body region)."""
    return CaseHit(case_id, score, text, metadata={"body_part": "CHEST", **(metadata or {})})


def _hits():
    return [
        _hit("case-a", 0.9, "Small left pleural effusion. Mild cardiomegaly.", metadata={"concepts": [PNEUMONIA]}),
        _hit("case-b", 0.8, "There is a pleural effusion on the left. No pneumothorax. Heart size normal."),
        _hit("case-c", 0.7, "No pleural effusion. Right lower lobe consolidation, suspicious for pneumonia.",
                metadata={"concepts": [PNEUMONIA]}),
    ]


def test_every_sentence_cites_its_case_and_concepts_are_not_repeated():
    g = tiny_graph()
    report = draft_from_cases(_hits(), tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    texts = [s.text for s in report.findings]
    assert texts == ["Small left pleural effusion."]  # the only finding at least 2 of 3 cases assert
    assert all(s.case_id in {"case-a", "case-b", "case-c"} for s in report.findings + report.impression)
    reasons = {s.text: why for s, why in report.removed}
    # The same concept from case-b adds nothing once case-a's sentence is in.
    assert reasons["There is a pleural effusion on the left."] == "concepts already reported"
    assert "contradicts" in reasons["No pleural effusion."]
    assert reasons["Heart size normal."] == "no finding concept"
    # Impression: the diagnosis concept two of the three cases carry, citing the nearest of them.
    assert report.impression[0].text == "Possible pneumonia, as in the cited similar cases."
    assert report.impression[0].case_id == "case-a"
    out = report.text()
    assert "FINDINGS:" in out and "[case-a]" in out
    assert "case-a" in report._repr_html_()


def test_consensus_beats_the_nearest_case_and_min_support_stops_the_draft():
    g = tiny_graph()
    hits = [_hit("near", 0.95, "Pneumothorax on the right."),
            _hit("b", 0.90, "Cardiomegaly."), _hit("c", 0.85, "Cardiomegaly is present."),
            _hit("d", 0.80, "Enlarged heart with cardiomegaly.")]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    # Only cardiomegaly (3 of 4 cases) clears min_support; the nearest case's lone pneumothorax does not.
    assert [s.text for s in report.findings] == ["Cardiomegaly."]
    assert report.findings[0].concepts == (CARDIO,)
    lenient = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g,
                               config=dataclasses.replace(KG_ONLY, min_support=0.1))
    assert {s.case_id for s in lenient.findings} == {"near", "b"}
    # order="case": the draft follows the source cases' ranks, not the gain.
    assert [s.case_id for s in lenient.findings] == ["near", "b"]


def test_graph_support_a_specific_mention_supports_its_ancestor():
    g = tiny_graph()
    expander = GraphExpander(g, hops=2)
    assert CANCER in expander.ancestors(ADENO) and expander.related(CANCER, ADENO)
    support = concept_support(["x", "y"], [[ADENO], [CANCER]], [[], []], np.ones(2), expander=expander, credit=0.5)
    assert support.pos(CANCER) == pytest.approx(0.75)  # y mentions it (1), x through the graph (0.5)
    assert support.pos(ADENO) == pytest.approx(0.5)  # a general mention does not support the specific one
    flat = concept_support(["x", "y"], [[ADENO], [CANCER]], [[], []], np.ones(2), expander=None)
    assert flat.pos(CANCER) == pytest.approx(0.5)
    hits = [_hit("x", 0.9, "Lung adenocarcinoma."), _hit("y", 0.8, "Lung cancer."),
            _hit("z", 0.7, "Epilepsy.")]
    cfg = dataclasses.replace(KG_ONLY, min_support=0.4)
    with_graph = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=cfg)
    assert [s.text for s in with_graph.findings] == ["Lung cancer."]  # 1.5 of 3 votes only with the graph
    no_hops = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=dataclasses.replace(cfg, graph_hops=0))
    assert no_hops.findings == []


def test_sentence_asserting_what_similar_cases_negate_is_removed():
    g = tiny_graph()
    hits = [_hit("a", 0.9, "Pneumothorax."), _hit("b", 0.8, "No pneumothorax. Cardiomegaly."),
            _hit("c", 0.7, "No pneumothorax. Cardiomegaly.")]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=dataclasses.replace(KG_ONLY,
                                                                                                  min_support=0.2))
    reasons = {s.text: why for s, why in report.removed}
    assert "mostly negate" in reasons["Pneumothorax."]
    assert [s.text for s in report.findings] == ["Cardiomegaly."]
    kept = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g,
                            config=dataclasses.replace(KG_ONLY, min_support=0.2, remove_contradictions=False))
    assert "Pneumothorax." in [s.text for s in kept.findings]


def test_case_weights_and_max_findings():
    assert case_weights([0.9, 0.5], 0.0).tolist() == [1.0, 1.0]
    w = case_weights([0.9, 0.5], 0.1)
    assert w[0] == 1.0 and w[1] == pytest.approx(np.exp(-4.0))
    g = tiny_graph()
    report = draft_from_cases(_hits(), tagger=ConceptTagger(g), graph=g,
                              config=dataclasses.replace(KG_ONLY, min_support=0.0), max_findings=2)
    assert len(report.findings) == 2


def test_without_kg_words_agree_and_text_is_deduplicated():
    hits = _hits() + [_hit("case-d", 0.6, "Mild cardiomegaly.")]
    cfg = DraftConfig(temperature=0.0, min_support=0.2, max_findings=10)
    report = draft_from_cases(hits, tagger=None, graph=None, config=cfg)
    texts = [s.text for s in report.findings]
    assert texts.count("Mild cardiomegaly.") == 1
    assert "Small left pleural effusion." in texts  # "pleural" and "effusion" appear in 3 of 4 cases
    reasons = {why for _, why in report.removed}
    assert "duplicate text" in reasons or "words already reported" in reasons
    assert all(not s.concepts for s in report.findings)  # no linking without the KG
    assert content_words("The effusion is seen in the left lung.") == ["effusion", "left", "lung"]


def test_split_sentences_and_config():
    assert split_sentences("A b c. D e f.\nG h i") == ["A b c.", "D e f.", "G h i."]
    assert split_sentences("• Left lung volume loss. • Mass in the hilum.") == ["Left lung volume loss.",
                                                                                 "Mass in the hilum."]
    assert split_sentences("- Cholesteatoma of the left ear - Extends medially") == [
        "Cholesteatoma of the left ear.", "Extends medially."]
    cfg = DraftConfig(max_findings=3)
    assert DraftConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"min_support": 1.5}, {"order": "random"}, {"max_findings": 0}, {"word_weight": -1.0}):
        with pytest.raises(ConfigError):
            DraftConfig(**bad)


def test_metrics():
    assert bleu4(["the heart is normal in size"], ["the heart is normal in size"]) > 0.99
    assert bleu4(["completely different words here"], ["the heart is normal in size"]) < 0.1
    assert rouge_l("heart normal", "the heart is normal") > 0.5
    assert rouge_l("", "x") == 0.0
    assert concept_f1({"a", "b"}, {"b", "c"}) == 0.5
    assert concept_f1(set(), set()) == 1.0


# --- sections, regions, laterality, impression, export, bad input (issue 14) ---------------------------------------


def test_history_lab_citations_and_qa_text_are_never_drafted():
    g = tiny_graph()
    note = ("History: 48-year-old male with fever and cough. PCR positive for influenza. "
            "Findings: Small left pleural effusion (Fig. 2). Impression: pneumonia.")
    hits = [_hit("a", 0.9, note), _hit("b", 0.8, "Findings: Pleural effusion on the left. Cardiomegaly."),
            _hit("q", 0.85, "Is there a pleural effusion: yes. What lobe of the brain is the lesion located in: "
                            "Right frontal lobe.", {"text_source": "qa"})]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    texts = [s.text for s in report.findings]
    assert texts and all("year-old" not in t and "PCR" not in t and "Fig" not in t and ":" not in t for t in texts)
    assert texts[0] == "Small left pleural effusion."
    assert all(s.source == "findings" for s in report.findings)
    # The similar case's impression (pneumonia) supports the impression line, which cites it.
    assert report.impression and "pneumonia" in report.impression[0].text
    assert "a" in report.impression[0].citations


def test_a_draft_keeps_to_the_query_region_and_says_so_when_it_cannot():
    g = tiny_graph()
    chest = [_hit("c1", 0.9, "Pleural effusion. Lung consolidation."), _hit("c2", 0.8, "Pleural effusion.")]
    head = [CaseHit("h1", 0.95, "Brain lesion with epilepsy.", metadata={"body_part": "HEAD"})]
    report = draft_from_cases(head + chest, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="CHEST")
    assert report.region == ("chest",) and report.region_source == "query"
    assert {h.case_id for h in report.similar_cases} == {"c1", "c2"}  # the head case is never drafted from
    assert [s.case_id for s in report.findings] == ["c1"]
    none = draft_from_cases(head, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="CHEST")
    assert none.findings == [] and none.notice == "no similar chest cases to draft from"
    assert "No similar chest cases to draft from." in none.text()
    # A chest case whose sentence names brain anatomy: that sentence is removed, with the reason.
    mixed = [_hit("c3", 0.9, "Pleural effusion. Brain lesion."), _hit("c4", 0.8, "Brain lesion. Pleural effusion.")]
    kept = draft_from_cases(mixed, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest")
    assert [s.text for s in kept.findings] == ["Pleural effusion."]
    assert any("outside the chest region" in why for _, why in kept.removed)
    # max_cases: the nearest of the query's region, however far down the hits they are (the Engine passes ten
    # times the cases it drafts from).
    many = head * 3 + chest + [_hit("c5", 0.7, "Pleural effusion.")]
    two = draft_from_cases(many, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="CHEST", max_cases=2)
    assert [h.case_id for h in two.similar_cases] == ["c1", "c2"]


def test_without_query_region_the_similar_cases_vote_and_no_region_is_a_notice():
    g = tiny_graph()
    report = draft_from_cases(_hits(), tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    assert report.region == ("chest",) and "vote" in report.region_source
    bare = [CaseHit("x", 0.9, "Pneumothorax."), CaseHit("y", 0.8, "Pneumothorax.")]  # nothing places them
    out = draft_from_cases(bare, tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    assert out.findings == [] and "no body region" in out.notice
    # The organ a finding's name names places it (the pleura): such cases vote for the chest.
    named = [CaseHit("x", 0.9, "Pleural effusion."), CaseHit("y", 0.8, "Pleural effusion.")]
    out = draft_from_cases(named, tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    assert out.region == ("chest",) and [s.text for s in out.findings] == ["Pleural effusion."]
    qa_only = [_hit("q", 0.9, "Is there an effusion: yes.", {"text_source": "qa"})]
    empty = draft_from_cases(qa_only, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest")
    assert empty.findings == [] and "no findings" in empty.notice and "chest" in empty.notice


def test_modality_and_laterality_contradictions_are_removed():
    g = tiny_graph()
    hits = [_hit("a", 0.9, "US: Left pleural effusion. CT: Right pleural effusion.", {"modality": "CT"}),
            _hit("b", 0.8, "Left pleural effusion with consolidation.", {"modality": "CT"}),
            _hit("m", 0.85, "Left pleural effusion.", {"modality": "MR"})]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=dataclasses.replace(
        KG_ONLY, min_support=0.3, keep_modality=True), query_modality="CT", query_region="chest")
    assert "m" not in {h.case_id for h in report.similar_cases}
    # Effusion and consolidation gain most; the nearest case's right-sided effusion then contradicts its side.
    assert [s.text for s in report.findings] == ["Left pleural effusion with consolidation."]
    reasons = {s.text: why for s, why in report.removed}
    assert "describes US" in reasons["Left pleural effusion."]
    assert reasons["Right pleural effusion."] == "gives the right side where [b] gives the other"


def test_impression_is_never_a_symptom_and_cites_cases_and_facts():
    g = tiny_graph()
    hits = [_hit("a", 0.9, "Consolidation. Cough.", {"diagnosis": "Pneumonia"}),
            _hit("b", 0.8, "Consolidation with cough.", {"diagnosis": "Pneumonia"})]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=dataclasses.replace(KG_ONLY,
                                                                                                  max_impression=3))
    texts = [s.text for s in report.impression]
    assert texts[0] == "Possible pneumonia, as in the cited similar cases."
    assert not any("Consider" in t or "cough" in t.lower() for t in texts)
    assert set(report.impression[0].citations) == {"a", "b"}


def test_fhir_export_and_plain_text():
    g = tiny_graph()
    report = draft_from_cases(_hits(), tagger=ConceptTagger(g), graph=g, config=KG_ONLY)
    fhir = report.to_fhir(subject="Patient/p1", names={c.id: c.name for c in g.concepts()})
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "preliminary"
    obs = {o["id"]: o for o in fhir["contained"]}
    assert obs["f1"]["valueString"] == "Small left pleural effusion."
    assert obs["f1"]["derivedFrom"][0]["identifier"]["value"] == "case-a"
    assert [r["reference"] for r in fhir["result"]] == ["#f1", "#i1"]
    assert fhir["conclusionCode"][0]["coding"][0]["code"] == "552"
    import base64
    import json

    assert "[case-a]" in base64.b64decode(fhir["presentedForm"][0]["data"]).decode()
    json.dumps(fhir)  # JSON-ready
    assert report.text(citations=False).startswith("FINDINGS:\nSmall left pleural effusion.")


def test_a_ct_draft_describes_no_radiograph_by_default():
    """A case's findings cover all its studies; the draft keeps to the query's modality unless told otherwise."""
    g = tiny_graph()
    hits = [_hit("a", 0.9, "Chest radiograph demonstrates a right pleural effusion. Right pleural effusion on CT.",
                  {"modality": "CT"}),
            _hit("b", 0.8, "Right pleural effusion.", {"modality": "CT"})]
    config = dataclasses.replace(DraftConfig(), prior_mix=0.0, min_support=0.3)
    assert config.keep_modality
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=config, query_modality="CT",
                              query_region="chest")
    drafted = [s.text for s in report.findings]
    assert drafted and not any("radiograph" in t for t in drafted)
    assert any("describes XR" in why for _, why in report.removed)
    loose = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, query_modality="CT", query_region="chest",
                             config=dataclasses.replace(config, keep_modality=False))
    assert not any("describes XR" in why for _, why in loose.removed)


def test_other_modality_compares_normalised_known_modalities():
    from kgclip.rag.report_scope import other_modality

    assert other_modality("XR", "CT") and other_modality("MR", "CT")
    assert not other_modality("MR", "MRI") and not other_modality("CT", "CT")
    assert not other_modality("", "CT") and not other_modality("XR", None)  # unknown on either side: no verdict


def test_anchored_draft_describes_what_its_impression_names():
    from kgclip.eval.report import impression_supported

    g = tiny_graph()
    hits = [_hit("e1", 0.9, "Small left pleural effusion."), _hit("e2", 0.88, "Left pleural effusion."),
            _hit("e3", 0.86, "Pleural effusion on the left."),
            _hit("p1", 0.8, "Consolidation of the right lower lobe.", {"diagnosis": "Pneumonia"})]
    cfg = dataclasses.replace(KG_ONLY, max_impression=1, min_support=0.2, max_findings=1, anchor_impression=False)
    collage = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=cfg)
    # The consensus drafts the effusion; the impression names the one diagnosed case's pneumonia.
    assert [s.case_id for s in collage.findings] == ["e1"]
    assert collage.impression[0].concepts == (PNEUMONIA,) and impression_supported(collage) is False
    anchored = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g,
                                config=dataclasses.replace(cfg, anchor_impression=True))
    assert [s.text for s in anchored.findings] == ["Consolidation of the right lower lobe."]
    assert anchored.impression[0].concepts == (PNEUMONIA,) and "p1" in anchored.impression[0].citations
    assert impression_supported(anchored) is True
    # Nothing to anchor without a diagnosed case: the same draft as without the option.
    plain = [h for h in hits if h.case_id != "p1"]
    assert ([s.text for s in draft_from_cases(plain, tagger=ConceptTagger(g), graph=g,
                                              config=dataclasses.replace(cfg, anchor_impression=True)).findings]
            == [s.text for s in draft_from_cases(plain, tagger=ConceptTagger(g), graph=g, config=cfg).findings])


def test_a_differential_is_never_the_leads_is_a_parent():
    from kgclip.ontology.model import Concept, ConceptGraph, Relation

    chain = [("DOID:4", "disease"), ("DOID:1", "respiratory system disease"), ("DOID:2", "lung disease"),
             ("DOID:3", "lung cancer"), ("DOID:5", "lung adenocarcinoma")]
    records = [Concept(id=c, name=n, source="doid") for c, n in chain]
    records += [Relation(chain[i + 1][0], "is_a", chain[i][0]) for i in range(len(chain) - 1)]
    records += [Concept(id="DOID:6", name="pneumonia", source="doid"), Relation("DOID:6", "is_a", "DOID:2"),
                Concept(id="RADLEX:RID5", name="clinical finding", source="radlex"),
                Concept(id="RADLEX:RID39", name="mass", source="radlex"),
                Relation("RADLEX:RID39", "is_a", "RADLEX:RID5")]
    g = ConceptGraph.from_records(records, name="chain")
    hits = [_hit("a", 0.9, "Spiculated mass.", {"diagnosis": "Lung adenocarcinoma"}),
            _hit("b", 0.85, "Mass in the right upper lobe.", {"diagnosis": "Lung adenocarcinoma"}),
            _hit("c", 0.8, "Mass.", {"diagnosis": "Pneumonia"})]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g,
                              config=dataclasses.replace(KG_ONLY, max_impression=2))
    # "lung cancer" (the lead's parent, with half of both votes) outscores pneumonia, but says nothing new.
    assert [s.text for s in report.impression] == ["Possible lung adenocarcinoma, as in the cited similar cases.",
                                                   "Differential diagnosis includes pneumonia."]


def test_an_impression_never_names_a_disease_under_a_finding_the_draft_negates():
    from kgclip.ontology.model import Concept, ConceptGraph, Relation
    from kgclip.rag.consensus import ConceptSupport
    from kgclip.rag.impression import reason_impression

    chain = [("DOID:4", "disease"), ("DOID:1", "respiratory system disease"), ("DOID:2", "lung disease"),
             ("DOID:3", "lung cancer"), ("DOID:5", "lung adenocarcinoma")]
    records = [Concept(id=c, name=n, source="doid") for c, n in chain]
    records += [Relation(chain[i + 1][0], "is_a", chain[i][0]) for i in range(len(chain) - 1)]
    records += [Concept(id="DOID:6", name="pneumonia", source="doid"), Relation("DOID:6", "is_a", "DOID:2")]
    g = ConceptGraph.from_records(records, name="chain")
    expander = GraphExpander(g, hops=1)  # the drafter's own depth: the negation still reaches 3 levels down
    args = (["a", "b"], [["DOID:5"], ["DOID:6"]], np.array([0.6, 0.4]), ConceptSupport(), expander)

    def named(negated):
        return [x.concept for x in reason_impression([], *args, negated, 2)]

    assert named(set()) == ["DOID:5", "DOID:6"]
    # "No lung cancer": adenocarcinoma (is-a lung cancer) is ruled out with it; pneumonia is not.
    assert named({"DOID:3"}) == ["DOID:6"]
    # "No lung disease" rules out both, two is-a levels down ("no IBD" and Crohn's disease in one draft).
    assert named({"DOID:2"}) == []
    # A negated specific disease says nothing of its class: "no adenocarcinoma" leaves lung cancer possible.
    assert named({"DOID:5"}) == ["DOID:6", "DOID:3"]


def test_an_impression_never_names_a_disease_of_an_organ_the_findings_call_normal():
    """"Normal appendix." drafted from one case, "Possible appendicitis" from the others'
    diagnoses: the tagger reads the organ as negated, which no is-a link joins to appendicitis."""
    from kgclip.ontology.model import Concept, ConceptGraph, Relation
    from kgclip.rag.consensus import ConceptSupport
    from kgclip.rag.impression import reason_impression

    chain = [("DOID:4", "disease"), ("DOID:1", "gastrointestinal system disease"), ("DOID:2", "appendix disease"),
             ("DOID:3", "appendicitis"), ("DOID:7", "acute appendicitis")]
    records = [Concept(id=c, name=n, source="doid") for c, n in chain]
    records += [Relation(chain[i + 1][0], "is_a", chain[i][0]) for i in range(len(chain) - 1)]
    records += [Concept(id="DOID:6", name="colitis", source="doid"), Relation("DOID:6", "is_a", "DOID:1"),
                Concept(id="DOID:8", name="mucocele", source="doid"), Relation("DOID:8", "is_a", "DOID:1"),
                Relation("DOID:8", "located_in", "RID:1"),
                Concept(id="RID:1", name="appendix", source="radlex"), Concept(id="RID:2", name="colon",
                                                                                 source="radlex")]
    g = ConceptGraph.from_records(records, name="appendix")
    args = (["a", "b", "c"], [["DOID:7"], ["DOID:6"], ["DOID:8"]], np.array([0.5, 0.3, 0.2]), ConceptSupport(),
            GraphExpander(g, hops=1))

    def named(*findings):
        return [x.concept for x in reason_impression(list(findings), *args, set(), 3)]

    assert named() == ["DOID:7", "DOID:6", "DOID:8"]
    normal = ReportSentence("Normal appendix.", "a", 1.0, (), ("RID:1",))
    assert named(normal) == ["DOID:6"]  # by the name above it, and by its location
    # Not normal: the organ only negated ("No appendix is seen" after an appendectomy says nothing of the others),
    # or asserted in another drafted sentence, or in one sentence with a disease.
    assert named(ReportSentence("No appendix is seen.", "a", 1.0, (), ("RID:1",))) == ["DOID:7", "DOID:6", "DOID:8"]
    beside = ReportSentence("A dilated appendix.", "b", 1.0, ("RID:1",), ())
    assert sorted(named(normal, beside)) == ["DOID:6", "DOID:7", "DOID:8"]
    assert {"DOID:3", "DOID:7"} & set(named(ReportSentence("Normal colon, appendicitis.", "a", 1.0, ("DOID:3",),
                                                           ("RID:2",))))
    assert named(ReportSentence("The colon is unremarkable.", "a", 1.0, (), ("RID:2",))) == ["DOID:7", "DOID:6",
                                                                                              "DOID:8"]


def test_vote_region_keeps_every_region_the_share_supports_and_modality_is_voted():
    from kgclip.rag.report_scope import vote_modality, vote_region

    weights = np.array([0.5, 0.3, 0.2])
    both = frozenset({"spine", "limb"})
    # Cases labelled "Spine and Muscles" vote for both regions: a tie is both, not the first by name.
    assert vote_region([both, both, frozenset({"chest"})], weights, 0.5) == both
    assert vote_region([frozenset({"chest"}), frozenset({"head"}), frozenset({"limb"})], weights, 0.6) == frozenset()
    assert vote_region([], np.zeros(0), 0.5) == frozenset()
    hits = [CaseHit(c, s, "x", metadata={"modality": m}) for c, s, m in (("a", 0.9, "MRI"), ("b", 0.8, "MR"),
                                                                          ("c", 0.7, "CT"))]
    assert vote_modality(hits, weights, 0.5) == "MR"  # names are normalised before they are counted
    assert vote_modality(hits, weights, 0.9) == ""
    assert vote_modality([CaseHit("d", 0.9, "x")], np.ones(1), 0.5) == ""  # no stored modality, no vote


def test_without_header_modality_the_similar_cases_vote_it_and_the_draft_keeps_to_it():
    g = tiny_graph()
    hits = [_hit("a", 0.9, "Left pleural effusion.", {"modality": "CT"}),
            _hit("b", 0.85, "Left pleural effusion with consolidation.", {"modality": "CT"}),
            _hit("c", 0.82, "Pleural effusion.", {"modality": "CT"}),
            _hit("m", 0.8, "Lung consolidation.", {"modality": "MR"})]
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest")
    assert report.modality == "CT" and report.modality_source == "similar cases' modalities (weighted vote)"
    assert "m" not in {h.case_id for h in report.similar_cases}
    assert report.to_dict()["modality_source"] == report.modality_source
    given = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest",
                             query_modality="MR")
    assert given.modality == "MR" and given.modality_source == "query"
    # A modality classifier decides from MODALITY_THRESHOLD (0.6) on, below the region's 0.9.
    sure = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest",
                            image_labels={"modality": {"MR": 0.65, "CT": 0.35}})
    assert sure.modality == "MR" and sure.modality_source.startswith("modality classifier (MR 0.65")
    unsure = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=KG_ONLY, query_region="chest",
                              image_labels={"modality": {"MR": 0.55, "CT": 0.45}})
    assert unsure.modality == "CT" and "vote" in unsure.modality_source


def test_impression_lines_resting_on_drafted_findings_lead():
    from types import SimpleNamespace

    from kgclip.rag.impression import ImpressionLine, supported_first

    g = tiny_graph()
    dx = [c for c in g.ids if g.name_of(c)][:3]
    lines = [ImpressionLine("Possible a, as in the cited similar cases.", dx[0], 0.6, ("x",), ()),
             ImpressionLine("Differential diagnosis includes b.", dx[1], 0.4, ("y",), ()),
             ImpressionLine("Differential diagnosis includes c.", dx[2], 0.3, ("z",), ("c is reported",))]
    findings = [SimpleNamespace(case_id="y")]
    out = supported_first(lines, findings, None, g)
    # b cites the case a drafted finding comes from, c has a fact from one; a rests on neither and goes last.
    assert [x.concept for x in out] == [dx[1], dx[2], dx[0]]
    assert out[0].text == f"Possible {g.name_of(dx[1])}, as in the cited similar cases."
    assert out[2].text == f"Differential diagnosis includes {g.name_of(dx[0])}."
    anchored = supported_first(lines, [], dx[0], g)  # the anchored diagnosis rests on its anchor sentence
    assert [x.concept for x in anchored] == [dx[0], dx[2], dx[1]]


def _limb_graph():
    from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation

    names = {"A:1": "anatomical entity", "A:2": "knee joint", "A:3": "shoulder", "A:4": "joint effusion",
             "A:5": "rotator cuff of shoulder", "A:6": "femur", "A:7": "fracture", "A:8": "finding"}
    parents = {"A:2": "A:1", "A:3": "A:1", "A:5": "A:1", "A:6": "A:1", "A:4": "A:8", "A:7": "A:8"}
    return ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                     + [Relation(c, IS_A, p) for c, p in parents.items()])


def _limb_hit(case_id, score, text, label):
    return CaseHit(case_id, score, text, metadata={"body_part": label})


def test_a_knee_is_not_drafted_from_shoulder_cases_or_sentences():
    g = _limb_graph()
    hits = [_limb_hit("shoulder-1", 0.95, "Rotator cuff of shoulder fracture. Joint effusion.", "SHOULDER"),
            _limb_hit("knee-1", 0.9, "Knee joint effusion. Shoulder joint effusion is also seen.", "KNEE"),
            _limb_hit("knee-2", 0.85, "Knee joint effusion. Femur fracture.", "KNEE"),
            _limb_hit("knee-3", 0.8, "Femur fracture with knee joint effusion.", "KNEE")]
    config = dataclasses.replace(KG_ONLY, min_support=0.3)
    report = draft_from_cases(hits, tagger=ConceptTagger(g), graph=g, config=config, query_region="KNEE")
    assert report.region == ("lower limb",) and "lower limb: query" in report.region_source
    assert "shoulder-1" not in {h.case_id for h in report.similar_cases}  # the other part of the limb
    assert report.findings and not any("houlder" in s.text for s in report.findings)
    assert any("other limb part" in why for _, why in report.removed)  # knee-1's shoulder sentence
    # Without a part in the label, the nearest cases' anatomy decides it when they agree...
    unlabelled = [dataclasses.replace(h, metadata={"body_part": "Musculoskeletal"}) for h in hits[1:]]
    voted = draft_from_cases(unlabelled, tagger=ConceptTagger(g), graph=g, config=config,
                             query_region="Musculoskeletal")
    assert voted.region == ("lower limb",) and "similar cases' anatomy" in voted.region_source
    # ...and nothing is decided when they do not: the shoulder case is then kept.
    split = [dataclasses.replace(h, metadata={"body_part": "Musculoskeletal"}) for h in (hits[0], hits[2])]
    undecided = draft_from_cases(split, tagger=ConceptTagger(g), graph=g, config=config,
                                 query_region="Musculoskeletal")
    assert undecided.region == ("limb",) and len(undecided.similar_cases) == 2
    # No case of the part: the notice names it.
    none = draft_from_cases(hits[:1], tagger=ConceptTagger(g), graph=g, config=config, query_region="KNEE")
    assert none.notice == "no similar lower limb cases to draft from" and not none.findings
