"""Question routing: what a question asks about (its *kind*) and what shape of answer it wants (its *form*).

Each kind is answered by what can know it (see :mod:`kgclip.rag.vqa`): modality, plane and body region from the
DICOM header where present, else from the answerer; presence of a finding from the votes of similar cases and the
trained head; laterality / location, size / count and open descriptions from the trained answerer restricted to
answers *of that kind*, so "which side?" is never answered "Ribs". A question that names its options ("Is the CSF
radiolucent or radioopaque?", :func:`question_options`) is answered with one of them, never "yes" or "no" (VQA-RAD
``--split val``: closed 0.650 -> 0.666, overall 0.416 -> 0.426).

>>> route_question("Which side is the opacity on?")
Route(kind='laterality', form='open')
>>> route_question("Where is the mass?")
Route(kind='location', form='open')
>>> route_question("Is this an MRI?")
Route(kind='modality', form='yes/no')
>>> route_question("Is there a pleural effusion?")
Route(kind='presence', form='yes/no')

Modality questions about *how* the image was acquired carry a ``topic`` (:func:`question_topic`): ``contrast``
("Was contrast used?", "With or without contrast?", "Is this a noncontrast CT?", "Was oral contrast given?") or
``sequence`` ("T1 or T2?", "What MR sequence is this?", "Is this a FLAIR image?"). They are answered from the DICOM
header's contrast / sequence fields, else the contrast / sequence image classifiers, else the answerer
(:mod:`kgclip.rag.acquisition_qa`), never by the modality classifier.

>>> route_question("Was IV contrast given?").topic
'contrast'
>>> route_question("Is this a T1 or T2 weighted image?").topic
'sequence'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Route", "QuestionKind", "AnswerForm", "KINDS", "TOPICS", "route_question", "question_form",
           "question_topic", "answer_fits_kind", "HEADER_MODALITY", "question_options"]

QuestionKind = Literal["modality", "plane", "organ", "presence", "laterality", "location", "size_count", "open"]
AnswerForm = Literal["yes/no", "choice", "open"]
KINDS: tuple[QuestionKind, ...] = ("modality", "plane", "organ", "presence", "laterality", "location", "size_count",
                                   "open")

_AUX = ("is ", "are ", "does ", "do ", "was ", "were ", "can ", "could ", "has ", "have ", "will ", "should ",
        "would ", "did ", "am ", "shall ", "may ", "must ")
_LEAD = re.compile(r"^(in this image|in the image|on this image|on this scan|here|based on this image),?\s*")

# Ordered: the first kind whose pattern matches wins ("Is this a chest CT?" is about the modality).
_KIND_PATTERNS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    ("size_count", re.compile(r"\b(how many|how big|how large|how much|number of|count|size of|what size|"
                              r"measure|diameter|how long|how wide)\b")),
    ("laterality", re.compile(r"\b(which|what) side\b|\bleft or (the )?right\b|\bright or (the )?left\b|"
                              r"\blaterality\b|\bwhich (lung|kidney|hemisphere|breast|hemithorax|ovary|adrenal)\b")),
    ("location", re.compile(r"\bwhere\b|\blocat(ed|ion)\b|\bwhich (part|region|quadrant|lobe|segment)\b|"
                            r"\bwhat (lobe|quadrant|segment|level|part)\b")),
    ("plane", re.compile(r"\b(plane|axial|coronal|sagittal|transverse|projection|pa view|ap view|lateral view|"
                         r"(pa|ap) (film|image|radiograph|view)|taken (pa|ap))\b")),
    # "sequence" / "weighting" / "stir" alone ask about the MR acquisition too ("What sequence is this?" names no
    # modality); no VQA-RAD train question changes route with them.
    ("modality", re.compile(r"\b(modality|mri|mr|ct|cat scan|x ?-?rays?|radiograph\w*|ultrasound|sonograph\w*|"
                            r"contrast|t1|t2|flair|dwi|diffusion|weighted|weighting|sequence|stir|proton density|pet|"
                            r"angiogra\w*|fluoroscop\w*|mammogra\w*|"
                            r"imaging (technique|method|modality)|(kind|type) of (scan|image|imaging|study)|"
                            r"how (was|is) (this|the) (image|scan|picture) (taken|obtained|acquired))\b")),
    ("organ", re.compile(r"\b(organ|organ system|body part|part of the body|body region|anatomic\w* region|"
                         r"what (is|are) (shown|pictured|imaged|seen|visualized)|which structure|"
                         r"what structure|what anatomy)\b")),
)

# What an open answer of each kind looks like; used with the answers seen for that kind in training.
_ANSWER_PATTERNS: dict[str, re.Pattern[str]] = {
    "laterality": re.compile(r"\b(left|right|bilateral|both|midline|central|l|r)\b"),
    "plane": re.compile(r"\b(axial|coronal|sagittal|transverse|oblique|pa|ap|lateral|posteroanterior|"
                        r"anteroposterior|supine|upright|decubitus)\b"),
    "modality": re.compile(r"\b(ct|mri|mr|x ?ray|xray|radiograph\w*|ultrasound|us|t1|t2|flair|dwi|pet|"
                           r"contrast|angiogra\w*|fluoroscop\w*|mammogra\w*|weighted|gadolinium|iv|oral)\b"),
    "size_count": re.compile(r"\b(\d+(\.\d+)?(cm|mm)?|one|two|three|four|five|six|seven|eight|nine|ten|many|"
                             r"several|single|multiple|none|cm|mm|small|large|larger|smaller|enlarged|normal|half|"
                             r"less|more|wide|width|entire|whole)\b"),
}

# DICOM Modality (0008,0060) -> how answers name it. Only image modalities: RT/SR/ECG are refused before this.
HEADER_MODALITY = {"CT": "ct", "MR": "mri", "CR": "x ray", "DX": "x ray", "DR": "x ray", "RG": "x ray",
                   "US": "ultrasound", "MG": "mammography", "PT": "pet", "NM": "nuclear medicine",
                   "XA": "angiography", "RF": "fluoroscopy"}


@dataclass(frozen=True)
class Route:
    """Where a question goes.

    Attributes:
        kind: what it asks about (one of :data:`KINDS`).
        form: ``yes/no``, ``choice`` (it names the options: "CT or MRI?") or ``open``.
        topic: for ``modality`` questions about the acquisition, ``contrast`` or ``sequence``
            (:func:`question_topic`); else ``""``.
    """

    kind: QuestionKind
    form: AnswerForm
    topic: str = field(default="", repr=False)


def _clean(question: str) -> str:
    q = " ".join(question.lower().replace("-", " ").split())
    return _LEAD.sub("", q)


# Yes/no questions written without their auxiliary verb: "Any tracheal deviation present?", "Anything abnormal?",
# "Notice any abnormality in the kidneys?". Like "Is there X or Y?", an "or" in them still asks yes/no.
_ELLIPTIC_YES_NO = re.compile(r"^(any|anything|(do |did |can |could )?(you )?(notice|see|observe|find) any)\b")
# A leading clause before the question proper: "Besides the mass in the temporal horn, are there other ...?".
_LEAD_CLAUSE = re.compile(r"^(?P<lead>[^,]+),\s*(?P<rest>.+)$")
_WH = re.compile(r"\b(what|which|where|when|who|whom|whose|why|how)\b")


def _main_clause(q: str) -> str:
    """``q`` without a leading clause that holds no question word, when what follows it starts with an auxiliary
    verb ("besides the mass, are there other lesions" -> "are there other lesions"); else ``q``."""
    m = _LEAD_CLAUSE.match(q)
    if m and not _WH.search(m["lead"]) and not m["lead"].startswith(_AUX) and m["rest"].startswith(_AUX):
        return m["rest"]
    return q


def question_form(question: str) -> AnswerForm:
    """``yes/no`` for auxiliary-verb questions (also elliptic ones: "Any effusion?", and ones after a leading
    clause: "Besides the mass, are there other lesions?"), ``choice`` when they offer options ("... X or Y?"), else
    ``open``.

    Before the elliptic and leading-clause forms were read as yes/no they were open, and an open answer can never be
    "yes" / "no" (VQA-RAD train: 6 such questions, every one answered yes / no). ``--split val``, KG variant: closed
    0.661 -> 0.667, paired +0.006 [-0.002, 0.014] (5 of the 6 now right; the rest is refitting noise, 11 gained /
    5 lost in all), ECE 0.038 -> 0.033, abstention 0.076 -> 0.076.
    """
    q = _main_clause(_clean(question))
    if _ELLIPTIC_YES_NO.match(q):
        return "yes/no"
    if q.startswith(_AUX) or re.match(r"^(is|are|does|do|was|were|can|has|have|did)\b", q):
        # "Is there X or Y?" / "Can you see X or Y?" still ask yes/no (see _YES_NO_OR); only others offer options.
        return "choice" if re.search(r"\w,? or \w", q) and not _YES_NO_OR.match(q) else "yes/no"
    if re.search(r"\b(is|are) (this|these|the|it)\b.*\w,? or \w", q) or _WH_CHOICE.match(q):
        return "choice"
    return "open"


# A wh-question that offers its options after a comma or colon: "Which is highlighted, white or gray matter?",
# "What is denser, the mass or the surrounding tissue?". Read as open, they were answered with a concept of the
# similar cases ("lateral ventricle"); VQA-RAD marks them closed.
_WH_CHOICE = re.compile(r"^(?:what|which|where|how|who)\b[^,:]*[,:]\s*(?P<options>.*\w,? or \w.*)$")


# "... on this CT?", "... in this chest x-ray?": where to look, not what is asked. Left out when the kind is read, so
# "Is there acute blood present on this head CT?" asks about presence (the similar cases' findings vote), while "Is
# this a CT?" still asks about modality. VQA-RAD --split val: 12 questions move from modality to presence; closed
# 0.667 -> 0.667, ECE 0.033 -> 0.036, abstention 0.076 -> 0.075 (the per-kind figures now count them where they belong).
_WHERE_TO_LOOK = re.compile(r"\b(in|on) (this|the|these) (\w+ )?(mri?|ct|cat scan|x ?-?rays?|xray|film|radiograph|"
                            r"image|images|scan|study)( scan| image| radiograph)?\b")


def route_question(question: str) -> Route:
    """The kind and form of ``question`` (rules over its words; see the module docstring).

    A yes/no question that names no modality, plane, organ, side or size asks whether a finding is present.
    """
    q = _WHERE_TO_LOOK.sub(" ", _clean(question))
    form = question_form(question)
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(q):
            if kind == "location" and form == "yes/no":
                break  # "Is the mass located in the liver?" asks about presence at a place, answered yes/no
            return Route(kind, form, question_topic(question) if kind == "modality" else "")
    return Route("presence" if form == "yes/no" else "open", form)


TOPICS = ("contrast", "sequence")
_CONTRAST = re.compile(r"\b(non ?contrast|contrast|gadolinium|unenhanced|non ?enhanced|contrast enhanced)\b")
_SEQUENCE = re.compile(r"\b(t1|t2|flair|dwi|diffusion weighted|stir|proton density|pd weighted|(mri?|pulse|imaging) "
                       r"sequence|sequence|weighting|weighted)\b")
# Not about this image's acquisition: a finding ("leakage of contrast", "contrast between grey and white matter",
# "ring enhancing"), an explanation ("how can you tell ...") or general knowledge ("the best MRI weighting for ...").
_NOT_ACQUISITION = re.compile(r"\b(between|leak\w*|extravasat\w*|filling defect|how (can|do|would) (you|we|one)|"
                              r"how is|why|best|first imaging|recommend\w*|always|hyper ?intens\w*|hypo ?intens\w*)\b")


def question_topic(question: str) -> str:
    """``contrast`` or ``sequence`` when the question asks how the image was acquired, else ``""`` (VQA-RAD
    train: 71 closed contrast questions, 52 answered yes; 17 sequence questions)."""
    q = _clean(question)
    if _NOT_ACQUISITION.search(q):
        return ""
    if _CONTRAST.search(q):
        return "contrast"
    if _SEQUENCE.search(q):
        return "sequence"
    return ""


def answer_fits_kind(answer: str, kind: QuestionKind) -> bool:
    """Whether a (normalised) answer has the shape of an answer of ``kind`` (always true where no shape is known)."""
    pattern = _ANSWER_PATTERNS.get(kind)
    return True if pattern is None else bool(pattern.search(answer))


# "Is there X or Y?", "Can you see X or Y?": an "or" inside a question about existence or ability still asks yes/no
# (VQA-RAD train: "Are there epidural or subdural bleeds as well?" -> "No").
_YES_NO_OR = re.compile(r"^((is|are|was|were) there|(can|could) (you|we|one|a|an|the|this)|can|could)\b")
_NOT_AN_OPTION = frozenset(["the", "a", "an", "this", "that", "these", "it", "of", "in", "on", "to", "image", "film",
                            "scan", "picture", "patient", "s", "is", "are", "was", "were", "does", "do", "did"])


def _without_articles(words: list[str]) -> list[str]:
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return words


def _span_words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()


def question_options(question: str) -> list[tuple[str, ...]]:
    """The options a choice question names, each as its candidate spans, shortest first (``[]`` when it names
    none, or when its "or" sits in a yes/no question about existence: "Is there X or Y?").

    An option's first span is its key word: the last word before "or" (or before a comma of a list), the first
    word after it; longer spans add the words next to it, for answers written in full ("left side").

    >>> question_options("Is the mass hyperintense or hypointense?")
    [('hyperintense', 'mass hyperintense'), ('hypointense',)]
    >>> question_options("Is this a T1 weighted, T2 weighted, or FLAIR image?")[2]
    ('flair',)
    >>> question_options("Are there epidural or subdural bleeds?")
    []
    """
    q = _main_clause(_clean(question)).strip(" ?.!")
    if question_form(question) != "choice" or _YES_NO_OR.match(q):
        return []
    wh = _WH_CHOICE.match(q)
    if wh:  # the options follow the comma or colon; the question before it is not one
        q = wh["options"]
    head, sep, tail = q.rpartition(" or ")
    if not sep:
        return []
    parts = [p for p in head.split(",") if p.strip()]
    lefts = [_span_words(p) for p in parts] if len(parts) > 1 and all(len(_span_words(p)) <= 3
                                                                        for p in parts[1:]) else [_span_words(head)]
    options: list[tuple[str, ...]] = []
    for i, words in enumerate(lefts):
        words = [w for w in words if w not in ("or",)]
        # The first part of a list and a plain left side end at "or": their option is a suffix. A list's middle
        # parts are whole options.
        if i > 0:
            words = _without_articles(words)
        spans = [words[len(words) - k:] for k in range(1, min(3, len(words)) + 1)] if i == 0 else [words]
        options.append(tuple(" ".join(w) for w in spans
                             if w and w[0] not in _NOT_AN_OPTION and w[-1] not in _NOT_AN_OPTION))
    right = _without_articles(_span_words(tail))
    options.append(tuple(" ".join(right[:k]) for k in range(1, min(3, len(right)) + 1)
                         if right[0] not in _NOT_AN_OPTION and right[k - 1] not in _NOT_AN_OPTION))
    if (len(options) == 2 and options[0] and len(right) >= 2 and right[1] not in _NOT_AN_OPTION
            and options[0][0] not in right[1:3]):
        # "with or without contrast", "more or less dense": the words after the right option's first word are
        # shared, so the left option is also written with them ("with contrast", "more dense"). Not when the left
        # option already ends with them ("enhanced or non enhanced", "hyper dense or hypo dense").
        key = options[0][0]
        options[0] += tuple(f"{key} {' '.join(right[1:k])}" for k in range(2, min(3, len(right)) + 1))
    options = [o for o in options if o]
    return options if len(options) >= 2 else []
