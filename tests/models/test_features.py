"""Image features by name and the content-addressed feature cache (safetensors, nothing written on bad input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgclip.errors import ConfigError, ImageReadError, ResolutionError
from kgclip.models.backbones import load_image_tower
from kgclip.models.features import IMAGE_FEATURES, TowerFeatures, load_image_features


def _png(path: Path, seed: int, size: int = 48) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def small_tower() -> TowerFeatures:
    torch.manual_seed(0)
    return load_image_tower("builtin-cnn", dim=16, image_size=32, widths=(8, 8, 8, 8))


def _entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.safetensors")) if root.exists() else []


def test_cache_by_content_and_fingerprint(tmp_path: Path, small_tower) -> None:
    a, b = _png(tmp_path / "a.png", 0), _png(tmp_path / "b.png", 1)
    copy = tmp_path / "sub" / "a.png"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())  # same content, another name: one cache entry
    fx = TowerFeatures(small_tower, cache_dir=tmp_path / "cache")
    first = fx.features([a, b, copy])["pooled"]
    assert first.shape == (3, 16) and torch.equal(first[0], first[2])
    assert len(_entries(tmp_path / "cache")) == 2
    again = TowerFeatures(small_tower, cache_dir=tmp_path / "cache").features([b, a])["pooled"]
    assert torch.equal(again, first[[1, 0]])
    unit = fx.encode([a, b])
    assert unit.dtype == np.float32 and np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert np.allclose(fx.embed_one(a), unit[0]) and fx.dim == 16
    # Other weights -> another fingerprint -> other entries, never a stale hit.
    with torch.no_grad():
        small_tower.head.weight.add_(1.0)
    other = TowerFeatures(small_tower, cache_dir=tmp_path / "cache")
    assert other.fingerprint != fx.fingerprint
    assert not torch.equal(other.features([a])["pooled"][0], first[0])
    assert len(_entries(tmp_path / "cache")) == 3


def test_damaged_entry_is_recomputed(tmp_path: Path, small_tower) -> None:
    a = _png(tmp_path / "a.png", 0)
    fx = TowerFeatures(small_tower, cache_dir=tmp_path / "cache")
    good = fx.features([a])["pooled"]
    (entry,) = _entries(tmp_path / "cache")
    entry.write_bytes(b"not safetensors")
    assert torch.equal(fx.features([a])["pooled"], good)


def test_unreadable_image_writes_nothing(tmp_path: Path, small_tower) -> None:
    a = _png(tmp_path / "a.png", 0)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    fx = TowerFeatures(small_tower, cache_dir=tmp_path / "cache")
    with pytest.raises(ImageReadError, match="broken.png"):
        fx.features([a, bad])
    with pytest.raises(ImageReadError, match="missing.png"):
        fx.features([a, tmp_path / "missing.png"])
    assert _entries(tmp_path / "cache") == []


def test_arrays_and_bad_parts(tmp_path: Path, small_tower) -> None:
    fx = TowerFeatures(small_tower, cache_dir="")
    grey = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    out = fx.features([grey, np.stack([grey] * 3, -1)])["pooled"]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    with pytest.raises(ConfigError, match="pooled features only"):
        fx.features([grey], ("spatial",))
    with pytest.raises(ConfigError, match="precision"):
        TowerFeatures(small_tower, precision="int8")


def test_efficientnet_parts_and_registry(tmp_path: Path) -> None:
    fx = load_image_features("efficientnet-lite0", cache_dir=tmp_path / "cache")
    img = _png(tmp_path / "a.png", 3, size=64)
    parts = fx.features([img], ("pooled", "spatial", "tap15"))
    assert parts["pooled"].shape == (1, 1280) and parts["spatial"].shape == (1, 1280, 7, 7)
    assert parts["tap15"].shape == (1, 192, 7, 7)
    assert torch.allclose(parts["spatial"].float().mean(dim=(2, 3)), parts["pooled"], atol=1e-2)
    with torch.no_grad():
        direct = fx.tower(fx._decode(img).unsqueeze(0))
    assert torch.allclose(direct, parts["pooled"], atol=1e-4)
    with pytest.raises(ConfigError, match="tap<k>"):
        fx.features([img], ("tap99",))
    with pytest.raises(ResolutionError, match="thumbnail"):
        load_image_features("no-such-features")
    assert {"efficientnet-lite0", "thumbnail", "tower"} <= set(IMAGE_FEATURES)


def test_thumbnail_by_name() -> None:
    pytest.importorskip("kgclip.models.thumbnail", reason="the thumbnail featurizer lands with the engine move")
    thumb = load_image_features("thumbnail")
    vec = thumb.embed_one(np.random.default_rng(0).random((40, 40)).astype(np.float32))
    assert vec.shape == (thumb.dim,) and thumb.fingerprint


@pytest.mark.gpu
def test_gpu_bf16_matches_cpu(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    img = _png(tmp_path / "a.png", 5, size=96)
    cpu = load_image_features("efficientnet-lite0", cache_dir="", device="cpu").features([img])["pooled"]
    gpu_fx = load_image_features("efficientnet-lite0", cache_dir="", device="auto")
    assert gpu_fx.device.type == "cuda" and gpu_fx.precision == "bf16"
    gpu = gpu_fx.features([img])["pooled"]
    assert torch.nn.functional.cosine_similarity(cpu, gpu).item() > 0.99
