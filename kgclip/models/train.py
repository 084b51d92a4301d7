"""Training of :class:`~kgclip.models.kgclip.KGClipModel` on image-text pairs: progress, checkpoints, resume.

CPU budget: the frozen text tower's caption vectors, the concept links and the images (decoded and resized once,
as uint8) are computed once per dataset and cached on disk by content fingerprint, so an epoch only runs the image
tower, the fusion and the heads. Randomness comes from ``seed`` and the epoch number alone, so a resumed run
continues exactly as an uninterrupted one would.

Model selection uses validation cases carved from the *training* pairs by group (case id): images of one case
never sit on both sides. The best epoch by validation mean recall is what :func:`train` saves.

Layout of ``out_dir`` (default ``indexes/model``): the saved model (:meth:`KGClipModel.save_pretrained`); beside it
``<out_dir>.checkpoint/`` holds the last epoch's model, the best so far, the optimizer state (safetensors) and
``state.json`` while a run is in progress; it is what ``resume`` continues from after an interruption, and it is
removed once the run completes and the model is saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.config import Config, kgclip_home
from kgclip.errors import ArtifactCorruptError, ConfigError
from kgclip.models.kgclip import KGClipConfig, KGClipModel, KGClipOutput
from kgclip.models.losses import (batch_concept_targets, concept_alignment_loss, concept_soft_targets,
                                  soft_info_nce)
from kgclip.models.retrieval_metrics import RetrievalMetrics, relevance_from_keys, retrieval_metrics
from kgclip.models.train_data import PairFeatures

__all__ = ["TrainConfig", "TrainResult", "train", "train_pairs", "evaluate_retrieval", "encode_pair_images",
           "split_by_group", "default_out_dir", "frozen_feature_source", "pretrained_recipe"]


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """Settings of :func:`train` (the architecture is ``model``)."""

    # The model architecture (enrichment, towers, sizes).
    model: KGClipConfig = dataclasses.field(default_factory=KGClipConfig)
    # Passes over the training pairs.
    epochs: int = 15
    # Pairs per step (also the number of in-batch negatives + 1).
    batch_size: int = 64
    # Peak AdamW learning rate (cosine decay after a linear warm-up).
    lr: float = 2e-3
    # AdamW weight decay (not applied to biases, norms and the temperature).
    weight_decay: float = 0.05
    # Linear warm-up length in steps.
    warmup_steps: int = 30
    # Seed of everything random (split, order, augmentation, dropout, initialisation).
    seed: int = 0
    # Fraction of training groups (cases) held out for model selection.
    val_fraction: float = 0.1
    # Share of each target row that follows concept overlap (MedCLIP soft targets); 0 = plain InfoNCE.
    soft_target_weight: float = 0.2
    # Weight of the KAD-style image-to-concept alignment loss (needs model.concept_head).
    alignment_weight: float = 0.0
    # Random resized crops and intensity jitter on training images.
    augment: bool = True
    # Smallest crop area fraction of the random resized crop.
    crop_scale_min: float = 0.6
    # Torch CPU threads during training (0: leave torch's setting alone).
    threads: int = 0
    # Use at most this many training pairs (0: all); for quick runs.
    max_pairs: int = 0
    # Which member of an ensemble this run trains (model.ensemble > 1 trains members 0..n-1 one after another):
    # it shifts the initialisation, batch order and dropout seeds but not the validation split, so every member
    # is selected on the same held-out cases. Member 0 trains exactly as a single head with the same seed.
    member: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("lr must be > 0, weight_decay and warmup_steps >= 0")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if not 0.0 <= self.soft_target_weight <= 1.0 or self.alignment_weight < 0:
            raise ConfigError("soft_target_weight must be in [0, 1] and alignment_weight >= 0")
        if self.alignment_weight > 0 and not self.model.concept_head:
            raise ConfigError("alignment_weight > 0 needs model.concept_head=True (and a concept table)")
        if not 0.05 <= self.crop_scale_min <= 1.0:
            raise ConfigError(f"crop_scale_min must be in [0.05, 1], got {self.crop_scale_min}")
        if self.member < 0:
            raise ConfigError(f"member must be >= 0, got {self.member}")

    @property
    def run_seed(self) -> int:
        """Seed of initialisation, batch order and dropout: ``seed`` for member 0, shifted for the others."""
        return self.seed + 1_000_003 * self.member


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        model: the selected (best validation) model, in eval mode.
        out_dir: where it was saved (``None`` when not saved).
        best_epoch: 1-based epoch of the selected weights.
        best_score: its validation mean recall (mean of R@1/5/10 both directions).
        history: one dict per epoch (loss, validation metrics, seconds).
        seconds: wall time of this call (resumed epochs not included).
        n_train / n_val: pairs used for training / validation.
    """

    model: KGClipModel
    out_dir: Path | None
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]
    seconds: float
    n_train: int
    n_val: int

    def _repr_html_(self) -> str:
        return (f"<div><b>KG-CLIP training</b>: best epoch {self.best_epoch} (val mean recall "
                f"{self.best_score:.3f}), {self.n_train} train / {self.n_val} val pairs, {self.seconds:.0f} s</div>")


