"""VQA-RAD evaluation: train the built-in answerer on the train split (phrase_type ``freeform`` / ``para``),
select its blend by cross-validation on train, and score one split once per variant, with and without the
knowledge graph:

* ``split="val"`` (development): validation carved from *train* by ``val_folds``-fold cross-validation over
  whole paraphrase groups (seeded); each fold's answerer trains on the other folds, and the figures pool all
  folds, so every training question is scored once. One carved fold (~360 questions) is too noisy to develop on:
  two seeds of a single 20 % carve differed by 13 points of closed accuracy. The test rows are never turned into
  examples and their images are never read, so design choices made on these figures cannot leak the test split.
* ``split="test"`` (the reported figure): train on all of train, score the standard test split (``test_freeform``
  / ``test_para``: 272 closed, 179 open). Run it once per reported figure, after the design is frozen on ``val``.

Accuracy is exact match after the usual normalisation (case, punctuation, articles). ``open_ceiling`` is the
share of open test answers that occur in the training answer set at all (no classifier over it can do better).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kgclip.data.vqa_rad import read_vqa_rad
from kgclip.errors import InputFormatError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.answerer import AnswererConfig, QAExample, normalize_answer
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad, group_folds

__all__ = ["evaluate_vqa_rad", "score_predictions", "validation_folds"]


def validation_folds(examples: Sequence[QAExample], n_folds: int = 5, seed: int = 0
                     ) -> list[tuple[list[QAExample], list[QAExample]]]:
    """Split training questions into ``n_folds`` (train, validation) pairs by whole paraphrase groups.

    This mirrors how the test split is built: its questions are about images that also appear in train (99 % of
    them), so validation keeps images shared and only holds out questions. A paraphrase of a held-out question never
    stays in the training part. Every question is in exactly one validation part.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    fold = group_folds([e.group or e.question for e in examples], n_folds, seed)
    return [([e for e, k in zip(examples, fold) if k != f], [e for e, k in zip(examples, fold) if k == f])
            for f in range(n_folds)]


def score_predictions(predicted: Sequence[str], examples: Sequence[QAExample]) -> dict[str, float]:
    hits = np.array([normalize_answer(p) == normalize_answer(e.answer) for p, e in zip(predicted, examples)])
    closed = np.array([e.closed for e in examples])
    return {"acc_closed": float(hits[closed].mean()) if closed.any() else 0.0,
            "acc_open": float(hits[~closed].mean()) if (~closed).any() else 0.0,
            "acc_overall": float(hits.mean()) if len(hits) else 0.0}


def evaluate_vqa_rad(path: str | Path, *, graph: ConceptGraph | None, text_encoder: Any,
                     config: AnswererConfig = AnswererConfig(), split: Literal["test", "val"] = "test",
                     val_folds: int = 5, seed: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Train with and without the KG, score ``split`` once per variant. Returns the figures (module docstring).

    Keys: ``acc_closed`` / ``acc_open`` / ``acc_overall`` (and ``*_nokg``) on ``split``; ``n_test*`` count the
    scored questions of that split (for ``val``: all training questions, pooled over the folds); ``val_acc`` is
    the cross-validated accuracy inside the training part that selected the blend (mean over folds for ``val``).
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    start = time.perf_counter()
    # In val mode only the train split is read: the test rows are never parsed into items, their images never opened.
    train_items = read_vqa_rad(path, split="train")
    test_items = read_vqa_rad(path, split="test") if split == "test" else []
    if not train_items or (split == "test" and not test_items):
        raise InputFormatError("the VQA-RAD JSON has no train (freeform/para) or no test (test_*) rows",
                               path=str(path))
    train = examples_from_vqa_rad(train_items)
    # (training part, scored part) pairs: the validation folds, or all of train against the test split.
    runs = validation_folds(train, val_folds, seed) if split == "val" else [(train, examples_from_vqa_rad(test_items))]
    image_paths = {item.image_key: item.image_path for item in train_items + test_items}
    scored = [e for _, part in runs for e in part]
    featurizer = ThumbnailFeaturizer()
    keys = sorted({e.image_key for e in train + scored})
    vectors = featurizer.embed([image_paths[k] for k in keys], show_progress=show_progress)
    image_vectors = dict(zip(keys, vectors))
    out: dict[str, Any] = {"split": split, "n_train": len(runs[0][0]), "n_test": len(scored),
                           "n_test_closed": sum(e.closed for e in scored),
                           "n_test_open": sum(not e.closed for e in scored)}
    if split == "val":
        out["val_folds"] = val_folds
    ceiling: list[bool] = []
    for part_train, part in runs:
        answers = {normalize_answer(t.answer) for t in part_train}  # once per run, not once per question
        ceiling += [normalize_answer(e.answer) in answers for e in part if not e.closed]
    out["open_ceiling"] = round(sum(ceiling) / max(len(ceiling), 1), 4)
    for use_kg, suffix in ((True, ""), (False, "_nokg")):
        preds, vals, selected = [], [], []
        for part_train, part in runs:
            model, val = VQAAnswerer.fit(part_train, image_vectors, graph=graph if use_kg else None,
                                         text_encoder=text_encoder, config=replace(config, use_kg=use_kg),
                                         image_featurizer=featurizer.name, show_progress=show_progress)
            part_img = np.stack([image_vectors[e.image_key] for e in part])
            preds += model.predict_batch([e.question for e in part], part_img)  # the one pass over this part
            vals.append(val["val_acc"])
            selected.append(val["selected"])
        scores = score_predictions([p.normalized for p in preds], scored)
        out.update({k + suffix: round(v, 4) for k, v in scores.items()})
        out["val_acc" + suffix] = round(float(np.mean(vals)), 4)
        out["selected" + suffix] = selected[0] if len(selected) == 1 else selected
        kind_ok = np.mean([(p.kind == "closed") == e.closed for p, e in zip(preds, scored)])
        out["kind_accuracy" + suffix] = round(float(kind_ok), 4)
    out["kg_concepts"] = len(graph) if graph is not None else 0
    out["text_encoder"] = str(getattr(text_encoder, "name", "?"))
    out["image_features"] = featurizer.name
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out
