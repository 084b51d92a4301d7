"""Workspace helpers for the engine: cases and QA examples from VQA-RAD-style data, and the manifest file.
Building and loading a workspace live in :mod:`kgclip.engine_build`, the trained parts in
:mod:`kgclip.rag.model_parts`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgclip.artifacts import read_json_header
from kgclip.data.vqa_rad import VQARadItem
from kgclip.atomic import atomic_write_json
from kgclip.errors import ArtifactCorruptError
from kgclip.rag.answerer import question_kind
from kgclip.rag.cases import Case

__all__ = ["MANIFEST", "FORMAT", "qa_statement", "cases_from_vqa_rad", "write_manifest",
           "read_manifest", "shipped_demo_dir"]

MANIFEST = "manifest.json"
FORMAT = "kgclip-workspace-1"


def shipped_demo_dir() -> Path | None:
    """The CC0 VQA-RAD sample the package ships (``kgclip/demo_data/vqa-rad``), if present."""
    path = Path(__file__).resolve().parents[1] / "demo_data" / "vqa-rad"
    return path if path.is_dir() else None


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
                     r"(?:this|the) (?:image|film|scan) (?:show|depict|demonstrate)\s+)?((?:an?\s+|any\s+|evidence of\s+)*)"
                     r"(.+)$", q)
        if neg and m and not re.match(r"(?i)(this|it|these|that|the (image|film|scan|patient))\b", m.group(2)):  # "Do you see a pleural effusion?" + no -> "No pleural effusion." (negation-detectable)
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


def _modality(qa: Sequence[tuple[str, str]]) -> str:
    for q, a in qa:
        if re.search(r"(?i)modality|type of imag|what kind of (scan|imag)|how was this image taken", q):
            a_low = a.lower()
            for key, name in (("mr", "MR"), ("ct", "CT"), ("x-ray", "XR"), ("xray", "XR"), ("radiograph", "XR"),
                              ("ultrasound", "US")):
                if key in a_low:
                    return name
    return ""


def write_manifest(directory: Path, config: dict[str, Any], fingerprints: dict[str, str],
                   counts: dict[str, int], parts: dict[str, str]) -> None:
    from kgclip.ontology.store import kgclip_version

    atomic_write_json(directory / MANIFEST, {"format": FORMAT, "kgclip_version": kgclip_version(),
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                             "config": config, "fingerprints": fingerprints, "counts": counts,
                                             "parts": parts})


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    manifest = read_json_header(path, missing=f"{directory} is not a kgclip workspace (no {MANIFEST}); build one "
                                              "with `kgclip demo --out DIR` or Engine.build(config, DIR)",
                                recover="rebuild the workspace")
    if manifest.get("format") != FORMAT:
        raise ArtifactCorruptError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}; rebuild "
                                   "the workspace with this kgclip version")
    return manifest

