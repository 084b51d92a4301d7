"""The built-in VQA answerer: a classifier over the training answer set blended with retrieval of similar
questions on similar images, with the knowledge graph entering through linked concepts.

It scores every training answer two ways and mixes them (weights chosen on a validation split carved from train):

* ``p_head``: a ridge classifier over ``[question embedding, image embedding, concept features]``;
* ``p_knn``: votes of the ``k`` training questions most similar to this one, where similarity is
  ``cos(question) + w_img * cos(image) + w_kg * jaccard(concepts, with is-a parents)``; these neighbours are also
  the evidence shown to the user ("answers of similar questions on similar images").

Closed questions are answered among yes / no, or among the options the question itself names ("MRI or CT?").
Without the KG (``use_kg=False``) concept features are zero and ``w_kg = 0``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.rag.router import AnswerForm, answer_fits_kind, question_form, route_question

CTX_KG = [4, 5, 6]  # columns of context_features() that come from the concept graph

__all__ = ["QAExample", "AnswererConfig", "AnswererCore", "normalize_answer", "question_kind", "QuestionKind"]

# "Which side...?" asks for a side, not for the finding on it: VQA-RAD train answers 76 % of its laterality questions
# with a bare side ("right", "left side", "bilateral"); the answerer gave "right lung" / "right frontal lobe" instead.
_ASKS_FOR_SIDE = re.compile(r"\b(which|what) side\b|\bleft or (the )?right\b|\bright or (the )?left\b|\blaterality\b")
_SIDE_ANSWER = re.compile(r"^(left|right|bilateral|both|midline|central)( side| sided| sides)?$")

QuestionKind = AnswerForm


def normalize_answer(text: object) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed (the usual VQA normalisation)."""
    out = re.sub(r"[^a-z0-9 ]+", " ", str(text).lower().strip())
    out = re.sub(r"\b(the|a|an)\b", " ", out)
    return " ".join(out.split())


def question_kind(question: str) -> QuestionKind:
    """``yes/no`` for auxiliary-verb questions, ``choice`` when they offer options ("... X or Y?"), else ``open``
    (the answer *form*; :func:`kgclip.rag.router.route_question` also says what the question is about)."""
    return question_form(question)


@dataclass(frozen=True)
class QAExample:
    """One training or test question. ``closed`` is the dataset's answer type (used for metrics only)."""

    image_key: str
    question: str
    answer: str
    closed: bool = False
    group: str = ""  # paraphrases share a group; validation keeps groups whole


@dataclass(frozen=True)
class AnswererConfig(Config):
    """Configuration of the built-in VQA answerer."""

    use_kg: bool = True  # concept features and concept overlap in retrieval
    ridge: float = 1.0  # L2 penalty of the closed-form classifier head
    kg_buckets: int = 128  # hashed bag-of-concepts width
    val_fraction: float = 0.2  # held-out share per fold: 1/val_fraction folds of cross-validation on train
    seed: int = 0
    # Abstention: decline when the calibrated confidence is below min_confidence, or when the image is less
    # similar to every memory image than all but ood_quantile of the memory images are to their nearest other one.
    min_confidence: float = 0.0
    ood_quantile: float = 0.01
    # fit() also learns a threshold: the calibrated confidence below which this share of its out-of-fold validation
    # answers fall, and declines below it (the larger of the two thresholds applies). VQA-RAD --split val: the
    # least confident 8 % of answers were 1.4 % right; the issue allows <= 10 % abstention on in-range inputs.
    abstain_share: float = 0.08
    # Calibrate per question kind too (open "where?" answers are right far less often than open "what organ?" ones
    # at the same raw confidence), where a kind has enough validation answers; see kgclip.rag.calibration.
    # VQA-RAD --split val: ECE 0.0538 -> 0.0454 alone, 0.0375 with the "Is there X or Y?" routing and the choice
    # options fix of the same change (closed accuracy -0.005 [-0.018, 0.007], paired).
    calibrate_by_kind: bool = True
    # Selected on validation by fit() and saved; these are only the starting values.
    knn_k: int = 10
    w_img: float = 1.0
    w_kg: float = 0.5
    temperature: float = 0.1
    head_temperature: float = 0.1  # softmax temperature of the head's scores
    mix: float = 0.5  # weight of the classifier head vs the retrieval votes
    # The same five for open questions (selected separately on validation).
    knn_k_open: int = 10
    w_img_open: float = 1.0
    w_kg_open: float = 0.5
    temperature_open: float = 0.1
    head_temperature_open: float = 0.1
    mix_open: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.ridge <= 0 or self.knn_k < 1 or self.head_temperature <= 0 or self.temperature <= 0:
            raise ConfigError("ridge, head_temperature and temperature must be > 0 and knn_k >= 1")
        if not 0.0 <= self.mix <= 1.0:
            raise ConfigError(f"mix must be in [0, 1], got {self.mix}")
        if not 0.0 <= self.abstain_share < 0.5:
            raise ConfigError(f"abstain_share must be in [0, 0.5), got {self.abstain_share}")
        if not 0.0 <= self.min_confidence < 1.0 or not 0.0 <= self.ood_quantile < 0.5:
            raise ConfigError(f"min_confidence must be in [0, 1) and ood_quantile in [0, 0.5), got "
                              f"{self.min_confidence} and {self.ood_quantile}")


