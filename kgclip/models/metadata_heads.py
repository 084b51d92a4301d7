"""Image metadata classifiers on a frozen image tower: one softmax-regression head per field (modality, plane,
body region...), trained from the metadata of any labelled images.

Why a linear head: the pretrained tower's pooled features already separate how an image was acquired (CT vs MR vs
radiograph, axial vs sagittal) and what it shows; a few hundred labelled images fit a ``[C, D]`` multinomial logistic
regression, where a fine-tuned network would overfit. The heads are label-agnostic: they learn whatever labels the
caller gives (the caller normalises them to one vocabulary, e.g. :mod:`kgclip.rag.image_metadata`).

How one head is trained (:func:`fit_metadata_heads`):

* inputs: ``[N, D]`` feature rows (the engine's unit-normalised tower vectors) and, per image, the set of labels
  it carries for the field (one label; several when the metadata names several, e.g. ``ABDOMENPELVIS``; the target
  is then spread evenly over them; an empty set means unknown and the image does not train that head);
* class balance: each image is weighted ``1 / (C * share of its class)``, so a rare class counts as much as a common
  one (a head is meant to tell an X-ray from a CT, not to learn that most images are CT);
* L2 strength: chosen from ``config.l2_grid`` by the class-weighted log-loss on a validation carve of the *given*
  images (whole ``groups`` held out together, so images of one case never straddle the carve);
* calibration: one temperature fitted on the carve's logits (plain, unweighted log-loss: the probability that the
  label is right on images like the training ones; temperature 1 when the carve holds fewer than
  ``config.min_calibration_images``); then the head is refitted on all labelled images with the chosen L2 and keeps
  that temperature;
* classes with fewer than ``config.min_per_class`` images are dropped (no head can learn from one example); a field
  with fewer than two classes left gets no head.

Persistence (:meth:`MetadataHeads.save` / :meth:`MetadataHeads.load`): ``heads.safetensors`` (per field ``<f>.weight``
``[C, D]``, ``<f>.bias`` ``[C]``; ``mean`` ``[D]``) and ``heads.json`` (labels, temperatures, L2, validation figures,
the fingerprint of the training inputs and of the feature extractor, library versions), written as one atomic
directory. Never pickle. :meth:`MetadataHeads.load` refuses heads made for other features.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.errors import (
    ArtifactCorruptError,
    ConfigError,
    InputFormatError,
    StaleArtifactError,
)
from kgclip.fingerprint import Hasher
from kgclip.stats import bootstrap_ci

__all__ = ["HEADS_FORMAT", "FieldHead", "HeadConfig", "MetadataHeads", "fit_metadata_heads"]

HEADS_FORMAT = 1
_JSON, _TENSORS = "heads.json", "heads.safetensors"


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """How the heads are trained (module docstring)."""

    # L2 strengths tried (penalty ``l2 * ||W||^2`` added to the mean weighted log-loss); one is chosen per field.
    l2_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    # Share of the groups carved out for choosing L2 and fitting the temperature.
    val_fraction: float = 0.2
    # Seed of the carve.
    seed: int = 0
    # L-BFGS iterations per fit.
    max_iter: int = 200
    # Classes with fewer labelled images are dropped.
    min_per_class: int = 3
    # A carve with fewer labelled images cannot fit a temperature: the head keeps temperature 1 (uncalibrated,
    # ``figures["calibrated"]`` False) rather than trusting a handful of images.
    min_calibration_images: int = 30

    def __post_init__(self) -> None:
        if not self.l2_grid or any(not (x >= 0 and math.isfinite(x)) for x in self.l2_grid):
            raise ConfigError(f"l2_grid must be non-empty finite values >= 0, got {self.l2_grid}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {self.max_iter}")
        if self.min_per_class < 1:
            raise ConfigError(f"min_per_class must be >= 1, got {self.min_per_class}")
        if self.min_calibration_images < 1:
            raise ConfigError(f"min_calibration_images must be >= 1, got {self.min_calibration_images}")


@dataclasses.dataclass
class FieldHead:
    """One field's classifier: ``softmax((x - mean) @ weight.T + bias) / temperature``.

    Attributes:
        labels: the class labels, in column order.
        weight: ``[C, D]`` float32; bias: ``[C]`` float32.
        temperature: the calibration temperature (logits are divided by it).
        l2: the chosen L2 strength.
        figures: validation-carve figures (``val_acc``, ``val_majority``, ``val_n``, ``n_train`` per class...).
    """

    labels: list[str]
    weight: np.ndarray
    bias: np.ndarray
    temperature: float
    l2: float
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)


class MetadataHeads:
    """Calibrated classifiers of image metadata fields over one feature extractor's vectors.

    Args:
        heads: field name -> :class:`FieldHead`.
        mean: ``[D]`` feature mean subtracted before every head.
        feature_fingerprint: the fingerprint of the feature extractor the heads were trained on.
        info: provenance written to ``heads.json`` (training fingerprint, config, counts).
    """

    def __init__(self, heads: Mapping[str, FieldHead], mean: np.ndarray, feature_fingerprint: str,
                 info: Mapping[str, Any] | None = None) -> None:
        self.heads = dict(heads)
        self.mean = np.asarray(mean, np.float32)
        self.feature_fingerprint = feature_fingerprint
        self.info = dict(info or {})

    @property
    def fields(self) -> list[str]:
        return list(self.heads)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def labels(self, field: str) -> list[str]:
        return list(self._head(field).labels)

    def _head(self, field: str) -> FieldHead:
        if field not in self.heads:
            raise ConfigError(f"no metadata head for {field!r}; these heads predict {sorted(self.heads)}")
        return self.heads[field]

    def predict_proba(self, field: str, vectors: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities. Shapes: ``vectors [N, D]`` (or ``[D]``) -> ``[N, C]``."""
        head = self._head(field)
        x = np.asarray(vectors, np.float32)
        x = x[None, :] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputFormatError(f"metadata heads take [N, {self.dim}] vectors, got shape {np.shape(vectors)}; "
                                   "use the feature extractor the heads were trained on")
        logits = ((x - self.mean) @ head.weight.T + head.bias) / head.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per image: ``{field: {label: probability}}``. Shapes: ``vectors [N, D]``."""
        probs = {f: self.predict_proba(f, vectors) for f in self.heads}
        n = next(iter(probs.values())).shape[0] if probs else 0
        return [{f: dict(zip(self.heads[f].labels, map(float, p[i]))) for f, p in probs.items()} for i in range(n)]

    # ------------------------------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> Path:
        """Write ``heads.safetensors`` + ``heads.json`` into ``directory`` (replaced atomically as a whole)."""
        from safetensors.torch import save_file

        from kgclip.artifacts import kgclip_version
        from kgclip.atomic import atomic_directory

        tensors = {"mean": torch.from_numpy(self.mean.copy())}
        meta: dict[str, Any] = {"format": HEADS_FORMAT, "feature_fingerprint": self.feature_fingerprint,
                                "dim": self.dim, "kgclip": kgclip_version(), "torch": torch.__version__,
                                "info": self.info, "heads": {}}
        for f, h in self.heads.items():
            tensors[f"{f}.weight"] = torch.from_numpy(np.ascontiguousarray(h.weight, np.float32))
            tensors[f"{f}.bias"] = torch.from_numpy(np.ascontiguousarray(h.bias, np.float32))
            meta["heads"][f] = {"labels": h.labels, "temperature": h.temperature, "l2": h.l2, "figures": h.figures}
        with atomic_directory(directory) as tmp:
            save_file(tensors, str(tmp / _TENSORS))
            (tmp / _JSON).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, *, feature_fingerprint: str | None = None) -> MetadataHeads:
        """Read heads written by :meth:`save`.

        Raises:
            ModelNotFoundError: no heads there; ArtifactCorruptError: a damaged or inconsistent file;
            StaleArtifactError: ``feature_fingerprint`` given and the heads were trained on other features.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from kgclip.artifacts import read_json_header
        from kgclip.errors import ModelNotFoundError

        base = Path(directory)
        redo = "retrain them (benchmarks/bench_metadata_heads.py, or rebuild the workspace)"
        meta = read_json_header(base / _JSON, missing=f"{base} holds no metadata heads ({_JSON}); {redo}",
                                recover=redo, missing_error=ModelNotFoundError)
        if meta.get("format") != HEADS_FORMAT:
            raise ArtifactCorruptError(f"{base / _JSON}: heads format {meta.get('format')!r}, this kgclip reads "
                                       f"{HEADS_FORMAT}; {redo}")
        if feature_fingerprint is not None and meta.get("feature_fingerprint") != feature_fingerprint:
            raise StaleArtifactError(f"{base}: the metadata heads were trained on other image features "
                                     f"({str(meta.get('feature_fingerprint'))[:12]}, these are "
                                     f"{feature_fingerprint[:12]}); {redo}")
        try:
            tensors = load_file(str(base / _TENSORS))
            mean = tensors["mean"].numpy()
            heads = {}
            for f, h in dict(meta["heads"]).items():
                w, b = tensors[f"{f}.weight"].numpy(), tensors[f"{f}.bias"].numpy()
                labels = [str(x) for x in h["labels"]]
                if w.shape != (len(labels), mean.shape[0]) or b.shape != (len(labels),):
                    raise ValueError(f"head {f!r}: weight {tuple(w.shape)} / bias {tuple(b.shape)} do not fit "
                                     f"{len(labels)} labels x {mean.shape[0]} features")
                heads[f] = FieldHead(labels, w, b, float(h["temperature"]), float(h["l2"]), dict(h.get("figures", {})))
        except FileNotFoundError:
            raise ArtifactCorruptError(f"{base / _TENSORS} is missing; {redo}") from None
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
            raise ArtifactCorruptError(f"{base}: the metadata heads are unreadable ({exc}); {redo}") from exc
        return cls(heads, mean, str(meta.get("feature_fingerprint", "")), meta.get("info", {}))


