"""The section splitter on the report styles kgclip meets: headed (upper / lower case, one line or many), numbered
impressions, modality sub-headings, clinical notes without headers; and which sentences may be drafted."""

from __future__ import annotations

import pytest

from kgclip.data.sections import case_sentences, report_sentences, sentence_kind, split_sections


def test_headed_radiology_report_on_separate_lines():
    text = ("EXAMINATION: CHEST (PA AND LAT)\nINDICATION: 48-year-old male with fever and cough.\n"
            "COMPARISON: Chest radiograph from XXXX.\nFINDINGS:\nThe heart size is normal. There is a right lower "
            "lobe consolidation (Fig. 2). No pleural effusion.\n\nIMPRESSION:\n1. Right lower lobe pneumonia.\n"
            "2. No pleural effusion.")
    s = split_sections(text)
    assert s.headed
    assert s.history == "48-year-old male with fever and cough."
    assert s.comparison == "Chest radiograph from XXXX."
    assert s.technique == "CHEST (PA AND LAT)"
    assert [x.text for x in report_sentences(s.findings)] == [
        "The heart size is normal.", "There is a right lower lobe consolidation.", "No pleural effusion."]
    assert [x.text for x in report_sentences(s.impression, section="impression")] == [
        "Right lower lobe pneumonia.", "No pleural effusion."]


def test_one_line_lower_case_headers_and_history_title_case():
    s = split_sections("History: 60-year-old woman presents with chest pain. findings: Left upper lobe collapse. "
                       "impression: obstructing mass.")
    assert s.history == "60-year-old woman presents with chest pain."
    assert s.findings == "Left upper lobe collapse."
    assert s.impression == "obstructing mass."
    draftable = [x.text for x in case_sentences(s) if x.draftable]
    assert draftable == ["Left upper lobe collapse.", "obstructing mass."]


def test_no_headers_keeps_history_and_labs_out_of_findings():
    note = ("48-year-old male with fever and cough for three days. PCR positive for SARS-CoV-2. WBC 14,000. "
            "Chest radiograph shows bilateral patchy opacities. No pleural effusion.")
    s = split_sections(note)
    assert not s.headed
    assert "opacities" in s.findings and "pleural effusion" in s.findings
    assert "48-year-old" in s.history and "PCR" in s.history and "WBC" in s.history
    assert "PCR" not in s.findings and "fever" not in s.findings


def test_numbers_that_are_not_a_list_stay_and_decimals_do_not_split():
    sents = [x.text for x in report_sentences("Lesion at T12. The mass measures 2.5 cm. Grade 3. Mild edema.")]
    assert sents == ["Lesion at T12.", "The mass measures 2.5 cm.", "Grade 3.", "Mild edema."]
    items = [x.text for x in report_sentences("1) Cholecystitis 2) Small hiatal hernia", section="impression")]
    assert items == ["Cholecystitis.", "Small hiatal hernia."]


def test_citations_and_figure_fragments_never_reach_a_sentence():
    sents = [x.text for x in report_sentences("Ring-enhancing lesion in the right frontal lobe (Fig. 2). "
                                              "Surrounding edema (arrows) [3]. See Figs. 1 and 2 for comparison.")]
    assert sents[0] == "Ring-enhancing lesion in the right frontal lobe."
    assert sents[1] == "Surrounding edema."
    assert not any(s.startswith("(Fig") or s in ("Fig.", "2).") for s in sents)


def test_modality_subheadings_and_openings():
    sents = report_sentences("CT: Large heterogeneous pelvic mass displacing the uterus. US: Enlarged right ovary. "
                             "Absent blood flow.")
    assert [(x.text, x.modality) for x in sents] == [
        ("Large heterogeneous pelvic mass displacing the uterus.", "CT"), ("Enlarged right ovary.", "US"),
        ("Absent blood flow.", "US")]
    opened = report_sentences("PA chest radiograph demonstrates left lung volume loss. CT of the chest reveals an "
                              "obstructing mass.")
    assert [x.modality for x in opened] == ["XR", "CT"]
    # Plurals name their modality too ("CXRs show ..." was drafted into a CT report).
    plural = report_sentences("CXRs show an opacity in the right lower lobe. CTs demonstrate a mass. MRIs show "
                              "edema. Plain films show a fracture. KUB shows dilated loops. Crohn disease is seen.")
    assert [x.modality for x in plural] == ["XR", "CT", "MR", "XR", "XR", ""]
    # The study a finding was seen on, named anywhere ("... seen on CXR." was drafted into a chest CT report);
    # a sentence naming two studies, or none, keeps no modality.
    seen = report_sentences("Increased volumes are seen on CXR. A fluid density on CT within the right upper "
                            "quadrant. Marked enhancement at CT and MRI. Pleural effusion on the left. No mass on "
                            "the prior sagittal T2-weighted MRI.")
    assert [x.modality for x in seen] == ["XR", "CT", "", "", "MR"]


