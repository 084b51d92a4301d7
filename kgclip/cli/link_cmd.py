"""``kgclip link "text"``: the concepts a text mentions, with negation / uncertainty / history flags.

By default the text is linked against the ontologies a checkout ships (``ontologies/radlex`` and
``ontologies/doid``); ``--ontology DIR`` (repeatable) takes graph directories instead, and ``--tiny`` the built-in
20-concept fixture graph. The lexicon is cached under ``$KGCLIP_HOME`` after the first call.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("link", help="link text to ontology concepts, with negation flags",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="+", help="the text (several arguments are joined); '-' reads stdin")
    parser.add_argument("--ontology", action="append", default=[], metavar="DIR",
                        help="graph directory to link against (repeatable; default: the shipped ontologies)")
    parser.add_argument("--tiny", action="store_true", help="use the built-in 20-concept fixture graph")
    parser.add_argument("--json", action="store_true", help="print the mentions as JSON")
    parser.add_argument("--no-fuzzy", action="store_true", help="exact, word-order and morphology matching only")
    parser.add_argument("--fuzzy-threshold", type=float, default=None,
                        help="similarity 1 - edits/length needed for a spelling correction (default 0.6)")
    parser.add_argument("--no-negation", action="store_true", help="do not detect negation / uncertainty / history")
    parser.set_defaults(handler=_link)


def _graph(args: argparse.Namespace):
    if args.tiny:
        from kgclip.testing import tiny_graph

        return tiny_graph()
    from kgclip.ontology.store import load_ontologies

    return load_ontologies(args.ontology or None)


def _link(args: argparse.Namespace) -> int:
    import dataclasses

    from kgclip.engine.limits import MAX_TEXT_CHARS, check_text
    from kgclip.text.linker import ConceptLinker, LinkerConfig

    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    text = check_text(text, "text to link", MAX_TEXT_CHARS, "No pleural effusion.")
    config = LinkerConfig(fuzzy=not args.no_fuzzy, negation=not args.no_negation)
    if args.fuzzy_threshold is not None:
        config = dataclasses.replace(config, fuzzy_threshold=args.fuzzy_threshold)
    linker = ConceptLinker.from_graph(_graph(args), config)
    mentions = linker.link(text)
    if args.json:
        print(json.dumps({"text": text, "mentions": [m.to_dict() for m in mentions]}, ensure_ascii=False))
        return 0
    if not mentions:
        print("no concepts found")
        return 0
    for m in mentions:
        flags = [f for f in ("negated", "uncertain", "historical") if getattr(m, f)]
        cue = f" (cue: {m.negation_cue})" if m.negation_cue else ""
        print(f"{m.start:>5}-{m.end:<5} {m.text!r:30} {m.concept_id:18} {m.name[:40]:40} {m.kind:12} "
              f"{m.score:.2f} {','.join(flags) or 'affirmed'}{cue}")
    return 0
