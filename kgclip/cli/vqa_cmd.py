"""``kgclip vqa fit WORKSPACE --input qa.jsonl``: refit a workspace's answerer on the user's own QA pairs.

The pairs (JSON Lines, see :mod:`kgclip.rag.user_qa`) are read and every image checked before the workspace is
opened; the refit answerer replaces the workspace's only when fitting succeeded. One JSON line last with the
cross-validated figures.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("vqa", help="the workspace's VQA answerer: refit it on your own QA pairs")
    sub = p.add_subparsers(dest="vqa_command", metavar="ACTION")
    f = sub.add_parser("fit", help="refit the answerer on the workspace's pairs plus yours (JSON Lines)")
    f.add_argument("workspace", help="workspace directory (from `kgclip demo` or Engine.build)")
    f.add_argument("--input", required=True, help='JSON Lines: {"image", "question", "answer"[, "closed", "group"]}')
    f.add_argument("--replace", action="store_true", help="fit on your pairs only (default: the workspace's + yours)")
    f.add_argument("--json", action="store_true", help="print only the JSON line")
    f.set_defaults(handler=_fit)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _fit(args: argparse.Namespace) -> int:
    from kgclip.rag.user_qa import read_qa_pairs

    pairs = read_qa_pairs(args.input)  # checked before any model is loaded
    from kgclip.engine import Engine

    engine = Engine.load(args.workspace)
    val = engine.fit_answerer(pairs, replace=args.replace, show_progress=not args.json)
    out = {"workspace": str(engine.directory), "pairs_added": len(pairs), "replace": args.replace,
           "examples": len(engine.answerer.examples), "answers": len(engine.answerer.core.answers),
           **{k: round(v, 4) for k, v in val.items() if k.startswith("val_")}}
    if not args.json:
        print(f"refit on {out['examples']} questions ({len(pairs)} yours): cross-validated accuracy "
              f"{out.get('val_acc', 0.0):.3f}")
    print(json.dumps(out))
    return 0
