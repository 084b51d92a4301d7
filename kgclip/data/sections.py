"""Split report and case text into sections (history, comparison, technique, findings, impression) and sentences,
and tell which sentences may become part of a drafted report.

Only findings and impression sentences are drafted. A case's history, its exam and lab values, figure citations and
question/answer pairs never are. Text comes in many styles, all handled here:

* headed sections, upper or lower case, on their own line or run into one line (``FINDINGS: ... IMPRESSION: ...``,
  ``History: ...``, ``Comparison: ...``, ``findings:``);
* numbered impressions (``1. Pneumonia. 2. Small effusion.``, ``1) ...``);
* modality sub-headings inside findings (``CT: ... US: ...``), kept with each sentence so a drafter can keep to the
  query's modality;
* no headers at all (clinical notes, free text): each sentence is classified on its own, and history-like
  sentences (age and sex, "presents with", lab values) are kept out of the findings.

>>> s = split_sections("History: 48-year-old male with fever. FINDINGS: Right lower lobe opacity (Fig. 2). "
...                    "IMPRESSION: 1. Pneumonia. 2. No effusion.")
>>> s.history, s.findings
('48-year-old male with fever.', 'Right lower lobe opacity (Fig. 2).')
>>> [x.text for x in report_sentences(s.impression, section="impression")]
['Pneumonia.', 'No effusion.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Sections", "SectionSentence", "SECTION_KINDS", "DRAFTABLE", "split_sections", "report_sentences",
           "sentence_kind", "case_sentences"]

SECTION_KINDS = ("history", "comparison", "technique", "findings", "impression", "other")
DRAFTABLE = frozenset({"findings", "impression"})

# Header words (lower case, single spaces) -> section kind. Longest first when matching.
_HEADERS: dict[str, str] = {
    "history": "history", "clinical history": "history", "patient history": "history", "hx": "history",
    "indication": "history", "indications": "history", "clinical indication": "history", "reason for exam":
    "history", "reason for examination": "history", "clinical information": "history", "clinical data": "history",
    "clinical details": "history", "presentation": "history", "exam": "history", "physical exam": "history",
    "labs": "history", "laboratory": "history", "chief complaint": "history",
    "comparison": "comparison", "comparisons": "comparison", "prior": "comparison", "priors": "comparison",
    "technique": "technique", "procedure": "technique", "protocol": "technique", "examination": "technique",
    "findings": "findings", "finding": "findings", "observations": "findings", "description": "findings",
    "impression": "impression", "impressions": "impression", "conclusion": "impression", "conclusions":
    "impression", "opinion": "impression", "interpretation": "impression", "assessment": "impression",
    "diagnosis": "impression", "summary": "impression",
    "recommendation": "other", "recommendations": "other", "addendum": "other", "discussion": "other",
    "differential diagnosis": "other", "differential": "other", "treatment": "other", "follow up": "other",
    "note": "other", "notes": "other", "references": "other",
}
_HEADER_RE = re.compile(
    r"(?:^|(?<=[\n.;!?])|(?<=[.;!?]\s))\s*(" + "|".join(
        re.escape(h).replace(r"\ ", r"\s+") for h in sorted(_HEADERS, key=len, reverse=True)) + r")\s*:\s*",
    re.IGNORECASE)
# A header alone on its line without a colon, upper case ("FINDINGS\n").
_BARE_HEADER_RE = re.compile(r"(?m)^\s*(" + "|".join(h.upper().replace(" ", r"\s+") for h in _HEADERS) + r")\s*$")

# Modality sub-headings inside findings ("CT: ...", "MRI: ...", "US: ...").
_MODALITY_HEAD = {"ct": "CT", "cta": "CT", "hrct": "CT", "mr": "MR", "mri": "MR", "mra": "MR", "us": "US",
                  "ultrasound": "US", "sonography": "US", "doppler": "US", "cxr": "XR", "xr": "XR", "x-ray": "XR",
                  "xray": "XR", "radiograph": "XR", "radiographs": "XR", "plain film": "XR", "plain films": "XR",
                  "pet": "NM", "pet/ct": "NM", "nm": "NM", "nuclear medicine": "NM", "angiogram": "XA",
                  "angiography": "XA", "mammogram": "MG", "mammography": "MG"}
_MODALITY_RE = re.compile(r"(?i)(?:^|(?<=[\s.;]))(" + "|".join(
    re.escape(k) for k in sorted(_MODALITY_HEAD, key=len, reverse=True)) + r")\s*:\s*")
# The words that name a study's modality in running text (read by _modality_word).
_MODALITY_WORDS = r"(cts?|mris?|mr|ultrasound|sonograph\w*|radiographs?|x-rays?|cxrs?|plain films?|kub|pet)\b"
# A sentence that names its own modality as it opens ("CT of the chest reveals ...", "PA chest radiograph shows").
_MODALITY_OPEN = re.compile(r"(?i)^(?:the\s+|an?\s+|on\s+|axial\s+|coronal\s+|sagittal\s+|contrast[- ]enhanced\s+|"
                            r"non[- ]?contrast\s+|pa\s+|ap\s+|and\s+|lateral\s+|frontal\s+|portable\s+|chest\s+|"
                            r"abdominal\s+|pelvic\s+|head\s+|brain\s+|t[12][- ]weighted\s+)*" + _MODALITY_WORDS)
# Opening words -> modality (a plural as its singular: "CXRs show ...", "CTs demonstrate ...").
_OPEN_MODALITY = {"ct": "CT", "mr": "MR", "mri": "MR", "pet": "NM", "cxr": "XR", "kub": "XR"}
# A sentence naming, anywhere, the study its finding was seen on ("Increased volumes are seen on CXR.", "a fluid
# density on CT within the right upper quadrant"): 43 of MedPix train's 2,454 draftable findings sentences that do
# not open with their modality. One that names two ("enhancement at CT and MR") keeps no modality.
_MODALITY_SEEN = re.compile(r"(?i)\b(?:on|at|by)\s+(?:the\s+|an?\s+|prior\s+|previous\s+|follow[- ]?up\s+|"
                            r"subsequent\s+|initial\s+|repeat\s+|chest\s+|abdominal\s+|pelvic\s+|head\s+|"
                            r"contrast[- ]enhanced\s+|non[- ]?contrast\s+|pa\s+|ap\s+|lateral\s+|plain\s+|axial\s+|"
                            r"coronal\s+|sagittal\s+|t[12][- ]weighted\s+)*" + _MODALITY_WORDS)
_MODALITY_WORD = re.compile(r"(?i)\b" + _MODALITY_WORDS)
# A sentence that opens by pointing back at one before it ("It measures 8 mm.", "These findings are consistent
# with ...", "This lesion measures 2.8 cm."): drafted without its own case's sentence before it, it would point at
# another patient's finding. It still votes for its concepts; it is never drafted (:attr:`SectionSentence.dangling`).
# Also one naming a lesion as already known ("The mass has multiple foci of fat density.", "The lesion abuts ...";
# MedPix findings: 27 such sentences), one of several ("The largest measures 3.1 cm.", "The remainder of the liver
# ..."), or one pointing at the images beside it ("All confirm ...", "More lateral FSE ... shows ...", "Again, ...").
_DANGLING = re.compile(
    r"(?i)^(?:it|its|they|their|them|these|those|this|again"
    r"|the\s+(?:mass|masses|lesions?|tumou?rs?|nodules?|cysts?|abnormalit(?:y|ies)|process|largest|larger|smaller"
    r"|remainder|rest)|all\s+(?:confirm|show|demonstrate)|all\s+(?:of\s+)?(?:these|the\s+above)"
    r"|more\s+(?:lateral|medial|superior|inferior|anterior|posterior|cephalad|caudal|proximal|distal))\b")
# A figure label opening a caption ("Figure 1: Axial CT ...", "Image 2: ..."): a sentence break, not words of one.
# "Figure 1." counts only where a sentence starts ("... seen on image 3." keeps its words).
_FIGURE_LABEL = re.compile(r"(?im)\b(?:fig(?:ure)?s?|images?|imgs?|films?)\.?\s*#?\d{1,2}[a-z]?\s*:\s*"
                           r"|(?:^|(?<=[.!?]\s))\s*(?:fig(?:ure)?s?|images?|imgs?|films?)\.?\s*#?\d{1,2}[a-z]?\.\s+")

# Citations and pointers that are not part of a finding: "(Fig. 2)", "(figures 1a-c)", "[3]", "(arrow)".
_CITATION = re.compile(r"\s*(?:\((?:see\s+)?(?:figs?|figures?|images?|imgs?|panels?|tables?)\.?\s*[^()]{0,20}\)"
                       r"|\[\d+(?:[,\u2013-]\s*\d+)*\]|\((?:white |black |red |blue |yellow )?(?:arrows?|arrowheads?|"
                       r"asterisks?|circles?|stars?)[^()]{0,30}\))", re.IGNORECASE)
# Abbreviations whose period is not a sentence end.
_ABBREV = re.compile(r"\b(figs?|e\.g|i\.e|vs|approx|dr|no|nos|cf|etc|st|mr|mrs|ms|pt|yr|yrs|wk|wks|hr|hrs|min|mos?)\.",
                     re.IGNORECASE)
_DOT = "\u2024"  # placeholder for a protected period
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+|\s*[\u2022\u25cf\u25aa]\s*|\s+-\s+(?=[A-Z])|;\s+(?=[A-Z])")
_LIST_ITEM = re.compile(r"(?<!\S)(\d{1,2})[.)]\s+(?=[A-Za-z])")

_AGE = re.compile(r"(?i)\b\d{1,3}\s*-?\s*(?:year|yr|month|mo|week|wk|day)s?\s*-?\s*old\b|\b\d{1,3}\s*(?:yo|y/o|y\.o\.)"
                  r"(?=\W|$)|\b\d{1,3}\s*(?:yr|y)\s*(?:m|f|male|female)\b")
_HISTORY = re.compile(r"(?i)\b(?:present(?:s|ed|ing)\s+(?:with|to|for)|complain(?:s|ed|ing|t)|chief complaint|"
                      r"history of|h/o|was admitted|admitted (?:to|for|with)|was referred|referred (?:for|to|by)|"
                      r"denies|denied|on examination|physical exam\w*|vital signs|was treated|underwent|"
                      r"was brought|came to the|emergency (?:room|department)|symptoms? (?:of|for|since|began))\b")
_LAB = re.compile(r"(?i)\b(?:pcr|rt-pcr|wbc|white (?:blood )?(?:cell|count)|crp|c-reactive|esr|hemoglobin|hgb|hct|"
                  r"platelets?|creatinine|bun|troponin|d-dimer|inr|bilirubin|lipase|amylase|lactate|psa|cea|afp|"
                  r"ca-?125|hba1c|serum|serolog\w*|antibod\w*|antigen|titers?|cultures?|swab|lab(?:s|oratory)?|"
                  r"blood tests?|biopsy (?:showed|revealed|proven|confirmed)|pathology (?:showed|revealed)|"
                  r"tested (?:positive|negative)|(?:positive|negative) for (?:covid|sars|influenza|hiv|tb))\b"
                  r"|\b\d+(?:\.\d+)?\s*(?:mg/dl|mmol/l|g/dl|u/l|iu/l|meq/l|ng/ml|/mm3|cells/\S+|x\s*10\^?\d)"
                  r"|\b(?:temp|bp|hr|rr|spo2|o2 sat|pulse)\s*:?\s*\d")  # vital signs
_QA = re.compile(r"(?i)^(?:what|which|where|who|whom|whose|how|why|when|is|are|was|were|does|do|did|can|could|"
                 r"has|have|should|would|will|shall|may|might|must|name|describe|list)\b"
                 r"[^:?]{3,}[?:]\s*\S")


@dataclass(frozen=True)
class Sections:
    """A report or case text split into sections (each the section's text, ``""`` when absent).

    Attributes:
        headed: whether the text had section headers; without them everything that is not history-like is
            findings (see :func:`split_sections`).
    """

    history: str = ""
    comparison: str = ""
    technique: str = ""
    findings: str = ""
    impression: str = ""
    other: str = ""
    headed: bool = False

    def get(self, kind: str) -> str:
        return getattr(self, kind)


@dataclass(frozen=True)
class SectionSentence:
    """One sentence with the section it came from and the modality its sub-heading or opening names (``""``).

    ``kind`` is :func:`sentence_kind` of the text (``"finding"`` unless it reads as history, lab values, a
    question/answer pair or a fragment); ``draftable`` is true only for finding-like sentences of findings /
    impression.
    """

    text: str
    section: str
    kind: str = "finding"
    modality: str = ""

    @property
    def draftable(self) -> bool:
        return self.section in DRAFTABLE and self.kind == "finding"

    @property
    def dangling(self) -> bool:
        """Whether it opens by pointing back at an earlier sentence ("It measures 8 mm."): a drafter counts its
        concepts but does not draft it alone."""
        return bool(_DANGLING.match(self.text))


def _header_kind(raw: str) -> str:
    return _HEADERS[" ".join(raw.lower().split())]


def split_sections(text: str, *, default: str = "findings") -> Sections:
    """Split ``text`` at its section headers (see module docstring).

    Args:
        default: where text before the first header (or all text, without headers) goes. Without headers,
            history-like sentences (:func:`sentence_kind`) go to ``history`` instead.
    """
    if default not in SECTION_KINDS:
        raise ValueError(f"default must be one of {SECTION_KINDS}, got {default!r}")
    text = _BARE_HEADER_RE.sub(lambda m: m.group(1) + ":", text or "")
    parts: dict[str, list[str]] = {k: [] for k in SECTION_KINDS}
    marks = list(_HEADER_RE.finditer(text))
    if not marks:
        for sent in _sentences(text):
            parts["history" if sentence_kind(sent) in ("history", "lab") else default].append(sent)
        return Sections(**{k: " ".join(v) for k, v in parts.items()}, headed=False)
    lead = text[:marks[0].start()].strip()
    if lead:
        parts[default].append(lead)
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end].strip()
        if body:
            parts[_header_kind(m.group(1))].append(body)
    return Sections(**{k: " ".join(" ".join(v).split()) if k != "findings" and k != "impression" else
                       "\n".join(v).strip() for k, v in parts.items()}, headed=True)


def _protect(text: str) -> str:
    text = _CITATION.sub("", text)
    text = _FIGURE_LABEL.sub("\n", text)
    text = _ABBREV.sub(lambda m: m.group(1) + _DOT, text)
    return re.sub(r"(?<=\d)\.(?=\d)", _DOT, text)  # decimals: "1.5 cm"


def _unnumber(text: str) -> str:
    """Numbered list items ("1. A. 2. B.") on their own lines; numbers only count as items when they run 1, 2, ..."""
    marks = [m for m in _LIST_ITEM.finditer(text)]
    expected, keep = 1, []
    for m in marks:
        if int(m.group(1)) == expected:
            keep.append(m)
            expected += 1
    if len(keep) < 2 and not (keep and keep[0].start() == len(text) - len(text.lstrip())):
        return text
    out, last = [], 0
    for m in keep:
        out.append(text[last:m.start()])
        out.append("\n")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _sentences(text: str) -> list[str]:
    text = _unnumber(_protect(text or ""))
    out = []
    for part in _SPLIT.split(text):
        part = part.replace(_DOT, ".").strip(" \t-*\u2022:")
        if len(re.findall(r"[A-Za-z]", part)) < 3:
            continue
        out.append(part if part.endswith((".", "!", "?")) else part + ".")
    return out


# A heading left alone as a "sentence" ("Head.", "Axial T2.", "CT of the chest:"): at most three words besides
# connectives, all of them body areas, modalities, sequences, planes or report section words. A real finding that
# short always names one ("Cardiomegaly.", "Anterior mediastinal mass.").
_HEADING_WORDS = frozenset(
    "head neck chest thorax abdomen abdominal pelvis pelvic spine brain skull extremity extremities limb limbs breast "
    "cervical thoracic lumbar upper lower left right ct mr mri cxr xr x-ray xray radiograph radiographs film films "
    "plain us ultrasound sonography pet nm angiography angiogram fluoroscopy t1 t2 flair dwi adc gre swi axial "
    "coronal sagittal pa ap lateral view views image images imaging findings finding impression exam study "
    "contrast post pre".split())
_CONNECTIVES = frozenset("and of the a an with without".split())
# A sentence cut short: it ends on a word that cannot end one ("Plain film and.").
_CUT_SHORT = re.compile(r"(?i)\b(?:and|or|of|with|without|the|a|an|to|in|on|at|for|from|by|but|as|than)\s*[.:;,]?$")


def sentence_kind(sentence: str) -> str:
    """``"question"`` (a question, or a ``question: answer`` pair), ``"lab"`` (lab values, test results),
    ``"history"`` (age and sex, presentation, past history), ``"fragment"`` (a heading left alone, "Head.", or a
    sentence cut short, "Plain film and."), else ``"finding"``."""
    s = sentence.strip()
    words = [w for w in re.findall(r"[a-z0-9][a-z0-9-]*", s.lower()) if w not in _CONNECTIVES]
    if not words or (len(words) <= 3 and all(w in _HEADING_WORDS for w in words)) or _CUT_SHORT.search(s):
        return "fragment"
    if s.endswith("?") or _QA.match(s):
        return "question"
    if _LAB.search(s):
        return "lab"
    if _AGE.search(s) or _HISTORY.search(s):
        return "history"
    return "finding"


def _modality_word(word: str) -> str:
    """The modality a word names ("CXRs" -> XR, "MRI" -> MR, "sonographic" -> US)."""
    word = word.lower()
    return _OPEN_MODALITY.get(word, _OPEN_MODALITY.get(word.removesuffix("s"))) or (
        "US" if word.startswith(("ultra", "sono")) else "XR")


def report_sentences(text: str, *, section: str = "findings") -> list[SectionSentence]:
    """The sentences of one section's text, each with its :func:`sentence_kind` and the modality named by the
    sub-heading it falls under or by its own opening words."""
    out: list[SectionSentence] = []
    pieces = _MODALITY_RE.split(text or "")
    # re.split with one group: [before, head1, body1, head2, body2, ...]
    chunks = [("", pieces[0])] + [(_MODALITY_HEAD[pieces[i].lower()], pieces[i + 1])
                                  for i in range(1, len(pieces) - 1, 2)]
    for modality, chunk in chunks:
        for sent in _sentences(chunk):
            opening = _MODALITY_OPEN.match(sent)
            named = modality
            if opening:
                named = _modality_word(opening.group(1))
            elif not named:
                seen = {_modality_word(m.group(1)) for m in _MODALITY_WORD.finditer(sent)}
                named = seen.pop() if len(seen) == 1 and _MODALITY_SEEN.search(sent) else ""
            out.append(SectionSentence(sent, section, sentence_kind(sent), named))
    return out


def case_sentences(sections: Sections) -> list[SectionSentence]:
    """Every sentence of every section, in report order (history first); filter with ``.draftable``."""
    out: list[SectionSentence] = []
    for kind in SECTION_KINDS:
        out += report_sentences(sections.get(kind), section=kind)
    return out
