"""A drafted report as plain text and as a FHIR R4 ``DiagnosticReport`` resource (JSON-ready dict).

In FHIR, each findings sentence and each impression line is a contained ``Observation`` (status ``preliminary``)
whose ``derivedFrom`` names the cited similar cases as logical ``ImagingStudy`` references (by identifier: the
cases live in the kgclip workspace, not on a FHIR server); impression lines list the graph facts they rest on in
``note``. The report's ``conclusion`` is the impression text (for a declined draft: why it was declined) and
``conclusionCode`` its diagnosis concepts; ``presentedForm`` carries the plain text with its ``[case]`` citations.
The draft's confidence is an ``extension`` (:data:`CONFIDENCE_EXTENSION`, ``valueDecimal``).
"""

from __future__ import annotations

import base64
import time
from typing import Any

__all__ = ["report_text", "report_dict", "to_fhir", "CASE_SYSTEM", "CONFIDENCE_EXTENSION"]

CASE_SYSTEM = "urn:kgclip:case"
# The extension carrying a draft's confidence (DraftReport.confidence, a decimal in [0, 1]) on the DiagnosticReport.
CONFIDENCE_EXTENSION = "urn:kgclip:draft-confidence"
_REVIEW_CASES = 10  # similar cases a declined draft lists in its text
_CODE_SYSTEMS = {"RADLEX": "http://radlex.org", "DOID": "http://purl.obolibrary.org/obo/doid.owl",
                 "SYMP": "http://purl.obolibrary.org/obo/symp.owl", "UMLS": "http://www.nlm.nih.gov/research/umls"}


def report_text(report: Any, citations: bool = True, facts: bool = True, confidence: bool = True) -> str:
    """``FINDINGS:`` and ``IMPRESSION:`` with one sentence a line, each ending in its citations ``[case] [case]``
    (and, with ``facts``, an impression line's graph facts on the next line); a draft that could not be made says
    why on a ``NOT DRAFTED:`` line instead (its ``notice``), and a declined one lists the similar cases to review.
    With ``confidence``, a last ``CONFIDENCE:`` line gives the confidence of a draft or of a declined one (not of a
    notice that nothing could be drafted)."""
    def line(s: Any) -> str:
        if not citations:
            return s.text
        cited = f"{s.text} " + " ".join(f"[{c}]" for c in s.citations)
        if facts and getattr(s, "facts", ()):
            cited += "\n  facts: " + "; ".join(s.facts)
        return cited

    if report.notice and not report.findings:
        # Under a FINDINGS heading, "No similar chest cases to draft from." read as a finding about the patient.
        out = f"NOT DRAFTED: {report.notice[:1].upper() + report.notice[1:]}."
        if getattr(report, "abstained", False) and report.similar_cases:
            shown = report.similar_cases[:_REVIEW_CASES]
            more = len(report.similar_cases) - len(shown)
            out += ("\n\nSIMILAR CASES:\n" + " ".join(f"[{h.case_id}]" for h in shown)
                    + (f" (and {more} more)" if more > 0 else ""))
    else:
        findings = "\n".join(line(s) for s in report.findings) or "No findings could be drafted."
        impression = "\n".join(line(s) for s in report.impression) or "-"
        out = f"FINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}"
    value = getattr(report, "confidence", None)
    # Only for a draft, or a declined one: a notice that nothing could be drafted needs no number beside it.
    drafted_or_declined = bool(report.findings or report.impression or getattr(report, "abstained", False))
    if confidence and value is not None and drafted_or_declined:
        out += f"\n\nCONFIDENCE: {value:.2f}"
    return out


def _sentence_dict(s: Any) -> dict[str, Any]:
    return {"text": s.text, "case_id": s.case_id, "cases": list(s.citations), "facts": list(s.facts),
            "concepts": list(s.concepts)}


