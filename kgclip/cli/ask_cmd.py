"""``kgclip ask IMAGE "question"``: answer a question about an image from a workspace, with evidence.

``--model-dir`` / ``--concept-embeddings`` name trained parts to answer with; the workspace is loaded as it is when
it was built with exactly those parts, else (re)built with them first (:meth:`kgclip.engine.Engine.open`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_workspace_arguments(p: argparse.ArgumentParser) -> None:
    """``--workspace`` and the trained-part flags shared by ``ask`` and ``report draft``."""
    p.add_argument("--workspace", default="indexes/demo", help="workspace directory (default: indexes/demo)")
    p.add_argument("--model-dir", default=None,
                   help="a trained KG-CLIP model directory (e.g. indexes/model from `kgclip train`); a workspace "
                        "built with another model (or none) is rebuilt with this one first, one built with it loads")
    p.add_argument("--concept-embeddings", default=None,
                   help="GNN concept embeddings (e.g. indexes/kg from `kgclip kg train`) for nearest-concept facts; "
                        "rebuilds the workspace when it was built with others")


def check_inputs(args: argparse.Namespace) -> Any:
    """Check the question, the workspace and the image before anything heavy is imported; returns the image.

    A bad input fails here in a fraction of a second (no torch, no text tower). A missing workspace is fine when
    trained parts are named: :meth:`~kgclip.engine.Engine.open` builds one.
    """
    from kgclip.engine.limits import check_workspace_dir
    from kgclip.rag.abstain import check_input, check_question

    if getattr(args, "question", None) is not None:
        args.question = check_question(args.question)
    if args.model_dir is None and args.concept_embeddings is None:
        check_workspace_dir(args.workspace)
    # Raises for what cannot be read at all; an out-of-range input (an RT dose, a tiny picture) is left to the engine,
    # which answers "cannot answer: why".
    check_input(args.image)
    return args.image


def open_engine(args: argparse.Namespace) -> Any:
    """The engine over ``args.workspace`` with the parts the flags name (progress and a rebuild notice on stderr)."""
    from kgclip.engine import Engine

    return Engine.open(args.workspace, model_dir=args.model_dir, concept_embeddings_dir=args.concept_embeddings)


def workspace_json(engine: Any) -> dict[str, Any]:
    """The ``workspace`` object of the ``--json`` outputs: which workspace answered, with which parts."""
    return {"dir": str(engine.directory), "action": engine.open_action, "model_dir": engine.config.model_dir,
            "concept_embeddings_dir": engine.config.concept_embeddings_dir}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ask", help="answer a question about an image (DICOM, PNG, JPEG)")
    p.add_argument("image", help="image file")
    p.add_argument("question", help='e.g. "Is there a pleural effusion?"')
    add_workspace_arguments(p)
    p.add_argument("--json", action="store_true", help="print the answer and its evidence as one JSON line")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    image = check_inputs(args)
    engine = open_engine(args)
    answer = engine.ask(image, args.question)
    ev = answer.evidence
    if args.json:
        print(json.dumps({**answer.to_dict(similar_questions=len(ev.similar_questions)),
                          "workspace": workspace_json(engine)}))
        return 0
    if answer.abstained:
        print(f"Q: {answer.question}\ncannot answer: {answer.abstain_reason}")
    else:
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
