"""Image metadata classifiers (modality / plane / body region) on the pretrained EfficientNet-Lite0 tower: train,
measure, and optionally save them.

    python benchmarks/bench_metadata_heads.py [--eval val|final] [--save DIR] [--no-zero-shot] [--quick]

Training images: MedPix 2.0 *train* (modality, plane, location -> region; contrast with / without and MR sequence
T1 / T2 / FLAIR / DWI from the modality string, :func:`kgclip.rag.image_metadata.acquisition_labels`; groups = cases)
and VQA-RAD *train* images
(region from ``image_organ``; contrast / sequence from what its training questions state; modality from them,
:func:`kgclip.data.demo.derive_image_metadata`; plane from what they state,
:func:`kgclip.rag.image_metadata.labels_from_qa`). VQA-RAD images that are MedPix dev images are left out, and no
VQA-RAD test question is read for labels. Features: the engine's unit-normalised pooled tower vectors.

* ``--eval val`` (selection; default): a validation carve of whole groups (20 %, seed 0) of the training images;
  the heads train on the rest (their own L2 / temperature carve inside it). Figures per head: accuracy with a
  bootstrap 95 % CI, the majority-class baseline (the most frequent training class), ECE; and the region
  threshold for report scoping (``region_threshold``: the lowest probability at which the confident region
  predictions of the carve are >= 95 % right).
* ``--eval final`` (the reported figures, run once): the same carve figures, then heads trained on all training
  images and scored once on MedPix *dev* (modality, plane, region) and on VQA-RAD *test* images' organ (the test
  rows' ``image_organ``; most test images are also training images, so ``vqa_rad_test_organ_unseen`` scores those
  that are not). ``--save DIR`` writes these heads (safetensors + JSON).

Peer in the same run (unless ``--no-zero-shot``): zero-shot classification with a plain KG-CLIP model trained
here on MedPix train captions (the default pretrained recipe, frozen features; :mod:`kgclip.models.zeroshot`,
the class names of ``bench_retrieval_medpix.ZS_CLASSES``), on the same images (MedPix rows only: CT/MR,
axial/coronal/sagittal, the five location categories).

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from kgclip.config import shared_data_dir  # noqa: E402 - after the sys.path insert above


def ci(hits: np.ndarray, seed: int = 0) -> list[float]:
    from kgclip.stats import bootstrap_ci

    return bootstrap_ci(hits.astype(float), seed=seed)


def medpix_records(root: Path, split: str) -> list[dict]:
    from kgclip.data.medpix import read_medpix

    return [{"path": str(img.image_path), "group": img.case_id, "synpic": img.synpic_id, "modality": img.modality,
             "modality_detail": img.modality_detail, "plane": img.plane, "location": img.location,
             "location_category": img.location_category, "source": "medpix"} for img in read_medpix(root, split=split)]


def vqa_rad_records(root: Path, exclude_synpics: set[str]) -> list[dict]:
    """VQA-RAD training images with labels from the training rows only (test rows never read for labels)."""
    from kgclip.data.demo import derive_image_metadata
    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.rag.image_metadata import labels_from_qa

    items = read_vqa_rad(root, split="train")
    rows = [{"image_name": i.image_name, "image_organ": i.organ, "question": i.question, "answer": i.answer,
             "phrase_type": i.phrase_type} for i in items]
    meta = derive_image_metadata(rows)
    qa: dict[str, list[tuple[str, str]]] = {}
    paths = {}
    for i in items:
        qa.setdefault(i.image_name, []).append((i.question, i.answer))
        paths[i.image_name] = str(i.image_path)
    out = []
    for name, m in sorted(meta.items()):
        if Path(name).stem in exclude_synpics:
            continue
        said = labels_from_qa(qa[name])
        out.append({"path": paths[name], "group": name, "modality": m["modality"], "plane": said["plane"],
                    "contrast": said["contrast"], "sequence": said["sequence"], "body_part": m["region"],
                    "source": "vqa-rad"})
    return out


def head_figures(heads, field: str, x: np.ndarray, truth: list[frozenset[str]], majority: str, seed: int = 0
                 ) -> dict[str, object]:
    """Accuracy (prediction in the truth set), majority baseline, ECE, over rows whose truth the head can name."""
    from kgclip.rag.calibration import expected_calibration_error

    labels = heads.labels(field)
    rows = [i for i, t in enumerate(truth) if t & set(labels)]
    if not rows:
        return {"n": 0}
    p = heads.predict_proba(field, x[rows])
    pred = [labels[j] for j in p.argmax(axis=1)]
    hits = np.array([pr in truth[i] for pr, i in zip(pred, rows)])
    maj = np.array([majority in truth[i] for i in rows])
    return {"n": len(rows), "acc": round(float(hits.mean()), 4), "acc_ci": ci(hits, seed),
            "majority": round(float(maj.mean()), 4), "majority_class": majority,
            "gain_over_majority_ci": ci(hits.astype(float) - maj.astype(float), seed),
            "ece": round(expected_calibration_error(p.max(axis=1), hits), 4),
            "excluded_unknown_label": len(truth) - len(rows) - sum(not t for t in truth)}


def region_threshold(heads, x: np.ndarray, truth: list[frozenset[str]], target: float = 0.95) -> dict[str, float]:
    """The lowest probability at which the carve's region predictions at or above it are >= ``target`` right."""
    labels = heads.labels("region")
    rows = [i for i, t in enumerate(truth) if t]
    p = heads.predict_proba("region", x[rows])
    conf, pred = p.max(axis=1), [labels[j] for j in p.argmax(axis=1)]
    hits = np.array([pr in truth[i] for pr, i in zip(pred, rows)])
    for th in np.round(np.arange(0.5, 1.0, 0.05), 2):
        sel = conf >= th
        if sel.any() and hits[sel].mean() >= target:
            return {"region_threshold": float(th), "coverage": round(float(sel.mean()), 4),
                    "acc_above": round(float(hits[sel].mean()), 4)}
    return {"region_threshold": 0.95, "coverage": round(float((conf >= 0.95).mean()), 4),
            "acc_above": round(float(hits[conf >= 0.95].mean()) if (conf >= 0.95).any() else 0.0, 4)}