def kg_bag(concepts: set[str], buckets: int) -> np.ndarray:
    """Hashed, L2-normalised bag of concept ids. Shapes: -> ``[buckets]``."""
    import zlib

    vec = np.zeros(buckets, dtype=np.float32)
    for cid in concepts:
        vec[zlib.crc32(cid.encode()) % buckets] += 1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


class _Array(np.ndarray):
    """ndarray with a ``.numpy()`` (the feature builder used to return tensors)."""

    def __new__(cls, a: np.ndarray) -> "_Array":
        return np.asarray(a).view(cls)

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


def compact_image(img: np.ndarray) -> np.ndarray:
    """The classifier's view of a thumbnail descriptor: 8x8 average-pooled thumbnail + histogram (96 values);
    other image embeddings pass through. Keeps the classifier head small.

    Shapes: ``[N, 32*32+32]`` -> ``[N, 96]``; anything else unchanged.
    """
    if img.ndim != 2 or img.shape[1] != 32 * 32 + 32:
        return img
    thumb = img[:, :1024].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(-1, 64) * 4.0
    out = np.concatenate([thumb, img[:, 1024:]], axis=1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


class AnswererCore:
    """Numerical core: features in, answer distributions out. :class:`kgclip.rag.vqa.VQAAnswerer` wraps it with
    text encoding, linking, images and persistence.

    Shapes:
        ``q``: ``[N, Dq]`` unit question embeddings; ``img``: ``[N, Di]`` unit image embeddings;
        ``kg``: ``[N, kg_buckets]``; ``concepts``: N sets of concept ids.
    """

    def __init__(self, config: AnswererConfig, answers: list[str]) -> None:
        self.config = config
        self.answers = answers  # normalised answer vocabulary
        self.answer_index = {a: i for i, a in enumerate(answers)}
        self.head: np.ndarray | None = None  # [D + 1, A] ridge weights
        self.train_q = self.train_img = self.train_kg = np.zeros((0, 0), np.float32)
        self.train_concepts: list[set[str]] = []
        self.train_labels = np.zeros(0, np.int64)
        self.train_keys: list[str] = []
        self.train_groups: list[str] = []
        self._image_keys: list[str] = []
        self.kind_answers: dict[str, np.ndarray] = {}  # question kind -> [A] answers an open question of it may get

    def learn_kinds(self, questions: Sequence[str], labels: np.ndarray) -> None:
        """Which answers each kind of open question may get: those given to open training questions of that kind
        (at least two, else any open answer); "which side?" questions only get answers naming a side."""
        self.kind_answers = {}
        for q, label in zip(questions, labels):
            route = route_question(q)
            if route.form == "open":
                self.kind_answers.setdefault(route.kind, np.zeros(len(self.answers), bool))[int(label)] = True
        # A size or count question gets an answer shaped like one: "How large is the mass?" was answered
        # "posteriorly", an answer once given to an open training question the router also reads as size_count.
        if "size_count" in self.kind_answers:
            self.kind_answers["size_count"] &= np.array([answer_fits_kind(a, "size_count") for a in self.answers],
                                                        bool)
        for kind in list(self.kind_answers):
            if kind == "open" or self.kind_answers[kind].sum() < 2:
                del self.kind_answers[kind]
        side = np.array([answer_fits_kind(a, "laterality") for a in self.answers], bool)
        if side.sum() >= 2:
            self.kind_answers["laterality"] = side
        bare = np.array([bool(_SIDE_ANSWER.match(a)) for a in self.answers], bool)
        if bare.sum() >= 2:
            self.kind_answers["side"] = bare  # the answers of a question that asks for the side itself

    # ------------------------------------------------------------------ training
    def _features(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, ctx: np.ndarray) -> "_Array":
        if not self.config.use_kg:
            kg = np.zeros_like(kg)
            ctx = ctx.copy()
            ctx[:, CTX_KG] = 0.0
        return _Array(np.concatenate([q, compact_image(img), kg, 2.0 * ctx], axis=1).astype(np.float32))

    def train_head(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, ctx: np.ndarray, labels: np.ndarray,
                   show_progress: bool = False) -> None:
        """Closed-form ridge classifier over the features (one-vs-rest least squares on one-hot answers).

        A closed form rather than SGD: deterministic, a single ``[D, D]`` solve (milliseconds), and no
        thread-pool thrashing on a shared 2-core machine. Non-linear question x image interactions are left to
        the k-NN votes.
        """
        x = self._features(q, img, kg, ctx).numpy().astype(np.float64)
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        y = np.zeros((len(labels), len(self.answers)))
        y[np.arange(len(labels)), labels] = 1.0
        gram = x.T @ x + self.config.ridge * np.eye(x.shape[1])
        self.head = np.linalg.solve(gram, x.T @ y).astype(np.float32)

    def set_memory(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, concepts: list[set[str]],
                   labels: np.ndarray, keys: Sequence[str], groups: Sequence[str]) -> None:
        """The retrieval memory: the training questions the k-NN votes and the case context come from."""
        self.train_q, self.train_img, self.train_kg = q, img, kg
        self.train_concepts = concepts
        self.train_labels = labels
        self.train_keys = list(keys)
        self.train_groups = list(groups)
        rows_of: dict[str, list[int]] = {}
        for i, key in enumerate(self.train_keys):
            rows_of.setdefault(key, []).append(i)
        self._image_keys = list(rows_of)
        self._rows_of = rows_of
        self._image_matrix = (np.stack([img[rows_of[k][0]] for k in self._image_keys]) if rows_of
                              else np.zeros((0, img.shape[1] if img.ndim == 2 else 0), np.float32))
        yes, no = self.answer_index.get("yes", -1), self.answer_index.get("no", -1)
        self._is_yes = labels == yes
        self._is_no = labels == no

    def context_features(self, q: np.ndarray, img: np.ndarray, concepts: Sequence[set[str]],
                         keys: Sequence[str] | None = None, groups: Sequence[str] | None = None) -> np.ndarray:
        """What the *other* questions about this image say: case context for closed questions.

        The image is matched to the nearest memory image (or given by ``keys`` when training, with the question's
        own paraphrase ``groups`` left out). From that image's yes- and no-answered questions: the best question
        similarity and concept overlap on each side, and the share of yes answers.

        Shapes: -> ``[M, 7]``; columns ``CTX_KG`` hold the concept-overlap part (zeroed without the KG).
        """
        out = np.zeros((len(q), 7), np.float32)
        if not self._image_keys:
            return out
        if keys is None:
            sims = img @ self._image_matrix.T
            nearest = sims.argmax(axis=1)
            chosen = [self._image_keys[j] for j in nearest]
            weights = np.clip((sims[np.arange(len(q)), nearest] - 0.9) / 0.1, 0.0, 1.0)
        else:
            chosen, weights = list(keys), np.ones(len(q))
        for i, key in enumerate(chosen):
            rows = [r for r in self._rows_of.get(key, []) if groups is None or self.train_groups[r] != groups[i]]
            ys = [r for r in rows if self._is_yes[r]]
            ns = [r for r in rows if self._is_no[r]]
            if not ys and not ns:
                continue
            c_pos = float(np.max(self.train_q[ys] @ q[i])) if ys else 0.0
            c_neg = float(np.max(self.train_q[ns] @ q[i])) if ns else 0.0
            cs = concepts[i]

            def overlap(rs: list[int]) -> float:
                best = 0.0
                for r in rs:
                    ct = self.train_concepts[r]
                    if cs and ct:
                        best = max(best, len(cs & ct) / len(cs | ct))
                return best

            k_pos, k_neg = overlap(ys), overlap(ns)
            frac = len(ys) / (len(ys) + len(ns))
            out[i] = weights[i] * np.array([c_pos, c_neg, c_pos - c_neg, frac - 0.5, k_pos, k_neg, k_pos - k_neg])
        return out

    # ------------------------------------------------------------------ inference
    def similarities(self, q: np.ndarray, img: np.ndarray, concepts: Sequence[set[str]],
                     w_img: float, w_kg: float) -> np.ndarray:
        """Shapes: -> ``[M, N_train]``: question + image + concept-overlap similarity to each training question."""
        sim = q @ self.train_q.T + w_img * (img @ self.train_img.T)
        if w_kg and self.config.use_kg:
            jac = np.zeros_like(sim)
            for i, cs in enumerate(concepts):
                if not cs:
                    continue
                for j, ct in enumerate(self.train_concepts):
                    if ct:
                        inter = len(cs & ct)
                        if inter:
                            jac[i, j] = inter / len(cs | ct)
            sim = sim + w_kg * jac
        return sim

    def knn_votes(self, sim: np.ndarray, k: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """Shapes: ``sim [M, N]`` -> (votes ``[M, A]`` summing to 1, neighbour indices ``[M, k]``)."""
        k = min(k, sim.shape[1])
        top = np.argsort(-sim, axis=1)[:, :k]
        votes = np.zeros((sim.shape[0], len(self.answers)), dtype=np.float64)
        for i in range(sim.shape[0]):
            s = sim[i, top[i]]
            w = np.exp((s - s.max()) / temperature)
            np.add.at(votes[i], self.train_labels[top[i]], w)
            votes[i] /= votes[i].sum()
        return votes, top

    def head_probs(self, q: np.ndarray, img: np.ndarray, kg: np.ndarray, ctx: np.ndarray,
                   temperature: float | None = None) -> np.ndarray:
        """Shapes: -> ``[M, A]`` probabilities from the ridge head (softmax of its scores / ``head_temperature``)."""
        assert self.head is not None, "train_head() first"
        x = self._features(q, img, kg, ctx).numpy()
        scores = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1) @ self.head
        scores = (scores - scores.max(axis=1, keepdims=True)) / (temperature or self.config.head_temperature)
        p = np.exp(scores.astype(np.float64))
        return p / p.sum(axis=1, keepdims=True)

    def candidate_mask(self, question: str) -> tuple[QuestionKind, np.ndarray]:
        """Which answers are allowed for this question (yes/no; the options it names; or the open answers of its
        kind, see :meth:`learn_kinds`)."""
        route = route_question(question)
        kind = route.form
        mask = np.zeros(len(self.answers), dtype=bool)
        yes_no = [self.answer_index[a] for a in ("yes", "no") if a in self.answer_index]
        if kind == "choice":
            q = f" {normalize_answer(question)} "
            for a, i in self.answer_index.items():
                if a not in ("yes", "no") and len(a) > 1 and f" {a} " in q:
                    mask[i] = True
            if not mask.any():
                kind = "yes/no"
        if kind == "yes/no":
            mask[yes_no] = True
        elif kind == "open":
            mask[:] = True
            mask[yes_no] = False
            allowed = self.kind_answers.get(route.kind)
            if route.kind == "laterality" and _ASKS_FOR_SIDE.search(question.lower()) and "side" in self.kind_answers:
                allowed = self.kind_answers["side"]
            if allowed is not None and (mask & allowed).any():
                mask &= allowed
        return kind, mask

    def masks(self, questions: Sequence[str]) -> tuple[list[QuestionKind], np.ndarray]:
        """Kinds and candidate masks ``[M, A]`` of many questions."""
        pairs = [self.candidate_mask(q) for q in questions]
        return [k for k, _ in pairs], (np.stack([m for _, m in pairs]) if pairs else
                                       np.zeros((0, len(self.answers)), bool))

    def combine(self, p_head: np.ndarray, votes: np.ndarray, questions: Sequence[str] | tuple[list, np.ndarray],
                mix: float) -> list[tuple[QuestionKind, np.ndarray]]:
        """Blend and restrict to each question's candidates. Returns (kind, distribution over answers) per row.

        ``questions`` may be the output of :meth:`masks` (to reuse it across many blends).
        """
        kinds, mask = self.masks(questions) if not isinstance(questions, tuple) else questions
        p = np.where(mask, mix * p_head + (1.0 - mix) * votes, 0.0) + 1e-12 * mask
        p = p / p.sum(axis=1, keepdims=True)
        return list(zip(kinds, p))

    def combine_argmax(self, p_head: np.ndarray, votes: np.ndarray, mask: np.ndarray, mix: float) -> np.ndarray:
        """Shapes: -> ``[M]`` index of the best allowed answer (fast path for model selection)."""
        return np.argmax(np.where(mask, mix * p_head + (1.0 - mix) * votes + 1e-12, -1.0), axis=1)

    def with_params(self, **changes: object) -> "AnswererCore":
        self.config = dataclasses.replace(self.config, **changes)
        return self
