"""``kgclip ask IMAGE "question"``: answer a question about an image from a workspace, with evidence."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ask", help="answer a question about an image (DICOM, PNG, JPEG)")
    p.add_argument("image", help="image file")
    p.add_argument("question", help='e.g. "Is there a pleural effusion?"')
    p.add_argument("--workspace", default="indexes/demo", help="workspace directory (default: indexes/demo)")
    p.add_argument("--json", action="store_true", help="print the answer and its evidence as one JSON line")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kgclip.engine import Engine

    answer = Engine.load(args.workspace).ask(args.image, args.question)
    ev = answer.evidence
    if args.json:
        print(json.dumps({
            "question": answer.question, "answer": answer.text, "kind": answer.kind,
            "confidence": round(answer.confidence, 4), "candidates": answer.candidates, "flags": answer.flags,
            "concepts": [{"id": c.concept_id, "name": c.name, "negated": c.negated} for c in ev.concepts],
            "similar_questions": [{"question": q.question, "answer": q.answer, "case": q.case_id,
                                   "score": round(q.score, 4)} for q in ev.similar_questions],
            "similar_cases": [{"case": c.case_id, "score": round(c.score, 4)} for c in ev.similar_cases],
            "kg_facts": [str(f) for f in ev.kg_facts]}))
        return 0
    print(f"Q: {answer.question}\nA: {answer.text}  ({answer.kind}, confidence {answer.confidence:.2f})")
    if ev.concepts:
        print("concepts: " + ", ".join(f"{c.name} [{c.concept_id}]{' (negated)' if c.negated else ''}"
                                       for c in ev.concepts))
    for q in ev.similar_questions[:3]:
        print(f"  similar: {q.question} -> {q.answer} [{q.case_id}] ({q.score:.2f})")
    for f in ev.kg_facts[:5]:
        print(f"  kg: {f}")
    print("  cases: " + ", ".join(f"{c.case_id} ({c.score:.2f})" for c in ev.similar_cases))
    return 0
