"""Question-conditioned attention over the tower's 7x7 map vs the built-in VQA answerer, on VQA-RAD ``--split val``.

    OMP_NUM_THREADS=1 python benchmarks/bench_vqa_spatial.py [--seeds 0 1 2] [--folds 0 1 2 3 4]

Folds are those of ``kgclip eval vqa-rad --split val`` (:func:`kgclip.eval.vqa.validation_folds`, 5 folds over
whole paraphrase groups, seed 0); only the train rows of VQA-RAD are read. Per fold, on the fold's training part:

* the answerer (:class:`kgclip.rag.vqa.VQAAnswerer`, with the KG, as the eval fits it) answers the scored part
  (``answerer``: ``p.normalized`` of ``predict_batch``, i.e. ``acc_*_answerer`` of the eval);
* a small question-conditioned model on frozen features (MiniLM question ``q``, the EfficientNet-Lite0 map
  ``V [49, 1280]``): attention ``softmax(w . tanh(W_v V + W_q q))`` over the 49 regions (2 glimpses), attended
  ``v``, Hadamard fusion ``relu(W_1 v) * relu(W_2 q)`` -> dropout -> answer logits over the answerer's vocabulary,
  cross-entropy restricted to each question's candidate answers (the answerer's masks: yes / no, the options,
  the open answers of its kind), AdamW. ``pooled`` is the same model with ``V`` replaced by the pooled vector
  (one region): the control that says whether the *spatial* part or the multiplicative fusion helps;
* the epoch count is chosen by early stopping on an inner carve (20 % of the training part's paraphrase groups,
  seed 0); the model is then retrained on the whole training part for that many epochs;
* ``blend_*``: ``w * p_model + (1 - w) * p_answerer`` over the question's candidates, ``w`` per answer form
  (closed / open) chosen on the same inner carve, where a second answerer fitted on the inner training part gives
  ``p_answerer``. Questions the answerer answers from the options the question names (form ``options``) keep
  the answerer's answer in every variant.

Figures pool the 5 folds (1,797 questions: 1,027 closed, 770 open), per seed; paired bootstrap 95 % CIs per
question (1,000 resamples) of each variant minus the answerer, on closed and on open questions.

Model settings (lr 3e-4, dropout 0.5, weight decay 1e-2, batch 64, d 256, 2 glimpses, at most 30 epochs, patience
8) were chosen from the inner carve of fold 0 only (its learning curves); region vectors are the top 256 principal
components of all train-image regions (label-free), scaled to mean norm 1.

Results, VQA-RAD --split val, 5 folds pooled (1,027 closed / 770 open), seeds 0 1 2, 2026-12-04
(``benchmarks/results/bench_vqa_spatial_val.json``). Diff CI: paired bootstrap 95 % of variant minus answerer.

    variant              closed (seeds 0/1/2)     mean    diff closed CI (per seed)                     open mean
    answerer             0.6524                   0.6524  -                                             0.1078
    spatial alone        0.570 / 0.550 / 0.593    0.571   [-.113,-.054] [-.131,-.068] [-.089,-.029]     0.076
    spatial blend        0.628 / 0.636 / 0.625    0.630   [-.040,-.007] [-.030,-.003] [-.042,-.014]     0.102
    pooled alone         0.590 / 0.575 / 0.595    0.587   [-.092,-.032] [-.107,-.044] [-.088,-.028]     0.072
    pooled blend         0.629 / 0.630 / 0.624    0.628   [-.037,-.010] [-.037,-.008] [-.048,-.008]     0.102

Open accuracy never rises (blend open diff CIs [-0.020, 0] at best). The blend weights chosen on the inner carve
(about 150 closed questions) swing from 0 to 1 between folds and seeds, and where they are above 0 the scored fold
loses. The spatial map does not beat its pooled control (alone: 0.571 vs 0.587 closed; blend 0.630 vs 0.628), so
neither question-conditioned attention over the 7x7 map nor the Hadamard question x image fusion adds anything the
answerer (ridge + k-NN votes + case context) lacks, with 1,440 training questions per fold on frozen ImageNet
features. Not integrated. Time per fold (one seed, inner fit + retrain, 1 thread): spatial 45 s, pooled 10 s; the two
answerer fits per fold (cached, seed-independent) about 48 s. The answerer's own figures reproduce the eval's
``acc_closed_answerer`` (0.6524); open is 0.1078 here vs 0.1091 in ``eval_vqa_rad_val_calibration.json`` (one
question).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip.config import shared_data_dir  # noqa: E402 - after the sys.path insert above

PCA_DIM = 256  # channels of the region vectors after PCA (from the tower's 1280)


class AttentionVQA(nn.Module):
    """SAN / BUTD-style question-conditioned attention with Hadamard fusion.

    Shapes: ``q [B, Dq]``, ``regions [B, R, Dv]`` -> logits ``[B, A]``.
    """

    def __init__(self, dq: int, dv: int, n_answers: int, d: int = 256, glimpses: int = 2, dropout: float = 0.5):
        super().__init__()
        self.v_att = nn.Linear(dv, d)
        self.q_att = nn.Linear(dq, d)
        self.att = nn.Linear(d, glimpses)
        self.fuse_v = nn.Linear(dv * glimpses, d)
        self.fuse_q = nn.Linear(dq, d)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d, n_answers)

    def attention(self, q: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Shapes: -> ``[B, R, G]`` weights summing to 1 over regions."""
        h = torch.tanh(self.v_att(regions) + self.q_att(q)[:, None, :])
        return torch.softmax(self.att(self.drop(h)), dim=1)

    def forward(self, q: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        a = self.attention(q, regions)
        v = torch.einsum("brg,brc->bgc", a, regions).flatten(1)
        z = torch.relu(self.fuse_v(self.drop(v))) * torch.relu(self.fuse_q(self.drop(q)))
        return self.out(self.drop(z))


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, -1e9), dim=1)


