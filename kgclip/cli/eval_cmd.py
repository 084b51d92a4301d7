"""``kgclip eval vqa-rad PATH`` and ``kgclip eval report PATH``: the RAG figures, one JSON line last."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate VQA (VQA-RAD) and report drafting (MedPix)")
    sub = p.add_subparsers(dest="eval_command", metavar="TASK")
    v = sub.add_parser("vqa-rad", help="train on VQA-RAD train, test once; with and without the KG")
    v.add_argument("path", help="VQA-RAD folder (VQA_RAD_Dataset_Public.json + images/)")
    v.add_argument("--split", choices=("test", "val"), default="test",
                   help="test: the reported figure, run once after the design is frozen; val: development, on a "
                        "validation split carved from train (the test split is not used)")
    v.add_argument("--text-encoder", default="minilm")
    v.add_argument("--image-features", default="efficientnet-lite0",
                   help="image feature extractor: efficientnet-lite0 (pretrained, cached; default) or thumbnail")
    v.add_argument("--no-metadata-heads", dest="metadata_heads", action="store_false",
                   help="answer modality / plane / organ questions without the image metadata classifiers")
    v.add_argument("--acquisition-medpix", metavar="MEDPIX_DIR", default=None,
                   help="also train contrast / MR-sequence classifiers on this MedPix 2.0 folder's images, less every "
                        "VQA-RAD image among them (content hash or near-duplicate features)")
    v.add_argument("--dump", metavar="JSONL",
                   help="also write one row per scored question (question, gold, answer, its source, kind, form)")
    v.add_argument("--json", action="store_true", help="print only the JSON line")
    v.set_defaults(handler=_vqa)
    r = sub.add_parser("report", help="draft findings for MedPix dev cases; BLEU-4, ROUGE-L, concept F1")
    r.add_argument("path", help="MedPix 2.0 folder (cases.json, descriptions.json, splits.json, images/)")
    r.add_argument("--split", choices=("dev", "val"), default="dev",
                   help="dev: the reported figures, run once; val: development, on cases carved from train")
    r.add_argument("--no-select", dest="select", action="store_false",
                   help="skip the selection on val (a few minutes) and use the configurations selected before")
    r.add_argument("--rounds", type=_at_least_one, default=3,
                   help="coordinate-ascent passes of the selection (default 3)")
    r.add_argument("--select-on", choices=("concept_f1", "all"), default="concept_f1",
                   help="what the selection on val maximises: concept F1 (default) or concept F1 + BLEU-4 + ROUGE-L")
    r.add_argument("--no-prior", dest="prior", action="store_false",
                   help="draft by retrieval consensus alone, without the concept prior learned on the pool cases")
    r.add_argument("--prior-features", default="efficientnet-lite0",
                   help="image features the concept prior learns from: efficientnet-lite0 (pretrained, cached; "
                        "default) or thumbnail (training-free)")
    r.add_argument("--retrieval-features", default=None,
                   help="image features similar cases are retrieved by: efficientnet-lite0 (pretrained, cached; the "
                        "engine's and the default) or thumbnail")
    r.add_argument("--json", action="store_true", help="print only the JSON line")
    r.set_defaults(handler=_report)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _graph():  # noqa: ANN202
    from kgclip.ontology.store import load_ontologies

    return load_ontologies()


def _vqa(args: argparse.Namespace) -> int:
    from kgclip.eval.vqa import evaluate_vqa_rad
    from kgclip.text.encoders import load_text_encoder

    result = evaluate_vqa_rad(args.path, graph=_graph(), text_encoder=load_text_encoder(args.text_encoder, "cpu"),
                              split=args.split, show_progress=not args.json, image_features=args.image_features,
                              metadata_heads=args.metadata_heads, per_question=bool(args.dump),
                              acquisition_medpix=args.acquisition_medpix)
    rows = result.pop("per_question", [])
    if args.dump:
        from kgclip.atomic import atomic_write_text

        atomic_write_text(args.dump, "".join(json.dumps(r) + "\n" for r in rows))
    result["text_encoder"] = args.text_encoder
    if not args.json:
        print(f"[{args.split}] closed {result['acc_closed']:.3f} (no KG {result['acc_closed_nokg']:.3f}), open "
              f"{result['acc_open']:.3f} (no KG {result['acc_open_nokg']:.3f}), overall {result['acc_overall']:.3f}")
    print(json.dumps(result))
    return 0


def _report(args: argparse.Namespace) -> int:
    from kgclip.eval.report import RETRIEVAL_FEATURES, evaluate_report

    result = evaluate_report(args.path, split=args.split, graph=_graph(), select=args.select, rounds=args.rounds,
                             show_progress=not args.json, prior=args.prior, select_on=args.select_on,
                             prior_features=args.prior_features,
                             retrieval_features=args.retrieval_features or RETRIEVAL_FEATURES)
    print(json.dumps(result))
    return 0
