"""Score what the engine answers, not only what the answerer predicts: each prediction grounded in the similar
cases of the training part (:func:`kgclip.rag.grounding.ground_answer`), as ``Engine.ask`` does.

For every run (a validation fold, or train against test) the cases are the training part's images, each with the
statements of its training-part questions and its stored metadata, built by the engine's own case builder; the
similar cases of a question are the ``k`` nearest by image vector. Nothing of the scored part enters a case.

With ``metadata_heads`` the image metadata classifiers (:mod:`kgclip.models.metadata_heads`) are trained per run on
the same cases' metadata, as a workspace build does: region from each case's ``body_part``, modality from its
``modality`` (else what its training-part questions state), plane from what they state
(:func:`kgclip.rag.image_metadata.labels_from_qa`); they answer modality / plane / organ questions the header
cannot (:func:`kgclip.rag.grounding.ground_answer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kgclip.data.vqa_rad import VQARadItem
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.abstain import InputCheck
from kgclip.rag.answerer import QAExample
from kgclip.rag.evidence import CaseHit
from kgclip.rag.grounding import ground_answer
from kgclip.rag.image_metadata import ImageLabels, answering_labels, fit_case_heads
from kgclip.rag.report import DraftConfig
from kgclip.rag.vqa import Answer, Prediction, VQAAnswerer
from kgclip.engine.cases import cases_from_vqa_rad

__all__ = ["grounded_answers", "case_image_labels"]


def _cases(train_items: Sequence[VQARadItem], part_train: Sequence[QAExample]) -> list[Any]:
    kept = {(e.image_key, e.question, e.group) for e in part_train}
    return cases_from_vqa_rad([i for i in train_items if (i.image_key, i.question, i.linked_id) in kept])


def case_image_labels(cases: Sequence[Any], image_vectors: dict[str, np.ndarray], query: np.ndarray,
                      feature_fingerprint: str, extra_heads: Any = None) -> list[ImageLabels | None]:
    """Train the metadata heads on ``cases`` (:func:`kgclip.rag.image_metadata.fit_case_heads`, as a workspace
    build does) and predict each query image's labels (``None`` for all when no head can be trained), without the
    acquisition fields whose head does not beat the majority class (:func:`~kgclip.rag.image_metadata.
    answering_labels`). ``extra_heads`` (e.g. :func:`kgclip.eval.acquisition_heads.medpix_acquisition_heads`) adds
    its fields, gated the same way, over the cases' own. Shapes: ``query [M, Di]``."""
    heads = fit_case_heads(cases, np.stack([image_vectors[c.case_id] for c in cases]),
                           feature_fingerprint=feature_fingerprint)
    out: list[dict[str, dict[str, float]]] = ([answering_labels(heads, p) for p in heads.predict(query)]
                                             if heads is not None else [{} for _ in range(len(query))])
    if extra_heads is not None:
        for row, extra in zip(out, extra_heads.predict(query)):
            row.update(answering_labels(extra_heads, extra))
    return [row or None for row in out]


def _case_hits(cases: Sequence[Any], image_vectors: dict[str, np.ndarray], query: np.ndarray, k: int
               ) -> list[list[CaseHit]]:
    """The ``k`` nearest training-part cases of each query image vector. Shapes: ``query [M, Di]``."""
    matrix = np.stack([image_vectors[c.case_id] for c in cases])
    sims = query @ matrix.T
    out = []
    for row in sims:
        top = np.argsort(-row)[:k]
        out.append([CaseHit(cases[j].case_id, float(row[j]), cases[j].text, via="image",
                            metadata={"modality": cases[j].modality, "body_part": cases[j].body_part})
                    for j in top])
    return out


def grounded_answers(preds: Sequence[Prediction], runs: Sequence[tuple[list[QAExample], list[QAExample]]],
                     train_items: Sequence[VQARadItem], image_vectors: dict[str, np.ndarray],
                     models: Sequence[VQAAnswerer], input_reason: dict[str, str], graph: ConceptGraph | None,
                     settings: Sequence[tuple[float, float]], k: int = 5, metadata_heads: bool = True,
                     feature_fingerprint: str = "", extra_heads: Any = None,
                     region_voters: int = DraftConfig.region_voters
                     ) -> dict[tuple[float, float], list[Answer]]:
    """``{(case_weight, open_from_cases): answers}`` for every scored question (same order as ``preds``);
    ``extra_heads``: further metadata heads (:func:`case_image_labels`); ``region_voters``: how many nearest cases
    vote on the image's region (``Engine.ask``'s ``region_hits``; 0: the ``k`` evidence cases)."""
    out: dict[tuple[float, float], list[Answer]] = {s: [] for s in settings}
    start = 0
    cache: dict[Any, Any] = {}
    for part_train, part in runs:
        query = np.stack([image_vectors[e.image_key] for e in part])
        cases = _cases(train_items, part_train)
        # The nearest region_voters cases vote on the image's region, as its draft's scope does; k are the evidence.
        hits = _case_hits(cases, image_vectors, query, max(k, region_voters))
        labels = (case_image_labels(cases, image_vectors, query, feature_fingerprint, extra_heads) if metadata_heads
                  else [None] * len(part))
        known = frozenset(e.image_key for e in part_train)  # every case here is in the answerer's memory
        for i, (e, case_hits) in enumerate(zip(part, hits)):
            pred, model = preds[start + i], models[start + i]
            check = InputCheck(not input_reason.get(e.image_key), input_reason.get(e.image_key, ""),
                               {"source_format": "jpeg"})
            for w, t in settings:
                out[(w, t)].append(ground_answer(
                    pred, e.question, check, case_hits[:k], None, tagger=model.tagger,
                    graph=model.tagger.graph if model.tagger is not None else graph,
                    image_threshold=model.meta.get("image_sim_threshold"),
                    min_confidence=model.min_confidence, case_weight=w, open_from_cases=t,
                    known_cases=known, cache=cache, image_labels=labels[i],
                    region_hits=case_hits if region_voters else None))
        start += len(part)
    return out
