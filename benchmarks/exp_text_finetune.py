"""Round 4 experiment: fine-tune the last k MiniLM layers on MedPix captions (``--split val`` only; not adopted,
figures in the round-4 paragraph of ``bench_retrieval_medpix.py``).

    python benchmarks/exp_text_finetune.py [--seeds 0,1,2] [--layers 0,1] [--text-lr 5e-5] [--variants plain]
                                           [--ensemble 1] [--patience 6] [--check]

Everything matches ``bench_retrieval_medpix.py --split val``: the same cached frozen EfficientNet-Lite0 pooled
features, the same validation carve-outs (``split_by_group``, per seed), the recipe of
:func:`kgclip.models.train.pretrained_recipe` (5-head ensemble, epochs selected on the carve-out's validation cases)
and the same R@10 image->caption hits per query. The one change: the caption vector is no longer the frozen tower's
but comes from the last ``k`` transformer layers of MiniLM, trained with the heads at ``--text-lr`` (the heads keep
the recipe's lr; both follow the recipe's warm-up + cosine schedule). The hidden states entering those layers are
computed once per caption by the frozen lower layers and cached in memory, so an epoch runs only ``k`` layers.

``k = 0`` is the current default; this loop reproduces ``train()`` exactly for it (same random stream; ``--check``
verifies it on the first seed's first member). Each ensemble member has its own copy of the tuned layers. Arms with
``k > 0`` stop ``--patience`` epochs after their best validation epoch (the schedule stays the full run's), because an
epoch costs ~12 s per head instead of ~0.3 s.
Prints one JSON line per seed and one summary JSON line last (paired bootstrap CIs per query vs ``k = 0``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_retrieval_medpix as bench  # noqa: E402

from kgclip.config import shared_data_dir  # noqa: E402


class CaptionCache:
    """Hidden states of the frozen lower MiniLM layers, once per distinct caption.

    ``states[d][u]`` is ``[n_tokens, hidden]``: the input of layer ``d`` (after embeddings and layers ``0..d-1``)
    for distinct caption ``u``; ``row_uid[i]`` maps a pair to its caption.
    """

    def __init__(self, encoder, texts: list[str], depths: list[int]) -> None:
        native = encoder._native
        if native is None:
            raise SystemExit("this experiment needs the native BERT path of the MiniLM tower")
        self.native, self.pooling = native, encoder.pooling
        uniq = list(dict.fromkeys(texts))
        index = {t: i for i, t in enumerate(uniq)}
        self.row_uid = torch.tensor([index[t] for t in texts])
        ids = [e.ids for e in encoder._native_tokenizer.encode_batch(uniq)]
        self.lengths = [len(x) for x in ids]
        self.states: dict[int, list[torch.Tensor]] = {}
        by_len = sorted(range(len(uniq)), key=lambda u: self.lengths[u])  # chunks of similar length: little padding
        for d in depths:
            self.states[d] = [torch.empty(0)] * len(uniq)
        with torch.inference_mode():
            for start in range(0, len(uniq), 64):
                members = by_len[start:start + 64]
                chunk = [ids[u] for u in members]
                width = max(len(x) for x in chunk)
                input_ids = torch.zeros(len(chunk), width, dtype=torch.long)
                mask = torch.zeros(len(chunk), width, dtype=torch.long)
                for r, x in enumerate(chunk):
                    input_ids[r, :len(x)] = torch.tensor(x)
                    mask[r, :len(x)] = 1
                x = native.embed_norm(native.word(input_ids) + native.position(torch.arange(width))
                                      + native.token_type.weight[0])
                bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
                for depth in range(len(native.layers) + 1):
                    if depth in self.states:
                        for r, u in enumerate(members):
                            self.states[depth][u] = x[r, :len(chunk[r])].clone()
                    if depth < len(native.layers):
                        x = native.layers[depth](x, bias)

    def batch(self, depth: int, uids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``[B, N, hidden]`` states and ``[B, N]`` mask of the distinct captions ``uids``."""
        width = max(self.lengths[u] for u in uids)
        x = torch.zeros(len(uids), width, self.native.layers[0].qkv.in_features)
        mask = torch.zeros(len(uids), width)
        for r, u in enumerate(uids):
            x[r, :self.lengths[u]] = self.states[depth][u]
            mask[r, :self.lengths[u]] = 1
        return x, mask


