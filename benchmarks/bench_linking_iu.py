"""Concept linking with negation on the Indiana University chest X-ray reports (IU X-ray, CC BY-NC-ND: read from
the shared data folder, never copied).

Protocol (printed in the JSON line as ``protocol``):

- Graph: the shipped RadLex + Disease Ontology graphs (``kgclip.ontology.store.load_ontologies``); when a checkout
  has not built them yet, the same sources read from ``<data>/ontologies`` (Radlex.csv, the DO TSVs and the DO
  OBO subsets, which carry DO's synonyms).
- Gold: the ``Problems`` terms of each report, ``normal`` and ``No Indexing`` excluded. Each distinct term is mapped
  to a concept by linking the term itself (also its MeSH un-inverted form, "Hernia, Hiatal" -> "Hiatal Hernia")
  with negation off: a mention covering all its words ("full"), else the mention covering its head word ("head",
  e.g. "Pulmonary Atelectasis" -> atelectasis). Terms with neither are unmappable and counted
  (``gold_terms_unmappable``); they cannot be predicted, and ``f1_with_unmappable`` counts them as misses.
- Predicted: the concepts linked in findings + impression that are not negated, projected onto the gold
  vocabulary (the concepts gold terms map to): a concept counts if it is in the vocabulary or its is-a ancestor
  within ``ancestor_hops`` is. Everything outside the vocabulary (anatomy words, descriptors) is not scored,
  because IU's Problems only index abnormal findings.
- Headline ``f1``: micro precision / recall / F1 over (report, concept) pairs of the abnormal reports, on the
  finding/disease part of the vocabulary: concepts under RadLex "anatomical entity" (RID3) are left out of gold and
  predictions alike, because IU indexes anatomy only as the location of a finding ("Lung/hypoinflation",
  "Spine/degenerative") while every report names the lungs, heart and spine. ``f1_all_vocabulary`` keeps them;
  ``f1_all_vocabulary_with_unmappable`` also counts unmappable gold terms as misses. Reports whose Problems are
  ``No Indexing`` carry no labels and are left out.
- Reports whose Problems are exactly ``normal`` give ``fp_per_normal_report`` (with negation) and
  ``fp_per_normal_report_no_negation`` (same vocabulary as ``f1``; ``*_all_vocabulary`` with anatomy).
- Tuning: whether uncertain / historical mentions count and ``ancestor_hops`` are chosen on a validation slice
  (reports with uid % 5 == 0, 20 %); every figure is reported on the other 80 %.
- Baseline (``f1_baseline``): exact string matching of the same names/synonyms (case-folded whole words, longest
  first, no plural folding, no fuzzy / word order), no negation.
- Spelling: ``typo_fix_rate`` (and rapidfuzz's ``typo_fix_rate_rapidfuzz`` in the same run, when installed): 2000
  seeded single-edit typos of report words that are lexicon vocabulary, corrected back by the linker's speller;
  ``false_fix_rate``: report words outside the vocabulary that it "corrects" anyway (see ``typo_fix_rates``).
- Throughput: ``reports_per_s`` = reports linked (findings + impression, with negation) per second of process CPU
  time, one thread (the shared development machine's wall clock depends on other jobs; ``*_wall`` figures are also
  given); ``lexicon_build_seconds`` is a cold build without any cache (CPU seconds, cache write included),
  ``lexicon_load_seconds`` the same call served from the on-disk safetensors cache (kgclip.text.lexicon_cache).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from kgclip.config import shared_data_dir
from kgclip.ontology.model import ConceptGraph

SKIP_TERMS = {"normal", "no indexing"}


def load_graph(data: Path) -> tuple[ConceptGraph, str]:
    from kgclip.ontology.store import load_ontologies, shipped_ontology_dirs

    if shipped_ontology_dirs():
        return load_ontologies(), "shipped ontologies/radlex + ontologies/doid"
    from kgclip.ontology.sources.doid_tsv import read_doid_tsv
    from kgclip.ontology.sources.obo import read_obo
    from kgclip.ontology.sources.radlex_csv import read_radlex_csv

    onto = data / "ontologies"

    def records():
        yield from read_radlex_csv(onto / "radlex" / "Radlex.csv", on_error="skip")
        yield from read_doid_tsv(onto / "doid", on_error="skip")
        for obo in sorted((onto / "doid" / "subsets").glob("*.obo")):
            yield from read_obo(obo, on_error="skip")

    graph = ConceptGraph.from_records(records(), name="radlex+doid")
    return graph, "read from <data>/ontologies (RadLex CSV + DO TSV/OBO)"


def read_reports(path: Path, limit: int | None) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


def uninvert(term: str) -> str:
    """MeSH heading order -> natural order: "Hernia, Hiatal" -> "Hiatal Hernia"."""
    parts = [p.strip() for p in term.split(",")]
    return " ".join(parts[1:] + parts[:1]) if len(parts) > 1 else term


def map_gold_terms(terms: list[str], linker) -> tuple[dict[str, str], dict[str, str]]:
    """term -> concept id, and term -> how ("full" or "head"). Unmappable terms are absent."""
    from kgclip.text.lexicon import STOP_WORDS, tokenize

    mapping: dict[str, str] = {}
    how: dict[str, str] = {}
    for term in terms:
        for form in dict.fromkeys([term, uninvert(term)]):
            words = [(a, b) for a, b, w in tokenize(form) if w.lower() not in STOP_WORDS]
            if not words:
                continue
            mentions = linker.link(form)
            full = [m for m in mentions if m.start <= words[0][0] and m.end >= words[-1][1]]
            if full:
                mapping[term], how[term] = full[0].concept_id, "full"
                break
        if term in mapping:
            continue
        form = uninvert(term)
        words = [(a, b) for a, b, w in tokenize(form) if w.lower() not in STOP_WORDS]
        head = [m for m in linker.link(form) if words and m.start <= words[-1][0] and m.end >= words[-1][1]]
        if head:
            mapping[term], how[term] = head[0].concept_id, "head"
    return mapping, how


def ancestors_within(graph: ConceptGraph, concept_id: str, hops: int) -> list[str]:
    out, frontier = [], [concept_id]
    for _ in range(hops):
        frontier = [p for c in frontier for p in graph.parents(c)]
        out.extend(frontier)
    return out


class Projector:
    """Concept -> the gold-vocabulary concepts it counts as (itself, or is-a ancestors within ``hops``)."""

    def __init__(self, graph: ConceptGraph, vocabulary: set[str], hops: int) -> None:
        self.graph, self.vocabulary, self.hops = graph, vocabulary, hops
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, concept_id: str) -> tuple[str, ...]:
        hit = self._cache.get(concept_id)
        if hit is None:
            if concept_id in self.vocabulary:
                hit = (concept_id,)
            else:
                hit = tuple(dict.fromkeys(a for a in ancestors_within(self.graph, concept_id, self.hops)
                                          if a in self.vocabulary))
            self._cache[concept_id] = hit
        return hit


def predictions(mentions, project, negation: bool, uncertain: bool, historical: bool) -> set[str]:
    out: set[str] = set()
    for m in mentions:
        if negation and (m.negated or (m.uncertain and not uncertain) or (m.historical and not historical)):
            continue
        out.update(project(m.concept_id))
    return out


def prf(pairs) -> dict[str, float]:
    tp = fp = fn = 0
    for gold, pred in pairs:
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


class ExactBaseline:
    """Case-folded whole-word exact matching of names/synonyms, longest first; no plurals, fuzzy or negation."""

    def __init__(self, graph: ConceptGraph) -> None:
        from kgclip.text.lexicon import STOP_WORDS

        self.table: dict[str, str] = {}
        for c in graph.concepts():
            for name in c.all_names:
                key = " ".join(re.findall(r"[^\W_]+", name.lower()))
                if key and key not in STOP_WORDS and len(key) >= 3:
                    if key not in self.table or (c.deprecated, c.id) < (False, self.table[key]):
                        self.table[key] = c.id
        self.max_len = max((k.count(" ") + 1 for k in self.table), default=1)

    def concepts(self, text: str) -> list[str]:
        words = re.findall(r"[^\W_]+", text.lower())
        out, i = [], 0
        while i < len(words):
            for n in range(min(self.max_len, len(words) - i), 0, -1):
                cid = self.table.get(" ".join(words[i:i + n]))
                if cid is not None:
                    out.append(cid)
                    i += n
                    break
            else:
                i += 1
        return out


def _typo(word: str, rng) -> str:
    """One random edit at a uniformly random position: substitution, insertion, deletion or adjacent
    transposition."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = rng.randrange(0, len(word))
    kind = rng.choice(("sub", "ins", "del", "swap" if i < len(word) - 1 else "sub"))
    if kind == "sub":
        return word[:i] + rng.choice(letters.replace(word[i], "")) + word[i + 1:]
    if kind == "ins":
        return word[:i] + rng.choice(letters) + word[i:]
    if kind == "del":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def typo_fix_rates(linker, texts: list[str], n: int = 2000, seed: int = 0) -> dict:
    """Single-edit typos of words the reports really use (report tokens of 5+ letters that are lexicon
    vocabulary), each made so that it is no vocabulary token itself: the share corrected back to the word by the
    linker's speller, and by rapidfuzz's best ``fuzz.ratio`` match over the same vocabulary (the peer; no
    threshold, so it always answers). ``false_fix_rate``: report words of 5+ letters outside the vocabulary (real
    words, not typos) that the speller changes into a vocabulary word anyway (lower is better)."""
    import random
    from collections import Counter

    from kgclip.text.lexicon import STOP_WORDS, normalize_token, tokenize

    vocab = linker.lexicon.vocabulary
    counts = Counter(normalize_token(t) for text in texts for _, _, t in tokenize(text))
    words = sorted(w for w in counts if len(w) >= 5 and w.isalpha() and w in vocab and w not in STOP_WORDS)
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n and words:
        word = rng.choice(words)
        typo = _typo(word, rng)
        if typo not in vocab and len(typo) >= 5:
            pairs.append((word, typo))
    speller = linker._spell_index()
    ours = sum(1 for word, typo in pairs if (speller.correct(typo) or ("",))[0] == word)
    out = {"typo_pairs": len(pairs), "typo_fix_rate": round(ours / max(1, len(pairs)), 4)}
    outside = sorted(w for w in counts if len(w) >= 5 and w.isalpha() and w not in vocab and w not in STOP_WORDS)
    out["false_fix_rate"] = round(sum(1 for w in outside if speller.correct(w)) / max(1, len(outside)), 4)
    out["out_of_vocabulary_words"] = len(outside)
    try:
        from rapidfuzz import fuzz, process
    except ImportError:
        out["typo_fix_rate_rapidfuzz"] = None
        return out
    choices = sorted(t for t in vocab if len(t) >= 4 and t.isalpha())
    fixed = sum(1 for word, typo in pairs if process.extractOne(typo, choices, scorer=fuzz.ratio)[0] == word)
    out["typo_fix_rate_rapidfuzz"] = round(fixed / max(1, len(pairs)), 4)
    return out