def split_by_group(groups: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and validation items, whole groups on one side (deterministic for a seed)."""
    unique = sorted(set(groups))
    gen = torch.Generator().manual_seed(seed)
    order = [unique[i] for i in torch.randperm(len(unique), generator=gen).tolist()]
    n_val = int(round(len(unique) * fraction))
    if fraction > 0 and n_val == 0 and len(unique) > 1:
        n_val = 1
    val_groups = set(order[:n_val])
    train_idx = [i for i, g in enumerate(groups) if g not in val_groups]
    val_idx = [i for i, g in enumerate(groups) if g in val_groups]
    return train_idx, val_idx


def _augment(images: torch.Tensor, gen: torch.Generator, scale_min: float) -> torch.Tensor:
    """Random resized crop (area ``scale_min..1``, aspect 3/4..4/3) + brightness/contrast jitter, per image.

    Shapes: ``[B, 1, S, S]`` float in [0, 1] -> same.
    """
    b, _, s, _ = images.shape
    area = torch.empty(b).uniform_(scale_min, 1.0, generator=gen)
    log_ratio = torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    ratio = log_ratio.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - w)
    cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - h)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    brightness = torch.empty(b, 1, 1, 1).uniform_(-0.08, 0.08, generator=gen)
    mean = out.mean(dim=(2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + brightness).clamp(0.0, 1.0)


@torch.no_grad()
def evaluate_retrieval(model: KGClipModel, features: PairFeatures, indices: Sequence[int] | None = None,
                       batch_size: int = 128) -> RetrievalMetrics:
    """Image<->text retrieval over ``features`` (or a subset); identical caption texts count as the same item."""
    idx = list(range(len(features))) if indices is None else list(indices)
    model.eval()
    device = model.logit_scale.device
    image_emb = encode_pair_images(model, features, idx, batch_size)
    text_parts = []
    for i in range(0, len(idx), batch_size):
        rows = idx[i:i + batch_size]
        text_parts.append(model.encode_text_features(features.text_emb[rows].to(device),
                                                     *(t[rows].to(device) for t in features.concepts)).cpu())
    texts = [features.texts[i] for i in idx]
    relevant = relevance_from_keys(texts, texts)
    return retrieval_metrics(image_emb, torch.cat(text_parts), relevant)


@torch.no_grad()
def encode_pair_images(model: KGClipModel, features: PairFeatures, indices: Sequence[int] | None = None,
                       batch_size: int = 128) -> torch.Tensor:
    """Unit image embeddings of ``features`` (its cached tower features when it has them, else its pixels).

    Shapes: -> ``[len(indices), output_dim]`` float32 on the CPU.
    """
    idx = list(range(len(features))) if indices is None else list(indices)
    if features.image_feats is None:
        return model.encode_images(features.images[idx], batch_size=batch_size)
    was = model.training
    model.eval()
    device = model.logit_scale.device
    out = [model.encode_image_features(features.image_feats[idx[i:i + batch_size]].to(device)).float().cpu()
           for i in range(0, len(idx), batch_size)]
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0, model.config.output_dim)


def _score(metrics: RetrievalMetrics) -> float:
    values = [metrics.i2t[k] for k in ("r1", "r5", "r10")] + [metrics.t2i[k] for k in ("r1", "r5", "r10")]
    return sum(values) / len(values)


def _param_groups(model: KGClipModel, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.dim() < 2 or name.endswith("logit_scale") else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ------------------------------------------------------------------------------------------------ checkpoints


def _save_checkpoint(directory: Path, model: KGClipModel, best_state: dict[str, torch.Tensor],
                     optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    opt = optimizer.state_dict()
    flat = {f"{pid}.{key}": value.detach().cpu().contiguous().clone()
            for pid, slots in opt["state"].items() for key, value in slots.items() if torch.is_tensor(value)}
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    with atomic_directory(directory) as tmp:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
                  str(tmp / "last.safetensors"))
        save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp / "best.safetensors"))
        save_file(flat or {"empty": torch.zeros(1)}, str(tmp / "optimizer.safetensors"))
        atomic_write_json(tmp / "state.json", {**state, "param_groups": groups})


def _load_checkpoint(directory: Path, config: TrainConfig, model: KGClipModel,
                     optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        last = load_file(str(directory / "last.safetensors"))
        best = load_file(str(directory / "best.safetensors"))
        flat = load_file(str(directory / "optimizer.safetensors"))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise ArtifactCorruptError(f"checkpoint {directory} is unreadable ({exc}); delete it or pass resume=False "
                                   "(--no-resume) to start afresh") from exc
    if state.get("config") != config.to_dict():
        raise ConfigError(f"checkpoint {directory} was written by a run with another configuration; pass "
                          "--no-resume (resume=False) to start afresh, or another --out directory")
    model.load_weights(last, source=str(directory / "last.safetensors"))
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        if key == "empty":
            continue
        pid, name = key.split(".", 1)
        slots.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": state["param_groups"]})
    return state, best


# ----------------------------------------------------------------------------------------------------- train


def train(config: TrainConfig, features: PairFeatures, out_dir: str | os.PathLike[str] | None = None, *,
          resume: bool = True, progress: bool = True, concept_ids: Sequence[str] | None = None,
          concept_vectors: torch.Tensor | None = None, concept_fingerprint: str = "", text_encoder: Any = None,
          linker: Any = None, extra: dict[str, Any] | None = None) -> TrainResult:
    """Train a KG-CLIP model on precomputed pair features (see :func:`kgclip.models.train_data.prepare_features`).

    Args:
        config: training settings and architecture.
        features: images, caption vectors and concept links of the training pairs.
        out_dir: where the selected model goes (``None``: not saved, no checkpoints).
        resume: continue from ``<out_dir>.checkpoint`` when it exists (same config required).
        progress: show tqdm progress bars.
        concept_ids, concept_vectors, concept_fingerprint: the concept table (enrichment "gnn" / "text").
        text_encoder: the frozen text tower the features came from (its fingerprint is recorded).
        linker: the linker the links came from (kept on the model for inference).
        extra: JSON facts recorded in the saved model (data source...).
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.model.ensemble > 1:
        return _train_ensemble(config, features, out_dir, progress=progress, concept_ids=concept_ids,
                               concept_vectors=concept_vectors, concept_fingerprint=concept_fingerprint,
                               text_encoder=text_encoder, linker=linker, extra=extra)
    torch.manual_seed(config.run_seed)
    model = KGClipModel(config.model, concept_ids=concept_ids, concept_vectors=concept_vectors,
                        concept_fingerprint=concept_fingerprint, text_encoder=text_encoder, linker=linker)
    if features.text_emb.shape[1] != model.text_encoder.dim:
        raise ConfigError(f"features hold {features.text_emb.shape[1]}-d caption vectors but the text tower gives "
                          f"{model.text_encoder.dim}; prepare features with the model's text tower")
    part = model.frozen_features_part()
    if (part is None) != (features.image_feats is None) or (
            part is not None and features.image_feats is not None
            and (features.image_feats.dim() == 2) != (part == "pooled")):
        raise ConfigError(
            f"model.train_blocks={config.model.train_blocks} trains on {part or 'pixels'}, but the features hold "
            f"{'pixels' if features.image_feats is None else 'tower features'}; prepare them with "
            f"prepare_features(..., image_features=TowerFeatures(tower), image_part={part!r})" if part else
            "prepare them without image_features (train_blocks -1 trains the whole tower on pixels)")
    if config.model.enrichment != "none":
        features = features.with_concepts(model)
    train_idx, val_idx = split_by_group(features.groups, config.val_fraction, config.seed)
    if config.max_pairs:
        train_idx = train_idx[:config.max_pairs]
    if len(train_idx) < 2:
        raise ConfigError(f"need at least 2 training pairs, got {len(train_idx)}")
    batch = min(config.batch_size, len(train_idx))
    steps_per_epoch = len(train_idx) // batch  # drop_last: every step sees a full set of negatives
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        t = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    ckpt_dir = Path(str(out_dir) + ".checkpoint") if out_dir is not None else None
    history: list[dict[str, Any]] = []
    best_score, best_epoch, first_epoch = -1.0, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if resume and ckpt_dir is not None and (ckpt_dir / "state.json").is_file():
        state, best_state = _load_checkpoint(ckpt_dir, config, model, optimizer)
        history, best_score, best_epoch = state["history"], state["best_score"], state["best_epoch"]
        first_epoch = state["epoch"]
    images = features.images
    for epoch in range(first_epoch, config.epochs):
        t0 = time.perf_counter()
        # Everything random in this epoch derives from (seed, epoch): resuming reproduces it.
        torch.manual_seed(config.run_seed * 100_003 + epoch)
        gen = torch.Generator().manual_seed(config.run_seed * 100_003 + epoch)
        order = torch.tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        model.train()
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   leave=False)
        for step_in_epoch in bar:
            step = epoch * steps_per_epoch + step_in_epoch
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            rows = order[step_in_epoch * batch:(step_in_epoch + 1) * batch]
            concepts = [t[rows] for t in features.concepts]
            if features.image_feats is not None:  # a frozen (or partly frozen) pretrained tower: cached features
                out = KGClipOutput(model.encode_image_features(features.image_feats[rows]),
                                   model.encode_text_features(features.text_emb[rows], *concepts), model.scale())
            else:
                pixels = images[rows].float() / 255.0
                if config.augment:
                    pixels = _augment(pixels, gen, config.crop_scale_min)
                out = model(model.prepare_pixels(pixels), features.text_emb[rows], *concepts)
            if config.soft_target_weight > 0:
                targets = concept_soft_targets(features.link_idx[rows], features.link_mask[rows],
                                               config.soft_target_weight)
            else:
                targets = torch.eye(len(rows))
            loss = soft_info_nce(out.image_embeds, out.text_embeds, out.logit_scale, targets)
            if config.alignment_weight > 0:
                uniq, tgt = batch_concept_targets(concepts[0], concepts[1])
                loss = loss + config.alignment_weight * concept_alignment_loss(
                    out.image_embeds, model.encode_concepts(uniq), tgt, out.logit_scale, model.concept_bias)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": sum(losses) / max(1, len(losses)),
                                  "temperature": float(1.0 / model.scale().detach())}
        if val_idx:
            metrics = evaluate_retrieval(model, features, val_idx)
            score = _score(metrics)
            record.update({"val_score": score, **metrics.flat("_val")})
        else:
            score = -record["loss"]  # no validation: the lowest training loss stands in
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if progress:
            val = f", val mean recall {record['val_score']:.3f}" if "val_score" in record else ""
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.3f}{val} "
                       f"({record['seconds']:.0f} s)")
        if ckpt_dir is not None:
            _save_checkpoint(ckpt_dir, model, best_state, optimizer, {
                "epoch": epoch + 1, "history": history, "best_score": best_score, "best_epoch": best_epoch,
                "config": config.to_dict()})
    model.load_weights(best_state)
    model.eval()
    saved = None
    if out_dir is not None:
        saved = model.save_pretrained(out_dir, extra={
            "train_config": config.to_dict(), "best_epoch": best_epoch, "best_val_score": best_score,
            "history": history, "n_train": len(train_idx), "n_val": len(val_idx),
            "features": features.fingerprint, **(extra or {})})
        if ckpt_dir is not None:
            # The run is complete and its model saved: the checkpoint only ever serves an interrupted run.
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    return TrainResult(model=model, out_dir=saved, best_epoch=best_epoch, best_score=best_score, history=history,
                       seconds=time.perf_counter() - start, n_train=len(train_idx), n_val=len(val_idx))