class TunedTop(nn.Module):
    """A trainable copy of MiniLM's last ``k`` layers + the tower's pooling: cached states -> unit vectors."""

    def __init__(self, cache: CaptionCache, k: int) -> None:
        super().__init__()
        self.cache, self.depth = cache, len(cache.native.layers) - k
        self.layers = nn.ModuleList(copy.deepcopy(cache.native.layers[self.depth:]))
        for p in self.layers.parameters():
            p.requires_grad_(True)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Pairs ``rows`` -> ``[B, hidden]`` unit caption vectors; each distinct caption runs once, in sub-batches of
        similar length (padding to the longest caption of a 128-pair batch would multiply the work)."""
        uniq, inverse = torch.unique(self.cache.row_uid[rows], return_inverse=True)
        order = sorted(uniq.tolist(), key=lambda u: self.cache.lengths[u])
        pos = {u: i for i, u in enumerate(uniq.tolist())}
        out = [None] * len(order)
        for start in range(0, len(order), 16):
            part = order[start:start + 16]
            x, mask = self.cache.batch(self.depth, part)
            bias = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
            for layer in self.layers:
                x = layer(x, bias)
            pooled = F.normalize((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)  # mean pooling
            for r, u in enumerate(part):
                out[pos[u]] = pooled[r]
        return torch.stack(out)[inverse]


def text_base(tuned: TunedTop | None, features, rows: torch.Tensor) -> torch.Tensor:
    """Caption vectors of the pairs ``rows``: the cached frozen ones, or the tuned layers' output."""
    return features.text_emb[rows] if tuned is None else tuned(rows)


