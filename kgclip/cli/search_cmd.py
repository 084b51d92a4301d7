"""``kgclip search``: cases of a workspace by concept (with its descendants and same_as partners), text or image.

    kgclip search --concept DOID:552                    # pneumonia and every kind of pneumonia
    kgclip search --concept DOID:552 --no-descendants   # exactly that concept
    kgclip search --text "lung cancer" --expand          # link the text, expand what it names
    kgclip search --image scan.dcm --modality CT

Each hit prints which concept it matched through (``lobar pneumonia ⊂ pneumonia``); the expansion searched is
printed first. A text search puts the cases whose text says the opposite of the query last and marks them
(``[says the opposite: no pleural effusion]``; ``opposes_query`` in ``--json``). A thin call into
:meth:`kgclip.engine.Engine.search`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    from kgclip.cli.ask_cmd import add_workspace_arguments

    p = subparsers.add_parser("search", help="find cases by concept (with descendants), text or image",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concept", help="concept id, e.g. DOID:552 (cases of it, its descendants and same_as partners)")
    p.add_argument("--text", help="search text (ranks the cases; with --concept, within that concept)")
    p.add_argument("--image", help="query image (DICOM, PNG, JPEG)")
    p.add_argument("--no-descendants", action="store_true", help="match the concept itself, not its descendants")
    p.add_argument("--expand", action="store_true", help="link --text and expand the concepts it names")
    p.add_argument("-k", type=int, default=10, help="number of cases (default 10)")
    p.add_argument("--modality", help="filter, e.g. CT")
    p.add_argument("--body-part", help="filter, e.g. CHEST")
    p.add_argument("--json", action="store_true", help="one JSON line")
    add_workspace_arguments(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kgclip.cli.ask_cmd import open_engine
    from kgclip.errors import InputFormatError

    if not (args.concept or args.text or args.image):
        raise InputFormatError("give --concept ID, --text TEXT or --image FILE")
    filters = {k: v for k, v in (("modality", args.modality), ("body_part", args.body_part)) if v}
    engine = open_engine(args)
    results = engine.search(text=args.text, image=args.image, concept=args.concept, k=args.k,
                            filters=filters or None, descendants=not args.no_descendants, expand=args.expand)
    expansion = results.expansion.describe() if results.expansion is not None else None
    if args.json:
        print(json.dumps({"expansion": expansion, "hits": [
            {"case_id": h.case_id, "score": round(h.score, 4), "matched_through": h.metadata.get("matched_through"),
             "opposes_query": h.metadata.get("opposes_query"), "text": h.text} for h in results]},
            ensure_ascii=False))
        return 0
    if expansion:
        print(f"searched: {expansion}")
    for h in results:
        how = h.metadata.get("matched_through")
        opposite = f"[says the opposite: {h.metadata['opposes_query']}] " if h.metadata.get("opposes_query") else ""
        print(f"{h.case_id}\t{h.score:.3f}\t{('[' + how + '] ') if how else ''}{opposite}{h.text[:100]}")
    if not results:
        print("no case matches", file=sys.stderr)
    return 0
