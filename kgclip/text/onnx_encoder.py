"""A faster text tower: a BERT-like :class:`~kgclip.text.encoders.HFTextEncoder` exported to ONNX and run by
ONNX Runtime with int8 dynamic quantization (the ``[fast]`` extra: ``pip install kgclip[fast]``).

The export is made locally, never downloaded: ``torch.onnx.export`` of the tower with its pooling and L2
normalisation, then ``onnxruntime.quantization.quantize_dynamic`` of the weight matrices (int8, per output
channel). Both files are cached under ``kgclip_home()/cache/onnx/<source fingerprint>-<recipe>/``, so a changed
model (another fingerprint) never reuses a stale export, and a second process loads in a second.

Quantization error: the matrices of the layers listed in :data:`KEEP_FP32` stay in float32 (their inputs carry
the activation outliers that per-tensor int8 activations handle worst). The report sentences of
``tests/text/test_onnx_encoder.py`` stay within cosine 0.99 of the float32 tower; over 3000 shipped concept texts
the mean cosine is 0.996, the 0.1 % quantile 0.988 and the minimum 0.981 (``benchmarks/bench_text_encode.py``),
short of a 0.99 minimum everywhere. Activations are quantized per batch,
so a text's vector also varies slightly with the batch it is encoded in. The fingerprint is the source's combined
with the recipe, so vectors of the two towers are never mixed in one cache, index or embedding table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from kgclip.atomic import atomic_directory
from kgclip.errors import ModelNotFoundError
from kgclip.fingerprint import Hasher
from kgclip.text.batching import CachedEncoder, available_threads, length_batches


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

__all__ = ["OnnxTextEncoder", "onnx_available", "KEEP_FP32", "RECIPE"]

# Layers whose matrices stay float32, as substrings of the exported node names. The FFN output projection reads
# the GELU activations, whose few large values make a per-tensor int8 scale coarse for all the others.
KEEP_FP32: tuple[str, ...] = ("/output/dense/",)
# Bump when the export or the quantization changes: it is part of the cache directory and the fingerprint.
RECIPE = "onnx-int8-v1"
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


def _export(source: SourceTower, directory: Path) -> None:
    """Write ``model.onnx`` (float32) and ``model-int8.onnx`` into ``directory``."""
    import warnings

    from onnxruntime.quantization import QuantType, quantize_dynamic

    sample = source.tokenizer(["a chest radiograph", "no pleural effusion or pneumothorax"], padding=True,
                              return_tensors="pt", return_token_type_ids=True)
    fp32, int8 = directory / "model.onnx", directory / "model-int8.onnx"
    with warnings.catch_warnings():  # the tracer's notes on constant shapes do not apply (axes are dynamic)
        warnings.simplefilter("ignore")
        torch.onnx.export(_Pooled(source).eval(), tuple(sample[k] for k in _INPUTS), str(fp32),
                          input_names=list(_INPUTS), output_names=["embedding"], opset_version=17,
                          dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in _INPUTS},
                                        "embedding": {0: "batch"}}, dynamo=False)
    import onnx

    names = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node if n.op_type == "MatMul"]
    keep = [n for n in names if any(k in n for k in KEEP_FP32) and "attention" not in n]
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=keep)


class OnnxTextEncoder(CachedEncoder):
    """ONNX Runtime (int8) version of a BERT-like :class:`HFTextEncoder`; same tokenizer, pooling and ``dim``.

    Args:
        source: the float32 tower it is exported from (not a CLIP directory).
        cache_dir: where exports are kept (default ``kgclip_home()/cache/onnx``).
        threads: ONNX Runtime intra-op threads (default: every core this process may use, see
            :func:`~kgclip.text.encoders.available_threads`).
        quantize: int8 (default) or the plain float32 export.
    """

    def __init__(self, source: SourceTower, *, cache_dir: str | os.PathLike[str] | None = None,
                 threads: int | None = None, quantize: bool = True) -> None:
        super().__init__()
        if not onnx_available():
            raise ModelNotFoundError("the ONNX text tower needs onnxruntime and onnx: pip install kgclip[fast]")
        if source.is_clip:
            raise ModelNotFoundError(f"{source.path} is a CLIP model: the ONNX tower supports BERT-like text "
                                     "models only; use it without 'onnx-int8:'")
        import onnxruntime as ort

        from kgclip.config import kgclip_home

        self.source, self.quantize = source, quantize
        self.tokenizer, self.max_length, self.dim = source.tokenizer, source.max_length, source.dim
        self.name = f"{source.name}-{'int8' if quantize else 'onnx'}"
        root = Path(cache_dir) if cache_dir is not None else kgclip_home() / "cache" / "onnx"
        self.directory = root / f"{source.fingerprint}-{RECIPE}"
        if not (self.directory / "meta.json").is_file():
            with atomic_directory(self.directory) as tmp:
                _export(source, tmp)
                (tmp / "meta.json").write_text(json.dumps({"source": str(source.path), "recipe": RECIPE,
                                                           "source_fingerprint": source.fingerprint,
                                                           "keep_fp32": list(KEEP_FP32)}, indent=2))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = self.directory / ("model-int8.onnx" if quantize else "model.onnx")
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    @property
    def fingerprint(self) -> str:
        return Hasher().update_str(f"{RECIPE}:{self.quantize}:{self.source.fingerprint}").hexdigest()

    def _encode_uncached(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_token_type_ids=True)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx, width in length_batches([len(t) for t in ids], batch_size, desc=f"encoding text ({self.name})",
                                         show_progress=show_progress):
            feed = {name: np.zeros((len(idx), width), dtype=np.int64) for name in _INPUTS}
            feed["input_ids"].fill(self.tokenizer.pad_token_id or 0)
            for row, i in enumerate(idx):
                n = len(ids[i])
                feed["input_ids"][row, :n] = ids[i]
                feed["token_type_ids"][row, :n] = types[i]
                feed["attention_mask"][row, :n] = 1
            out[idx] = self.session.run(None, feed)[0]
        return torch.from_numpy(out)