def train_member(cfg, features, table: dict, encoder, linker, cache: CaptionCache | None, k: int, text_lr: float,
                 patience: int = 0):
    """One single head (``cfg.member``) as :func:`kgclip.models.train.train` trains it, plus ``k`` tuned layers.
    Returns ``(model, tuned layers or None, best epoch, best validation score, seconds, mean loss per epoch)``."""
    from kgclip.models.kgclip import KGClipModel
    from kgclip.models.losses import soft_info_nce
    from kgclip.models.retrieval_metrics import relevance_from_keys, retrieval_metrics
    from kgclip.models.train import _param_groups, _score, encode_pair_images, split_by_group

    t0 = time.perf_counter()
    torch.manual_seed(cfg.run_seed)
    model = KGClipModel(cfg.model, text_encoder=encoder, linker=linker, **table)
    tuned = TunedTop(cache, k) if k else None  # a copy: no random draws, so k=0 and k>0 share the init
    if cfg.model.enrichment != "none":
        features = features.with_concepts(model)
    train_idx, val_idx = split_by_group(features.groups, cfg.val_fraction, cfg.seed)
    batch = min(cfg.batch_size, len(train_idx))
    steps_per_epoch = len(train_idx) // batch
    total = steps_per_epoch * cfg.epochs
    groups = [{**g, "base_lr": cfg.lr} for g in _param_groups(model, cfg.weight_decay)]
    if tuned is not None:
        decay = [p for n, p in tuned.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in tuned.named_parameters() if p.dim() < 2]
        groups += [{"params": decay, "weight_decay": 0.01, "base_lr": text_lr},
                   {"params": no_decay, "weight_decay": 0.0, "base_lr": text_lr}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    params = [p for g in groups for p in g["params"]]

    def lr_at(lr: float, step: int) -> float:  # train()'s schedule, same float expression
        if step < cfg.warmup_steps:
            return lr * (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    def snapshot():
        return ({k_: v.detach().clone() for k_, v in model.state_dict().items()},
                None if tuned is None else {k_: v.detach().clone() for k_, v in tuned.state_dict().items()})

    val_t = torch.tensor(val_idx)
    relevant = relevance_from_keys([features.texts[i] for i in val_idx], [features.texts[i] for i in val_idx])
    best_score, best_epoch, best = -1.0, 0, snapshot()
    losses_first_last = []
    for epoch in range(cfg.epochs):
        torch.manual_seed(cfg.run_seed * 100_003 + epoch)
        gen = torch.Generator().manual_seed(cfg.run_seed * 100_003 + epoch)
        order = torch.tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        model.train()
        if tuned is not None:
            tuned.train()
        losses = []
        for s in range(steps_per_epoch):
            for g in optimizer.param_groups:
                g["lr"] = lr_at(g["base_lr"], epoch * steps_per_epoch + s)
            rows = order[s * batch:(s + 1) * batch]
            concepts = [t[rows] for t in features.concepts]
            img = model.encode_image_features(features.image_feats[rows])
            txt = model.encode_text_features(text_base(tuned, features, rows), *concepts)
            loss = soft_info_nce(img, txt, model.scale(), torch.eye(len(rows)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params if tuned is not None else model.parameters(), 5.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        losses_first_last.append(sum(losses) / len(losses))
        model.eval()
        with torch.no_grad():
            if tuned is not None:
                tuned.eval()
            image_emb = encode_pair_images(model, features, val_idx)
            text_emb = model.encode_text_features(text_base(tuned, features, val_t),
                                                  *(t[val_t] for t in features.concepts))
            score = _score(retrieval_metrics(image_emb, text_emb, relevant))
        if score > best_score:
            best_score, best_epoch, best = score, epoch + 1, snapshot()
        if patience and epoch + 1 - best_epoch >= patience:
            break  # the schedule is the full run's; only epochs after the patience window are skipped
    model.load_state_dict(best[0])
    if tuned is not None:
        tuned.load_state_dict(best[1])
        tuned.eval()
    model.eval()
    return model, tuned, best_epoch, best_score, time.perf_counter() - t0, losses_first_last


T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--layers", default="0,1,2", help="tuned top layers per arm (0: frozen text, the default)")
    p.add_argument("--text-lr", type=float, default=2e-5)
    p.add_argument("--variants", default="plain")
    p.add_argument("--ensemble", type=int, default=None, help="heads per model (default: recipe)")
    p.add_argument("--patience", type=int, default=6,
                   help="k > 0 arms stop this many epochs after their best (0: all epochs); k = 0 runs all")
    p.add_argument("--check", action="store_true", help="check k=0 reproduces train() on the first member")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from kgclip.models.train import encode_pair_images, frozen_feature_source, pretrained_recipe, split_by_group, train
    from kgclip.models.train_data import load_concept_graph, medpix_pairs, prepare_features
    from kgclip.text.encoders import load_text_encoder
    from kgclip.text.linker import ConceptLinker

    config = pretrained_recipe()
    if args.ensemble:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, ensemble=args.ensemble))
    config = dataclasses.replace(config, threads=1)
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [int(k) for k in args.layers.split(",")]
    encoder = load_text_encoder(config.model.text_tower)
    graph = load_concept_graph()
    linker = ConceptLinker.from_graph(graph)
    train_all = prepare_features(medpix_pairs(shared_data_dir() / "medpix-2.0", "train"),
                                 image_size=config.model.image_size, text_encoder=encoder, linker=linker,
                                 progress=False, **frozen_feature_source(config.model))
    log(f"features ready ({len(train_all)} pairs)")
    t0 = time.perf_counter()
    n_layers = len(encoder._native.layers)
    cache = CaptionCache(encoder, train_all.texts, [n_layers - k for k in arms if k])
    cache_s = time.perf_counter() - t0
    result_checks: dict = {}
    log(f"caption cache ready ({len(cache.lengths)} captions, {sum(cache.lengths)} tokens)")
    for k in arms:
        if k:
            with torch.no_grad():
                rows = torch.arange(0, len(train_all), 7)
                cos = (TunedTop(cache, k)(rows) * train_all.text_emb[rows]).sum(-1)
            log(f"k={k} untrained layers vs frozen vectors: min cosine {cos.min():.6f}")
            result_checks[f"k{k}_untrained_min_cosine"] = round(float(cos.min()), 6)
    linked = train_all.linked_concepts()
    tables, _ = bench.concept_tables(argparse.Namespace(kg=None, kg_epochs=30), graph, linked, encoder,
                                     [v for v in args.variants.split(",") if v])
    result: dict = {"seeds": seeds, "arms": arms, "text_lr": args.text_lr, "ensemble": config.model.ensemble,
                    "epochs": config.epochs, "cache_s": round(cache_s, 1), "n_captions": len(cache.lengths),
                    "mean_tokens": round(float(np.mean(cache.lengths)), 1),
                    "patience": args.patience, **result_checks}
    hits: dict[tuple[str, int], list[np.ndarray]] = {}
    for seed in seeds:
        _, held = split_by_group(train_all.groups, config.val_fraction, seed)
        ev = bench.subset(train_all, held)
        held_t = torch.tensor(held)
        line = {"seed": seed}
        for variant, table in tables.items():
            mc = dataclasses.replace(config.model, enrichment=bench.VARIANTS[variant],
                                     concept_dim=int(table["concept_vectors"].shape[1]) if table else 0, ensemble=1)
            base_cfg = dataclasses.replace(config, model=mc, seed=seed)
            if args.check and seed == seeds[0]:
                ref = train(base_cfg, train_all, None, progress=False, text_encoder=encoder, linker=linker, **table)
                mine = train_member(base_cfg, train_all, table, encoder, linker, None, 0, args.text_lr)[0]
                same = all(torch.equal(a, b) for a, b in zip(ref.model.state_dict().values(),
                                                              mine.state_dict().values()))
                result[f"check_k0_equals_train_{variant}"] = same
                print(json.dumps({"check_k0_equals_train": same}), flush=True)
            for k in arms:
                t_arm = time.perf_counter()
                img_parts, txt_parts, epochs = [], [], []
                for m in range(config.model.ensemble):
                    cfg = dataclasses.replace(base_cfg, member=m)
                    model, tuned, best_epoch, _, _s, losses = train_member(cfg, train_all, table, encoder, linker,
                                                                          cache, k, args.text_lr,
                                                                          args.patience if k else 0)
                    epochs.append(best_epoch)
                    log(f"  member {m}: best epoch {best_epoch}, {_s:.1f} s")
                    ev_f = ev.with_concepts(model) if mc.enrichment != "none" else ev
                    with torch.no_grad():
                        img_parts.append(encode_pair_images(model, ev_f))
                        base = train_all.text_emb[held_t] if tuned is None else tuned(held_t)
                        txt_parts.append(model.encode_text_features(base, *ev_f.concepts))
                n = len(img_parts)
                image_emb = torch.cat(img_parts, -1) / n ** 0.5
                text_emb = torch.cat(txt_parts, -1) / n ** 0.5
                h = bench.hits_at(image_emb, text_emb, ev.texts)
                hits.setdefault((variant, k), []).append(h)
                log(f"seed {seed} {variant} k={k}: R@10 {h.mean():.4f} epochs {epochs}")
                secs = time.perf_counter() - t_arm
                line[f"{variant}_k{k}"] = round(float(h.mean()), 4)
                result[f"train_s_{variant}_k{k}_seed{seed}"] = round(secs, 1)
                result[f"best_epochs_{variant}_k{k}_seed{seed}"] = epochs
                result[f"loss_first_last_{variant}_k{k}_seed{seed}_m{n - 1}"] = [round(losses[0], 3),
                                                                                  round(losses[-1], 3)]
        print(json.dumps(line), flush=True)
    result["n_queries"] = int(sum(len(h) for h in hits[next(iter(hits))]))
    for (variant, k), per_seed in hits.items():
        pooled = np.concatenate(per_seed)
        result[f"r10_{variant}_k{k}"] = round(float(pooled.mean()), 4)
        result[f"r10_{variant}_k{k}_ci"] = bench.bootstrap_ci(pooled)
        result[f"r10_{variant}_k{k}_per_seed"] = [round(float(h.mean()), 4) for h in per_seed]
        if k and (variant, 0) in hits:
            diff = pooled - np.concatenate(hits[(variant, 0)])
            result[f"r10_{variant}_k{k}_minus_k0"] = round(float(diff.mean()), 4)
            result[f"r10_{variant}_k{k}_minus_k0_ci"] = bench.bootstrap_ci(diff)
        if variant == "kg" and ("plain", k) in hits:
            diff = pooled - np.concatenate(hits[("plain", k)])
            result[f"r10_kg_minus_plain_k{k}"] = round(float(diff.mean()), 4)
            result[f"r10_kg_minus_plain_k{k}_ci"] = bench.bootstrap_ci(diff)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