def debug(graph, pairs, mapping, how) -> None:
    from collections import Counter

    print("mapping:", {t: (c, graph.name_of(c), how[t]) for t, c in mapping.items()}, file=sys.stderr)
    fp, fn, tp = Counter(), Counter(), Counter()
    for (g, p) in pairs:
        fp.update(p - g)
        fn.update(g - p)
        tp.update(g & p)
    for c in sorted(set(fp) | set(fn) | set(tp), key=lambda c: -(fp[c] + fn[c])):
        print(f"{graph.name_of(c):35s} tp={tp[c]:4d} fp={fp[c]:4d} fn={fn[c]:4d}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help="first 600 reports only")
    parser.add_argument("--debug", action="store_true",
                        help="print per-concept errors of the VALIDATION slice to stderr (for error analysis)")
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "iu-xray" / "indiana_reports.csv").is_file():
        print("needs <data>/iu-xray/indiana_reports.csv: pass --data", file=sys.stderr)
        return 2
    from kgclip.text.linker import ConceptLinker, LinkerConfig

    graph, graph_source = load_graph(args.data)
    with tempfile.TemporaryDirectory() as home:
        old = os.environ.get("KGCLIP_HOME")
        os.environ["KGCLIP_HOME"] = home  # a cold, private cache: the build below is a real build
        try:
            graph.fingerprint()  # not part of the lexicon build: the store keeps it in meta.json
            t0, c0 = time.perf_counter(), time.process_time()
            linker = ConceptLinker.from_graph(graph, LinkerConfig())
            build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
            import kgclip.text.linker as linker_module

            linker_module._LEXICONS.clear()  # force the on-disk path
            t0, c0 = time.perf_counter(), time.process_time()
            ConceptLinker.from_graph(graph, LinkerConfig())
            load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            if old is None:
                os.environ.pop("KGCLIP_HOME", None)
            else:
                os.environ["KGCLIP_HOME"] = old
    plain = ConceptLinker(linker.lexicon, LinkerConfig(negation=False))

    rows = read_reports(args.data / "iu-xray" / "indiana_reports.csv", 600 if args.quick else None)
    gold_terms = [[t.strip() for t in r["Problems"].split(";") if t.strip()] for r in rows]
    distinct = sorted({t for terms in gold_terms for t in terms if t.lower() not in SKIP_TERMS})
    mapping, how = map_gold_terms(distinct, plain)
    vocabulary = set(mapping.values())
    texts = [f"{r['findings'] or ''}\n\n{r['impression'] or ''}".strip() for r in rows]

    t_cpu, t_wall = time.process_time(), time.perf_counter()
    linked = linker.link_batch(texts)
    cpu_s, wall_s = time.process_time() - t_cpu, time.perf_counter() - t_wall
    baseline = ExactBaseline(graph)
    base_linked = [baseline.concepts(t) for t in texts]

    is_normal = [[t.lower() for t in terms] == ["normal"] for terms in gold_terms]
    # "No Indexing" reports carry no labels at all: neither abnormal nor normal, so they are left out.
    unlabeled = [[t.lower() for t in terms] == ["no indexing"] for terms in gold_terms]
    valid = [int(r["uid"]) % 5 == 0 for r in rows]
    anatomy = set(graph.neighborhood(["RADLEX:RID3"], hops=64, direction="in")) if "RADLEX:RID3" in graph else set()
    findings = vocabulary - anatomy
    gold_all = [{mapping[t] for t in terms if t in mapping} for terms in gold_terms]
    unmapped = [sum(1 for t in terms if t.lower() not in SKIP_TERMS and t not in mapping) for terms in gold_terms]
    val_idx = [i for i in range(len(rows)) if valid[i] and not is_normal[i] and not unlabeled[i]]
    test_idx = [i for i in range(len(rows)) if not valid[i] and not is_normal[i] and not unlabeled[i]]
    normal_test = [i for i in range(len(rows)) if not valid[i] and is_normal[i]]

    def evaluate(indices, vocab, hops, uncertain, historical, negation=True, source=None):
        project = Projector(graph, vocab, hops)
        if source is None:
            preds = [predictions(linked[i], project, negation, uncertain, historical) for i in indices]
        else:
            preds = [{p for c in source[i] for p in project(c)} for i in indices]
        pairs = [(gold_all[i] & vocab, pred) for i, pred in zip(indices, preds)]
        return prf(pairs), pairs

    best = None
    for hops in (0, 1, 2, 3):
        for uncertain in (True, False):
            for historical in (True, False):
                score = evaluate(val_idx, findings, hops, uncertain, historical)[0]["f1"]
                if best is None or score > best[0]:
                    best = (score, hops, uncertain, historical)
    _, hops, uncertain, historical = best
    if args.debug:
        debug(graph, evaluate(val_idx, vocabulary, hops, uncertain, historical)[1], mapping, how)
    test, _ = evaluate(test_idx, findings, hops, uncertain, historical)
    test_all, _ = evaluate(test_idx, vocabulary, hops, uncertain, historical)
    no_neg, _ = evaluate(test_idx, findings, hops, uncertain, historical, negation=False)
    base, _ = evaluate(test_idx, findings, hops, uncertain, historical, source=base_linked)
    base_all, _ = evaluate(test_idx, vocabulary, hops, uncertain, historical, source=base_linked)
    missed = sum(unmapped[i] for i in test_idx)
    p = test_all["precision"]
    denominator = test_all["tp"] + test_all["fn"] + missed
    r = test_all["tp"] / denominator if denominator else 0.0
    with_unmapped = 2 * p * r / (p + r) if p + r else 0.0

    def fp_normal(vocab, negation):
        project = Projector(graph, vocab, hops)
        total = sum(len(predictions(linked[i], project, negation, uncertain, historical)) for i in normal_test)
        return total / max(1, len(normal_test))

    fp_neg, fp_plain = fp_normal(findings, True), fp_normal(findings, False)
    typos = typo_fix_rates(linker, texts)
    fp_neg_all, fp_plain_all = fp_normal(vocabulary, True), fp_normal(vocabulary, False)
    result = {
        "protocol": "gold=IU Problems (excl. normal; No Indexing reports dropped) mapped to concepts by linking the "
                    "term (full span, else head word); pred=non-negated linked concepts projected onto the gold "
                    f"vocabulary via is-a <= {hops} hops; f1 over finding/disease concepts (RadLex anatomy excluded "
                    "from gold and pred), f1_all_vocabulary with anatomy; options tuned on uid%5==0 (20%), "
                    "figures on the other 80%",
        "graph": graph_source,
        "concepts": len(graph),
        "lexicon_terms": len(linker.lexicon),
        "reports": len(rows),
        "test_reports_abnormal": len(test_idx),
        "test_reports_normal": len(normal_test),
        "gold_terms_distinct": len(distinct),
        "gold_terms_mapped_full": sum(1 for v in how.values() if v == "full"),
        "gold_terms_mapped_head": sum(1 for v in how.values() if v == "head"),
        "gold_terms_unmappable": len(distinct) - len(mapping),
        "gold_term_instances_unmappable": sum(unmapped),
        "unmappable_terms": sorted(set(distinct) - set(mapping))[:40],
        "gold_vocabulary_concepts": len(vocabulary),
        "gold_vocabulary_anatomy_concepts": len(vocabulary & anatomy),
        "chosen": {"ancestor_hops": hops, "uncertain_counts": uncertain, "historical_counts": historical,
                   "validation_f1": round(best[0], 4)},
        "precision": round(test["precision"], 4),
        "recall": round(test["recall"], 4),
        "f1": round(test["f1"], 4),
        "f1_all_vocabulary": round(test_all["f1"], 4),
        "precision_all_vocabulary": round(test_all["precision"], 4),
        "recall_all_vocabulary": round(test_all["recall"], 4),
        "f1_all_vocabulary_with_unmappable": round(with_unmapped, 4),
        "f1_no_negation": round(no_neg["f1"], 4),
        "precision_baseline": round(base["precision"], 4),
        "recall_baseline": round(base["recall"], 4),
        "f1_baseline": round(base["f1"], 4),
        "f1_baseline_all_vocabulary": round(base_all["f1"], 4),
        "f1_ratio_vs_baseline": round(test["f1"] / base["f1"], 3) if base["f1"] else None,
        "fp_per_normal_report": round(fp_neg, 4),
        "fp_per_normal_report_no_negation": round(fp_plain, 4),
        "fp_reduction_normal": round(1 - fp_neg / fp_plain, 4) if fp_plain else None,
        "fp_per_normal_report_all_vocabulary": round(fp_neg_all, 4),
        "fp_per_normal_report_all_vocabulary_no_negation": round(fp_plain_all, 4),
        **typos,
        "reports_per_s": round(len(texts) / cpu_s, 1) if cpu_s else None,
        "reports_per_s_wall": round(len(texts) / wall_s, 1) if wall_s else None,
        "lexicon_build_seconds": round(build_cpu, 3),
        "lexicon_build_seconds_wall": round(build_s, 3),
        "lexicon_load_seconds": round(load_cpu, 3),
        "lexicon_load_seconds_wall": round(load_s, 3),
        "goal_f1": 0.75,
        "goal_fp_reduction": 0.8,
        "goal_reports_per_s": 500,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
