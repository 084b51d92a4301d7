"""Visual question answering with evidence: :class:`VQAAnswerer` (train, answer, save, load) and :class:`Answer`.

The numerical core lives in :mod:`kgclip.rag.answerer`; this module adds question encoding, concept linking,
image features, validation-based model selection and persistence (safetensors + JSON).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.data.vqa_rad import VQARadItem
from kgclip.errors import ArtifactCorruptError, ConfigError, StaleArtifactError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.answerer import (AnswererConfig, AnswererCore, QAExample, kg_bag, normalize_answer,
                                 question_kind)
from kgclip.rag.calibration import Calibrator
from kgclip.rag.concepts import ConceptTagger, LinkedConcept, expand_concepts
from kgclip.rag.router import question_options, route_question

__all__ = ["Answer", "VQAAnswerer", "QAExample", "AnswererConfig", "Prediction", "normalize_answer",
           "question_kind"]


@dataclass
class Answer:
    """An answer with the evidence behind it.

    Attributes:
        text: the answer ("yes", "no", "MRI", "right lower lobe"...).
        confidence: calibrated probability that ``text`` is right (isotonic on validation carved from train).
        kind: ``"closed"`` (yes/no or one of the options the question names) or ``"open"``.
        evidence: similar cases, similar questions with their answers, linked concepts and KG facts.
        question: the question asked.
        candidates: the best few ``(answer, probability)`` pairs.
        flags: how the answer was produced, e.g. ``{"llm": "rewritten"}``, ``{"source": "dicom-header"}``,
            ``{"case_votes": "3 cases"}``.
        abstained: the engine declines to answer (out-of-range input, or confidence below the workspace's
            threshold); ``text`` then still holds its best guess, for the record, and the evidence stays.
        abstain_reason: why, in words ("" when it answers).
        route: what the question asks about (:data:`kgclip.rag.router.KINDS`).
    """

    text: str
    confidence: float
    kind: str
    evidence: Any = None
    question: str = ""
    candidates: list[tuple[str, float]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    abstained: bool = False
    abstain_reason: str = ""
    route: str = ""

    def _repr_html_(self) -> str:
        from kgclip.display import answer_html

        return answer_html(self)

    def __str__(self) -> str:
        if self.abstained:
            return f"cannot answer: {self.abstain_reason}"
        return f"{self.text} ({self.kind}, confidence {self.confidence:.2f})"

    def to_dict(self, similar_questions: int = 5) -> dict[str, Any]:
        """Plain values for JSON, one shape for ``kgclip ask --json`` and the web app: the answer, its calibrated
        confidence, kind, route and candidates, whether (and why) it declined, and its evidence (similar cases,
        linked concepts, graph facts, the first ``similar_questions`` similar training questions)."""
        ev = self.evidence
        return {
            "question": self.question, "text": self.text, "confidence": round(float(self.confidence), 4),
            "kind": self.kind, "abstained": bool(self.abstained), "abstain_reason": self.abstain_reason or "",
            "route": self.route, "flags": dict(self.flags),
            "candidates": [[str(t), round(float(p), 4)] for t, p in self.candidates[:5]],
            "similar_cases": [h.to_dict() for h in (ev.similar_cases if ev else [])],
            "concepts": [{"id": c.concept_id, "name": c.name, "negated": bool(c.negated),
                          "uncertain": bool(c.uncertain)} for c in (ev.concepts if ev else [])],
            "kg_facts": [str(f) for f in (ev.kg_facts if ev else [])],
            "similar_questions": [{"question": q.question, "answer": q.answer, "case_id": q.case_id,
                                   "score": round(float(q.score), 4)}
                                  for q in (ev.similar_questions if ev else [])[:similar_questions]],
        }


@dataclass
class Prediction:
    """What the answerer returns before evidence is attached (used by evaluation)."""

    text: str
    normalized: str
    confidence: float
    kind: str
    candidates: list[tuple[str, float]]
    neighbors: list[tuple[QAExample, float]]
    concepts: list[LinkedConcept]
    raw_confidence: float = 0.0  # the blend's probability before calibration
    form: str = ""  # yes/no, choice or open
    route: str = ""  # what the question asks about (router kind)
    image_similarity: float = 1.0  # cosine of the image to the nearest memory image
    # Per neighbour (same order as ``neighbors``): the cosine of the asked image to that question's image.
    neighbor_image_similarity: list[float] = field(default_factory=list)


# An option answer's confidence is its evidence share times this: chosen on VQA-RAD --split val (validation carved
# from train), where option answers were right 31 % of the time at a mean share of 0.62 (the answer's words often
# differ from the option's: "with" for "with contrast").
OPTION_CONFIDENCE = 0.5


def _names_an_option(answer: str, options: Sequence[tuple[str, ...]]) -> bool:
    """Whether a normalised answer contains the key word(s) of one of a question's options."""
    words = set(answer.split())
    return any(set(spans[0].split()) <= words for spans in options)


