"""Hub names (hf-hub:) through a temporary, offline hub cache holding tiny models; timm when installed."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

from kgclip.errors import ModelNotFoundError
from kgclip.models.backbones import load_image_tower
from tests.models.test_backbones import save_tiny_clip


def _offline_cache(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point the hub at an empty cache under ``root`` with HF_HUB_OFFLINE=1 (nothing can download)."""
    import huggingface_hub.constants as constants

    cache = root / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _place(cache: Path, repo: str, source: Path) -> Path:
    """Lay ``source``'s files out as the hub cache does: models--org--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = cache / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    shutil.copytree(source, base / "snapshots" / commit)
    return base / "snapshots" / commit


def test_hf_hub_clipmodel_from_offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import CLIPModel

    cache = _offline_cache(monkeypatch, tmp_path)
    snapshot = _place(cache, "kgclip-test/tiny-clip", save_tiny_clip(tmp_path / "src"))
    tower = load_image_tower("hf-hub:kgclip-test/tiny-clip")
    assert tower.name == "hf-hub:kgclip-test/tiny-clip" and tower.dim == 16
    pixels = torch.randn(2, 3, 32, 32)
    clip = CLIPModel.from_pretrained(snapshot, local_files_only=True).eval()
    with torch.no_grad():
        ref = clip(input_ids=torch.tensor([[1, 2]]), pixel_values=pixels).image_embeds
    assert torch.allclose(tower.encode(pixels), ref, atol=1e-5)
    # The text tower of the same snapshot shares the space (both towers of one hub model).
    from kgclip.text.encoders import HFTextEncoder

    assert HFTextEncoder(snapshot, device="cpu").dim == tower.dim


def test_hf_hub_not_cached_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline_cache(monkeypatch, tmp_path)
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download kgclip-test/absent"):
        load_image_tower("hf-hub:kgclip-test/absent")
    with pytest.raises(ModelNotFoundError, match="hf-hub:<org>/<repo>"):
        load_image_tower("hf-hub:no-slash")


def test_hf_hub_open_clip_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An open_clip snapshot (BiomedCLIP's layout) in the hub cache, against a stand-in open_clip package."""
    calls: list[str] = []

    class FakeCLIP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 12))

    def create_model(name: str, device: str = "cpu") -> torch.nn.Module:
        calls.append(name)
        return FakeCLIP()

    monkeypatch.setitem(sys.modules, "open_clip", types.SimpleNamespace(create_model=create_model))
    src = tmp_path / "src"
    src.mkdir()
    (src / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": {"embed_dim": 12, "vision_cfg": {"image_size": 24}, "text_cfg": {}},
        "preprocess_cfg": {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}}))
    snapshot = _place(_offline_cache(monkeypatch, tmp_path), "kgclip-test/tiny-open-clip", src)
    tower = load_image_tower("hf-hub:kgclip-test/tiny-open-clip")
    assert calls == [f"local-dir:{snapshot}"]
    assert (tower.dim, tower.image_size, tower.mean) == (12, 24, (0.1, 0.2, 0.3))
    assert tower(torch.randn(1, 3, 24, 24)).shape == (1, 12)


def test_timm_tower_when_installed(tmp_path: Path) -> None:
    try:
        import timm
    except ImportError:
        with pytest.raises(ModelNotFoundError, match="pip install timm"):
            load_image_tower("timm:tf_efficientnet_lite0")
        pytest.skip("timm not installed (it would replace this torch here)")
    checkpoint = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), checkpoint)
    tower = load_image_tower("timm:resnet18", checkpoint=str(checkpoint))
    assert tower(torch.randn(1, 3, 64, 64)).shape == (1, tower.dim)
