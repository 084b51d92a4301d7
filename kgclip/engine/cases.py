"""The workspace's cases: one image with its text (findings, caption, or statements derived from its question/answer
pairs), how they are saved (``cases.json``), the metadata they carry in the vector tables, and how VQA-RAD-style
rows become cases and training questions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_json
from kgclip.data.vqa_rad import VQARadItem
from kgclip.errors import ArtifactCorruptError, InputFormatError
from kgclip.rag.answerer import question_kind

__all__ = ["Case", "save_cases", "load_cases", "case_meta", "case_from_row", "qa_statement", "cases_from_vqa_rad",
           "with_image_metadata"]

_MAX_ID_CHARS = 256
_MAX_TEXT_CHARS = 100_000
_TEXT_FIELDS = ("text", "findings", "impression", "modality", "body_part", "split")


@dataclass
class Case:
    """One case. ``image`` is a path relative to the workspace (or absolute)."""

    case_id: str
    image: str
    text: str = ""
    modality: str = ""
    body_part: str = ""
    qa: list[tuple[str, str]] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)  # linked, non-negated concept ids of ``text``
    split: str = "train"
    origin: str = "build"  # "build" (from the data a build reads) or "added" (add_cases: kept by rebuilds)
    # Report sections when the case has them (what a draft is made of); without them ``text`` is split into
    # sections (kgclip.data.sections), and a case whose text was made from ``qa`` is never drafted from.
    findings: str = ""
    impression: str = ""

    def __post_init__(self) -> None:
        if not self.text and (self.findings or self.impression):  # what search and linking read
            self.text = " ".join(p for p in (self.findings, self.impression) if p)


def save_cases(path: Path, cases: Sequence[Case]) -> None:
    atomic_write_json(path, [asdict(c) for c in cases])


def load_cases(path: Path) -> list[Case]:
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is missing or unreadable ({exc}); rebuild the workspace") from exc
    return [Case(**{**r, "qa": [tuple(x) for x in r.get("qa", [])]}) for r in rows]


def _text_field(row: Mapping[str, Any], key: str, where: str, limit: int, required: bool = False) -> str:
    value = row.get(key, "")
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputFormatError(f"{where}: {key!r} must be text, got {type(value).__name__} ({str(value)[:40]!r})")
    if required and not value.strip():
        raise InputFormatError(f"{where}: {key!r} is missing or empty; every case needs a case_id and an image")
    if len(value) > limit:
        raise InputFormatError(f"{where}: {key!r} has {len(value):,} characters, above the limit of {limit:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputFormatError(f"{where}: {key!r} is not valid UTF-8 text; re-save the input as UTF-8") from None
    return value


def case_from_row(row: Mapping[str, Any] | Case, where: str) -> Case:
    """A new :class:`Case` from a caller's row (``case_id``, ``image``, optional ``text``, ``findings``,
    ``impression``, ``modality``, ``body_part``, ``split``; other keys are ignored), checked field by field.

    Raises:
        InputFormatError: not a mapping, a required field missing, a field of the wrong type, too long or not text
            (``where`` names the row, e.g. ``"cases.jsonl line 3"``).
    """
    if isinstance(row, Case):
        row = asdict(row)
    if not isinstance(row, Mapping):
        raise InputFormatError(f"{where}: a case is a mapping with case_id, image and text, got {type(row).__name__}")
    case = Case(case_id=_text_field(row, "case_id", where, _MAX_ID_CHARS, required=True).strip(),
                image=_text_field(row, "image", where, 4096, required=True))
    for key in _TEXT_FIELDS:
        if key in row:
            setattr(case, key, _text_field(row, key, where, _MAX_TEXT_CHARS))
    case.split = case.split or "train"
    case.__post_init__()  # search and linking read ``text``: made from the sections when only they were given
    return case


def case_meta(case: Case) -> dict[str, Any]:
    """The metadata a case carries in both vector tables (filterable fields, text, linked concepts)."""
    return {"kind": "case", "case_id": case.case_id, "modality": case.modality, "body_part": case.body_part,
            "text": case.text, "concepts": list(case.concepts), "source": case.split}


def qa_statement(question: str, answer: str) -> str:
    """Turn a question and its answer into a findings-like sentence ("Is there X?" + no -> "There is no X.")."""
    q = " ".join(question.strip().rstrip("?. ").split())
    a = " ".join(str(answer).strip().rstrip(".").split())
    yn = a.lower() in ("yes", "no")
    if yn and question_kind(question) == "yes/no":
        neg = a.lower() == "no"
        m = re.match(r"(?i)^(is|are) there (?:an? |any )?(.+)$", q)
        if m:
            return f"There {m.group(1).lower()} {'no ' if neg else ''}{m.group(2)}."
        m = re.match(r"(?i)^(is|are) (?:the )?(.+?) (normal|enlarged|abnormal|present|visible|seen|dilated)"
                     r"(?: .*)?$", q)
        if m:
            return f"The {m.group(2)} {m.group(1).lower()} {'not ' if neg else ''}{m.group(3)}."
        m = re.match(r"(?i)^(?:does|do) (?:the |this )?(?:patient|image|scan|film) (?:have|show|demonstrate) "
                     r"(?:an? |any )?(.+)$", q)
        if m:
            return f"{'No' if neg else 'There is'} {m.group(1)}."
        m = re.match(r"(?i)^(?:is|are|was|were|does|do|did|can|could|has|have)\s+(?:there\s+|you see\s+|we see\s+|"
                     r"(?:this|the) (?:image|film|scan) (?:show|depict|demonstrate)\s+)?"
                     r"((?:an?\s+|any\s+|evidence of\s+)*)"
                     r"(.+)$", q)
        # "Do you see a pleural effusion?" + no -> "No pleural effusion." (negation-detectable)
        if neg and m and not re.match(r"(?i)(this|it|these|that|the (image|film|scan|patient))\b", m.group(2)):
            return f"No {m.group(2)}."
        return f"{q}: {a.lower()}."
    return f"{q}: {a}."


def cases_from_vqa_rad(items: Sequence[VQARadItem]) -> list[Case]:
    """One case per image (case id: the image key); its text is the statements of its training questions (test
    questions stay out)."""
    by_image: dict[str, Case] = {}
    for item in items:
        case = by_image.setdefault(item.image_key, Case(case_id=item.image_key, image=str(item.image_path),
                                                        body_part=item.organ))
        if item.split == "train":
            case.qa.append((item.question, item.answer))
    for case in by_image.values():
        lines = list(dict.fromkeys(qa_statement(q, a) for q, a in case.qa))
        case.text = " ".join(lines)
        case.modality = _modality(case.qa)
    return list(by_image.values())


def with_image_metadata(cases: list[Case], metadata: Mapping[str, Mapping[str, str]]) -> list[Case]:
    """Fill each case's empty ``modality`` / ``body_part`` from a per-image sidecar (``{image file name:
    {"modality", "region"}}``, e.g. a VQA-RAD-style folder's ``image_metadata.json``); what the case already says
    wins. A JPEG has no header to say either, and filters and report scope need them."""
    for case in cases:
        meta = metadata.get(Path(case.image).name) or {}
        case.modality = case.modality or str(meta.get("modality") or "")
        case.body_part = case.body_part or str(meta.get("region") or "")
    return cases


def _modality(qa: Sequence[tuple[str, str]]) -> str:
    for q, a in qa:
        if re.search(r"(?i)modality|type of imag|what kind of (scan|imag)|how was this image taken", q):
            a_low = a.lower()
            for key, name in (("mr", "MR"), ("ct", "CT"), ("x-ray", "XR"), ("xray", "XR"), ("radiograph", "XR"),
                              ("ultrasound", "US")):
                if key in a_low:
                    return name
    return ""
