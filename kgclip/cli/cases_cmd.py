"""``kgclip cases add WORKSPACE --input cases.jsonl``: add cases to a workspace (one locked, atomic change).

Each line of the input is one JSON object: ``case_id``, ``image`` (a path, relative to the input file's folder or
absolute), ``text`` and optionally ``modality``, ``body_part``, ``split``. Every line is checked before anything is
written; an error names the line. Images are stored as de-identified copies (see :mod:`kgclip.engine.images`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kgclip.errors import InputFormatError

_MAX_LINE_BYTES = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cases", help="add cases to a workspace")
    sub = p.add_subparsers(dest="cases_command", metavar="ACTION")
    a = sub.add_parser("add", help="add (or replace, by case_id) cases from a JSON Lines file",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    a.add_argument("workspace", help="workspace directory (e.g. indexes/demo)")
    a.add_argument("--input", required=True, help="JSON Lines file, one case per line")
    a.add_argument("--allow-burned-in", action="store_true",
                   help="store images whose DICOM header says BurnedInAnnotation=YES (refused by default)")
    a.add_argument("--json", action="store_true", help="print the result as one JSON line")
    a.set_defaults(handler=_add)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def read_case_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a cases JSON Lines file, each checked, images resolved against the file's folder.

    Raises:
        InputFormatError: unreadable file, a line that is not UTF-8 / not a JSON object / not a valid case (the
            message names the line); ImageReadError: a missing image.
    """
    from kgclip.engine.cases import case_from_row
    from kgclip.errors import ImageReadError

    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"cannot read {source} ({exc.strerror or exc}); check the --input path") from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{source} line {number}"
        if not line.strip():
            continue
        if len(line) > _MAX_LINE_BYTES:
            raise InputFormatError(f"{where}: {len(line):,} bytes, above the limit of {_MAX_LINE_BYTES:,} per case")
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputFormatError(f"{where}: not UTF-8 text; re-save the file as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"{where}: not JSON ({exc.msg} at column {exc.colno}); one JSON object per "
                                   "line") from None
        if not isinstance(row, dict):
            raise InputFormatError(f"{where}: a case is a JSON object with case_id, image and text")
        if isinstance(row.get("image"), str) and row["image"] and not Path(row["image"]).is_absolute():
            row["image"] = str(source.parent / row["image"])
        case = case_from_row(row, where)
        if not Path(case.image).expanduser().is_file():
            raise ImageReadError(f"{where} ({case.case_id!r}): image {case.image!r} does not exist; nothing was added")
        rows.append(row)
    if not rows:
        raise InputFormatError(f"{source} holds no cases; write one JSON object per line")
    return rows


def _add(args: argparse.Namespace) -> int:
    rows = read_case_rows(args.input)
    from kgclip.engine import Engine

    engine = Engine.load(args.workspace)
    added = engine.add_cases(rows, allow_burned_in=args.allow_burned_in)
    if args.json:
        print(json.dumps({"workspace": str(engine.directory), "added": added, "cases": len(engine.cases)}))
    else:
        print(f"added {added} case(s) to {engine.directory}; it now holds {len(engine.cases)}")
    return 0
