"""MedPix data for the report-drafting evaluation: the splits, image features, and retrieval of similar cases.

Splits (by case, never by image, so no case is both query and neighbour):

* ``val``: a fixed ``val_fraction`` of MedPix *train* cases (seeded shuffle of the sorted case ids); its queries
  retrieve among the remaining train cases. Every design choice of the drafter is made here.
* ``dev``: MedPix dev cases, retrieving among all train cases. Touched once, for the reported figures.

A query is the first image of a case whose Findings are not empty; the reference is the case's Findings. What a
query may use besides its pixels is the metadata a DICOM header carries (modality, body location), never its
caption or any other text of the case.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.rag.evidence import CaseHit

__all__ = ["carve_val_cases", "ReportSplit", "MedPixReportData", "RETRIEVAL_FILTERS", "CASE_TEXTS"]

# Which acquisition metadata a retrieved case must share with the query.
RETRIEVAL_FILTERS = ("none", "modality", "modality+region", "modality+location")
# What text a retrieved case contributes: its Findings, or its Findings and the caption of its matched image.
CASE_TEXTS = ("findings", "findings+caption")


def carve_val_cases(case_ids: Sequence[str], fraction: float = 0.2, seed: int = 0) -> list[str]:
    """A validation subset of training case ids: ``round(fraction * n)`` of them, chosen by a seeded shuffle of the
    sorted ids (so the same ids come back whatever the input order)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val fraction must be in (0, 1), got {fraction}")
    ids = sorted(set(case_ids))
    random.Random(seed).shuffle(ids)
    return sorted(ids[:max(1, round(fraction * len(ids)))])


@dataclass
class ReportSplit:
    """Queries of one split and the pool they retrieve from.

    Attributes:
        name: ``"val"`` or ``"dev"``.
        case_ids: the query cases.
        queries: index (into ``MedPixReportData.images``) of each query image, one per case.
        references: each query case's Findings.
        pool: indices of the images queries may retrieve (all images of the pool cases).
        sims: ``[Q, P]`` cosine similarity of each query image to each pool image.
    """

    name: str
    case_ids: list[str]
    queries: list[int]
    references: list[str]
    pool: np.ndarray
    sims: np.ndarray

    def __len__(self) -> int:
        return len(self.queries)


# The image features similar cases are retrieved by (the concept prior's are
# kgclip.eval.report_prior.PRIOR_FEATURES): the engine's default tower, so
# the figures are those of what Engine.draft_report does. Until session 9 the evaluation retrieved by the 32x32
# thumbnail while the engine used the tower. MedPix val, carve seeds 0/1/2 (312 drafts, paired per case, this
# draft config): thumbnail 0.1345 [0.121, 0.147]; efficientnet-lite0 at vote temperature 0.05 / 0.1 / 0.2 / 0.4 / 1.0:
# 0.111 / 0.128 / 0.132 / 0.131 / 0.130; at 0.2 (the default) -0.0025 [-0.008, 0.003] against the thumbnail.
# The draft confidence (kgclip.rag.draft_confidence) was refitted on tower-retrieved drafts.
RETRIEVAL_FEATURES = "efficientnet-lite0"