def report_dict(report: Any, removed: int = 20) -> dict[str, Any]:
    """A :class:`~kgclip.rag.report.DraftReport` as plain values: findings and impression sentences (each with the
    case it was taken from, every case it cites, its concepts and graph facts), the similar cases
    (:meth:`~kgclip.rag.evidence.CaseHit.to_dict`), the first ``removed`` sentences left out with the reason, the
    confidence, whether the draft was declined, and the query's region (and where it came from) and modality.
    ``kgclip report draft --json`` and the web app both return this shape."""
    return {
        "findings": [_sentence_dict(s) for s in report.findings],
        "impression": [_sentence_dict(s) for s in report.impression],
        "similar_cases": [h.to_dict() for h in report.similar_cases],
        "removed": [{"text": s.text, "case_id": s.case_id, "reason": why} for s, why in report.removed[:removed]],
        "flags": dict(report.flags),
        "notice": report.notice,
        "confidence": report.confidence,
        "abstained": report.abstained,
        "region": list(report.region),
        "region_source": report.region_source,
        "modality": report.modality,
        "modality_source": report.modality_source,
    }


def _coding(concept_id: str, display: str = "") -> dict[str, Any]:
    prefix, _, code = concept_id.partition(":")
    coding = {"system": _CODE_SYSTEMS.get(prefix.upper(), "urn:kgclip:concept"), "code": code or concept_id}
    if display:
        coding["display"] = display
    return coding


def _observation(i: str, s: Any, kind: str, names: dict[str, str]) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": i, "status": "preliminary",
        "code": {"text": kind}, "valueString": s.text,
        "derivedFrom": [{"type": "ImagingStudy", "identifier": {"system": CASE_SYSTEM, "value": c},
                         "display": f"similar case {c}"} for c in s.citations],
    }
    if s.concepts:
        obs["interpretation"] = [{"coding": [_coding(c, names.get(c, ""))]} for c in s.concepts]
    if getattr(s, "facts", ()):
        obs["note"] = [{"text": f"knowledge graph: {f}"} for f in s.facts]
    return obs


def to_fhir(report: Any, *, subject: str | None = None, imaging_study: str | None = None,
            names: dict[str, str] | None = None, issued: str | None = None) -> dict[str, Any]:
    """The draft as a FHIR R4 ``DiagnosticReport`` (status ``preliminary``: a draft for a radiologist to edit).

    Args:
        subject: a reference for the patient (e.g. ``"Patient/123"``); left out when ``None`` (no PHI is added).
        imaging_study: a reference for the query study (``"ImagingStudy/abc"``).
        names: concept id -> display name, for codings.
        issued: ISO-8601 instant (default: now, UTC).
    """
    names = names or {}
    findings = [_observation(f"f{i + 1}", s, "finding", names) for i, s in enumerate(report.findings)]
    impression = [_observation(f"i{i + 1}", s, "impression", names) for i, s in enumerate(report.impression)]
    text = report_text(report)
    out: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                  "display": "Radiology"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                             "display": "Diagnostic imaging study"}], "text": "Draft report from similar cases"},
        "issued": issued or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "contained": findings + impression,
        "result": [{"reference": f"#{o['id']}"} for o in findings + impression],
        "conclusion": " ".join(s.text for s in report.impression) or report.notice or "",
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "title": "Draft report",
                           "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}],
    }
    if getattr(report, "confidence", None) is not None:
        out["extension"] = [{"url": CONFIDENCE_EXTENSION, "valueDecimal": round(float(report.confidence), 4)}]
    codes = [c for s in report.impression for c in s.concepts]
    if codes:
        out["conclusionCode"] = [{"coding": [_coding(c, names.get(c, ""))]} for c in dict.fromkeys(codes)]
    if subject:
        out["subject"] = {"reference": subject}
    if imaging_study:
        out["imagingStudy"] = [{"reference": imaging_study}]
    if not out["contained"]:
        del out["contained"], out["result"]
    return out
