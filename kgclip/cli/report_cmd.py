"""``kgclip report draft IMAGE``: draft findings and an impression from similar cases of the image's body region,
with citations; as text, one JSON line, or a FHIR ``DiagnosticReport`` (``--format fhir``, ``--out FILE``)."""

from __future__ import annotations

import argparse
import json

from kgclip.cli.ask_cmd import add_workspace_arguments, check_inputs, open_engine, workspace_json
from kgclip.errors import ConfigError
from kgclip.rag.regions import check_region_label

FORMATS = ("text", "json", "fhir")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="draft reports from similar cases")
    sub = p.add_subparsers(dest="report_command", metavar="ACTION")
    d = sub.add_parser("draft", help="draft a report for an image; every sentence cites its source case")
    d.add_argument("image", help="image file (DICOM, PNG, JPEG)")
    add_workspace_arguments(d)
    d.add_argument("--k", type=int, default=None, help="similar cases that vote on the findings")
    d.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="case metadata the voting cases must share, e.g. --filter modality=CT (repeatable)")
    d.add_argument("--region", default=None,
                   help="the image's body region (e.g. chest, HEAD, ABDOMENPELVIS); default: the DICOM header's "
                        "BodyPartExamined, else the similar cases' regions vote")
    d.add_argument("--modality", default=None, help="the image's modality (CT, MR, CR...); default: the header's")
    d.add_argument("--min-confidence", type=float, default=None, metavar="X",
                   help="decline to draft below this confidence (the similar cases' calibrated agreement, 0-1); "
                        "default: the workspace's DraftConfig.min_confidence, 0 (always draft); 0.44 was chosen "
                        "on MedPix validation")
    d.add_argument("--format", choices=FORMATS, default=None,
                   help="text (default), json (one line), or fhir (a FHIR R4 DiagnosticReport, cited cases as "
                        "references)")
    d.add_argument("--json", action="store_true", help="same as --format json")
    d.add_argument("--out", default=None, metavar="FILE", help="write the draft to FILE instead of printing it")
    d.set_defaults(handler=_draft)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _filters(items: list[str]) -> dict[str, str]:
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter takes KEY=VALUE (e.g. modality=CT), got {item!r}")
        filters[key.strip()] = value.strip()
    return filters


def _draft(args: argparse.Namespace) -> int:
    fmt = args.format or ("json" if args.json else "text")
    if args.json and args.format not in (None, "json"):
        raise ConfigError(f"--json and --format {args.format} disagree; pass one of them")
    filters = _filters(args.filter)
    if args.k is not None and args.k < 1:
        raise ConfigError(f"--k (similar cases to draft from) must be >= 1, got {args.k}")
    if args.region:
        check_region_label(args.region, "--region")
    image = check_inputs(args)  # before the engine loads: bad input fails at once
    engine = open_engine(args)
    report = engine.draft_report(image, k=args.k, filters=filters or None, region=args.region,
                                 modality=args.modality, min_confidence=args.min_confidence)
    if fmt == "json":
        text = json.dumps({**report.to_dict(), "workspace": workspace_json(engine)})
    elif fmt == "fhir":
        names = {c: engine.graph.name_of(c) for s in report.findings + report.impression for c in s.concepts
                 if c in engine.graph}
        text = json.dumps(report.to_fhir(names=names), indent=1)
    else:
        text = report.text()
    if args.out:
        from kgclip.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    else:
        print(text)
    return 0
