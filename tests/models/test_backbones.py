"""Image towers: the built-in CNN, tiny random Hugging Face CLIP directories (image and text towers), errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kgclip.errors import ConfigError, ModelNotFoundError, ResolutionError
from kgclip.models.backbones import (
    IMAGE_TOWERS,
    BuiltinCNN,
    BuiltinCNNConfig,
    HFCLIPImageTower,
    load_image_tower,
)


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2 / CLIP byte-level alphabet, so a vocabulary of single bytes covers any text.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def save_tiny_clip(directory: Path, image_size: int = 32) -> Path:
    """Write a 2-layer random ``CLIPModel`` plus a byte-level tokenizer (no merges) with save_pretrained."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt"))
    eos, bos = vocab["<|endoftext|>"], vocab["<|startoftext|>"]
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=64, eos_token_id=eos, bos_token_id=bos,
                         pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": {"shortest_edge": image_size}}))
    return directory


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_builtin_cnn_shapes_and_size() -> None:
    torch.manual_seed(0)
    tower = load_image_tower("builtin-cnn")
    assert isinstance(tower, BuiltinCNN) and not tower.training
    n_params = sum(p.numel() for p in tower.parameters())
    assert 1_000_000 <= n_params <= 3_000_000
    out = tower(torch.randn(2, 3, tower.image_size, tower.image_size))
    assert out.shape == (2, tower.dim) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # Any size >= 32 works (global pooling), e.g. a non-square input.
    assert tower(torch.randn(1, 3, 64, 96)).shape == (1, 256)
    emb = tower.encode(torch.randn(5, 3, 64, 64), batch_size=2)
    assert emb.shape == (5, 256)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)


def test_builtin_cnn_options_aliases_and_fingerprint() -> None:
    torch.manual_seed(0)
    tower = load_image_tower("builtin", dim=64, image_size=96)
    assert tower.dim == 64 and tower.image_size == 96 and tower.name == "builtin-cnn"
    assert tower(torch.randn(1, 3, 96, 96)).shape == (1, 64)
    fp = tower.fingerprint
    assert fp == tower.fingerprint and len(fp) == 32
    with torch.no_grad():
        tower.head.bias.add_(1.0)
    assert tower.fingerprint != fp  # trained weights -> new fingerprint
    assert load_image_tower("default").config == BuiltinCNNConfig()
    # The tower learns: a few optimiser steps move the output towards a target (a narrow tower keeps this fast).
    tower = load_image_tower("builtin-cnn", dim=8, widths=[8, 16], image_size=32)  # blocks follow widths
    assert isinstance(tower.config.widths, tuple)
    tower.train()
    x = torch.randn(4, 3, 32, 32)
    losses = []
    for _ in range(3):
        loss = (tower(x) - 1.0).pow(2).mean()
        tower.zero_grad()
        loss.backward()
        with torch.no_grad():  # plain SGD by hand: torch.optim's first step costs seconds of lazy imports
            for param in tower.parameters():
                if param.grad is not None:
                    param -= 0.1 * param.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_bad_names_and_configs(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError, match="builtin-cnn"):
        load_image_tower("resnet-9000")
    with pytest.raises(ConfigError, match="dim"):
        load_image_tower("builtin-cnn", dim=0)
    with pytest.raises(ConfigError, match="no field|unexpected|got an unexpected"):
        load_image_tower("builtin-cnn", width=3)
    with pytest.raises(ModelNotFoundError, match="not a directory"):
        load_image_tower(f"hf-clip:{tmp_path / 'missing'}")
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_image_tower(f"hf-clip:{tmp_path}")
    with pytest.raises(ModelNotFoundError, match="neither"):
        load_image_tower(str(tmp_path / "nowhere" / "model"))
    assert set(IMAGE_TOWERS) >= {"builtin-cnn", "hf-clip", "open_clip", "efficientnet-lite0", "hf-hub", "timm"}


def test_not_a_clip_directory(tmp_path: Path) -> None:
    from transformers import BertConfig

    BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=8).save_pretrained(tmp_path / "bert")  # the config alone decides
    with pytest.raises(ModelNotFoundError, match="not a CLIP model"):
        load_image_tower(str(tmp_path / "bert"))


def test_hf_clip_image_tower_matches_clipmodel(tiny_clip: Path) -> None:
    from transformers import CLIPModel

    tower = load_image_tower(str(tiny_clip))
    assert isinstance(tower, HFCLIPImageTower)
    assert (tower.dim, tower.image_size) == (16, 32)
    assert tower.mean == (0.5, 0.5, 0.5) and tower.std == (0.25, 0.25, 0.25)
    same = load_image_tower(f"hf-clip:{tiny_clip}")
    assert same.fingerprint == tower.fingerprint
    torch.manual_seed(1)
    pixels = torch.randn(3, 3, 32, 32)
    ours = tower.encode(pixels)
    clip = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    with torch.no_grad():
        ref = clip(input_ids=torch.tensor([[1, 2]]), pixel_values=pixels).image_embeds
    assert torch.allclose(ours, ref, atol=1e-5)
    with pytest.raises(ConfigError, match="no options"):
        load_image_tower(f"hf-clip:{tiny_clip}", dim=3)


def test_hf_clip_text_tower_from_same_directory(tiny_clip: Path) -> None:
    from transformers import CLIPModel, CLIPTokenizer

    from kgclip.text.encoders import HFTextEncoder

    encoder = HFTextEncoder(tiny_clip, device="cpu")
    assert encoder.is_clip and encoder.dim == 16
    texts = ["no pleural effusion", "right pneumothorax"]
    ours = encoder.encode(texts)
    clip = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    tok = CLIPTokenizer.from_pretrained(tiny_clip)
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = clip(**batch, pixel_values=torch.zeros(2, 3, 32, 32)).text_embeds
    assert torch.allclose(ours, ref, atol=1e-5)
    # Image and text towers of one directory share the projection space.
    image = load_image_tower(str(tiny_clip)).encode(torch.zeros(1, 3, 32, 32))
    assert (image @ ours.T).shape == (1, 2)


def test_open_clip_optional(tmp_path: Path) -> None:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(ModelNotFoundError, match="openclip"):
            load_image_tower(f"open_clip:{tmp_path}")
        pytest.skip("open_clip not installed (optional extra kgclip[openclip])")
    with pytest.raises(ModelNotFoundError, match="open_clip_config.json"):
        load_image_tower(f"open_clip:{tmp_path}")


def test_models_package_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, kgclip.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_open_clip_wiring_with_a_fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The open_clip tower's own code (config, preprocessing stats, dim, forward) against a stand-in package."""
    import sys
    import types

    calls: list[str] = []

    class FakeCLIP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 12))

    def create_model(name: str, device: str = "cpu") -> torch.nn.Module:
        calls.append(name)
        return FakeCLIP()

    monkeypatch.setitem(sys.modules, "open_clip", types.SimpleNamespace(create_model=create_model))
    (tmp_path / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": {"embed_dim": 12, "vision_cfg": {"image_size": [24, 24]}, "text_cfg": {}},
        "preprocess_cfg": {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}}))
    tower = load_image_tower(str(tmp_path))  # detected from open_clip_config.json
    assert calls == [f"local-dir:{tmp_path}"]
    assert (tower.dim, tower.image_size, tower.mean, tower.std) == (12, 24, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert tower(torch.randn(2, 3, 24, 24)).shape == (2, 12)
    assert load_image_tower(f"open_clip:{tmp_path}").name == tower.name
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    with pytest.raises(ModelNotFoundError, match="embed_dim"):
        load_image_tower(str(tmp_path))
