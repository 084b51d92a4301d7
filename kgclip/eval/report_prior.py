"""The learned concept prior (:mod:`kgclip.rag.concept_prior`) in the report evaluation: trained on a split's pool
cases only (``val``: train minus the val carve-out; ``dev``: all of train), from frozen image features of every pool
image and its modality / body region, then asked about each query's first image and header metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kgclip.eval.report_data import MedPixReportData, ReportSplit
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concept_prior import ConceptPrior, ConceptPriorConfig, train_concept_prior

__all__ = ["PRIOR_FEATURES", "prior_features", "train_split_prior", "split_priors"]

# The image features the prior learns from: the pretrained EfficientNet-Lite0's pooled features (cached on disk).
PRIOR_FEATURES = "efficientnet-lite0"


def prior_features(data: MedPixReportData, name: str = PRIOR_FEATURES) -> tuple[np.ndarray, Any]:
    """``[N, D]`` features of every image of ``data`` (memoised on it) and the extractor."""
    memo = getattr(data, "_prior_features", None)
    if memo is not None and memo[1].name == name:
        return memo
    from kgclip.models.features import load_image_features

    featurizer = load_image_features(name)
    vectors = featurizer.embed([img.image_path for img in data.images])
    data._prior_features = (vectors, featurizer)  # type: ignore[attr-defined]
    return vectors, featurizer


def train_split_prior(data: MedPixReportData, split: ReportSplit, tagger: Any, graph: ConceptGraph | None,
                      config: ConceptPriorConfig, features: str = PRIOR_FEATURES) -> ConceptPrior:
    """The prior trained on ``split``'s pool: one row per pool image, labelled with its case's findings concepts."""
    vectors, featurizer = prior_features(data, features)
    pool = [int(i) for i in split.pool]
    imgs = [data.images[i] for i in pool]
    labels = {cid: tagger.concept_ids(data.findings(cid), include_negated=False) for cid in {i.case_id for i in imgs}}
    return train_concept_prior(vectors[pool], [i.modality for i in imgs], [i.location_category for i in imgs],
                               [labels[i.case_id] for i in imgs], config=config, graph=graph,
                               case_ids=[i.case_id for i in imgs], feature_name=featurizer.name,
                               feature_fingerprint=featurizer.fingerprint)


def split_priors(data: MedPixReportData, split: ReportSplit, prior: ConceptPrior,
                 features: str = PRIOR_FEATURES) -> list[Mapping[str, float]]:
    """``{concept: probability}`` for every query of ``split``, from its image and header metadata only."""
    vectors, _ = prior_features(data, features)
    meta = [data.query_metadata(split, qi) for qi in range(len(split))]
    probs = prior.predict(vectors[split.queries], [m["modality"] for m in meta], [m["region"] for m in meta])
    return [dict(zip(prior.concepts, row.tolist())) for row in probs]