def _option_named(answer: str, options: Sequence[tuple[str, ...]]) -> int | None:
    """Which option a normalised answer names: the one with a span wholly in the answer covering the most of its
    words ("non enhanced" names "non enhanced", not "enhanced", in "Is the CSF enhanced or non enhanced?");
    ``None`` when it names none, or two equally ("left and right")."""
    words = set(answer.split())
    best, size, tie = None, 0, False
    for j, spans in enumerate(options):
        n = max((len(span.split()) for span in spans if set(span.split()) <= words), default=0)
        if n > size:
            best, size, tie = j, n, False
        elif n and n == size:
            tie = True
    return None if tie else best


def _option_text(j: int, options: Sequence[tuple[str, ...]], counts: Mapping[str, int]) -> str:
    """How option ``j`` is written as an answer: its span most often given as a whole training answer ("left side"
    or "left"); when none ever was, its key word ("genetic" for "a genetic process", as answers are written), with
    the word it qualifies when the key word is a prefix written apart ("non enhanced", "hyper dense", "more dense",
    "with contrast"; never a bare "non")."""
    spans = options[j]
    if any(counts.get(span, 0) for span in spans):
        return max(spans, key=lambda span: (counts.get(span, 0), -len(span)))
    return next((span for span in spans if len(span.split()) == 2 and span.split()[0] in _SPLIT_PREFIXES),
                spans[0])


# Words written apart from the word they qualify ("hyper dense", "non enhanced", "with contrast"): an option of one
# of them alone is not an answer.
_SPLIT_PREFIXES = frozenset(["hyper", "hypo", "iso", "non", "un", "more", "less", "with", "without", "well",
                             "poorly", "partially", "completely"])