class MedPixReportData:
    """MedPix train (+ the evaluated split) with image features computed once for all splits.

    Args:
        path: the MedPix 2.0 folder.
        splits: the MedPix splits to read besides ``train`` (``("dev",)`` for the final figures; ``()`` when only
            ``val`` is needed).
        featurizer: image descriptor with ``embed(paths) -> [N, D]`` unit rows and a ``name``; default: the
            extractor named ``features`` (:func:`kgclip.models.features.load_image_features`).
    """

    def __init__(self, path: str | Path, *, splits: Sequence[str] = ("dev",), featurizer: Any = None,
                 features: str = RETRIEVAL_FEATURES, val_fraction: float = 0.2, seed: int = 0,
                 show_progress: bool = False) -> None:
        from kgclip.data.medpix import read_medpix
        from kgclip.models.features import load_image_features

        self.featurizer = featurizer or load_image_features(features)
        parts = [read_medpix(path, split="train")] + [read_medpix(path, split=s) for s in splits if s != "train"]
        self.cases = {cid: c for mp in parts for cid, c in mp.cases.items()}
        # Only cases with Findings take part: they are what a draft is compared with and what it is made of.
        self.images = [img for mp in parts for img in mp.images
                       if img.case_id in self.cases and self.cases[img.case_id].findings]
        self.case_split = {cid: c.split for cid, c in self.cases.items()}
        train_ids = [cid for cid, c in self.cases.items() if c.split == "train" and c.findings]
        self.val_cases = set(carve_val_cases(train_ids, val_fraction, seed))
        self.val_fraction, self.seed = val_fraction, seed
        self.vectors = self.featurizer.embed([i.image_path for i in self.images], show_progress=show_progress)
        self._splits: dict[str, ReportSplit] = {}
        self._meta: dict[str, np.ndarray] = {}

    def findings(self, case_id: str) -> str:
        return self.cases[case_id].findings

    def split(self, name: str) -> ReportSplit:
        """The ``val`` or ``dev`` queries and their pool (see module docstring)."""
        if name in self._splits:
            return self._splits[name]
        if name == "val":
            is_query = [img.case_id in self.val_cases for img in self.images]
            in_pool = [self.case_split[img.case_id] == "train" and img.case_id not in self.val_cases
                       for img in self.images]
        elif name in set(self.case_split.values()) - {"train"}:
            is_query = [self.case_split[img.case_id] == name for img in self.images]
            in_pool = [self.case_split[img.case_id] == "train" for img in self.images]
        else:
            raise ValueError(f"unknown split {name!r}: use 'val' (carved from train) or one of "
                             f"{sorted(set(self.case_split.values()) - {'train'})} (read with splits=...)")
        first: dict[str, int] = {}
        for i, q in enumerate(is_query):
            if q:
                first.setdefault(self.images[i].case_id, i)
        queries = list(first.values())
        pool = np.flatnonzero(in_pool)
        sims = self.vectors[queries] @ self.vectors[pool].T
        case_ids = [self.images[q].case_id for q in queries]
        out = ReportSplit(name, case_ids, queries, [self.findings(c) for c in case_ids], pool, sims)
        self._splits[name] = out
        return out

    def _allowed(self, query: Any, cand: Any, filter_: str) -> bool:
        if filter_ == "none":
            return True
        if cand.modality != query.modality:
            return False
        if filter_ == "modality+region":
            return cand.location_category == query.location_category
        if filter_ == "modality+location":
            return cand.location == query.location
        return True

    def retrieve(self, split: ReportSplit, qi: int, k: int, *, filter_: str = "modality+region",
                 case_text: str = "findings", meta_bonus: float = 0.0) -> list[CaseHit]:
        """The ``k`` most similar pool cases of query ``qi`` (best image per case), sharing the metadata
        ``filter_`` names (none when no pool case shares it: a draft is never made from another region).

        ``meta_bonus`` is added to an image's cosine for each of body location, acquisition detail (sequence,
        contrast) and plane it shares with the query, divided by three (all header fields, no text)."""
        if filter_ not in RETRIEVAL_FILTERS or case_text not in CASE_TEXTS:
            raise ValueError(f"filter_ must be one of {RETRIEVAL_FILTERS} and case_text one of {CASE_TEXTS}")
        query = self.images[split.queries[qi]]
        row = split.sims[qi]
        if meta_bonus:
            row = row + meta_bonus / 3 * self._shared_meta(split)[qi]
        order = np.argsort(-row, kind="stable")
        hits: list[CaseHit] = []
        used: set[str] = set()
        for j in order.tolist():
            cand = self.images[int(split.pool[j])]
            if cand.case_id in used or not self._allowed(query, cand, filter_):
                continue
            used.add(cand.case_id)
            hits.append(self._hit(cand, float(row[j]), case_text))
            if len(hits) >= k:
                break
        return hits

    def query_metadata(self, split: ReportSplit, qi: int) -> dict[str, str]:
        """What a DICOM header would tell about query ``qi``: its modality and body region (never its text)."""
        img = self.images[split.queries[qi]]
        return {"modality": img.modality, "region": img.location_category}

    def _shared_meta(self, split: ReportSplit) -> np.ndarray:
        """``[Q, P]`` count of header fields (location, modality detail, plane) each pool image shares with each
        query, memoised per split."""
        cached = self._meta.get(split.name)
        if cached is None:
            fields = ("location", "modality_detail", "plane")
            cached = np.zeros(split.sims.shape, dtype=np.float32)
            for f in fields:
                pool_vals = np.array([getattr(self.images[int(i)], f) for i in split.pool], dtype=object)
                for qi, q in enumerate(split.queries):
                    value = getattr(self.images[q], f)
                    if value:
                        cached[qi] += pool_vals == value
            self._meta[split.name] = cached
        return cached

    def _hit(self, img: Any, score: float, case_text: str) -> CaseHit:
        case = self.cases[img.case_id]
        findings = case.findings
        if case_text == "findings+caption" and img.caption:
            findings = f"{findings}\n{img.caption}"
        # Sections as the case stores them: its Findings field is the findings section; its diagnosis names the
        # diagnosis (for the impression); history and exam are never offered for drafting.
        return CaseHit(img.case_id, score, findings, image=str(img.image_path), via="image",
                       metadata={"modality": img.modality, "body_part": img.location_category,
                                 "findings": findings, "diagnosis": case.diagnosis})

    def nearest_case(self, split: ReportSplit, qi: int) -> str:
        """The pool case of the nearest image, by image alone (no metadata, no KG)."""
        return self.images[int(split.pool[int(np.argmax(split.sims[qi]))])].case_id

    def pool_case_ids(self, split: ReportSplit) -> list[str]:
        return sorted({self.images[int(i)].case_id for i in split.pool})