def _train_ensemble(config: TrainConfig, features: PairFeatures, out_dir: str | os.PathLike[str] | None, *,
                    progress: bool, extra: dict[str, Any] | None, **model_args: Any) -> TrainResult:
    """``model.ensemble = n``: train n single heads one after another (members 0..n-1: their own initialisation,
    batch order, dropout and epoch, all selected on the same validation cases), then join them in one model.

    Each member is a complete single-head run (seconds on cached features), so an interrupted ensemble restarts
    its members rather than resuming mid-way.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    n = config.model.ensemble
    single = dataclasses.replace(config, model=dataclasses.replace(config.model, ensemble=1))
    runs = [train(dataclasses.replace(single, member=m), features, None, progress=False, **model_args)
            for m in tqdm(range(n), desc=f"training {n} ensemble members", disable=not progress, leave=False)]
    model = KGClipModel(config.model, **{k: v for k, v in model_args.items() if k != "text_encoder"},
                        text_encoder=runs[0].model.text_encoder)
    state = dict(runs[0].model.state_dict())
    member_keys = set(model.members[0].state_dict())  # every member holds the same parts
    for m, run in enumerate(runs[1:]):
        state.update({f"members.{m}.{k}": v for k, v in run.model.state_dict().items() if k in member_keys})
    model.load_weights(state)
    model.eval()
    if config.model.enrichment != "none":
        features = features.with_concepts(model)
    _, val_idx = split_by_group(features.groups, config.val_fraction, config.seed)
    best_score = _score(evaluate_retrieval(model, features, val_idx)) if val_idx else -1.0
    history = [{"member": m, **record} for m, run in enumerate(runs) for record in run.history]
    saved = None
    if out_dir is not None:
        saved = model.save_pretrained(out_dir, extra={
            "train_config": config.to_dict(), "best_epoch": [r.best_epoch for r in runs],
            "best_val_score": best_score, "member_val_scores": [r.best_score for r in runs], "history": history,
            "n_train": runs[0].n_train, "n_val": runs[0].n_val, "features": features.fingerprint, **(extra or {})})
    return TrainResult(model=model, out_dir=saved, best_epoch=runs[0].best_epoch, best_score=best_score,
                       history=history, seconds=time.perf_counter() - start, n_train=runs[0].n_train,
                       n_val=runs[0].n_val)


def pretrained_recipe(train_blocks: int = 0, **model_options: Any) -> TrainConfig:
    """The default KG-CLIP recipe on the pretrained EfficientNet-Lite0 tower (chosen on MedPix validation cases
    carved from train; see ``benchmarks/bench_retrieval_medpix.py --split val``).

    Args:
        train_blocks: 0 trains on frozen pooled features (seconds per run once the features are cached); k > 0 also
            fine-tunes the tower's last k blocks and head (on the cached input of those blocks).
        **model_options: other :class:`~kgclip.models.kgclip.KGClipConfig` fields (``enrichment``...).
    """
    # Chosen by validation mean recall (seed 0, 157 validation captions): a linear image head beat a 512-wide MLP
    # (0.219 vs 0.208), plain InfoNCE beat concept soft targets (0.257 vs 0.219); both overfit within a few epochs,
    # which the epoch selection on validation catches.
    # Round 2 (3 seeds, 502 pooled validation queries, R@10 image->caption): dropout 0.5 on the frozen pooled
    # features 0.387 vs 0.331 without; lower lr, weight decay 0.5, label smoothing, a fixed temperature, GeM / max /
    # 2x2-region pooling of the 7x7 map, feature standardisation, a 2-layer image MLP and a ridge-score ensemble
    # were all within the seed noise or worse (benchmarks/bench_retrieval_medpix.py docstring lists the figures).
    # Round 3 (session 7; 9 validation carve-outs, 1,492 pooled queries): an ensemble of 5 heads, each trained as a
    # single head with its own initialisation, batch order and dropout and joined by averaging similarities:
    # plain 0.353 -> 0.385, +0.032 [0.012, 0.052] paired; kg 0.351 -> 0.375, +0.025 [0.007, 0.044]. Five times
    # the training time (about 40 s plain, 100 s kg on cached features, one thread).
    options = {"image_dropout": 0.5, "ensemble": 5, **model_options}
    model = KGClipConfig(image_tower="efficientnet-lite0", train_blocks=train_blocks, image_hidden=0, **options)
    return TrainConfig(model=model, epochs=30, batch_size=128, lr=1e-3, warmup_steps=20, augment=False,
                       soft_target_weight=0.0)


def frozen_feature_source(model_config: KGClipConfig, **options: Any) -> dict[str, Any]:
    """``prepare_features`` arguments for a model that trains on cached tower outputs (``{}`` for pixels).

    Args:
        model_config: the architecture (its ``image_tower`` and ``train_blocks``).
        **options: :class:`kgclip.models.features.TowerFeatures` options (``cache_dir``, ``device``...).
    """
    if model_config.train_blocks < 0:
        return {}
    from kgclip.models.backbones import load_image_tower
    from kgclip.models.features import TowerFeatures

    tower = load_image_tower(model_config.image_tower)
    k = model_config.train_blocks
    part = "pooled" if k == 0 else f"tap{int(getattr(tower, 'n_blocks', 0)) - k}"
    return {"image_features": TowerFeatures(tower, **options), "image_part": part}


def default_out_dir() -> Path:
    """``indexes/model`` of the checkout when it exists, else ``kgclip_home()/model``."""
    repo_indexes = Path(__file__).resolve().parents[2] / "indexes"
    return repo_indexes / "model" if repo_indexes.is_dir() else kgclip_home() / "model"


def train_pairs(config: TrainConfig, pairs: Sequence[Any], out_dir: str | os.PathLike[str] | None, *,
                kg_dir: str | os.PathLike[str] | None = None, resume: bool = True, progress: bool = True,
                cache_dir: str | os.PathLike[str] | None = None, extra: dict[str, Any] | None = None,
                extra_texts: Sequence[str] = ()) -> TrainResult:
    """Everything from image-text pairs to a saved model: graph, linker, cached features, concept table, training.

    Args:
        config: settings; ``config.model.concept_dim`` is filled from the concept table.
        pairs: :class:`~kgclip.models.train_data.ImageTextPair` records.
        out_dir: where the model goes (``None``: not saved).
        kg_dir: saved GNN concept embeddings (enrichment ``"gnn"``).
        resume, progress, cache_dir, extra: see :func:`train` and :func:`prepare_features`.
        extra_texts: texts whose linked concepts should also be in the concept table (e.g. evaluation captions).
    """
    from kgclip.models.kgclip_text import link_texts
    from kgclip.models.train_data import concept_table, load_concept_graph, prepare_features
    from kgclip.text.encoders import load_text_encoder
    from kgclip.text.linker import ConceptLinker

    text_encoder = load_text_encoder(config.model.text_tower)
    graph = load_concept_graph()
    linker = ConceptLinker.from_graph(graph)
    features = prepare_features(pairs, image_size=config.model.image_size, text_encoder=text_encoder,
                                linker=linker, cache_dir=cache_dir, progress=progress,
                                **frozen_feature_source(config.model))
    table: dict[str, Any] = {}
    enrichment = config.model.enrichment
    if enrichment != "none":
        wanted = features.linked_concepts()
        wanted += [c for pos, neg in link_texts(linker, list(extra_texts)) for c in (*pos, *neg)]
        if enrichment == "gnn":
            from kgclip.kg.embeddings import ConceptEmbeddings

            wanted = list(ConceptEmbeddings.load(kg_dir).ids)  # the whole graph: new texts keep their concepts
        ids, vectors, fp = concept_table(enrichment, wanted, graph=graph, text_encoder=text_encoder,
                                         kg_dir=kg_dir, progress=progress)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, concept_dim=int(vectors.shape[1])))
        table = {"concept_ids": ids, "concept_vectors": vectors, "concept_fingerprint": fp}
    return train(config, features, out_dir, resume=resume, progress=progress, text_encoder=text_encoder,
                 linker=linker, extra={"n_pairs": len(pairs), **(extra or {})}, **table)
