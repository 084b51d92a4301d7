"""``kgclip demo``: build a workspace from the shipped data, answer questions, draft a report, write HTML."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="build a demo workspace from the shipped data and write an HTML page",
                              description="Builds a workspace from the shipped ontologies and the CC0 VQA-RAD "
                                          "sample, answers held-out questions, drafts a report and writes "
                                          "OUT/demo.html.")
    p.add_argument("--out", default="indexes/demo", help="workspace directory (default: indexes/demo)")
    p.add_argument("--data", default=None, help="a VQA-RAD folder to use instead of the shipped sample")
    p.add_argument("--questions", type=int, default=6, help="how many questions to ask (default 6)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--model-dir", default=None,
                   help="a trained KG-CLIP model directory (e.g. indexes/model from `kgclip train`): image and text "
                        "vectors then come from it instead of the built-in thumbnail descriptor")
    p.add_argument("--concept-embeddings", default=None,
                   help="GNN concept embeddings (e.g. indexes/kg from `kgclip kg train`): adds nearest-concept facts")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kgclip.rag.answerer import normalize_answer
    from kgclip.engine.demo import run_demo

    config = None
    if args.model_dir or args.concept_embeddings:
        from kgclip.engine import EngineConfig

        config = EngineConfig(model_dir=args.model_dir, concept_embeddings_dir=args.concept_embeddings)
    result = run_demo(args.out, args.data, n_questions=args.questions, show_progress=not args.quiet, config=config)
    for ans, gold in zip(result.answers, result.gold):
        if ans.abstained:  # as `kgclip ask` and the HTML page say it; the withheld guess is shown as such
            print(f"   Q: {ans.question}\n    cannot answer: {ans.abstain_reason} (withheld guess: {ans.text}); "
                  f"gold: {gold}")
            continue
        mark = "ok " if normalize_answer(ans.text) == normalize_answer(gold) else "   "
        print(f"{mark}Q: {ans.question}\n    A: {ans.text} ({ans.kind}, {ans.confidence:.2f}); gold: {gold}")
    print("\nDraft report for", result.report_image)
    print(result.report.text())
    print(f"\nwrote {result.page} ({result.seconds:.0f} s); open it in a browser. Workspace: {result.workspace}")
    return 0
