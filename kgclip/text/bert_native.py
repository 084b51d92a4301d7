"""BERT inference in plain torch, for the text towers' hot path.

Importing transformers' modeling code takes about 4 s of a cold ``kgclip ask`` (the question itself needs one
forward pass of a 6-layer MiniLM). This module runs the same post-LayerNorm BERT encoder (absolute positions,
GELU) straight from the checkpoint's ``*.safetensors`` with the fast ``tokenizers`` library, so a query-time
process never imports transformers. The outputs equal ``transformers.BertModel``'s to float rounding
(``tests/text/test_bert_native.py`` checks the pooled vectors of real sentences on the shipped MiniLM).

Only the architectures it reproduces exactly are accepted (:func:`native_bert_supported`); anything else (another
position embedding, activation, model type, or a checkpoint without ``tokenizer.json``) keeps the transformers path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["NativeBert", "native_bert_supported", "load_native_tokenizer"]

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu,
                "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


def native_bert_supported(path: Path, config: dict[str, Any]) -> bool:
    """Whether :class:`NativeBert` reproduces the checkpoint in ``path`` (config already read from its JSON)."""
    return (config.get("model_type") == "bert"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and config.get("hidden_act", "gelu") in _ACTIVATIONS
            and not config.get("is_decoder", False)
            and (path / "tokenizer.json").is_file()
            and len(_weight_files(path)) == 1)


def _weight_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.safetensors"))


def load_native_tokenizer(path: Path, max_length: int) -> Any:
    """The checkpoint's fast tokenizer (``tokenizer.json``), truncating to ``max_length`` tokens with the special
    tokens counted, as transformers' ``tokenizer(texts, truncation=True, max_length=...)`` does; no padding (the
    encoder pads per length bucket)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def _empty_embedding(rows: int, dim: int) -> torch.nn.Embedding:
    return torch.nn.Embedding(rows, dim, _weight=torch.empty(rows, dim))


class _Layer(torch.nn.Module):
    def __init__(self, hidden: int, intermediate: int, heads: int, eps: float, act: str) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.qkv = torch.nn.Linear(hidden, 3 * hidden)  # query, key and value in one matmul
        self.attn_out = torch.nn.Linear(hidden, hidden)
        self.attn_norm = torch.nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = torch.nn.Linear(hidden, intermediate)
        self.ffn_out = torch.nn.Linear(intermediate, hidden)
        self.ffn_norm = torch.nn.LayerNorm(hidden, eps=eps)
        self.act = _ACTIVATIONS[act]

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / math.sqrt(self.head_dim))
        x = self.attn_norm(x + self.attn_out(ctx.transpose(1, 2).reshape(b, n, d)))
        return self.ffn_norm(x + self.ffn_out(self.act(self.ffn_in(x))))


class NativeBert(torch.nn.Module):
    """A BERT encoder (``last_hidden_state`` only; no pooler) loaded from a Hugging Face checkpoint directory.

    Shapes: ``input_ids`` / ``attention_mask`` ``[B, N]`` int64 -> ``[B, N, hidden]`` float32.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden = int(config["hidden_size"])
        eps = float(config.get("layer_norm_eps", 1e-12))
        # Embeddings start empty (no random init of tables the checkpoint replaces at once). A meta-device build
        # would skip the Linear inits too, but it imports torch._dynamo (~2 s), more than it saves.
        self.word = _empty_embedding(int(config["vocab_size"]), hidden)
        self.position = _empty_embedding(int(config["max_position_embeddings"]), hidden)
        self.token_type = _empty_embedding(int(config.get("type_vocab_size", 2)), hidden)
        self.embed_norm = torch.nn.LayerNorm(hidden, eps=eps)
        self.layers = torch.nn.ModuleList(
            _Layer(hidden, int(config["intermediate_size"]), int(config["num_attention_heads"]), eps,
                   config.get("hidden_act", "gelu"))
            for _ in range(int(config["num_hidden_layers"])))

    @classmethod
    def from_dir(cls, path: Path) -> NativeBert:
        """Build and load from ``path`` (``config.json`` + one ``*.safetensors``); weights are mapped, not copied
        twice. Raises ``KeyError`` naming the first missing tensor when the checkpoint is not a plain BERT."""
        from safetensors.torch import load_file

        config = json.loads((path / "config.json").read_text())
        model = cls(config)
        weights = load_file(str(_weight_files(path)[0]))
        prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""

        def w(name: str) -> torch.Tensor:
            return weights[prefix + name]

        state = {
            "word.weight": w("embeddings.word_embeddings.weight"),
            "position.weight": w("embeddings.position_embeddings.weight"),
            "token_type.weight": w("embeddings.token_type_embeddings.weight"),
            "embed_norm.weight": w("embeddings.LayerNorm.weight"),
            "embed_norm.bias": w("embeddings.LayerNorm.bias"),
        }
        for i in range(len(model.layers)):
            src, dst = f"encoder.layer.{i}.", f"layers.{i}."
            for part in ("weight", "bias"):
                state[dst + "qkv." + part] = torch.cat(
                    [w(f"{src}attention.self.{name}.{part}") for name in ("query", "key", "value")])
                state[dst + "attn_out." + part] = w(f"{src}attention.output.dense.{part}")
                state[dst + "attn_norm." + part] = w(f"{src}attention.output.LayerNorm.{part}")
                state[dst + "ffn_in." + part] = w(f"{src}intermediate.dense.{part}")
                state[dst + "ffn_out." + part] = w(f"{src}output.dense.{part}")
                state[dst + "ffn_norm." + part] = w(f"{src}output.LayerNorm.{part}")
        model.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, assign=True)
        return model.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        x = self.word(input_ids) + self.position(positions) + self.token_type.weight[0]  # one segment
        x = self.embed_norm(x)
        # Additive mask: padded keys get the most negative float, as transformers does.
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        return x
