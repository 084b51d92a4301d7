"""Presence questions ("Is there <finding>?") answered with the user's similar cases, on MedPix *validation* only.

    python benchmarks/bench_presence_medpix.py --workspace DIR [--seeds 0,1,2]

``DIR`` is an engine workspace whose answerer answers (``kgclip demo --out DIR`` makes one); its cases are not used.
For a presence question the engine blends the answerer with the votes of the similar cases' findings
(:func:`kgclip.rag.grounding.case_presence_vote`), then abstains when unsure or out of range. VQA-RAD cannot measure
that vote: its cases are the answerer's own memory, which never votes. This bench puts the answerer in front of
cases it was not trained on, as a user who adds a collection does:

* queries: the val carve-outs of MedPix *train* (``carve_val_cases`` with each seed); each retrieves the engine's
  ``k_cases`` (5) most similar images among the rest of train by the tower's features, with no metadata filter (what
  ``Engine.ask`` does), and those cases' Findings vote;
* questions, from the query case's own Findings linked to concepts (findings only, no anatomy or descriptor):
  ``yes``: up to 3 it affirms; ``no_negated``: up to 3 it negates ("No periosteal reaction."); ``no_elsewhere``: 2
  findings affirmed by pool cases of another MedPix location category that the query case never mentions ("Is there
  a midline shift?" on an abdominal CT), asked as "Is there <concept name>?";
* variants, each over the same questions in the same run: ``current`` (every question concept votes, a silent case
  does not vote: the behaviour before this bench), ``split`` (:func:`~kgclip.rag.grounding.presence_targets`: only
  the question's findings vote, and only where the anatomy it names is), ``split_region`` (and a question about a
  region the image does not show is declined: :func:`~kgclip.rag.grounding.question_elsewhere`; the engine's
  default), and ``split`` with a silent case voting no at weight ``silence``;
* figures per variant: accuracy over every question (abstained ones by their text), per group, over the answers not
  abstained (``acc_answered``, ``coverage``), the share whose answer came from the cases, and the paired bootstrap 95 %
  CI of each variant minus ``current``; ``balanced`` (the mean of the "yes" accuracy and of the two "no" groups'
  mean) is what a default is chosen by;
* ``diagnosis``: "What is the most likely diagnosis?" per query (:func:`~kgclip.rag.grounding.case_diagnosis_answer`
  over the same hits), right when it names the case's diagnosis or an is-a relative within 3 levels.

Measured once and not kept (session 11, same questions, against ``split_region``):

* only similar cases of the image's known body region vote on presence: balanced 0.5513 vs 0.5523, accuracy -0.002
  [-0.007, 0.002];
* for an image only the workspace's cases resemble, a case-vote answer stands only when 2 (3) cases vote: accuracy
  of the answers given 0.519 (0.515) vs 0.518, coverage 0.458 (0.435) vs 0.539;
* the answerer's probability taken as 0.5 in the blend for such an image: accuracy -0.001, balanced 0.5519.

``ece_answered`` (10 bins, over the answers given) is about 0.13 for every variant without silent votes: the
calibration fitted on VQA-RAD val does not carry to a collection the answerer never saw.

MedPix dev is never read. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import dataset_dir  # noqa: E402 - after the sys.path insert above

# name -> (presence_split, silence, region_check)
VARIANTS = {"current": (False, 0.0, False), "split": (True, 0.0, False), "split_region": (True, 0.0, True),
            **{f"split_silence_{w}": (True, w, False) for w in (0.05, 0.25, 1.0)}}
GROUPS = ("yes", "no_negated", "no_elsewhere")


def _ece(confidence: list[float], right: list[bool], bins: int = 10) -> float:
    """Expected calibration error over equal-width confidence bins (as ``kgclip eval vqa-rad``)."""
    if not confidence:
        return 0.0
    conf, hit = np.asarray(confidence), np.asarray(right, dtype=float)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return round(float(sum(abs(conf[idx == b].mean() - hit[idx == b].mean()) * (idx == b).mean()
                           for b in range(bins) if (idx == b).any())), 4)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", required=True, help="an engine workspace (kgclip demo --out DIR)")
    parser.add_argument("--seeds", default="0,1,2", help="val carve-out seeds (comma-separated)")
    parser.add_argument("--medpix", default=None, help="MedPix 2.0 folder (default: the shared data)")
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm

    from kgclip.data.sections import report_sentences
    from kgclip.engine import Engine
    from kgclip.eval.report_data import MedPixReportData
    from kgclip.models.image_input import load_image
    from kgclip.rag.abstain import InputCheck
    from kgclip.rag.consensus import GraphExpander
    from kgclip.rag.grounding import case_diagnosis_answer, ground_answer, presence_targets
    from kgclip.stats import bootstrap_ci

    medpix = dataset_dir(args.medpix, "medpix-2.0")
    start = time.perf_counter()
    engine = Engine.load(args.workspace)
    graph, tagger = engine.graph, engine.tagger
    if graph is None or tagger is None:
        raise SystemExit(f"{args.workspace} has no concept graph or tagger: build it with `kgclip demo --out DIR`")
    known = frozenset(engine.answerer.core.train_keys)
    cache: dict = {}

    def findings_of(text: str) -> tuple[list[str], list[str]]:
        """(affirmed, negated) finding concepts of a Findings text, in order."""
        pos, neg = [], []
        for sent in report_sentences(text):
            for m in tagger.link(sent.text):
                if m.uncertain:
                    continue
                (neg if m.negated else pos).append(m.concept_id)
        keep = set(presence_targets(list(dict.fromkeys(pos + neg)), graph, cache)[0])
        return [c for c in dict.fromkeys(pos) if c in keep], [c for c in dict.fromkeys(neg) if c in keep]

    expander = GraphExpander(graph, 3)  # a diagnosis within 3 is-a levels counts (as kgclip eval report's dx figures)
    diagnosis: list[tuple[bool, bool, float]] = []  # per query: answered, right, support
    rows: list[dict] = []  # one per question: group, and each variant's (correct, abstained, from cases)
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        data = MedPixReportData(medpix, splits=(), val_fraction=0.2, seed=seed, show_progress=False)
        val = data.split("val")
        rng = random.Random(seed)
        pool_cases = data.pool_case_ids(val)
        by_region: dict[str, list[str]] = {}
        for cid in pool_cases:
            region = next(im.location_category for im in data.images if im.case_id == cid)
            by_region.setdefault(region, []).append(cid)
        for qi in tqdm(range(len(val)), desc=f"seed {seed}", leave=False):
            img = data.images[val.queries[qi]]
            text = data.findings(img.case_id)
            pos, neg = findings_of(text)
            mentioned = set(pos) | set(neg) | {m.concept_id for m in tagger.link(text)}
            elsewhere: list[str] = []
            others = [c for r, cs in sorted(by_region.items()) if r != img.location_category for c in cs]
            for cid in rng.sample(others, min(len(others), 12)):
                elsewhere += [c for c in findings_of(data.findings(cid))[0] if c not in mentioned]
            questions = ([(c, "yes", "yes") for c in pos[:3]] + [(c, "no", "no_negated") for c in neg[:3]]
                         + [(c, "no", "no_elsewhere") for c in list(dict.fromkeys(elsewhere))[:2]])
            # "What is the most likely diagnosis?": the similar cases' diagnoses vote (case_diagnosis_answer).
            gold = set(tagger.concept_ids(data.cases[img.case_id].diagnosis or "", include_negated=False))
            if gold:
                dx_hits = [h for h in data.retrieve(val, qi, engine.config.k_cases, filter_="none")
                           if h.case_id != img.case_id]
                found = case_diagnosis_answer(dx_hits, tagger, graph, cache=cache)
                diagnosis.append((found is not None,
                                  found is not None and any(expander.related(found[3], g) for g in gold),
                                  found[1] if found else 0.0))
            if not questions:
                continue
            vec = engine.featurizer.embed_one(load_image(img.image_path))
            labels = engine.image_labels(vec)
            hits = data.retrieve(val, qi, engine.config.k_cases, filter_="none")
            hits = [h for h in hits if h.case_id != img.case_id]
            for cid, gold, group in questions:
                question = f"Is there {graph.name_of(cid)}?"
                pred = engine.answerer.predict(question, vec)
                row = {"group": group, "seed": seed}
                for name, (split, silence, region) in VARIANTS.items():
                    answer = ground_answer(pred, question, InputCheck(True), hits, None, tagger=tagger, graph=graph,
                                           image_threshold=engine.answerer.meta.get("image_sim_threshold"),
                                           min_confidence=engine.answerer.min_confidence, known_cases=known,
                                           cache=cache, image_labels=labels, presence_split=split, silence=silence,
                                           region_check=region)
                    row[name] = (answer.text.strip().lower() == gold, answer.abstained,
                                 answer.flags.get("source") == "case-votes+answerer",
                                 answer.abstain_reason.startswith("the question is about"), answer.confidence)
                rows.append(row)
    out: dict = {"split": "val", "seeds": seeds, "n_questions": len(rows),
                 **{f"n_{g}": sum(r["group"] == g for r in rows) for g in GROUPS}}
    base = np.array([r["current"][0] for r in rows], dtype=float)
    for name in VARIANTS:
        right = np.array([r[name][0] for r in rows], dtype=float)
        answered = np.array([not r[name][1] for r in rows])
        fig = {"acc": round(float(right.mean()), 4),
               **{f"acc_{g}": round(float(np.mean([r[name][0] for r in rows if r["group"] == g] or [0])), 4)
                  for g in GROUPS},
               "acc_answered": round(float(right[answered].mean()) if answered.any() else 0.0, 4),
               "coverage": round(float(answered.mean()), 4),
               "ece_answered": _ece([r[name][4] for r, a in zip(rows, answered) if a],
                                    [r[name][0] for r, a in zip(rows, answered) if a]),
               "from_cases": round(float(np.mean([r[name][2] for r in rows])), 4),
               **{f"elsewhere_abstain_{g}": round(float(np.mean([r[name][3] for r in rows if r["group"] == g] or [0])),
                                                  4) for g in GROUPS}}
        # Balanced over the two answers: yes, and the mean of the two kinds of no.
        fig["balanced"] = round((fig["acc_yes"] + (fig["acc_no_negated"] + fig["acc_no_elsewhere"]) / 2) / 2, 4)
        if name != "current":
            fig["acc_minus_current_ci"] = bootstrap_ci(right - base, seed=0)
        out[name] = fig
    answered_dx = [d for d in diagnosis if d[0]]
    support = np.array([d[2] for d in answered_dx])
    right = np.array([d[1] for d in answered_dx], dtype=float)
    out["diagnosis"] = {"n_queries": len(diagnosis), "answered": len(answered_dx),
                        "acc": round(float(right.mean()) if len(right) else 0.0, 4),
                        "acc_ci": bootstrap_ci(right, seed=0) if len(right) else None,
                        "mean_support": round(float(support.mean()) if len(support) else 0.0, 4),
                        **{f"acc_support_ge_{t}": round(float(right[support >= t].mean()), 4)
                           for t in (0.3, 0.5, 0.7) if (support >= t).any()},
                        **{f"n_support_ge_{t}": int((support >= t).sum()) for t in (0.3, 0.5, 0.7)}}
    out["chosen_by_balanced"] = max(VARIANTS, key=lambda v: (out[v]["balanced"], v == "current"))
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