def test_sentences_pointing_back_are_marked_dangling():
    sents = report_sentences("A 2 cm mass in the left kidney. It has internal fluid attenuation. These findings are "
                             "consistent with a cyst. This lesion measures 2.8 cm. Both kidneys enhance. Italic "
                             "itemised thistle.")
    assert [x.dangling for x in sents] == [False, True, True, True, False, False]
    assert all(x.draftable for x in sents)  # still findings: they vote, a drafter just does not draft them alone
    # A lesion named as already known, one of several, or a pointer at the images beside it (MedPix train sentences):
    # drafted for another patient each presumes what was never said.
    known = report_sentences("The mass has multiple foci of fat density. The lesion abuts the molar teeth. The largest "
                             "measures 3.1 cm. The remainder of the liver is normal. All confirm a polyostotic "
                             "process. More lateral FSE sagittal image shows a tear. Again, there is air. The massive "
                             "effusion is new. The masseter is normal. All of the small bowel loops are on the right.")
    assert [x.dangling for x in known] == [True] * 7 + [False] * 3


def test_a_figure_label_is_a_sentence_break_not_words_of_a_sentence():
    sents = report_sentences("Figure 1: Axial CT without contrast The noncontrast head CT revealed a subdural "
                             "hematoma. Image 1: Lower abdominal fluid collection s/p appendectomy Image 2: Successful "
                             "drain placement. Mass seen on image 3. Figure 2. Coronal CT shows a cyst.")
    assert [(x.text, x.modality) for x in sents] == [
        ("Axial CT without contrast The noncontrast head CT revealed a subdural hematoma.", "CT"),
        ("Lower abdominal fluid collection s/p appendectomy.", ""), ("Successful drain placement.", ""),
        ("Mass seen on image 3.", ""), ("Coronal CT shows a cyst.", "CT")]


@pytest.mark.parametrize("sentence, kind", [
    ("What lobe of the brain is the lesion located in: Right frontal lobe.", "question"),
    ("Is there a pleural effusion?", "question"),
    ("Would you describe the mass as cystic: yes.", "question"),
    ("The patient tested positive for COVID-19.", "lab"),
    ("Creatinine 2.1 mg/dL.", "lab"),
    ("A 73 yo man presenting with hematuria.", "history"),
    ("History of lung cancer.", "history"),
    ("Small left pleural effusion.", "finding"),
    ("No acute cardiopulmonary abnormality.", "finding"),
    ("Cardiomegaly.", "finding"),  # one word, but it names a finding
    ("Anterior mediastinal mass.", "finding"),
    ("Head.", "fragment"),  # a heading left alone: drafted, it read "Head. [MPX1318]"
    ("Axial T2 FLAIR:", "fragment"),
    ("CT of the chest.", "fragment"),
    ("Plain film and.", "fragment"),  # cut short
    ("The mass extends to the.", "fragment"),
])
def test_sentence_kinds(sentence, kind):
    assert sentence_kind(sentence) == kind


def test_bullets_and_bare_upper_case_headers():
    s = split_sections("FINDINGS\n\u2022  Left lung volume loss.\n\u2022  Elevation of the left mainstem bronchus.\n"
                       "IMPRESSION\nLeft upper lobe collapse.")
    assert [x.text for x in report_sentences(s.findings)] == ["Left lung volume loss.",
                                                             "Elevation of the left mainstem bronchus."]
    assert s.impression == "Left upper lobe collapse."


def test_empty_text():
    s = split_sections("")
    assert s.findings == "" and not s.headed
    assert report_sentences("") == []


@pytest.mark.data
def test_real_report_styles_iu_xray_and_medpix(shared_data):
    """IU X-ray sections as written (indication is history); MedPix History and Exam never reach the findings; the
    findings sentences of real reports are almost all finding-like (history / lab / question forms are rare)."""
    from kgclip.data.iu_xray import read_iu_xray
    from kgclip.data.medpix import read_medpix

    reports = read_iu_xray(shared_data / "iu-xray", require_findings=True)[:500]
    kinds = [s.kind for r in reports for s in report_sentences(r.sections.findings)]
    assert len(kinds) > 1000 and kinds.count("finding") / len(kinds) > 0.98
    assert all(r.sections.history == r.indication for r in reports)
    cases = list(read_medpix(shared_data / "medpix-2.0", split="train").cases.values())
    history = [s for c in cases for s in report_sentences(c.sections.history, section="history")]
    # By form alone, under half of the History / Exam sentences read as history (exam findings look like findings):
    # the section is what keeps them out of a draft, the form is the fallback for text without headers.
    assert sum(s.kind != "finding" for s in history) / len(history) > 0.4
    findings = [s for c in cases for s in report_sentences(c.findings)]
    assert sum(s.draftable for s in findings) / len(findings) > 0.97