# ------------------------------------------------------------------------------------------------ training


def _targets(labels: Sequence[Collection[str]], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with at least one known class, and their ``[n, C]`` soft targets (spread evenly over the set)."""
    index = {c: j for j, c in enumerate(classes)}
    rows, targets = [], []
    for i, labs in enumerate(labels):
        js = sorted({index[x] for x in labs if x in index})
        if js:
            t = np.zeros(len(classes), np.float64)
            t[js] = 1.0 / len(js)
            rows.append(i)
            targets.append(t)
    return np.asarray(rows, int), np.asarray(targets).reshape(len(rows), len(classes))


def _class_weights(t: np.ndarray) -> np.ndarray:
    """Per-image weight ``sum_c t_c / (C * share_c)``: every class weighs the same in total."""
    share = t.sum(axis=0) / max(len(t), 1)
    return (t / (len(share) * np.maximum(share, 1e-12))).sum(axis=1)


def _fit_linear(x: np.ndarray, t: np.ndarray, w: np.ndarray, l2: float, max_iter: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted soft-target multinomial logistic regression by L-BFGS. Shapes: ``x [n, D]``, ``t [n, C]``."""
    X, T, W = (torch.from_numpy(np.asarray(a, np.float64)) for a in (x, t, w))
    weight = torch.zeros(T.shape[1], X.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(T.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logp = torch.log_softmax(X @ weight.T + bias, dim=1)
        loss = -(W * (T * logp).sum(dim=1)).sum() / W.sum() + l2 * (weight * weight).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach().numpy().astype(np.float32), bias.detach().numpy().astype(np.float32)


def _nll(logits: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    per = -(t * logp).sum(axis=1)
    return float(np.average(per, weights=w)) if len(per) else 0.0


def _fit_temperature(logits: np.ndarray, t: np.ndarray) -> float:
    """The temperature minimising the (unweighted) log-loss of ``logits / T`` on held-out rows (grid, log scale)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    losses = [_nll(logits / g, t) for g in grid]
    return float(grid[int(np.argmin(losses))])


def _carve(groups: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the validation carve: whole groups, about ``fraction`` of them, seeded."""
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(len(uniq))[: max(1, round(fraction * len(uniq)))].tolist())
    chosen = {uniq[i] for i in held}
    return np.array([g in chosen for g in groups], bool)


def _training_fingerprint(x: np.ndarray, labels: Mapping[str, Sequence[Collection[str]]],
                          groups: Sequence[str], config: HeadConfig) -> str:
    h = Hasher().update_str("metadata-heads-v1").update_array(np.asarray(x, np.float32))
    for f in sorted(labels):
        h.update_str(f).update_json([sorted(set(x)) for x in labels[f]])
    return h.update_json(list(groups)).update_json(dataclasses.asdict(config)).hexdigest()


def fit_metadata_heads(vectors: np.ndarray, labels: Mapping[str, Sequence[Collection[str]]], *,
                       feature_fingerprint: str, groups: Sequence[str] | None = None,
                       config: HeadConfig = HeadConfig(), show_progress: bool = False) -> MetadataHeads:
    """Train one calibrated head per field of ``labels`` (module docstring).

    Args:
        vectors: ``[N, D]`` image feature rows (the extractor named by ``feature_fingerprint``).
        labels: field -> per image, the set of its labels for that field (a string counts as one label; empty:
            unknown). Every sequence has ``N`` entries.
        feature_fingerprint: the feature extractor's fingerprint (recorded; :meth:`MetadataHeads.load` checks it).
        groups: per image, a group id (e.g. the case); a group is carved out whole. Default: every image its own.

    Raises:
        InputFormatError: shapes or lengths disagree, or no field has two classes with enough images.
    """
    from tqdm.auto import tqdm

    x = np.asarray(vectors, np.float32)
    if x.ndim != 2 or not len(x) or not np.isfinite(x).all():
        raise InputFormatError(f"vectors must be a finite [N, D] array with N >= 1, got shape {x.shape}")
    groups = [str(g) for g in groups] if groups is not None else [str(i) for i in range(len(x))]
    norm = {f: [(frozenset([v]) if isinstance(v, str) else frozenset(v)) - {""} for v in seq]
            for f, seq in labels.items()}
    for f, seq in [("groups", groups), *norm.items()]:
        if len(seq) != len(x):
            raise InputFormatError(f"{f}: {len(seq)} entries for {len(x)} vectors; give one per image")
    mean = x.mean(axis=0)
    xc = x - mean
    val_mask = _carve(groups, config.val_fraction, config.seed)
    heads: dict[str, FieldHead] = {}
    skipped: dict[str, str] = {}
    for field, labs in tqdm(norm.items(), desc="metadata heads", disable=not show_progress, leave=False):
        counts: dict[str, int] = {}
        for s in labs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        classes = sorted(c for c, n in counts.items() if n >= config.min_per_class)
        rows, t = _targets(labs, classes)
        if len(classes) < 2:
            skipped[field] = f"fewer than 2 classes with >= {config.min_per_class} images ({counts})"
            continue
        tr, va = ~val_mask[rows], val_mask[rows]
        if t[tr].sum(axis=0).min() == 0 or va.sum() == 0:  # a class or the carve empty: carve by rows instead
            va = _carve([str(i) for i in range(len(rows))], config.val_fraction, config.seed)
            tr = ~va
        w_tr, w_va = _class_weights(t[tr]), _class_weights(t[va])
        fits = {}
        for l2 in config.l2_grid:
            W, b = _fit_linear(xc[rows][tr], t[tr], w_tr, l2, config.max_iter)
            fits[l2] = (_nll(xc[rows][va] @ W.T + b, t[va], w_va), W, b)
        l2 = min(fits, key=lambda k: (fits[k][0], -k))
        _, W, b = fits[l2]
        val_logits = xc[rows][va] @ W.T + b
        calibrated = int(va.sum()) >= config.min_calibration_images
        temperature = _fit_temperature(val_logits, t[va]) if calibrated else 1.0
        truth = t[va].argmax(axis=1)
        pred = val_logits.argmax(axis=1)
        majority = int(np.bincount(t[tr].argmax(axis=1), minlength=len(classes)).argmax())
        # Paired bootstrap of head-minus-majority hits on the carve: a head is worth answering with only when the
        # interval's lower bound is above 0 (kgclip.rag.image_metadata.answering_labels).
        gain_ci = bootstrap_ci((pred == truth).astype(float) - (truth == majority).astype(float), seed=config.seed)
        figures = {"val_n": int(va.sum()), "calibrated": calibrated,
                   "val_acc": round(float((pred == truth).mean()), 4),
                   "val_majority": round(float((truth == majority).mean()), 4),
                   "val_gain_ci": gain_ci, "beats_majority": bool(gain_ci[0] > 0),
                   "val_nll": round(_nll(val_logits / temperature, t[va]), 4),
                   "n_per_class": {c: int(counts[c]) for c in classes},
                   "l2_val_loss": {str(k): round(v[0], 4) for k, v in fits.items()}}
        W, b = _fit_linear(xc[rows], t, _class_weights(t), l2, config.max_iter)  # all labelled images
        heads[field] = FieldHead(classes, W, b, temperature, float(l2), figures)
    if not heads:
        raise InputFormatError("no metadata head could be trained: " + "; ".join(f"{f}: {why}" for f, why in
                                                                                  skipped.items())
                               + ". Label more images (each class needs config.min_per_class images)")
    info = {"training_fingerprint": _training_fingerprint(x, norm, groups, config),
            "config": dataclasses.asdict(config), "n_images": len(x), "skipped": skipped}
    return MetadataHeads(heads, mean, feature_fingerprint, info)
