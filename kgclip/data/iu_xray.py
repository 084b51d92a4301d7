"""Indiana University chest X-ray reports (text only): ``indiana_reports.csv`` + ``indiana_projections.csv``.

Licensed CC BY-NC-ND 4.0: read it from where the user keeps it; never copy it into the project. The de-identified
reports mask dates and names as ``XXXX``; :attr:`IUReport.findings` keeps the text as written.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from kgclip.data._common import OnError, handle_bad_row, resolve_root
from kgclip.data.sections import Sections
from kgclip.errors import DataNotFoundError

__all__ = ["IUReport", "read_iu_xray"]


@dataclasses.dataclass(frozen=True)
class IUReport:
    """One report.

    Attributes:
        uid: report id.
        mesh: MeSH-style labels (``normal`` or e.g. ``Cardiomegaly/borderline``), split on ``;``.
        problems: coarse problem labels, split on ``;``.
        image_title: the ``image`` column (e.g. ``Xray Chest PA and Lateral``).
        indication, comparison, findings, impression: report sections (empty string when absent).
        projections: ``(filename, projection)`` of the study's images (``Frontal`` / ``Lateral``).
    """

    uid: str
    mesh: tuple[str, ...]
    problems: tuple[str, ...]
    image_title: str
    indication: str
    comparison: str
    findings: str
    impression: str
    projections: tuple[tuple[str, str], ...]

    @property
    def is_normal(self) -> bool:
        return self.problems == ("normal",)

    @property
    def sections(self) -> Sections:
        """The report as sections (indication is history; findings and impression as written)."""
        return Sections(history=self.indication, comparison=self.comparison, findings=self.findings,
                        impression=self.impression, headed=True)

    @property
    def text(self) -> str:
        """Findings and impression joined (the usual report target)."""
        return " ".join(part for part in (self.findings, self.impression) if part)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def read_iu_xray(root: str | Path | None = None, *, on_error: OnError = "raise",
                 require_findings: bool = False) -> list[IUReport]:
    """Read the reports (in file order), with their projections when ``indiana_projections.csv`` is present.

    Args:
        root: directory with ``indiana_reports.csv`` (default: ``<shared data>/iu-xray``).
        on_error: policy for a malformed row (``raise``/``warn``/``skip``); the message names the CSV line.
        require_findings: leave out reports whose findings section is empty.
    """
    base = resolve_root(root, "iu-xray", "IU X-ray reports")
    reports_path = base / "indiana_reports.csv"
    if not reports_path.is_file():
        raise DataNotFoundError(f"{reports_path} is missing; is this the IU X-ray directory?")
    projections: dict[str, list[tuple[str, str]]] = {}
    proj_path = base / "indiana_projections.csv"
    if proj_path.is_file():
        with open(proj_path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("uid") and row.get("filename"):
                    projections.setdefault(row["uid"], []).append((row["filename"], row.get("projection") or ""))
    out: list[IUReport] = []
    with open(reports_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"uid", "findings", "impression"} - set(reader.fieldnames or ())
        if missing:
            raise DataNotFoundError(f"{reports_path} lacks columns {sorted(missing)}; not an IU X-ray reports file")
        for row in reader:
            line = reader.line_num
            uid = (row.get("uid") or "").strip()
            if not uid or None in row:  # None key: more fields than the header
                handle_bad_row(on_error, "row without uid or with extra fields", reports_path, line)
                continue
            report = IUReport(
                uid=uid, mesh=_split(row.get("MeSH", "")), problems=_split(row.get("Problems", "")),
                image_title=(row.get("image") or "").strip(), indication=(row.get("indication") or "").strip(),
                comparison=(row.get("comparison") or "").strip(), findings=(row.get("findings") or "").strip(),
                impression=(row.get("impression") or "").strip(), projections=tuple(projections.get(uid, ())),
            )
            if require_findings and not report.findings:
                continue
            out.append(report)
    return out