def zero_shot_peer(medpix_root: Path, train_groups: set[str], eval_sets: dict[str, list[dict]],
                   threads: int, quick: bool) -> dict[str, object]:
    """Train a plain KG-CLIP model on MedPix train captions of ``train_groups``; zero-shot each eval set."""
    from bench_retrieval_medpix import ZS_CLASSES

    from kgclip.models.train import (
        encode_pair_images,
        frozen_feature_source,
        pretrained_recipe,
        train,
    )
    from kgclip.models.train_data import medpix_pairs, prepare_features
    from kgclip.models.zeroshot import ZeroShotClassifier, zero_shot_accuracy
    from kgclip.text.encoders import load_text_encoder

    config = pretrained_recipe()
    config = dataclasses.replace(config, threads=threads, model=dataclasses.replace(config.model, enrichment="none"),
                                 **({"epochs": 2, "max_pairs": 256} if quick else {}))
    encoder = load_text_encoder(config.model.text_tower)
    source = frozen_feature_source(config.model)
    pairs = [p for p in medpix_pairs(medpix_root, "train") if p.group in train_groups]
    feats = prepare_features(pairs, image_size=config.model.image_size, text_encoder=encoder, linker=None,
                             progress=False, **source)
    run = train(config, feats, None, progress=False, text_encoder=encoder)
    out: dict[str, object] = {"zs_model": "plain KG-CLIP, pretrained_recipe, MedPix train captions",
                              "zs_train_pairs": len(pairs)}
    for name, records in eval_sets.items():
        paths = {r["path"] for r in records if r["source"] == "medpix"}
        split = "dev" if name == "medpix_dev" else "train"
        ev_pairs = [p for p in medpix_pairs(medpix_root, split) if str(p.image) in paths]
        ev = prepare_features(ev_pairs, image_size=config.model.image_size, text_encoder=encoder, linker=None,
                              progress=False, **source)
        emb = encode_pair_images(run.model, ev)
        for task, classes in ZS_CLASSES.items():
            rows = [i for i, m in enumerate(ev.meta) if m.get(task) in classes]
            res = ZeroShotClassifier(run.model, classes).classify_embeddings(emb[rows])
            truth = [ev.meta[i][task] for i in rows]
            acc = zero_shot_accuracy(res, truth)
            hits = np.array([p == t for p, t in zip(res.predicted, truth)])
            out[f"{name}_zs_{task}"] = {"n": acc["n"], "acc": round(acc["accuracy"], 4), "acc_ci": ci(hits),
                                        "majority": round(acc["majority"], 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--medpix", default=None, help="medpix-2.0 folder (default: shared data)")
    parser.add_argument("--vqa-rad", default=None, help="vqa-rad folder (default: shared data)")
    parser.add_argument("--eval", choices=("val", "final"), default="val",
                        help="val: the carve only (selection); final: also MedPix dev and VQA-RAD test organ, once")
    parser.add_argument("--save", default=None, help="with --eval final: save the heads trained on all images here")
    parser.add_argument("--no-zero-shot", dest="zero_shot", action="store_false")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 training images, carve only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from kgclip.models.features import load_image_features
    from kgclip.models.metadata_heads import HeadConfig, fit_metadata_heads
    from kgclip.models.train import split_by_group
    from kgclip.rag.image_metadata import metadata_training_labels

    t0 = time.perf_counter()
    medpix_root = Path(args.medpix) if args.medpix else shared_data_dir() / "medpix-2.0"
    vqa_root = Path(args.vqa_rad) if args.vqa_rad else shared_data_dir() / "vqa-rad"
    if args.quick:
        args.eval = "val"
    mp_train = medpix_records(medpix_root, "train")
    dev_synpics = {img.synpic_id for img in __import__("kgclip.data.medpix", fromlist=["read_medpix"]).read_medpix(
        medpix_root, split="dev")}
    records = mp_train + vqa_rad_records(vqa_root, dev_synpics)
    if args.quick:
        records = records[::max(1, len(records) // 300)]
    featurizer = load_image_features("efficientnet-lite0")
    x = featurizer.embed([r["path"] for r in records], show_progress=True)
    labels = metadata_training_labels(records)
    groups = [r["group"] for r in records]
    result: dict[str, object] = {"eval": args.eval, "n_train_images": len(records),
                                 "n_medpix_train": sum(r["source"] == "medpix" for r in records),
                                 "n_vqa_rad_train": sum(r["source"] == "vqa-rad" for r in records),
                                 "labelled": {f: sum(bool(v) for v in labs) for f, labs in labels.items()},
                                 "features": featurizer.name}
    config = HeadConfig()
    keep, held = split_by_group(groups, 0.2, 0)
    heads = fit_metadata_heads(x[keep], {f: [labs[i] for i in keep] for f, labs in labels.items()},
                               feature_fingerprint=featurizer.fingerprint, groups=[groups[i] for i in keep],
                               config=config)
    result["heads"] = {f: {"labels": h.labels, "l2": h.l2, "temperature": round(h.temperature, 3),
                           "inner_carve": {k: h.figures[k] for k in ("val_n", "val_acc", "val_majority")}}
                       for f, h in heads.heads.items()}

    def majority(field: str, idx: list[int]) -> str:
        counts: dict[str, int] = {}
        for i in idx:
            for v in labels[field][i]:
                counts[v] = counts.get(v, 0) + 1
        return max(sorted(counts), key=lambda k: counts[k])

    for f in heads.fields:
        truth = [labels[f][i] for i in held]
        result[f"val_{f}"] = head_figures(heads, f, x[held], truth, majority(f, keep))
        if f == "contrast":  # contrast within each modality: is the head more than a CT-vs-MR split?
            for mod in ("CT", "MR"):
                idx = [j for j, i in enumerate(held) if labels["modality"][i] == frozenset({mod})]
                if idx:
                    result[f"val_contrast_{mod}"] = head_figures(heads, f, x[held][idx], [truth[j] for j in idx],
                                                                 majority(f, keep))
        for src in ("medpix", "vqa-rad"):
            idx = [j for j, i in enumerate(held) if records[i]["source"] == src]
            if idx:
                result[f"val_{f}_{src}"] = head_figures(heads, f, x[held][idx], [truth[j] for j in idx],
                                                        majority(f, keep))
    if "region" in heads.fields:
        result.update({f"val_{k}": v for k, v in region_threshold(heads, x[held],
                                                                  [labels["region"][i] for i in held]).items()})
    eval_sets = {"val": [records[i] for i in held]}
    if args.eval == "final":
        final = fit_metadata_heads(x, labels, feature_fingerprint=featurizer.fingerprint, groups=groups, config=config)
        dev = medpix_records(medpix_root, "dev")
        xd = featurizer.embed([r["path"] for r in dev], show_progress=True)
        dl = metadata_training_labels(dev)
        every = list(range(len(records)))
        for f in final.fields:
            result[f"medpix_dev_{f}"] = head_figures(final, f, xd, dl[f], majority(f, every))
        from kgclip.data.vqa_rad import read_vqa_rad

        test = {i.image_name: i for i in read_vqa_rad(vqa_root, split="test")}
        seen = {Path(r["path"]).name for r in records if r["source"] == "vqa-rad"}
        names = sorted(test)
        xt = featurizer.embed([str(test[n].image_path) for n in names], show_progress=True)
        organ = metadata_training_labels([{"body_part": test[n].organ} for n in names])["region"]
        result["vqa_rad_test_organ"] = head_figures(final, "region", xt, organ, majority("region", every))
        unseen = [j for j, n in enumerate(names) if n not in seen]
        result["vqa_rad_test_organ_unseen"] = head_figures(final, "region", xt[unseen], [organ[j] for j in unseen],
                                                           majority("region", every)) if unseen else {"n": 0}
        eval_sets["medpix_dev"] = dev
        if args.save:
            final.save(args.save)
            result["saved"] = args.save
    if args.zero_shot:
        train_groups = {records[i]["group"] for i in keep if records[i]["source"] == "medpix"}
        result.update(zero_shot_peer(medpix_root, train_groups, eval_sets, args.threads, args.quick))
    result["quick"] = args.quick
    result["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