class VQAAnswerer:
    """Closed and open VQA over a training set of (image, question, answer) triples.

    Build one with :meth:`fit`; answer with :meth:`predict`; persist with :meth:`save` / :meth:`load`.
    """

    def __init__(self, core: AnswererCore, examples: list[QAExample], display: dict[str, str],
                 text_encoder: Any, tagger: ConceptTagger | None, meta: dict[str, Any]) -> None:
        self.core = core
        self.examples = examples
        self.display = display  # normalised answer -> how it was written most often
        self.text_encoder = text_encoder
        self.tagger = tagger
        self.meta = meta
        self.calibrator = Calibrator()  # fitted by fit(); identity until then

    @property
    def config(self) -> AnswererConfig:
        return self.core.config

    @property
    def min_confidence(self) -> float:
        """The calibrated confidence below which answers are declined: the configured ``min_confidence`` or the
        threshold :meth:`fit` learned from ``abstain_share`` of its validation answers, whichever is larger."""
        return max(self.config.min_confidence, float(self.meta.get("learned_min_confidence", 0.0)))

    # ------------------------------------------------------------------ features
    def _question_features(self, questions: Sequence[str], show_progress: bool = False
                           ) -> tuple[np.ndarray, list[list[LinkedConcept]], list[set[str]], np.ndarray]:
        q = self.text_encoder.encode(list(questions), show_progress=show_progress).numpy().astype(np.float32)
        linked: list[list[LinkedConcept]] = []
        sets: list[set[str]] = []
        for text in questions:
            mentions = self.tagger.link(text) if (self.tagger is not None and self.config.use_kg) else []
            linked.append(mentions)
            ids = [m.concept_id for m in mentions]
            sets.append(expand_concepts(self.tagger.graph, ids) if ids else set())
        kg = np.stack([kg_bag(s, self.config.kg_buckets) for s in sets]) if sets else np.zeros(
            (0, self.config.kg_buckets), np.float32)
        return q, linked, sets, kg

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, examples: Sequence[QAExample], image_vectors: Mapping[str, np.ndarray], *,
            graph: ConceptGraph | None, text_encoder: Any, config: AnswererConfig = AnswererConfig(),
            image_featurizer: str = "", show_progress: bool = True) -> tuple["VQAAnswerer", dict[str, float]]:
        """Train on ``examples``; select the blend on a validation split carved from them.

        Args:
            examples: training questions; their ``image_key`` must be in ``image_vectors``.
            image_vectors: image key -> ``[Di]`` unit vector.
            graph: the concept graph (``None`` or ``config.use_kg=False``: no KG).

        Returns:
            The fitted answerer and the validation figures (``val_acc``, ``val_acc_closed``, ``val_acc_open``).
        """
        examples = [e for e in examples if normalize_answer(e.answer)]
        if len(examples) < 10:
            raise ConfigError(f"need at least 10 training questions with answers, got {len(examples)}")
        missing = sorted({e.image_key for e in examples} - set(image_vectors))
        if missing:
            raise ConfigError(f"{len(missing)} training image(s) have no features (e.g. {missing[:3]})")
        display: dict[str, dict[str, int]] = {}
        for e in examples:
            written = display.setdefault(normalize_answer(e.answer), {})
            shown = " ".join(str(e.answer).split())  # as written, whitespace (tabs) collapsed
            written[shown] = written.get(shown, 0) + 1
        answers = sorted(display)
        shown = {a: max(v.items(), key=lambda kv: (kv[1], kv[0].islower()))[0] for a, v in display.items()}
        if not config.use_kg:
            graph = None
        tagger = ConceptTagger(graph) if graph is not None else None
        meta = {"text_encoder": getattr(text_encoder, "name", "?"),
                "text_encoder_fingerprint": getattr(text_encoder, "fingerprint", ""),
                "graph_fingerprint": graph.fingerprint() if graph is not None else "",
                "image_featurizer": image_featurizer}
        model = cls(AnswererCore(config, answers), list(examples), shown, text_encoder, tagger, meta)
        q, _, sets, kg = model._question_features([e.question for e in examples], show_progress)
        img = np.stack([image_vectors[e.image_key] for e in examples]).astype(np.float32)
        labels = np.array([model.core.answer_index[normalize_answer(e.answer)] for e in examples])

        # Model selection by k-fold cross-validation over whole paraphrase groups (a paraphrase of a held-out
        # question never sits in the fold's training part); one fold alone is too noisy to choose the blend.
        groups = [e.group or f"#{i}" for i, e in enumerate(examples)]
        keys = [e.image_key for e in examples]
        n_folds = max(2, round(1.0 / config.val_fraction))
        fold = group_folds(groups, n_folds, config.seed)
        core = model.core
        tallies: dict[tuple, list[np.ndarray]] = {}
        kinds_all: list[np.ndarray] = []
        closed_all: list[np.ndarray] = []
        data = (q, img, kg, sets, labels, keys, groups)
        for va, ctx_va in model._folds(data, fold, n_folds, show_progress):
            is_open, closed = model._grid(q[va], img[va], kg[va], ctx_va, [sets[i] for i in va],
                                          [examples[i] for i in va], tallies)
            kinds_all.append(is_open)
            closed_all.append(closed)
        best = model._choose(tallies, np.concatenate(kinds_all), np.concatenate(closed_all))
        core.with_params(**{k: v for k, v in best.items() if not k.startswith("val_")})
        # Calibration on the same folds, out of fold, with the selected blend: raw confidence -> P(right).
        conf, hits, forms, kinds = [], [], [], []
        for va, ctx_va in model._folds(data, fold, n_folds, show_progress):
            dists, _ = model._distributions(q[va], img[va], kg[va], ctx_va, [sets[i] for i in va],
                                            [examples[i].question for i in va])
            for (form, p), gold, i in zip(dists, labels[va], va):
                conf.append(float(p.max()))
                hits.append(int(np.argmax(p)) == int(gold))
                forms.append(form)
                kinds.append(route_question(examples[i].question).kind)
        model.calibrator = Calibrator.fit(conf, hits, forms, kinds=kinds if config.calibrate_by_kind else None)
        calibrated = model.calibrator.calibrate(conf, forms, kinds)
        model.meta["learned_min_confidence"] = (float(np.quantile(calibrated, config.abstain_share))
                                                if config.abstain_share > 0 and len(calibrated) else 0.0)
        # Final model on all of train with the selected blend.
        core.set_memory(q, img, kg, sets, labels, keys, groups)
        core.learn_kinds([e.question for e in examples], labels)
        core.train_head(q, img, kg, core.context_features(q, img, sets, keys, groups), labels, show_progress)
        model.meta["image_sim_threshold"] = nearest_other_quantile(img, keys, config.ood_quantile)
        return model, {k: v for k, v in best.items() if k.startswith("val_")} | {
            "selected": {k: v for k, v in best.items() if not k.startswith("val_")}}

    def _folds(self, data: tuple, fold: np.ndarray, n_folds: int, show_progress: bool
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """For each fold: fit the memory, kinds and head on the other folds; yield the held-out rows and their
        case-context features."""
        q, img, kg, sets, labels, keys, groups = data
        core = self.core
        for f in range(n_folds):
            tr, va = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            core.set_memory(q[tr], img[tr], kg[tr], [sets[i] for i in tr], labels[tr], [keys[i] for i in tr],
                            [groups[i] for i in tr])
            core.learn_kinds([self.examples[i].question for i in tr], labels[tr])
            ctx_tr = core.context_features(q[tr], img[tr], [sets[i] for i in tr], [keys[i] for i in tr],
                                           [groups[i] for i in tr])
            core.train_head(q[tr], img[tr], kg[tr], ctx_tr, labels[tr], show_progress)
            yield va, core.context_features(q[va], img[va], [sets[i] for i in va])

    _PARAMS = ("knn_k", "w_img", "w_kg", "temperature", "mix", "head_temperature")

    def _grid(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, ctx: np.ndarray, sets: list[set[str]],
              val: list[QAExample], tallies: dict[tuple, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Score every blend on one held-out fold; appends each blend's hit vector to ``tallies``."""
        core = self.core
        gold = np.array([core.answer_index.get(normalize_answer(e.answer), -1) for e in val])
        kinds, mask = core.masks([e.question for e in val])
        p_heads = {t: core.head_probs(q, img, kg, ctx, t) for t in (0.03, 0.1, 0.3)}
        base_q = q @ core.train_q.T
        base_i = img @ core.train_img.T
        jac = core.similarities(q, img, sets, 0.0, 1.0) - base_q if self.config.use_kg else np.zeros_like(base_q)
        w_kgs = (0.0, 0.25, 0.5, 1.0) if self.config.use_kg else (0.0,)
        for w_img in (0.0, 0.5, 1.0, 2.0):
            for w_kg in w_kgs:
                sim = base_q + w_img * base_i + w_kg * jac
                for k in (3, 10, 30):
                    for temp in (0.05, 0.2):
                        votes, _ = core.knn_votes(sim, k, temp)
                        for mix, t_head in [(0.0, 0.1)] + [(m, t) for m in (0.25, 0.5, 0.75, 1.0)
                                                           for t in p_heads]:
                            pred = core.combine_argmax(p_heads[t_head], votes, mask, mix)
                            tallies.setdefault((k, w_img, w_kg, temp, mix, t_head), []).append(pred == gold)
        return np.array([k == "open" for k in kinds]), np.array([e.closed for e in val])

    def _choose(self, tallies: dict[tuple, list[np.ndarray]], is_open: np.ndarray,
                closed: np.ndarray) -> dict[str, Any]:
        """The best blend for closed and for open questions over all folds, and the cross-validated accuracy."""
        best = {"closed": (-1.0, (), None), "open": (-1.0, (), None)}
        for combo, parts in tallies.items():
            hits = np.concatenate(parts)
            for kind, sel in (("closed", ~is_open), ("open", is_open)):
                acc = float(hits[sel].mean()) if sel.any() else 0.0
                if acc > best[kind][0] + 1e-9:
                    best[kind] = (acc, combo, hits)
        hits = np.where(is_open, best["open"][2], best["closed"][2])
        out: dict[str, Any] = {"val_acc": float(hits.mean()),
                               "val_acc_closed": float(hits[closed].mean()) if closed.any() else 0.0,
                               "val_acc_open": float(hits[~closed].mean()) if (~closed).any() else 0.0}
        out.update(dict(zip(self._PARAMS, best["closed"][1])))
        out.update({f"{k}_open": v for k, v in zip(self._PARAMS, best["open"][1])})
        return out

    # ------------------------------------------------------------------ inference
    def predict_batch(self, questions: Sequence[str], image_vectors: np.ndarray, top: int = 5,
                      neighbors: int = 5) -> list[Prediction]:
        """Answer many questions. Shapes: ``image_vectors`` ``[M, Di]``."""
        core = self.core
        q, linked, sets, kg = self._question_features(questions)
        img = np.asarray(image_vectors, dtype=np.float32).reshape(len(questions), -1)
        out, sim = self._distributions(q, img, kg, core.context_features(q, img, sets), sets, questions)
        image_sim = (img @ core._image_matrix.T).max(axis=1) if len(core._image_keys) else np.zeros(len(img))
        preds = []
        for i, (form, p) in enumerate(out):
            order = np.argsort(-p)[:top]
            best = core.answers[int(order[0])]
            nn = np.argsort(-sim[i])[:neighbors]
            raw = float(p[order[0]])
            candidates = [(self.display.get(core.answers[j], core.answers[j]), float(p[j])) for j in order
                          if p[j] > 0.0]  # only answers the question allows (yes/no lists yes and no)
            route = route_question(questions[i]).kind
            options = question_options(questions[i])
            if options and (not _names_an_option(best, options) or not all(
                    any(_names_an_option(core.answers[j], [option]) for j in np.flatnonzero(p)) for option in options)):
                # "Is the CSF radiolucent or radioopaque?": the answer is one of the options it names, even when
                # no training answer is. When the answerer's candidates leave an option out (only yes / no, or only
                # "hemorrhage" for "cancer or hemorrhage?"), its distribution cannot weigh the options against each
                # other (one candidate gets probability 1), so the options are weighed by the similar questions.
                form, candidates = "options", self._option_candidates(options, sim[i])
                best, raw = normalize_answer(candidates[0][0]), candidates[0][1]
            preds.append(Prediction(
                text=self.display.get(best, best), normalized=best,
                confidence=float(self.calibrator(raw, form, route)),
                kind="open" if form == "open" else "closed", candidates=candidates,
                neighbors=[(self.examples[j], float(sim[i, j])) for j in nn], concepts=linked[i],
                raw_confidence=raw, form=form, route=route,
                image_similarity=float(image_sim[i]),
                neighbor_image_similarity=[float(img[i] @ core.train_img[j]) for j in nn]
                if len(core.train_img) == len(self.examples) else []))
        return preds

    def _option_candidates(self, options: Sequence[tuple[str, ...]], sim: np.ndarray, k: int = 10,
                           prior_weight: float = 0.05) -> list[tuple[str, float]]:
        """The options of a choice question, best first, each with its share of the evidence.

        Evidence for an option: the similarity of each of the ``k`` most similar training questions whose answer
        names it (:func:`_option_named`), plus ``prior_weight`` x the option's share of the training answers that
        name an option (how often answers say "left" rather than "right"). An option is written as
        :func:`_option_text` says.
        """
        core = self.core
        # How often each (normalised) answer was given in training; the memory rows are the training questions.
        counts = dict(zip(core.answers, np.bincount(core.train_labels, minlength=len(core.answers)).tolist()))
        top = np.argsort(-sim)[:k]
        votes, priors = np.zeros(len(options)), np.zeros(len(options))
        for j in top:
            named = _option_named(core.answers[core.train_labels[j]], options)
            if named is not None:
                votes[named] += max(float(sim[j]), 0.0)
        for answer, count in counts.items():
            named = _option_named(answer, options)
            if named is not None:
                priors[named] += count
        shown = [_option_text(j, options, counts) for j in range(len(options))]
        prior = priors / max(priors.sum(), 1)
        score = votes + prior_weight * prior + 1e-6 * np.arange(len(options))  # ties: the last
        share = (score + 0.1) / (score.sum() + 0.1 * len(options))
        order = np.argsort(-score)
        return [(self.display.get(shown[j], shown[j]), float(OPTION_CONFIDENCE * share[j])) for j in order]

    def _distributions(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, ctx: np.ndarray,
                       sets: list[set[str]], questions: Sequence[str]
                       ) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
        """Each question's answer form and distribution over the answers (its form's blend), and the
        similarities to the memory questions that blend used. Shapes: -> M pairs, ``[M, N_train]``."""
        core, cfg = self.core, self.config
        out, sims = [], []
        for suffix in ("", "_open"):  # the closed-question blend, then the open-question blend
            p = {name: getattr(cfg, name + suffix) for name in self._PARAMS}
            sim = core.similarities(q, img, sets, p["w_img"], p["w_kg"])
            votes, _ = core.knn_votes(sim, p["knn_k"], p["temperature"])
            probs = core.head_probs(q, img, kg, ctx, p["head_temperature"])
            out.append(core.combine(probs, votes, questions, p["mix"]))
            sims.append(sim)
        is_open = np.array([form == "open" for form, _ in out[0]], bool)
        sim = np.where(is_open[:, None], sims[1], sims[0])
        return [c if op else o for o, c, op in zip(out[0], out[1], is_open)], sim

    def predict(self, question: str, image_vector: np.ndarray) -> Prediction:
        return self.predict_batch([question], np.asarray(image_vector)[None, :])[0]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``config.json``, ``answerer.json`` and ``answerer.safetensors`` atomically into ``directory``."""
        from safetensors.torch import save_file

        core = self.core
        with atomic_directory(directory) as tmp:
            self.config.save(tmp / "config.json")
            tensors = {"head": torch.from_numpy(core.head)}
            tensors.update({"train_q": torch.from_numpy(core.train_q), "train_img": torch.from_numpy(core.train_img),
                            "train_kg": torch.from_numpy(core.train_kg),
                            "train_labels": torch.from_numpy(core.train_labels.astype(np.int64))})
            save_file(tensors, str(tmp / "answerer.safetensors"))
            atomic_write_json(tmp / "answerer.json", {
                "answers": core.answers, "display": self.display, "meta": self.meta,
                "examples": [[e.image_key, e.question, e.answer, e.closed, e.group] for e in self.examples],
                "concepts": [sorted(s) for s in core.train_concepts], "calibrator": self.calibrator.to_json()})

    @classmethod
    def load(cls, directory: str | Path, *, graph: ConceptGraph | None, text_encoder: Any,
             tagger: ConceptTagger | None = None) -> "VQAAnswerer":
        """Load a saved answerer; refuses one trained with another text encoder or concept graph."""
        from safetensors.torch import load_file

        directory = Path(directory)
        try:
            config = AnswererConfig.load(directory / "config.json")
            info = json.loads((directory / "answerer.json").read_text(encoding="utf-8"))
            tensors = load_file(str(directory / "answerer.safetensors"))
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactCorruptError(f"VQA answerer in {directory} is missing or corrupt ({exc}); rebuild the "
                                       "workspace with `kgclip demo` or Engine.build") from exc
        meta = info["meta"]
        fp = getattr(text_encoder, "fingerprint", "")
        if meta.get("text_encoder_fingerprint") and fp != meta["text_encoder_fingerprint"]:
            raise StaleArtifactError(f"the VQA answerer in {directory} was trained with text encoder "
                                     f"{meta.get('text_encoder')!r}, not {getattr(text_encoder, 'name', '?')!r}; "
                                     "load it with the same encoder or retrain it")
        if config.use_kg and graph is not None and meta.get("graph_fingerprint") not in ("", graph.fingerprint()):
            raise StaleArtifactError(f"the VQA answerer in {directory} was trained on another version of the "
                                     "concept graph; rebuild (Engine.build / refresh) after editing the ontology")
        core = AnswererCore(config, info["answers"])
        core.head = tensors["head"].numpy()
        core.set_memory(tensors["train_q"].numpy(), tensors["train_img"].numpy(), tensors["train_kg"].numpy(),
                        [set(c) for c in info["concepts"]], tensors["train_labels"].numpy(),
                        [row[0] for row in info["examples"]],
                        [row[4] or f"#{i}" for i, row in enumerate(info["examples"])])
        examples = [QAExample(*row) for row in info["examples"]]
        core.learn_kinds([e.question for e in examples], core.train_labels)
        if config.use_kg and graph is not None and tagger is None:
            tagger = ConceptTagger(graph)
        model = cls(core, examples, info["display"], text_encoder, tagger if config.use_kg else None, meta)
        model.calibrator = Calibrator.from_json(info.get("calibrator"))  # absent in older workspaces: identity
        return model


def group_folds(groups: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold index (``0 .. n_folds - 1``) of each item, assigned by whole group: the sorted distinct groups are
    shuffled with ``seed`` and dealt round-robin, so equal groups share a fold and folds differ by at most one group.

    Shapes: ``groups`` of length N -> ``[N]`` int.
    """
    unique = sorted(set(groups))
    random.Random(seed).shuffle(unique)
    fold_of = {g: i % n_folds for i, g in enumerate(unique)}
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


def nearest_other_quantile(img: np.ndarray, keys: Sequence[str], quantile: float) -> float:
    """The ``quantile`` of each memory image's cosine to its nearest *other* memory image: an image less similar
    than this to everything in memory is unlike the collection. Shapes: ``img [N, Di]`` (rows may repeat an image).
    """
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    if len(first) < 2:
        return 0.0
    u = img[sorted(first.values())]
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    return float(np.quantile(sims.max(axis=1), quantile))


def examples_from_vqa_rad(items: Sequence[VQARadItem]) -> list[QAExample]:
    """VQA-RAD items (:func:`kgclip.data.vqa_rad.read_vqa_rad`) -> :class:`QAExample`, keyed by the one image key
    (:func:`kgclip.data.vqa_rad.image_key`); paraphrases share their ``qid_linked_id`` group."""
    return [QAExample(image_key=item.image_key, question=item.question, answer=item.answer, closed=item.is_closed,
                      group=item.linked_id) for item in items]


__all__ += ["examples_from_vqa_rad", "group_folds", "nearest_other_quantile"]

