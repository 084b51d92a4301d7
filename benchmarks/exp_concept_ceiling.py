"""Session-15 analysis: how far can a MedPix findings draft's concept F1 go with what this machine's tower sees?

    python benchmarks/exp_concept_ceiling.py [--seeds 0,1,2] [--medpix DIR]

The report issue asks for concept F1 >= 0.20 on MedPix dev; the engine stands at 0.141 (dev, session 14) after a
dozen rounds of drafter changes selected on val. This asks whether the *drafter* or the *information* is short. On
MedPix val (carved from train, as ``kgclip eval report --split val``; dev is never read), for every query:

- ``engine``: the engine's draft as evaluated (``kgclip.eval.report`` defaults; exact linking of the whole draft);
- ``sentence_oracle``: the best draft greedy selection could make from the findings sentences of the same 80
  retrieved cases *knowing the reference* (an upper bound on sentence choice, not a system);
- ``recall_ceiling``: the share of the reference's concepts found anywhere in those 80 cases' findings;
- concept *sets* (no sentences, so no words a sentence brings along): the set that maximises the plug-in expected
  F1 under each signal's concept probabilities, i.e. what a perfect drafter could do with that signal:
  - ``set_prior``: the learned concept prior (pretrained EfficientNet-Lite0 features + modality and region);
  - ``set_header``: the header alone (modality, region, location rates, smoothed toward their parents);
  - ``set_knn``: the similarity-weighted concepts of the 80 nearest same-modality, same-region cases (T = 0.2);
  - ``set_knn_prior``: 0.7 of that and 0.3 of the prior;
  - ``set_study``: ``set_knn_prior`` with every image of the query's case voting (a study, not one image);
  - ``set_history``: ``set_knn_prior`` mixed half and half with the nearest cases by the clinical history and exam
    text (all-MiniLM-L6-v2): what the indication on a request adds;
- what a better tower would give: cases retrieved by the query's own *findings text* (all-MiniLM-L6-v2, among pool
  cases of its modality and region), the nearest an image-text tower can bring a query to its report:
  ``set_text_knn`` and ``engine_text_retrieval`` (the engine's drafter, only its retrieval replaced).

Each figure is pooled over the carve seeds with a bootstrap 95 % CI; ``*_minus_engine_ci`` pairs per query.
Prints one JSON line last.

Session 15 (``results/exp_concept_ceiling_val_s15.json``; 3 seeds, 312 queries; 1 minute):

=========================  ===============================  =====================
figure                     concept F1 [95 % CI]             minus engine
=========================  ===============================  =====================
engine                     0.134 [0.122, 0.146]
sentence_oracle            0.521 [0.505, 0.538]             (knows the reference)
recall_ceiling             0.706 [0.683, 0.730]             (recall, not F1)
set_header                 0.145 [0.133, 0.158]             [+0.003, +0.019]
set_prior                  0.149 [0.136, 0.161]             [+0.008, +0.023]
set_knn                    0.153 [0.140, 0.165]             [+0.011, +0.026]
set_knn_prior              0.153 [0.141, 0.166]             [+0.012, +0.027]
set_study                  0.154 [0.140, 0.167]             [+0.012, +0.028]
set_history                0.152 [0.139, 0.164]             [+0.010, +0.025]
set_text_knn               0.165 [0.151, 0.178]             [+0.023, +0.039]
engine_text_retrieval      0.144 [0.131, 0.156]             [+0.004, +0.016]
=========================  ===============================  =====================

Reading: the retrieved cases hold the reference's concepts (an informed choice of their sentences reaches 0.52),
but no signal available before the text says which. A perfect drafter given the best of them (concept sets, no
sentence overhead) stays near 0.15; the header alone gives 0.145, so the image adds about 0.01. Even cases found by
the query's *own findings text* give 0.165 as a set and 0.144 through the drafter. Concept F1 0.20 on MedPix is
beyond selecting from similar cases with these towers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above

K = 80  # retrieved cases, as the engine's drafter (kgclip.eval.report.ENGINE_RETRIEVAL)
KNN_TEMPERATURE = 0.2
PRIOR_SHARE = 0.3
SMOOTHING = 3.0


def best_set(probs: Mapping[str, float], max_size: int = 40) -> set[str]:
    """The top-m concepts maximising the plug-in expected F1 ``2 sum(p_top) / (m + sum(p))``."""
    items = sorted(probs.items(), key=lambda kv: -kv[1])
    if not items:
        return set()
    expected_gold = sum(v for _, v in items)
    tops = np.cumsum([v for _, v in items[:max_size]])
    m = int(np.argmax(2 * tops / (np.arange(1, len(tops) + 1) + expected_gold))) + 1
    return {c for c, _ in items[:m]}


def mix(a: Mapping[str, float], b: Mapping[str, float], share_a: float) -> dict[str, float]:
    return {c: share_a * a.get(c, 0.0) + (1 - share_a) * b.get(c, 0.0) for c in set(a) | set(b)}


def vote(case_ids: list[str], scores: np.ndarray, concepts: Mapping[str, set[str]]) -> dict[str, float]:
    """Similarity-weighted share of the cases asserting each concept, as the drafter's consensus weighs them
    (``case_weights`` at KNN_TEMPERATURE, no graph)."""
    from kgclip.rag.consensus import case_weights, concept_support

    weights = case_weights(scores, KNN_TEMPERATURE)
    return concept_support(case_ids, [concepts[c] for c in case_ids], [[] for _ in case_ids], weights).positive


def sentence_oracle(candidates: list[set[str]], gold: set[str], f1) -> float:  # noqa: ANN001
    chosen: set[str] = set()
    best = 0.0
    while True:
        step, pick = best, None
        for c in candidates:
            score = f1(chosen | c, gold)
            if score > step + 1e-9:
                step, pick = score, c
        if pick is None:
            return best
        chosen |= pick
        best = step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm

    from kgclip.eval import report as R
    from kgclip.eval.report_select import MemoTagger, draft_reports
    from kgclip.eval.text_metrics import concept_f1
    from kgclip.ontology.store import load_ontologies
    from kgclip.rag.concepts import ConceptTagger
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.regions import BodyRegions
    from kgclip.rag.report import draft_from_cases, split_sentences
    from kgclip.stats import bootstrap_ci
    from kgclip.text.encoders import load_text_encoder

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    graph = load_ontologies()
    tagger = MemoTagger(ConceptTagger(graph))
    regions = BodyRegions(graph)
    expander = GraphExpander(graph, R.ENGINE_DRAFT.graph_hops)
    encoder = load_text_encoder("minilm", "cpu")
    text_memo: dict[str, np.ndarray] = {}

    def embed(texts: dict[str, str]) -> None:
        todo = [k for k in texts if k not in text_memo]
        if todo:
            v = np.asarray(encoder.encode([texts[k] for k in todo]), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-9
            text_memo.update(zip(todo, v))

    res: dict[str, list[float]] = defaultdict(list)
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        data, val, priors, scorer = R.carved_val(medpix, seed, tagger, graph)
        reps = draft_reports(data, val, R.ENGINE_RETRIEVAL, R.ENGINE_DRAFT, tagger=tagger, graph=graph,
                             expander=expander, regions=regions, priors=priors)
        res["engine"] += R.draft_figures(data, val, reps, scorer, tagger, graph)["concept_f1"]

        pool_imgs = [data.images[int(i)] for i in val.pool]
        pool_cases = sorted({im.case_id for im in pool_imgs})
        concepts = {c: set(tagger.concept_ids(data.findings(c), include_negated=False)) for c in pool_cases}
        groups: dict[str, set[tuple[str, str]]] = defaultdict(set)
        best_image: dict[tuple[str, str, str], object] = {}
        for im in pool_imgs:
            groups[im.case_id].add((im.modality, im.location_category))
            best_image.setdefault((im.case_id, im.modality, im.location_category), im)
        # Header rates: overall -> region -> modality + region -> modality + location, each smoothed to its parent.
        levels = (lambda im: im.location_category, lambda im: (im.modality, im.location_category),
                  lambda im: (im.modality, im.location))
        level_counts = []
        for key in levels:
            counts: dict[object, Counter] = defaultdict(Counter)
            sizes: Counter = Counter()
            for case_id, group in {(im.case_id, key(im)) for im in pool_imgs}:  # each case once per group
                sizes[group] += 1
                counts[group].update(concepts[case_id])
            level_counts.append((key, counts, sizes))
        overall: Counter = Counter()
        for cs in concepts.values():
            overall.update(cs)

        def header_rates(img) -> dict[str, float]:  # noqa: ANN001
            p = {c: n / len(pool_cases) for c, n in overall.items()}
            for key, counts, sizes in level_counts:
                k = key(img)
                p = {c: (counts[k].get(c, 0) + SMOOTHING * pv) / (sizes.get(k, 0) + SMOOTHING) for c, pv in p.items()}
            return p

        embed({f"h:{c}": f"{data.cases[c].history or ''} {data.cases[c].exam or ''}" for c in
               set(pool_cases) | set(val.case_ids)})
        embed({f"f:{c}": data.findings(c) for c in set(pool_cases) | set(val.case_ids)})
        hist = np.stack([text_memo[f"h:{c}"] for c in pool_cases])
        find = np.stack([text_memo[f"f:{c}"] for c in pool_cases])
        pool_vecs = data.vectors[val.pool]
        for qi in tqdm(range(len(val)), desc=f"seed {seed}", leave=False):
            gold, cid = scorer.gold[qi], val.case_ids[qi]
            query = data.images[val.queries[qi]]
            hits = data.retrieve(val, qi, K, filter_="modality+region", case_text="findings", meta_bonus=0.3)
            candidates = [c for h in hits for s in split_sentences(h.text or "")
                          if (c := set(tagger.concept_ids(s, include_negated=False)))]
            res["sentence_oracle"].append(sentence_oracle(candidates, gold, concept_f1))
            found = set().union(*candidates) if candidates else set()
            res["recall_ceiling"].append(len(found & gold) / max(len(gold), 1))

            knn = vote([h.case_id for h in hits], np.array([h.score for h in hits]), concepts)
            knn_prior = mix(priors[qi], knn, PRIOR_SHARE)
            sets = {"set_prior": priors[qi], "set_header": header_rates(query), "set_knn": knn,
                    "set_knn_prior": knn_prior}
            # Every image of the query's case votes (each among cases of its own modality and region).
            study: Counter = Counter()
            images = [i for i, im in enumerate(data.images) if im.case_id == cid]
            for i in images:
                im, sims = data.images[i], pool_vecs @ data.vectors[i]
                ids, scores, seen = [], [], set()
                for j in np.argsort(-sims).tolist():
                    cand = pool_imgs[j]
                    if cand.case_id in seen or (cand.modality, cand.location_category) != (im.modality,
                                                                                          im.location_category):
                        continue
                    seen.add(cand.case_id)
                    ids.append(cand.case_id)
                    scores.append(sims[j])
                    if len(ids) >= K:
                        break
                for c, v in vote(ids, np.array(scores), concepts).items():
                    study[c] += v / len(images)
            sets["set_study"] = mix(priors[qi], dict(study), PRIOR_SHARE)
            # Text retrieval among pool cases sharing the query's modality and region.
            allowed = np.array([(query.modality, query.location_category) in groups[c] for c in pool_cases])
            for name, matrix, key in (("history", hist, "h"), ("text", find, "f")):
                sims = np.where(allowed, matrix @ text_memo[f"{key}:{cid}"], -np.inf)
                top = [j for j in np.argsort(-sims)[:K].tolist() if np.isfinite(sims[j])]
                near = vote([pool_cases[j] for j in top], sims[top] if top else np.array([]), concepts)
                if name == "history":
                    sets["set_history"] = mix(near, knn_prior, 0.5)
                else:
                    sets["set_text_knn"] = mix(priors[qi], near, PRIOR_SHARE)
                    text_hits = [data._hit(best_image[(pool_cases[j], query.modality, query.location_category)],
                                           float(sims[j]), "findings") for j in top]
            for name, probs in sets.items():
                res[name].append(concept_f1(best_set(probs), gold))
            meta = data.query_metadata(val, qi)
            report = draft_from_cases(text_hits, tagger=tagger, graph=graph, config=R.ENGINE_DRAFT, use_kg=True,
                                      expander=expander, regions=regions, query_region=meta["region"],
                                      query_modality=meta["modality"], concept_prior=priors[qi])
            res["engine_text_retrieval"].append(
                concept_f1(set(tagger.concept_ids(report.findings_text, include_negated=False)), gold))
    engine = np.array(res["engine"])
    out: dict = {"split": "val", "seeds": seeds, "n": len(engine), "k": K}
    for name, values in res.items():
        arr = np.array(values)
        out[name] = round(float(arr.mean()), 4)
        out[f"{name}_ci"] = bootstrap_ci(arr, seed=0)
        if name not in ("engine", "recall_ceiling"):
            out[f"{name}_minus_engine_ci"] = bootstrap_ci(arr - engine, seed=0)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
