"""Report-drafting evaluation on MedPix 2.0: draft findings for each case of a split (default ``dev``) from its
first image, retrieving among ``train`` cases only, and compare with the case's own Findings.

Three systems, each scored with BLEU-4 (corpus), ROUGE-L (mean F) and concept F1 (mean over cases of the F1
between the linked, non-negated concepts of the draft and of the reference):

* ``engine``: retrieval by image among cases of the same modality and body location (the metadata a DICOM
  carries), findings drafted sentence by sentence with KG consensus, concept de-duplication and
  negation/graph contradiction removal;
* ``random``: the findings of a random training case (seeded);
* ``image_only``: the findings of the nearest training case by image alone, without KG or metadata;
* ``engine_nokg`` (ablation): the engine's retrieved cases drafted without the KG (text de-duplication only).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit
from kgclip.rag.inputs import ThumbnailFeaturizer
from kgclip.rag.report import draft_from_cases

__all__ = ["bleu4", "rouge_l", "concept_f1", "evaluate_report"]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (one reference each, uniform weights, brevity penalty, +1 smoothing on higher orders)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = _tokens(hyp), _tokens(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0:
        return 0.0
    logp = sum(math.log((matches[i] + (i > 0)) / max(totals[i] + (i > 0), 1)) if matches[i] + (i > 0) else -1e9
               for i in range(4)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return float(bp * math.exp(logp))


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F-measure (beta = 1.2 as in the original) over word tokens."""
    h, r = _tokens(hypothesis), _tokens(reference)
    if not h or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for a in h:
        cur = [0]
        for j, b in enumerate(r):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    beta2 = 1.2 ** 2
    return float((1 + beta2) * p * rec / (rec + beta2 * p))


def concept_f1(pred: set[str], gold: set[str]) -> float:
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    tp = len(pred & gold)
    return 0.0 if tp == 0 else 2 * tp / (len(pred) + len(gold))


def evaluate_report(path: str | Path, *, split: str = "dev", graph: ConceptGraph, text_encoder: Any = None,
                    k: int = 5, seed: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Score the three systems on ``split`` (see module docstring). Returns one flat dict of figures."""
    from tqdm.auto import tqdm

    from kgclip.data.medpix import read_medpix

    start = time.perf_counter()
    train = read_medpix(path, split="train")
    test = read_medpix(path, split=split)
    tagger = ConceptTagger(graph)
    featurizer = ThumbnailFeaturizer()

    def first_images(mp: Any) -> list[Any]:
        seen: dict[str, Any] = {}
        for img in mp.images:
            if mp.cases.get(img.case_id) is not None and mp.cases[img.case_id].findings:
                seen.setdefault(img.case_id, img)
        return list(seen.values())

    train_imgs = [img for img in train.images if train.cases.get(img.case_id) and train.cases[img.case_id].findings]
    test_imgs = first_images(test)
    tv = featurizer.embed([i.image_path for i in train_imgs], show_progress=show_progress)
    qv = featurizer.embed([i.image_path for i in test_imgs], show_progress=show_progress)
    findings = {cid: c.findings for cid, c in train.cases.items()}
    train_concepts = {cid: tagger.concept_ids(text, include_negated=False) for cid, text in findings.items()}
    rng = random.Random(seed)
    train_case_ids = sorted({i.case_id for i in train_imgs})
    drafts: dict[str, list[str]] = {"engine": [], "random": [], "image_only": [], "engine_nokg": []}
    refs: list[str] = []
    sims = qv @ tv.T
    for qi, img in enumerate(tqdm(test_imgs, desc="drafting", disable=not show_progress)):
        refs.append(test.cases[img.case_id].findings)
        order = np.argsort(-sims[qi])
        drafts["image_only"].append(findings[train_imgs[int(order[0])].case_id])
        drafts["random"].append(findings[rng.choice(train_case_ids)])
        hits: list[CaseHit] = []
        used: set[str] = set()
        for j in order.tolist():  # best image per case, same modality and body location (DICOM metadata)
            cand = train_imgs[j]
            if cand.case_id in used or cand.modality != img.modality or cand.location_category != img.location_category:
                continue
            used.add(cand.case_id)
            hits.append(CaseHit(cand.case_id, float(sims[qi, j]), findings[cand.case_id],
                                metadata={"concepts": train_concepts[cand.case_id]}))
            if len(hits) >= k:
                break
        if not hits:
            hits = [CaseHit(train_imgs[int(order[0])].case_id, float(sims[qi, order[0]]),
                            findings[train_imgs[int(order[0])].case_id])]
        draft = draft_from_cases(hits, tagger=tagger, graph=graph, max_findings=4, use_kg=True)
        drafts["engine"].append(draft.findings_text)
        # Ablation: the same retrieved cases, drafted without the KG (no concept dedupe/contradictions/consensus).
        plain = draft_from_cases(hits, tagger=None, graph=None, max_findings=4, use_kg=False)
        drafts["engine_nokg"].append(plain.findings_text)
    gold_sets = [set(tagger.concept_ids(r, include_negated=False)) for r in refs]
    out: dict[str, Any] = {"split": split, "n_cases": len(refs), "n_train_images": len(train_imgs)}
    for name, suffix in (("engine", ""), ("random", "_random"), ("image_only", "_image_only"),
                         ("engine_nokg", "_engine_nokg")):
        hyps = drafts[name]
        out["bleu4" + suffix] = round(bleu4(hyps, refs), 4)
        out["rouge_l" + suffix] = round(float(np.mean([rouge_l(h, r) for h, r in zip(hyps, refs)])), 4)
        out["concept_f1" + suffix] = round(float(np.mean([
            concept_f1(set(tagger.concept_ids(h, include_negated=False)), g) for h, g in zip(hyps, gold_sets)])), 4)
    out["image_features"] = featurizer.name
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out
