"""MedPix 2.0 image<->caption retrieval of KG-CLIP: no enrichment vs GNN concept embeddings vs text-only concept
features, three models trained identically on the train split, each evaluated once on the dev split.

Also (same run, same models): zero-shot modality / plane / body-location accuracy on dev against the majority class,
and image-encoding throughput at the default size.

    python benchmarks/bench_retrieval_medpix.py [--quick] [--data PATH] [--kg DIR] [--epochs N] [--threads N]

GNN concept embeddings come from ``--kg`` (default ``indexes/kg``, written by ``kgclip kg train``). When that holds
none, the bench trains them itself with ``kgclip.kg.build.train_embeddings`` on the neighbourhood of the concepts
the MedPix captions link (1 hop, plus all is_a ancestors), and says so in ``gnn_source``.

Validation for model selection is carved from the train split; dev is used once per reported figure.
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import kgclip_home, shared_data_dir  # noqa: E402

ZS_CLASSES = {  # fixed before looking at any result; names a radiologist would write
    "modality": {"CT": ["CT", "computed tomography", "CT scan with contrast"],
                 "MR": ["MRI", "magnetic resonance imaging", "T2 weighted MR", "T1 weighted MR"]},
    "plane": {"Axial": ["axial", "axial image", "transverse section"],
              "Coronal": ["coronal", "coronal image", "coronal reformat"],
              "Sagittal": ["sagittal", "sagittal image", "midline sagittal"]},
    "location_category": {"Head": ["head", "brain", "skull"],
                           "Spine and Muscles": ["spine", "vertebra", "knee", "musculoskeletal", "bone"],
                           "Thorax": ["chest", "lung", "thorax", "heart"],
                           "Abdomen": ["abdomen", "liver", "bowel", "pancreas"],
                           "Reproductive and Urinary System": ["pelvis", "kidney", "bladder", "uterus",
                                                               "prostate"]},
}


def gnn_embeddings(args: argparse.Namespace, graph, linked: list[str], progress: bool):
    """``(ConceptEmbeddings directory, source description)``."""
    from kgclip.kg.embeddings import ConceptEmbeddings

    kg_dir = Path(args.kg) if args.kg else REPO / "indexes" / "kg"
    try:
        ConceptEmbeddings.load(kg_dir)
        return kg_dir, f"kg helper embeddings {kg_dir}"
    except Exception as exc:  # noqa: BLE001 - any failure means: train our own below
        reason = f"{type(exc).__name__}: {str(exc)[:120]}"
    from kgclip.fingerprint import fingerprint_strings
    from kgclip.kg.build import train_embeddings
    from kgclip.kg.train import KGTrainConfig
    from kgclip.ontology.model import ConceptGraph

    ids = list(dict.fromkeys(graph.neighborhood(linked, hops=12, direction="out")
                             + graph.neighborhood(linked, hops=1, direction="both")))
    cfg = KGTrainConfig(epochs=args.kg_epochs, seed=0)
    out = kgclip_home() / "cache" / "bench-kg" / fingerprint_strings([graph.fingerprint(), json.dumps(cfg.to_dict()),
                                                                      *ids])
    try:
        ConceptEmbeddings.load(out)
    except Exception:  # noqa: BLE001
        keep = set(ids)
        records = [graph.concept(c) for c in ids]
        records += [r for r in graph.relations() if r.source in keep and r.target in keep]
        sub = ConceptGraph.from_records(records, name="medpix-neighbourhood")
        train_embeddings(sub, cfg, show_progress=progress).save(out)
    return out, (f"trained in bench: R-GCN link prediction ({args.kg_epochs} epochs max) on the {len(ids)}-concept "
                 f"neighbourhood of MedPix-linked concepts (no embeddings in {kg_dir}: {reason})")


def _subset(features, idx: list[int]):
    t = torch.tensor(idx)
    return dataclasses.replace(
        features, texts=[features.texts[i] for i in idx], groups=[features.groups[i] for i in idx],
        meta=[features.meta[i] for i in idx], images=features.images[t], text_emb=features.text_emb[t],
        links=[features.links[i] for i in idx], link_idx=features.link_idx[t], link_mask=features.link_mask[t])


def zero_shot(model, images: torch.Tensor, meta: list[dict]) -> dict[str, float]:
    from kgclip.models.zeroshot import ZeroShotClassifier, zero_shot_accuracy

    image_emb = model.encode_images(images)
    out: dict[str, float] = {}
    for task, classes in ZS_CLASSES.items():
        rows = [i for i, m in enumerate(meta) if m.get(task) in classes]
        clf = ZeroShotClassifier(model, classes)
        res = clf.classify_embeddings(image_emb[rows])
        acc = zero_shot_accuracy(res, [meta[i][task] for i in rows])
        out[f"zs_{task}_acc"] = round(acc["accuracy"], 4)
        out[f"zs_{task}_majority"] = round(acc["majority"], 4)
        out[f"zs_{task}_n"] = acc["n"]
    return out


def _parallel(args: argparse.Namespace, argv: list[str] | None, variants: list[str], result: dict,
              linker) -> dict:
    """Train each variant in its own process (identical settings), merge their results, load their models."""
    import subprocess
    import tempfile

    from kgclip.models.kgclip import KGClipModel

    work = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    procs = []
    for variant in variants:
        cmd = [sys.executable, __file__, *base, "--variants", variant, "--jobs", "1", "--worker-dir", str(work)]
        procs.append((variant, subprocess.Popen(cmd)))
    models = {}
    for variant, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
        part = json.loads((work / f"{variant}.json").read_text())
        result.update({k: v for k, v in part.items() if k not in result})
        models[variant] = KGClipModel.from_pretrained(work / variant, linker=linker)
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="medpix-2.0 folder (default: shared data)")
    parser.add_argument("--kg", default=None, help="GNN concept embeddings directory (default: indexes/kg)")
    parser.add_argument("--kg-epochs", type=int, default=30, help="epochs when the bench trains the GNN itself")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per variant (default: config)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--variants", default="plain,kg,kg_textonly")
    parser.add_argument("--seed", type=int, default=0, help="training seed (split, order, init) of every variant")
    parser.add_argument("--save-kg-model", default=None, help="also save the 'kg' variant's model here")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train the variants in this many parallel processes (same settings, one JSON line)")
    parser.add_argument("--worker-dir", default=None, help=argparse.SUPPRESS)  # internal: one variant per process
    parser.add_argument("--quick", action="store_true", help="2 epochs on 256 training pairs (smoke run)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from kgclip.models.train import TrainConfig, evaluate_retrieval, train
    from kgclip.models.train_data import concept_table, load_concept_graph, medpix_pairs, prepare_features
    from kgclip.text.encoders import load_text_encoder
    from kgclip.text.linker import ConceptLinker

    t_start = time.perf_counter()
    root = Path(args.data) if args.data else shared_data_dir() / "medpix-2.0"
    config = TrainConfig(threads=args.threads, seed=args.seed)
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    if args.quick:
        config = dataclasses.replace(config, epochs=2, max_pairs=256)
    size = config.model.image_size
    encoder = load_text_encoder(config.model.text_tower)
    graph = load_concept_graph()
    linker = ConceptLinker.from_graph(graph)
    train_pairs, dev_pairs = medpix_pairs(root, "train"), medpix_pairs(root, "dev")
    tr = prepare_features(train_pairs, image_size=size, text_encoder=encoder, linker=linker, progress=args.progress)
    dv = prepare_features(dev_pairs, image_size=size, text_encoder=encoder, linker=linker, progress=args.progress)
    if args.quick:  # a smoke run never touches dev: it evaluates on validation cases carved from train
        from kgclip.models.train import split_by_group

        keep, held = split_by_group(tr.groups, config.val_fraction, config.seed)
        dv, tr = _subset(tr, held), _subset(tr, keep)
    # Concepts linked in any caption (train or dev): linking is unsupervised text processing, so this equals a
    # table over the whole graph as far as these captions are concerned.
    linked = list(dict.fromkeys(tr.linked_concepts() + dv.linked_concepts()))
    result: dict[str, object] = {"eval_split": "train-val (quick)" if args.quick else "dev",
                                 "n_train_pairs": len(tr), "n_dev_pairs": len(dv), "image_size": size,
                                 "epochs": config.epochs, "linked_concepts": len(linked),
                                 "dev_captions_with_concepts": round(sum(bool(p) for p, _ in dv.links) / len(dv), 4)}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    models = {}
    if args.jobs > 1 and len(variants) > 1 and not args.worker_dir:
        models = _parallel(args, argv, variants, result, linker)
        variants = []
    for variant in variants:
        enrichment = {"plain": "none", "kg": "gnn", "kg_textonly": "text"}[variant]
        table = {}
        if enrichment != "none":
            kw = {}
            if enrichment == "gnn":
                kg_dir, source = gnn_embeddings(args, graph, linked, args.progress)
                result["gnn_source"] = source
                kw["kg_dir"] = kg_dir
            ids, vectors, fp = concept_table(enrichment, linked, graph=graph, text_encoder=encoder,
                                             progress=args.progress, **kw)
            table = {"concept_ids": ids, "concept_vectors": vectors, "concept_fingerprint": fp}
            result[f"table_{variant}"] = [len(ids), int(vectors.shape[1])]
        mc = dataclasses.replace(config.model, enrichment=enrichment,
                                 concept_dim=int(table["concept_vectors"].shape[1]) if table else 0)
        cfg = dataclasses.replace(config, model=mc)
        t0 = time.perf_counter()
        run = train(cfg, tr, None, progress=args.progress, text_encoder=encoder, linker=linker, **table)
        result[f"train_s_{variant}"] = round(time.perf_counter() - t0, 1)
        result[f"best_epoch_{variant}"] = run.best_epoch
        result[f"val_score_{variant}"] = round(run.best_score, 4)
        dev_features = dv.with_concepts(run.model) if enrichment != "none" else dv
        metrics = evaluate_retrieval(run.model, dev_features)  # the one dev evaluation of this model
        result.update(metrics.flat(f"_{variant}"))
        models[variant] = run.model
        if variant == "kg" and args.save_kg_model:
            run.model.save_pretrained(args.save_kg_model, extra={
                "train_config": cfg.to_dict(), "best_epoch": run.best_epoch, "history": run.history,
                "source": {"dataset": "medpix-2.0", "split": "train"}, "gnn_source": result.get("gnn_source")})
        print(json.dumps({variant: metrics.flat(), "train_s": result[f"train_s_{variant}"]}), flush=True)
        if args.worker_dir:
            run.model.save_pretrained(Path(args.worker_dir) / variant)
            (Path(args.worker_dir) / f"{variant}.json").write_text(json.dumps(result))
            return 0
    for variant, model in models.items():
        for key, value in zero_shot(model, dv.images, dv.meta).items():
            result[f"{key}_{variant}"] = value
    model = next(iter(models.values()))
    batch = tr.images[:256]
    model.encode_images(batch[:32])  # warm-up
    t0 = time.perf_counter()
    model.encode_images(batch)
    result["encode_images_per_s"] = round(len(batch) / (time.perf_counter() - t0), 1)
    if "r10_i2t_kg" in result and "r10_i2t_plain" in result:
        result["r10_i2t_kg_minus_plain"] = round(result["r10_i2t_kg"] - result["r10_i2t_plain"], 4)
        result["goal_met"] = bool(result["r10_i2t_kg"] >= result["r10_i2t_plain"] + 0.02
                                  and result["r10_i2t_kg"] >= 0.25)
    result["quick"] = args.quick
    result["threads"] = args.threads
    result["seed"] = args.seed
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
