"""``kgclip report draft IMAGE``: draft findings and an impression from similar cases, with citations."""

from __future__ import annotations

import argparse
import json

from kgclip.cli.ask_cmd import add_workspace_arguments, check_image_arg, open_engine, workspace_json
from kgclip.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="draft reports from similar cases")
    sub = p.add_subparsers(dest="report_command", metavar="ACTION")
    d = sub.add_parser("draft", help="draft a report for an image; every sentence cites its source case")
    d.add_argument("image", help="image file (DICOM, PNG, JPEG)")
    add_workspace_arguments(d)
    d.add_argument("--k", type=int, default=None, help="similar cases that vote on the findings")
    d.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="case metadata the voting cases must share, e.g. --filter modality=CT (repeatable)")
    d.add_argument("--json", action="store_true", help="print the draft as one JSON line")
    d.set_defaults(handler=_draft)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _draft(args: argparse.Namespace) -> int:
    from kgclip.engine.limits import MAX_K, check_filters, check_k

    filters = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter takes KEY=VALUE (e.g. modality=CT), got {item!r}")
        filters[key.strip()] = value.strip()
    check_filters(filters)  # inputs are checked before the engine (and torch) loads
    if args.k is not None:
        check_k(args.k, MAX_K, "k (similar cases to draft from)")
    check_image_arg(args.image)
    engine = open_engine(args)
    report = engine.draft_report(args.image, k=args.k, filters=filters or None)
    if args.json:
        def rows(items):  # noqa: ANN001, ANN202
            return [{"text": s.text, "case": s.case_id, "concepts": list(s.concepts)} for s in items]

        print(json.dumps({"findings": rows(report.findings), "impression": rows(report.impression),
                          "flags": report.flags, "workspace": workspace_json(engine)}))
    else:
        print(report.text())
    return 0
