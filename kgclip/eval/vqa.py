"""VQA-RAD evaluation: train the built-in answerer on the train split (phrase_type ``freeform`` / ``para``),
select its blend on validation carved from train, and score the standard test split (``test_freeform`` /
``test_para``: 272 closed, 179 open) once per variant, with and without the knowledge graph.

Accuracy is exact match after the usual normalisation (case, punctuation, articles). ``open_ceiling`` is the
share of open test answers that occur in the training answer set at all (no classifier over it can do better).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import InputFormatError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.answerer import AnswererConfig, QAExample, normalize_answer
from kgclip.rag.inputs import ThumbnailFeaturizer
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad

__all__ = ["load_vqa_rad_rows", "evaluate_vqa_rad", "score_predictions"]

TRAIN_TYPES = ("freeform", "para")
TEST_TYPES = ("test_freeform", "test_para")


def load_vqa_rad_rows(path: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """Rows of ``VQA_RAD_Dataset_Public.json`` (or any ``*.json`` list in ``path``) and the images folder."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.json"))
    if not files:
        raise InputFormatError("no VQA-RAD JSON found; pass the folder holding VQA_RAD_Dataset_Public.json and "
                               "images/", path=str(path))
    try:
        rows = json.loads(files[0].read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFormatError(f"cannot read VQA-RAD JSON ({exc})", path=str(files[0])) from exc
    if not isinstance(rows, list) or not rows or "question" not in rows[0]:
        raise InputFormatError("expected a JSON list of VQA-RAD rows with question/answer/image_name",
                               path=str(files[0]))
    root = files[0].parent
    images = root / "images" if (root / "images").is_dir() else root
    return rows, images


def score_predictions(predicted: Sequence[str], examples: Sequence[QAExample]) -> dict[str, float]:
    hits = np.array([normalize_answer(p) == normalize_answer(e.answer) for p, e in zip(predicted, examples)])
    closed = np.array([e.closed for e in examples])
    return {"acc_closed": float(hits[closed].mean()) if closed.any() else 0.0,
            "acc_open": float(hits[~closed].mean()) if (~closed).any() else 0.0,
            "acc_overall": float(hits.mean()) if len(hits) else 0.0}


def evaluate_vqa_rad(path: str | Path, *, graph: ConceptGraph | None, text_encoder: Any,
                     config: AnswererConfig = AnswererConfig(), show_progress: bool = True) -> dict[str, Any]:
    """Train with and without the KG on train, test each once. Returns the figures (see module docstring)."""
    start = time.perf_counter()
    rows, image_dir = load_vqa_rad_rows(path)
    train_rows = [r for r in rows if str(r.get("phrase_type")) in TRAIN_TYPES]
    test_rows = [r for r in rows if str(r.get("phrase_type")) in TEST_TYPES]
    if not train_rows or not test_rows:
        raise InputFormatError("the VQA-RAD JSON has no train (freeform/para) or no test (test_*) rows",
                               path=str(path))
    train, test = examples_from_vqa_rad(train_rows), examples_from_vqa_rad(test_rows)
    featurizer = ThumbnailFeaturizer()
    keys = sorted({e.image_key for e in train + test})
    vectors = featurizer.embed([image_dir / k for k in keys], show_progress=show_progress)
    image_vectors = dict(zip(keys, vectors))
    test_img = np.stack([image_vectors[e.image_key] for e in test])
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test),
                           "n_test_closed": sum(e.closed for e in test),
                           "n_test_open": sum(not e.closed for e in test)}
    train_answers = {normalize_answer(e.answer) for e in train}
    open_test = [e for e in test if not e.closed]
    out["open_ceiling"] = sum(normalize_answer(e.answer) in train_answers for e in open_test) / max(len(open_test), 1)
    for use_kg, suffix in ((True, ""), (False, "_nokg")):
        model, val = VQAAnswerer.fit(train, image_vectors, graph=graph if use_kg else None,
                                     text_encoder=text_encoder, config=replace(config, use_kg=use_kg),
                                     image_featurizer=featurizer.name, show_progress=show_progress)
        preds = model.predict_batch([e.question for e in test], test_img)  # the one pass over test
        scores = score_predictions([p.normalized for p in preds], test)
        out.update({k + suffix: round(v, 4) for k, v in scores.items()})
        out["val_acc" + suffix] = round(val["val_acc"], 4)
        out["selected" + suffix] = val["selected"]
        kind_ok = np.mean([(p.kind == "closed") == e.closed for p, e in zip(preds, test)])
        out["kind_accuracy" + suffix] = round(float(kind_ok), 4)
    out["kg_concepts"] = len(graph) if graph is not None else 0
    out["text_encoder"] = str(getattr(text_encoder, "name", "?"))
    out["image_features"] = featurizer.name
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out