def train_model(q: torch.Tensor, img_idx: torch.Tensor, regions: torch.Tensor, labels: torch.Tensor,
                mask: torch.Tensor, n_answers: int, seed: int, epochs: int, val: tuple | None = None,
                lr: float = 3e-4, wd: float = 1e-2, batch: int = 64, patience: int = 8
                ) -> tuple[AttentionVQA, int, list[float]]:
    """Train on rows (``q [N, Dq]``, ``img_idx [N]`` into ``regions [I, R, Dv]``); with ``val`` (same tuple
    layout, minus n_answers) early-stop on its masked accuracy and return the best epoch count."""
    torch.manual_seed(seed)
    model = AttentionVQA(q.shape[1], regions.shape[2], n_answers)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, history = -1.0, epochs, None, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(q), generator=gen)
        for start in range(0, len(q), batch):
            b = order[start:start + batch]
            logp = masked_log_softmax(model(q[b], regions[img_idx[b]]), mask[b])
            loss = nn.functional.nll_loss(logp, labels[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if val is not None:
            vq, vidx, vlabels, vmask = val
            acc = float((predict_probs(model, vq, regions[vidx], vmask).argmax(1) == vlabels).float().mean())
            history.append(acc)
            if acc > best + 1e-9:
                best, best_epoch = acc, epoch
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best_epoch, history


@torch.no_grad()
def predict_probs(model: AttentionVQA, q: torch.Tensor, regions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    model.eval()
    return masked_log_softmax(model(q, regions), mask).exp()


# ---------------------------------------------------------------------------------------------- answerer side


def answerer_outputs(model, examples, image_vectors):  # noqa: ANN001, ANN201 - benchmark glue
    """The answerer's full distributions ``[M, A]`` (its blend, over the question's candidates), its answers and
    forms, as ``predict_batch`` gives them."""
    questions = [e.question for e in examples]
    img = np.stack([image_vectors[e.image_key] for e in examples]).astype(np.float32)
    q, _, sets, kg = model._question_features(questions)
    dists, _ = model._distributions(q, img, kg, model.core.context_features(q, img, sets), sets, questions)
    preds = model.predict_batch(questions, img)
    return (np.stack([p for _, p in dists]), [p.normalized for p in preds], [p.form for p in preds])


def run_answerers(root: Path, cache: Path) -> dict:
    """Fit the answerer per fold on the training part (and on its inner training carve); cache the outputs, keyed
    by the data folder and the answerer's source (``kgclip/rag``, ``kgclip/eval/vqa.py``), so a changed answerer
    is fitted again instead of read stale."""
    import hashlib

    import kgclip

    package = Path(kgclip.__file__).parent
    digest = hashlib.sha256(str(root.resolve()).encode())
    for source in sorted(package.glob("rag/*.py")) + [package / "eval" / "vqa.py"]:
        digest.update(source.read_bytes())
    key = digest.hexdigest()[:16]
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached
    from kgclip.cli.eval_cmd import _graph
    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.eval.vqa import validation_folds
    from kgclip.models.features import load_image_features
    from kgclip.rag.answerer import normalize_answer
    from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad
    from kgclip.text.encoders import load_text_encoder

    items = read_vqa_rad(root, split="train")
    train = examples_from_vqa_rad(items)
    paths = {i.image_key: i.image_path for i in items}
    feat = load_image_features("efficientnet-lite0")
    keys = sorted(paths)
    image_vectors = dict(zip(keys, feat.embed([paths[k] for k in keys])))
    graph, encoder = _graph(), load_text_encoder("minilm", "cpu")
    out: dict = {"key": key, "folds": []}
    for f, (part_train, part) in enumerate(validation_folds(train, 5, 0)):
        t0 = time.perf_counter()
        inner_tr, inner_va = inner_split(part_train)
        fold = {}
        for name, fit_on, score in (("inner", inner_tr, inner_va), ("outer", part_train, part)):
            model, _ = VQAAnswerer.fit(fit_on, image_vectors, graph=graph, text_encoder=encoder,
                                       image_featurizer=feat.name, show_progress=False)
            p, answers, forms = answerer_outputs(model, score, image_vectors)
            core = model.core
            train_mask = core.masks([e.question for e in fit_on])[1]
            fold[name] = {
                "vocab": core.answers, "p": p.round(6).tolist(), "answer": answers, "form": forms,
                "score_rows": [[e.image_key, e.question, normalize_answer(e.answer), bool(e.closed)] for e in score],
                "train_rows": [[e.image_key, e.question, normalize_answer(e.answer), bool(e.closed)] for e in fit_on],
                "train_mask": [np.flatnonzero(m).tolist() for m in train_mask]}
        fold["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"fold {f}: answerers in {fold['seconds']} s", file=sys.stderr, flush=True)
        out["folds"].append(fold)
    from kgclip.atomic import atomic_write_text

    atomic_write_text(cache, json.dumps(out))
    return out


def inner_split(examples):  # noqa: ANN001, ANN201
    """20 % of the paraphrase groups (seed 0) as the inner validation carve: fold 0 of the eval's own split."""
    from kgclip.eval.vqa import validation_folds

    return validation_folds(examples, 5, 0)[0]


# ---------------------------------------------------------------------------------------------- model side


def image_features(root: Path) -> tuple[dict[str, int], torch.Tensor, torch.Tensor]:
    """Image key -> row; spatial regions ``[I, 49, 1280]`` and pooled ``[I, 1, 1280]``, scaled so that a region
    vector has mean norm 1 (raw tower activations)."""
    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.models.features import load_image_features

    items = read_vqa_rad(root, split="train")
    paths = {i.image_key: i.image_path for i in items}
    keys = sorted(paths)
    feat = load_image_features("efficientnet-lite0")
    spatial = feat.features([paths[k] for k in keys], ("spatial",))["spatial"].float()  # [I, C, 7, 7]
    regions = spatial.flatten(2).transpose(1, 2).contiguous()  # [I, 49, C]
    # 1280 -> PCA_DIM channels (top principal components of all regions, label-free): five times less compute
    # per region on a shared 2-core machine; the pooled control gets the same projection (it is linear).
    flat = regions.reshape(-1, regions.shape[2])
    mean = flat.mean(dim=0)
    _, _, v = torch.linalg.svd(flat - mean, full_matrices=False)
    regions = (regions - mean) @ v[:PCA_DIM].T
    scale = regions.norm(dim=2).mean()
    regions = regions / scale
    return {k: i for i, k in enumerate(keys)}, regions, regions.mean(dim=1, keepdim=True)


def tensors(rows, vocab_index, masks, qvec, img_row):  # noqa: ANN001, ANN201
    """Rows ``[image_key, question, answer, closed]`` -> q, image index, label (-1 outside the vocabulary), mask."""
    q = torch.stack([qvec[r[1]] for r in rows])
    idx = torch.tensor([img_row[r[0]] for r in rows])
    labels = torch.tensor([vocab_index.get(r[2], -1) for r in rows])
    mask = torch.zeros(len(rows), len(vocab_index), dtype=torch.bool)
    for i, m in enumerate(masks):
        mask[i, m] = True
    return q, idx, labels, mask


def accuracy_rows(answers: list[str], rows: list) -> np.ndarray:
    return np.array([a == r[2] for a, r in zip(answers, rows)])


def choose_and_answer(p_model: np.ndarray, p_ans: np.ndarray, answers: list[str], forms: list[str],
                      vocab: list[str], w_closed: float, w_open: float) -> list[str]:
    """The blended answer per row (``options`` rows keep the answerer's)."""
    out = []
    for i, form in enumerate(forms):
        if form == "options":
            out.append(answers[i])
            continue
        w = w_open if form == "open" else w_closed
        mask = p_ans[i] > 0
        score = np.where(mask, w * p_model[i] + (1 - w) * p_ans[i], -1.0)
        out.append(vocab[int(np.argmax(score))])
    return out


def run_variant(fold: dict, variant: str, seed: int, qvec: dict, img_row: dict, regions: torch.Tensor,
                epochs: int) -> dict:
    """One fold, one seed, one variant (``spatial`` or ``pooled``): answers of the model alone and of the blend."""
    inner, outer = fold["inner"], fold["outer"]
    t0 = time.perf_counter()
    # Inner: train on the inner training carve, early-stop and choose the blend weights on the inner validation.
    v_index = {a: i for i, a in enumerate(inner["vocab"])}
    tr = tensors(inner["train_rows"], v_index, inner["train_mask"], qvec, img_row)
    keep = tr[2] >= 0
    tr = tuple(t[keep] for t in tr)
    tr[3][torch.arange(len(tr[2])), tr[2]] = True  # the gold answer is always a candidate in training
    p_in = np.asarray(inner["p"])
    va_mask = [np.flatnonzero(row > 0).tolist() for row in p_in]
    va = tensors(inner["score_rows"], v_index, va_mask, qvec, img_row)
    model, best_epoch, _ = train_model(tr[0], tr[1], regions, tr[2], tr[3], len(v_index), seed, epochs,
                                       val=(va[0], va[1], va[2], va[3]))
    pm_in = predict_probs(model, va[0], regions[va[1]], va[3]).numpy()
    weights = {}
    grid = np.round(np.linspace(0, 1, 11), 2)
    for form_sel in ("closed", "open"):
        rows = [i for i, f in enumerate(inner["form"]) if (f == "open") == (form_sel == "open")]
        accs = []
        for w in grid:
            ans = choose_and_answer(pm_in[rows], p_in[rows], [inner["answer"][i] for i in rows],
                                    [inner["form"][i] for i in rows], inner["vocab"], w, w)
            accs.append(accuracy_rows(ans, [inner["score_rows"][i] for i in rows]).mean())
        weights[form_sel] = float(grid[int(np.argmax(accs))])  # ties: the smaller weight (closer to the answerer)
    # Outer: retrain on the whole training part for the chosen epoch count, answer the scored part.
    o_index = {a: i for i, a in enumerate(outer["vocab"])}
    tr = tensors(outer["train_rows"], o_index, outer["train_mask"], qvec, img_row)
    keep = tr[2] >= 0
    tr = tuple(t[keep] for t in tr)
    tr[3][torch.arange(len(tr[2])), tr[2]] = True
    p_out = np.asarray(outer["p"])
    sc_mask = [np.flatnonzero(row > 0).tolist() for row in p_out]
    sc = tensors(outer["score_rows"], o_index, sc_mask, qvec, img_row)
    model, _, _ = train_model(tr[0], tr[1], regions, tr[2], tr[3], len(o_index), seed, best_epoch)
    pm = predict_probs(model, sc[0], regions[sc[1]], sc[3]).numpy()
    alone = choose_and_answer(pm, p_out, outer["answer"], outer["form"], outer["vocab"], 1.0, 1.0)
    blend = choose_and_answer(pm, p_out, outer["answer"], outer["form"], outer["vocab"], weights["closed"],
                              weights["open"])
    return {"alone": alone, "blend": blend, "weights": weights, "epochs": best_epoch,
            "seconds": round(time.perf_counter() - t0, 1)}


def paired_ci(a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = 1000) -> list[float]:
    """95 % percentile bootstrap CI of mean(a - b) over the same questions."""
    from kgclip.stats import bootstrap_ci

    return bootstrap_ci(a.astype(float) - b.astype(float), n_boot=n_boot, seed=seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="VQA-RAD folder (default: the shared data folder's vqa-rad)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="*", default=["spatial", "pooled"])
    ap.add_argument("--epochs", type=int, default=30, help="most epochs (early stopping on the inner carve)")
    ap.add_argument("--cache", default="/tmp/bench_vqa_spatial_answerer.json",
                    help="where the answerers' per-fold outputs are cached (they do not depend on the seed; a "
                         "changed answerer source or data folder refits them)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(args.data) if args.data else shared_data_dir() / "vqa-rad"
    t0 = time.perf_counter()
    folds = run_answerers(root, Path(args.cache))
    answerer_seconds = round(time.perf_counter() - t0, 1)
    img_row, regions, pooled = image_features(root)
    from kgclip.text.encoders import load_text_encoder

    encoder = load_text_encoder("minilm", "cpu")
    questions = sorted({r[1] for fold in folds["folds"] for part in ("inner", "outer")
                        for key in ("train_rows", "score_rows") for r in fold[part][key]})
    qvec = dict(zip(questions, encoder.encode(questions)))
    chosen = [folds["folds"][f] for f in args.folds]
    rows = [r for fold in chosen for r in fold["outer"]["score_rows"]]
    closed = np.array([r[3] for r in rows])
    base = np.concatenate([accuracy_rows(fold["outer"]["answer"], fold["outer"]["score_rows"]) for fold in chosen])
    result: dict = {"split": "val", "folds": args.folds, "seeds": args.seeds, "n": len(rows),
                    "n_closed": int(closed.sum()), "n_open": int((~closed).sum()),
                    "n_options_rows": sum(f == "options" for fold in chosen for f in fold["outer"]["form"]),
                    "answerer": {"acc_closed": round(float(base[closed].mean()), 4),
                                 "acc_open": round(float(base[~closed].mean()), 4)},
                    "answerer_seconds": answerer_seconds}
    for variant in args.variants:
        feats = regions if variant == "spatial" else pooled
        for seed in args.seeds:
            runs = []
            for fold in chosen:
                runs.append(run_variant(fold, variant, seed, qvec, img_row, feats, args.epochs))
                print(f"{variant} seed {seed}: fold {len(runs) - 1} {runs[-1]['seconds']} s, epochs "
                      f"{runs[-1]['epochs']}, weights {runs[-1]['weights']}", file=sys.stderr, flush=True)
            for name in ("alone", "blend"):
                hits = np.concatenate([accuracy_rows(r[name], fold["outer"]["score_rows"])
                                       for r, fold in zip(runs, chosen)])
                result[f"{variant}_{name}_seed{seed}"] = {
                    "acc_closed": round(float(hits[closed].mean()), 4),
                    "acc_open": round(float(hits[~closed].mean()), 4),
                    "diff_closed_ci": paired_ci(hits[closed], base[closed], seed),
                    "diff_open_ci": paired_ci(hits[~closed], base[~closed], seed)}
            result[f"{variant}_seed{seed}_weights"] = [r["weights"] for r in runs]
            result[f"{variant}_seed{seed}_epochs"] = [r["epochs"] for r in runs]
            result[f"{variant}_seed{seed}_seconds_per_fold"] = round(float(np.mean([r["seconds"] for r in runs])), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
