"""Zero-shot classification on the MedPix 2.0 dev split with a trained KG-CLIP model (default ``indexes/model``).

Tasks: modality (CT / MR), plane (axial / coronal / sagittal; other planes left out) and body-location category
(5 classes). Prompts: class names and synonyms (fixed in ``bench_retrieval_medpix.ZS_CLASSES``) in the default
templates. Peers in the same run: always answering the majority class, and the same names without templates
(one prompt per name, no ensemble).

    python benchmarks/bench_zeroshot_medpix.py [--model DIR] [--data PATH] [--quick]

``--quick`` is a smoke run on 64 *train* images (dev stays untouched). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from kgclip.config import shared_data_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "indexes" / "model"))
    parser.add_argument("--data", default=None, help="medpix-2.0 folder (default: shared data)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench_retrieval_medpix import ZS_CLASSES

    from kgclip.models.kgclip import KGClipModel
    from kgclip.models.train import encode_pair_images, frozen_feature_source
    from kgclip.models.train_data import load_concept_graph, medpix_pairs, prepare_features
    from kgclip.models.zeroshot import ZeroShotClassifier, zero_shot_accuracy
    from kgclip.text.linker import ConceptLinker

    t0 = time.perf_counter()
    root = Path(args.data) if args.data else shared_data_dir() / "medpix-2.0"
    linker = ConceptLinker.from_graph(load_concept_graph())
    model = KGClipModel.from_pretrained(args.model, linker=linker)
    pairs = medpix_pairs(root, "train")[:64] if args.quick else medpix_pairs(root, "dev")
    # A pretrained tower's model reads the cached tower features (the same images' pixels give the same vectors).
    feats = prepare_features(pairs, image_size=model.config.image_size, text_encoder=model.text_encoder,
                             linker=None, progress=False, **frozen_feature_source(model.config))
    image_emb = encode_pair_images(model, feats)
    result: dict[str, object] = {"model": args.model, "image_tower": model.config.image_tower,
                                 "train_blocks": model.config.train_blocks, "enrichment": model.config.enrichment,
                                 "split": "train[:64]" if args.quick else "dev",
                                 "n": len(pairs)}
    for task, classes in ZS_CLASSES.items():
        rows = [i for i, m in enumerate(feats.meta) if m.get(task) in classes]
        truth = [feats.meta[i][task] for i in rows]
        ensemble = zero_shot_accuracy(ZeroShotClassifier(model, classes).classify_embeddings(image_emb[rows]), truth)
        single = zero_shot_accuracy(
            ZeroShotClassifier(model, classes, templates=("{}",)).classify_embeddings(image_emb[rows]), truth)
        result[f"zs_{task}_acc"] = round(ensemble["accuracy"], 4)
        result[f"zs_{task}_acc_no_ensemble"] = round(single["accuracy"], 4)
        result[f"zs_{task}_majority"] = round(ensemble["majority"], 4)
        result[f"zs_{task}_vs_majority"] = round(ensemble["accuracy"] / max(ensemble["majority"], 1e-9), 3)
        result[f"zs_{task}_n"] = ensemble["n"]
    result["quick"] = args.quick
    result["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
