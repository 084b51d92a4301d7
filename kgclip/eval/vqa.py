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

``acc_*`` score what the engine answers (:mod:`kgclip.eval.vqa_grounded`: the answerer's prediction grounded in
the training part's similar cases, as ``Engine.ask`` does); ``acc_*_answerer`` the answerer alone. With the KG
variant the JSON also carries the trust figures: ``ece`` (10 bins, calibrated confidence of the given answers) and
``ece_if_calibrated`` (mean and 95th percentile of the ECE a perfectly calibrated system with the same confidences
would show on as many questions: the noise floor ``ece`` is read against),
``acc_closed_at_coverage_0.8`` and ``risk_coverage_*`` (answer only the most confident share), ``acc_by_kind``
(router kinds), bootstrap 95 % CIs ``acc_*_ci``, ``open_outside_train`` (share of correct open answers that are
not training answers), ``abstain_in_range_rate`` (scored questions the engine declines) and ``abstain_ood_rate``
over :func:`kgclip.eval.ood.out_of_range_inputs` with each input's outcome in ``ood_outcomes``.
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
from kgclip.fingerprint import features_fingerprint
from kgclip.ontology.model import ConceptGraph
from kgclip.eval.ood import out_of_range_inputs
from kgclip.eval.vqa_grounded import grounded_answers
from kgclip.rag.abstain import answer_abstain_reason, check_input
from kgclip.rag.answerer import AnswererConfig, QAExample, normalize_answer
from kgclip.models.features import load_image_features
from kgclip.rag.calibration import (accuracy_at_coverage, calibrated_ece_range,
                                    expected_calibration_error, risk_coverage)
from kgclip.rag.grounding import CASE_WEIGHT, OPEN_FROM_CASES
from kgclip.rag.router import KINDS, TOPICS, route_question
from kgclip.rag.vqa import Answer, Prediction, VQAAnswerer, examples_from_vqa_rad, group_folds
from kgclip.stats import bootstrap_ci

VARIANTS = ("kg", "nokg")  # with the concept graph (keys without suffix) and without it (``*_nokg``)

__all__ = ["VARIANTS", "evaluate_vqa_rad", "score_predictions", "validation_folds", "trust_figures", "ood_figures",
           "question_rows"]


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
                     val_folds: int = 5, seed: int = 0, show_progress: bool = True,
                     variants: Sequence[str] = ("kg", "nokg"),
                     image_features: str = "efficientnet-lite0", metadata_heads: bool = True,
                     per_question: bool = False, acquisition_medpix: str | Path | None = None) -> dict[str, Any]:
    """Train with and without the KG, score ``split`` once per variant. Returns the figures (module docstring).

    Keys: ``acc_closed`` / ``acc_open`` / ``acc_overall`` (and ``*_nokg``) on ``split``; ``n_test*`` count the
    scored questions of that split (for ``val``: all training questions, pooled over the folds); ``val_acc`` is
    the cross-validated accuracy inside the training part that selected the blend (mean over folds for ``val``).
    ``image_features`` names the image feature extractor (:func:`kgclip.models.features.load_image_features`:
    ``efficientnet-lite0``, the default since it won on ``--split val``: overall 0.409 vs the thumbnail's 0.401,
    open 0.103 vs 0.082, closed 0.639 vs 0.640; ``thumbnail``...). ``metadata_heads``: train the image metadata
    classifiers on each run's cases and let them answer modality / plane / organ questions
    (:mod:`kgclip.eval.vqa_grounded`). ``per_question``: also return ``per_question``, one row per scored question
    of the KG variant (:func:`question_rows`), for error analysis. ``acquisition_medpix``: a MedPix 2.0 folder whose
    images, less every VQA-RAD image among them (:mod:`kgclip.eval.acquisition_heads`), train contrast / MR-sequence
    heads used beside the cases' own (with ``metadata_heads``); ``acquisition_heads`` reports the dedupe and figures.
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
    featurizer = load_image_features(image_features)
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
    input_ok = _inputs_in_range(image_paths, keys)
    extra_heads = None
    if acquisition_medpix is not None and metadata_heads:
        from kgclip.eval.acquisition_heads import medpix_acquisition_heads

        extra_heads, out["acquisition_heads"] = medpix_acquisition_heads(acquisition_medpix, path, featurizer,
                                                                         show_progress=show_progress)
    for use_kg, suffix in [(v == "kg", "" if v == "kg" else "_nokg") for v in VARIANTS if v in variants]:
        preds, vals, selected, models = [], [], [], []
        for part_train, part in runs:
            model, val = VQAAnswerer.fit(part_train, image_vectors, graph=graph if use_kg else None,
                                         text_encoder=text_encoder, config=replace(config, use_kg=use_kg),
                                         image_featurizer=featurizer.name, show_progress=show_progress)
            part_img = np.stack([image_vectors[e.image_key] for e in part])
            part_preds = model.predict_batch([e.question for e in part], part_img)  # the one pass over this part
            preds += part_preds
            models += [model] * len(part)
            vals.append(val["val_acc"])
            selected.append(val["selected"])
        # What the engine answers: grounded in the training part's similar cases, calibrated, abstaining.
        chosen = (CASE_WEIGHT, OPEN_FROM_CASES)
        settings = {chosen}
        if use_kg:  # the grid OPEN_FROM_CASES was selected from (on --split val)
            settings |= {(CASE_WEIGHT, t) for t in (0.0, 0.1, 0.2, 0.4)}
        grounded = grounded_answers(preds, runs, train_items, image_vectors, models, input_ok,
                                    graph if use_kg else None, sorted(settings), metadata_heads=metadata_heads,
                                    feature_fingerprint=features_fingerprint(featurizer), extra_heads=extra_heads)
        scores = score_predictions([normalize_answer(a.text) for a in grounded[chosen]], scored)
        out.update({k + suffix: round(v, 4) for k, v in scores.items()})
        answerer_scores = score_predictions([p.normalized for p in preds], scored)
        out.update({k + "_answerer" + suffix: round(v, 4) for k, v in answerer_scores.items()})
        out["val_acc" + suffix] = round(float(np.mean(vals)), 4)
        out["selected" + suffix] = selected[0] if len(selected) == 1 else selected
        kind_ok = np.mean([(p.kind == "closed") == e.closed for p, e in zip(preds, scored)])
        out["kind_accuracy" + suffix] = round(float(kind_ok), 4)
        if use_kg:
            grid = {s: score_predictions([normalize_answer(a.text) for a in ans], scored)
                    for s, ans in grounded.items()}
            out["acc_open_by_open_from_cases"] = {str(t): round(v["acc_open"], 4) for (w, t), v in grid.items()
                                                  if w == CASE_WEIGHT}
            out.update(trust_figures(grounded[chosen], preds, scored, runs, seed=seed))
            out.update(ood_figures(model, featurizer))
            if per_question:
                out["per_question"] = question_rows(grounded[chosen], preds, scored)
    out["kg_concepts"] = len(graph) if graph is not None else 0
    out["text_encoder"] = str(getattr(text_encoder, "name", "?"))
    out["image_features"] = featurizer.name
    out["metadata_heads"] = metadata_heads
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def _inputs_in_range(image_paths: dict[str, Path], keys: Sequence[str]) -> dict[str, str]:
    """Image key -> why :func:`kgclip.rag.abstain.check_input` finds it out of range ("" when in range)."""
    return {k: check_input(image_paths[k]).reason for k in keys}


def trust_figures(answers: Sequence[Answer], preds: Sequence[Prediction], scored: Sequence[QAExample],
                  runs: Sequence[tuple[list, list]], seed: int = 0) -> dict[str, Any]:
    """Accuracy, calibration, risk-coverage, abstention on in-range inputs, per-kind accuracy, answers outside the
    training answers, and bootstrap 95 % CIs, for answers given out of fold (val) or on the test split."""
    hits = np.array([normalize_answer(a.text) == normalize_answer(e.answer) for a, e in zip(answers, scored)])
    conf = np.array([a.confidence for a in answers])
    raw = np.array([p.raw_confidence for p in preds])
    raw_hits = np.array([p.normalized == normalize_answer(e.answer) for p, e in zip(preds, scored)])
    closed = np.array([e.closed for e in scored])
    train_answers: list[set[str]] = []
    for part_train, part in runs:
        answers_seen = {normalize_answer(t.answer) for t in part_train}
        train_answers += [answers_seen] * len(part)
    open_hits = [normalize_answer(a.text) not in seen for a, e, h, seen in zip(answers, scored, hits, train_answers)
                 if h and not e.closed]
    out: dict[str, Any] = {
        "ece": round(expected_calibration_error(conf, hits), 4),
        "ece_if_calibrated": [round(v, 4) for v in calibrated_ece_range(conf, seed=seed)],
        "ece_uncalibrated_answerer": round(expected_calibration_error(raw, raw_hits), 4),
        "acc_closed_at_coverage_0.8": round(accuracy_at_coverage(conf[closed], hits[closed], 0.8), 4),
        "risk_coverage_closed": [[c, round(a, 4)] for c, a in risk_coverage(conf[closed], hits[closed])],
        "risk_coverage_open": [[c, round(a, 4)] for c, a in risk_coverage(conf[~closed], hits[~closed])],
        "open_outside_train": round(float(np.mean(open_hits)) if open_hits else 0.0, 4),
        "abstain_in_range_rate": round(float(np.mean([a.abstained for a in answers])), 4),
    }
    for name, sel in (("acc_closed", closed), ("acc_open", ~closed), ("acc_overall", np.ones_like(closed))):
        out[name + "_ci"] = bootstrap_ci(hits[sel], seed=seed)
    kinds = np.array([a.route for a in answers])
    out["acc_by_kind"] = {k: {"n": int((kinds == k).sum()), "acc": round(float(hits[kinds == k].mean()), 4)}
                          for k in KINDS if (kinds == k).any()}
    topics = np.array([route_question(e.question).topic for e in scored])
    out["acc_by_topic"] = {}
    for t in TOPICS:
        on, on_closed = topics == t, closed & (topics == t)
        if on.any():
            out["acc_by_topic"][t] = {"n": int(on.sum()), "acc": round(float(hits[on].mean()), 4),
                                      "closed_n": int(on_closed.sum()),
                                      "closed_acc": round(float(hits[on_closed].mean()), 4) if on_closed.any() else 0.0}
    return out


def question_rows(answers: Sequence[Answer], preds: Sequence[Prediction], scored: Sequence[QAExample]
                  ) -> list[dict[str, Any]]:
    """One row per scored question: what was asked, the gold answer, what the engine answered and where that answer
    came from (``source``: the grounding's, else ``answerer``), the router kind and form, and whether it is right."""
    return [{"image": e.image_key, "question": e.question, "gold": e.answer, "closed": e.closed,
             "predicted": a.text, "answerer": p.text, "source": a.flags.get("source", "answerer"),
             "kind": a.route, "topic": route_question(e.question).topic, "form": p.form,
             "confidence": round(a.confidence, 4), "abstained": a.abstained,
             "hit": normalize_answer(a.text) == normalize_answer(e.answer)}
            for a, p, e in zip(answers, preds, scored)]


def ood_figures(model: VQAAnswerer, featurizer: Any) -> dict[str, Any]:
    """Abstention on out-of-range inputs (:func:`kgclip.eval.ood.out_of_range_inputs`), asked a presence question.

    An input :func:`check_input` rejects abstains; one it passes goes through the answerer and abstains only if
    :func:`answer_abstain_reason` says so.
    """
    outcomes: dict[str, str] = {}
    for name, source in out_of_range_inputs():
        verdict = check_input(source)
        reason = verdict.reason
        if not reason:
            pred = model.predict("Is there a pleural effusion?", featurizer.embed_one(source))
            reason = answer_abstain_reason(pred, image_threshold=model.meta.get("image_sim_threshold"),
                                           min_confidence=model.min_confidence)
        outcomes[name] = reason.split(":")[0].split(" (")[0][:60] if reason else "ANSWERED"
    n_abstained = sum(v != "ANSWERED" for v in outcomes.values())
    return {"abstain_ood_rate": round(n_abstained / max(len(outcomes), 1), 4), "n_ood": len(outcomes),
            "ood_outcomes": outcomes}
