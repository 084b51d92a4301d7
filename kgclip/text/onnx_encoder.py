"""A faster text tower: a BERT-like :class:`~kgclip.text.encoders.HFTextEncoder` exported to ONNX and run by
ONNX Runtime with int8 dynamic quantization (the ``[fast]`` extra: ``pip install kgclip[fast]``).

The export is made locally, never downloaded: ``torch.onnx.export`` of the tower (eager attention, so ONNX
Runtime's BERT optimizer can fuse it) with its pooling and L2 normalisation, then the int8 recipe of
:mod:`kgclip.text.onnx_quant`: outlier input channels kept in float32, every other product int8. Both models are
cached under ``kgclip_home()/cache/onnx/<source fingerprint>-<recipe key>/``, so a changed model or a changed
recipe never reuses a stale export, and a second process loads in a second.

Quantization error (``benchmarks/bench_text_encode.py``, all 58,833 shipped concept texts): cosine to the
float32 tower min 0.9932, 0.1 % quantile 0.9974, mean 0.9989 (plain int8 of every product: min 0.975, worst on
one-word texts). Activations are quantized per batch, so a text's vector also varies slightly (~1e-3) with the
batch it is encoded in. The fingerprint is the source's
combined with the recipe, so vectors of the two towers are never mixed in one cache, index or embedding table.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from kgclip.atomic import atomic_directory
from kgclip.errors import ModelNotFoundError
from kgclip.fingerprint import Hasher
from kgclip.text.batching import CachedEncoder, available_threads, length_batches
from kgclip.text.onnx_quant import CALIBRATION_TEXTS, QuantRecipe


class SourceTower(Protocol):
    """What is read from the float32 tower (a :class:`kgclip.text.encoders.HFTextEncoder`, which imports this
    module to register ``onnx-int8``: hence a protocol, not an import)."""

    path: Path
    name: str
    dim: int
    max_length: int
    is_clip: bool
    model: torch.nn.Module
    tokenizer: Any

    @property
    def fingerprint(self) -> str: ...

    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

__all__ = ["OnnxTextEncoder", "QuantRecipe", "onnx_available"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package (needed to quantize) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class _Pooled(torch.nn.Module):
    """The tower plus its pooling and normalisation, as one traceable module."""

    def __init__(self, source: SourceTower) -> None:
        super().__init__()
        self.model = source.model  # registered, so the tracer sees its weights as parameters, not constants
        self.__dict__["source"] = source

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.source.forward_tokens({"input_ids": input_ids, "attention_mask": attention_mask,
                                           "token_type_ids": token_type_ids})


def _feeds(tokenizer: Any, texts: list[str], batch_size: int, max_length: int, max_tokens: int | None = None,
           *, desc: str = "encoding text", show_progress: bool = False) -> Iterator[tuple[list[int], dict]]:
    """Yield ``(indices, feed)``: length-bucketed, padded int64 batches of ``texts`` for the exported graph."""
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_token_type_ids=True)
    ids, types = enc["input_ids"], enc["token_type_ids"]
    for idx, width in length_batches([len(t) for t in ids], batch_size, max_tokens=max_tokens, desc=desc,
                                     show_progress=show_progress):
        feed = {name: np.zeros((len(idx), width), dtype=np.int64) for name in _INPUTS}
        feed["input_ids"].fill(tokenizer.pad_token_id or 0)
        for row, i in enumerate(idx):
            n = len(ids[i])
            feed["input_ids"][row, :n] = ids[i]
            feed["token_type_ids"][row, :n] = types[i]
            feed["attention_mask"][row, :n] = 1
        yield idx, feed


def _export(source: SourceTower, directory: Path, recipe: QuantRecipe) -> dict[str, Any]:
    """Write ``model.onnx`` (float32) and ``model-int8.onnx`` into ``directory``; returns what was done."""
    import warnings

    from kgclip.text import onnx_quant

    sample = source.tokenizer(["a chest radiograph", "no pleural effusion or pneumothorax"], padding=True,
                              return_tensors="pt", return_token_type_ids=True)
    raw, fp32, split = directory / "raw.onnx", directory / "model.onnx", directory / "split.onnx"
    config = source.model.config
    attention = getattr(config, "_attn_implementation", None)
    # Eager attention exports as plain ops, which ONNX Runtime's optimizer fuses into one Attention node.
    switch = attention not in (None, "eager") and hasattr(source.model, "set_attn_implementation")
    try:
        if switch:
            source.model.set_attn_implementation("eager")
        with warnings.catch_warnings():  # the tracer's notes on constant shapes do not apply (axes are dynamic)
            warnings.simplefilter("ignore")
            torch.onnx.export(_Pooled(source).eval(), tuple(sample[k] for k in _INPUTS), str(raw),
                              input_names=list(_INPUTS), output_names=["embedding"], opset_version=17,
                              dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in _INPUTS},
                                            "embedding": {0: "batch"}}, dynamo=False)
    finally:
        if switch:
            source.model.set_attn_implementation(attention)
    fused = False
    if recipe.fuse:
        fused = onnx_quant.fuse_bert(raw, fp32, num_heads=int(config.num_attention_heads),
                                     hidden_size=int(config.hidden_size))
    else:
        raw.replace(fp32)
    raw.unlink(missing_ok=True)
    feeds = (feed for _, feed in _feeds(source.tokenizer, list(CALIBRATION_TEXTS), 16, source.max_length))
    maxima = onnx_quant.channel_maxima(fp32, feeds)
    done = onnx_quant.rewrite_outlier_channels(fp32, split, maxima, recipe.outlier_ratio)
    onnx_quant.quantize(split, directory / "model-int8.onnx", keep_fp32=done.pop("fp32"))
    split.unlink()
    # how many products had outlier channels, and how each was rewritten (routed / folded / smoothed / split)
    return {"fused_attention": fused, "outlier_products": {how: len(names) for how, names in done.items()}}


#: ONNX Runtime graph optimizers the sessions run without (see :func:`kgclip.text.onnx_quant.fuse_bert`).
UNFUSED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OnnxTextEncoder(CachedEncoder):
    """ONNX Runtime (int8) version of a BERT-like :class:`HFTextEncoder`; same tokenizer, pooling and ``dim``.

    Args:
        source: the float32 tower it is exported from (not a CLIP directory).
        cache_dir: where exports are kept (default ``kgclip_home()/cache/onnx``).
        threads: ONNX Runtime intra-op threads (default: every core this process may use, see
            :func:`~kgclip.text.encoders.available_threads`).
        quantize: int8 (default) or the plain float32 export.
        recipe: how the int8 model is made (outlier threshold, fusion); part of the cache key.
        max_tokens: a batch of short texts takes more than ``batch_size`` rows, up to this many padded tokens
            (fewer, larger calls for concept names); ``None`` for exactly ``batch_size`` rows.
    """

    def __init__(self, source: SourceTower, *, cache_dir: str | os.PathLike[str] | None = None,
                 threads: int | None = None, quantize: bool = True, recipe: QuantRecipe | None = None,
                 max_tokens: int | None = 2048) -> None:
        super().__init__()
        if not onnx_available():
            raise ModelNotFoundError("the ONNX text tower needs onnxruntime and onnx: pip install kgclip[fast]")
        if source.is_clip:
            raise ModelNotFoundError(f"{source.path} is a CLIP model: the ONNX tower supports BERT-like text "
                                     "models only; use it without 'onnx-int8:'")
        import onnxruntime as ort

        from kgclip.config import kgclip_home

        self.source, self.quantize = source, quantize
        self.recipe, self.max_tokens = recipe or QuantRecipe(), max_tokens
        self.tokenizer, self.max_length, self.dim = source.tokenizer, source.max_length, source.dim
        self.name = f"{source.name}-{'int8' if quantize else 'onnx'}"
        root = Path(cache_dir) if cache_dir is not None else kgclip_home() / "cache" / "onnx"
        self.directory = root / f"{source.fingerprint}-{self.recipe.key}"
        if not (self.directory / "meta.json").is_file():
            with atomic_directory(self.directory) as tmp:
                done = _export(source, tmp, self.recipe)
                (tmp / "meta.json").write_text(json.dumps({
                    "source": str(source.path), "source_fingerprint": source.fingerprint,
                    "recipe": dataclasses.asdict(self.recipe), "recipe_key": self.recipe.key,
                    "calibration_texts": len(CALIBRATION_TEXTS), **done,
                    "versions": {m: importlib.metadata.version(m) for m in ("torch", "onnx", "onnxruntime")},
                }, indent=2))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = self.directory / ("model-int8.onnx" if quantize else "model.onnx")
        # The export leaves residual adds and layer norms unfused (onnx_quant.fuse_bert); keep ONNX Runtime from
        # fusing them back at load time into its much slower SkipLayerNormalization kernel.
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=list(UNFUSED_OPTIMIZERS))
        self._inputs = [i.name for i in self.session.get_inputs()]  # a fused graph may drop an unused input

    @property
    def fingerprint(self) -> str:
        return Hasher().update_str(f"{self.recipe.key}:{self.quantize}:{self.source.fingerprint}").hexdigest()

    def _encode_uncached(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx, feed in _feeds(self.tokenizer, texts, batch_size, self.max_length, self.max_tokens,
                                desc=f"encoding text ({self.name})", show_progress=show_progress):
            out[idx] = self.session.run(None, {name: feed[name] for name in self._inputs})[0]
        return torch.from_numpy(out)
