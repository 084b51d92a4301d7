"""``kgclip train``: train the KG-enriched image-text model on MedPix 2.0, VQA-RAD or a manifest."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train the KG-CLIP image-text model",
        description="Train the KG-enriched dual encoder. Default: `kgclip train --data medpix PATH` trains on the "
                    "MedPix 2.0 train split and writes indexes/model/ (resumes an interrupted run).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", choices=("medpix", "vqa-rad"), help="a known dataset (folder given as PATH)")
    src.add_argument("--manifest", metavar="FILE", help="CSV/TSV/JSONL manifest with image,text[,group] columns")
    p.add_argument("path", nargs="?", default=None,
                   help="dataset folder (default: the shared data folder's medpix-2.0 / vqa-rad)")
    p.add_argument("--out", default=None, help="output model directory (default: indexes/model)")
    p.add_argument("--enrichment", default="auto", choices=("auto", "gnn", "text", "none"),
                   help="KG enrichment: GNN concept embeddings (auto: when --kg holds them, else text-only)")
    p.add_argument("--kg", default=None, help="concept embeddings directory (default: indexes/kg)")
    p.add_argument("--tower", default="efficientnet-lite0",
                   help="image tower: efficientnet-lite0 (pretrained, trains on its cached features; the default), "
                        "builtin-cnn (trained from scratch on pixels), or any name load_image_tower resolves")
    p.add_argument("--train-blocks", type=int, default=0,
                   help="pretrained towers: 0 keeps the tower frozen, k fine-tunes its last k blocks and head")
    p.add_argument("--ensemble", type=int, default=None,
                   help="heads trained one after another and joined (default: the recipe's)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    p.add_argument("--quick", action="store_true", help="2 epochs on at most 256 pairs (a smoke run)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from kgclip.errors import ConfigError
    from kgclip.models.train import TrainConfig, default_out_dir, train_pairs
    from kgclip.models.train_data import manifest_pairs, medpix_pairs, vqa_rad_pairs

    if args.manifest:
        pairs, source = manifest_pairs(args.manifest), {"manifest": str(args.manifest)}
    elif args.data == "medpix":
        pairs, source = medpix_pairs(args.path, split="train"), {"dataset": "medpix-2.0", "split": "train"}
    else:
        pairs, source = vqa_rad_pairs(args.path, split="train"), {"dataset": "vqa-rad", "split": "train"}
    out = Path(args.out) if args.out else default_out_dir()
    kg_dir = Path(args.kg) if args.kg else default_out_dir().parent / "kg"
    enrichment = args.enrichment
    if enrichment == "auto":
        enrichment = "gnn" if (kg_dir.is_dir() and any(kg_dir.iterdir())) else "text"
        if enrichment == "text":
            print(f"no concept embeddings in {kg_dir} (run `kgclip kg train`); using text-only concept features")
    from kgclip.models.backbones import is_builtin
    from kgclip.models.train import pretrained_recipe

    if is_builtin(args.tower):
        config = TrainConfig(model=dataclasses.replace(TrainConfig().model, image_tower=args.tower))
    else:
        config = pretrained_recipe(train_blocks=args.train_blocks)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, image_tower=args.tower))
    # concept_dim is filled from the concept table by train_pairs; 1 is a placeholder that keeps the config valid.
    model = dataclasses.replace(config.model, enrichment=enrichment, concept_dim=0 if enrichment == "none" else 1)
    if args.image_size:
        model = dataclasses.replace(model, image_size=args.image_size)
    if args.ensemble is not None:
        model = dataclasses.replace(model, ensemble=args.ensemble)
    changes = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                 ("seed", args.seed), ("threads", args.threads)) if v is not None}
    if args.quick:
        changes.setdefault("epochs", 2)
        changes["max_pairs"] = 256
    config = dataclasses.replace(config, model=model, **changes)
    if not pairs:
        raise ConfigError("the dataset has no image-text pairs")
    t0 = time.perf_counter()
    result = train_pairs(config, pairs, out, kg_dir=kg_dir, resume=not args.no_resume,
                         progress=not args.no_progress, extra={"source": source, "enrichment": enrichment})
    summary = {"out": str(result.out_dir), "image_tower": config.model.image_tower,
               "train_blocks": config.model.train_blocks, "ensemble": config.model.ensemble,
               "enrichment": enrichment, "best_epoch": result.best_epoch,
               "val_mean_recall": round(result.best_score, 4), "train_pairs": result.n_train,
               "val_pairs": result.n_val, "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary))
    return 0
