"""xrv:<weights> towers: random-initialised torchxrayvision networks placed in a temporary torchxrayvision cache with
HF_HUB_OFFLINE=1 (nothing downloads), compared with torchxrayvision itself; errors and the feature cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from kgclip.errors import ArtifactCorruptError, ConfigError, ImageReadError, ModelNotFoundError, ResolutionError
from kgclip.models.backbones import load_image_tower
from kgclip.models.features import TowerFeatures, load_image_features

DENSENET = "densenet121-res224-all"
RESNET = "resnet50-res512-all"


@pytest.fixture()
def xrv() -> ModuleType:
    from kgclip.models.xrv import import_xrv

    pytest.importorskip("torchxrayvision", reason="optional extra kgclip[xrv] not installed")
    return import_xrv()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home (torchxrayvision's default cache is ~/.torchxrayvision/models_data/) and no downloads."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _place_densenet(xrv: ModuleType, seed: int) -> Path:
    """A random DenseNet-121 saved as the published files are (a pickled whole ``xrv.models.DenseNet``)."""
    from kgclip.models.xrv import xrv_weights_path

    torch.manual_seed(seed)
    net = xrv.models.DenseNet(weights=None, num_classes=18)
    for module in net.modules():  # non-trivial batch-norm statistics, so that a wrong layer order shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = xrv_weights_path(DENSENET, xrv=xrv)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net, path)
    return path


def _png(path: Path, size: int = 224, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
    return path


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchxrayvision", None)  # makes `import torchxrayvision` fail
    with pytest.raises(ModelNotFoundError, match=r"pip install 'kgclip\[xrv\]'"):
        load_image_tower(f"xrv:{DENSENET}")
    cache = tmp_path / "features"
    with pytest.raises(ModelNotFoundError):
        load_image_features(f"tower:xrv:{DENSENET}", cache_dir=cache)
    assert not cache.exists()
    with pytest.raises(ConfigError, match="xrv:<weights>"):
        load_image_tower("xrv")
    with pytest.raises(ConfigError, match="cache_dir, sha256 and checkpoint"):
        load_image_tower(f"xrv:{DENSENET}", dim=3)


def test_import_leaves_warning_filters_alone(xrv: ModuleType) -> None:
    """torchxrayvision calls warnings.filterwarnings("ignore") at import; kgclip's import undoes it."""
    import subprocess

    code = ("import warnings; from kgclip.models.xrv import import_xrv; before = list(warnings.filters); "
            "import_xrv(); import torchxrayvision; assert warnings.filters == before, warnings.filters[:2]")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                     os.environ.get("PYTHONPATH", "")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)


def test_densenet_equals_torchxrayvision(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    weights = _place_densenet(xrv, seed=0)
    assert weights.parent == home / ".torchxrayvision" / "models_data"
    tower = load_image_tower(f"xrv:{DENSENET}")
    assert (tower.name, tower.dim, tower.image_size) == (f"xrv:{DENSENET}", 1024, 224)
    reference = xrv.models.DenseNet(weights=DENSENET).eval()  # its own loader, on the same cached file
    # End to end: a 224 px grey PNG through kgclip's reader and transform vs torchxrayvision's own preprocessing.
    png = _png(tmp_path / "cxr.png")
    from PIL import Image

    x = torch.from_numpy(xrv.utils.normalize(np.asarray(Image.open(png), dtype=np.float32), 255))[None, None]
    features = TowerFeatures(tower, cache_dir=tmp_path / "features", device="auto")
    parts = features.features([png], ("pooled", "spatial"))
    with torch.no_grad():
        expected = reference.features2(x)
        expected_map = torch.relu(reference.features(x))
    assert parts["pooled"].shape == (1, 1024) and parts["spatial"].shape == (1, 1024, 7, 7)
    assert torch.allclose(parts["pooled"], expected, rtol=1e-3, atol=1e-4)
    assert torch.allclose(parts["spatial"].float(), expected_map, rtol=1e-2, atol=1e-2)  # stored as float16
    unit = features.encode([png])
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert np.allclose(unit[0], torch.nn.functional.normalize(expected, dim=-1)[0].numpy(), atol=1e-4)
    # The tower itself on the same preprocessed input, and another size resized as torchxrayvision does.
    pixels = x.expand(-1, 3, -1, -1)  # already in [-1024, 1024], as mean/std make [0, 1] pixels
    with torch.no_grad():
        assert torch.allclose(tower(pixels), expected, rtol=1e-4, atol=1e-5)
        small = torch.nn.functional.interpolate(x, size=(160, 160), mode="bilinear", antialias=True)
        assert torch.allclose(tower(small.expand(-1, 3, -1, -1)), reference.features2(small), rtol=1e-4, atol=1e-5)
        assert tower.forward_features(pixels).shape == (1, 1024, 7, 7)
    assert tower.encode(pixels).norm(dim=-1).sub(1).abs().max() < 1e-5


def test_fingerprint_follows_the_file(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    from kgclip.models.efficientnet import sha256_file

    path = _place_densenet(xrv, seed=0)
    first = load_image_tower(f"xrv:{DENSENET}")
    assert first.describe()["weights_sha256"] == sha256_file(path)
    assert first.describe()["tower_version"] and first.describe()["torchxrayvision"] == xrv.__version__
    same = load_image_tower(f"xrv:{DENSENET}")
    assert same.fingerprint == first.fingerprint
    _place_densenet(xrv, seed=1)
    other = load_image_tower(f"xrv:{DENSENET}")
    assert other.fingerprint != first.fingerprint
    cache = tmp_path / "features"
    assert TowerFeatures(other, cache_dir=cache).fingerprint != TowerFeatures(first, cache_dir=cache).fingerprint


def test_missing_weights_offline(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    from kgclip.models.xrv import xrv_weights_path

    expected = xrv_weights_path(DENSENET, xrv=xrv)
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE") as info:
        load_image_tower(f"xrv:{DENSENET}")
    assert str(expected) in str(info.value) and "run once on a machine with a network" in str(info.value)
    cache = tmp_path / "features"
    with pytest.raises(ModelNotFoundError):
        load_image_features(f"tower:xrv:{DENSENET}", cache_dir=cache)
    assert not cache.exists() and not (home / ".torchxrayvision").exists()  # nothing written, nothing fetched
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "elsewhere")):
        load_image_tower(f"xrv:{DENSENET}", cache_dir=str(tmp_path / "elsewhere"))


def test_unknown_weights_lists_the_choices(xrv: ModuleType, home: Path) -> None:
    with pytest.raises(ResolutionError, match=r"densenet121-res224-all.*resnet50-res512-all"):
        load_image_tower("xrv:densenet121-res224-everything")
    with pytest.raises(ResolutionError, match="Could not resolve xrv weights"):
        load_image_tower("xrv:mimic-unet")


def test_checksum_and_unsafe_files_are_refused(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    from kgclip.models.efficientnet import sha256_file

    path = _place_densenet(xrv, seed=0)
    assert load_image_tower(f"xrv:{DENSENET}", sha256=sha256_file(path).upper()).dim == 1024
    with pytest.raises(ArtifactCorruptError, match=f"delete {path}"):
        load_image_tower(f"xrv:{DENSENET}", sha256="0" * 64)
    # A file that would run code when unpickled without weights_only is refused, and the code never runs.
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    torch.save({"features.conv0.weight": Payload()}, path)
    with pytest.raises(ArtifactCorruptError, match="cannot be read safely"):
        load_image_tower(f"xrv:{DENSENET}")
    assert not marker.exists()
    path.write_bytes(b"not a torch file")
    with pytest.raises(ArtifactCorruptError):
        load_image_tower(f"xrv:{DENSENET}")
    # A state_dict of another architecture.
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ArtifactCorruptError, match="do not fit the densenet121"):
        load_image_tower(f"xrv:{DENSENET}", checkpoint=str(tmp_path / "other.pt"))


def test_unreadable_image_writes_nothing(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    _place_densenet(xrv, seed=0)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cache = tmp_path / "features"
    features = load_image_features(f"tower:xrv:{DENSENET}", cache_dir=cache)
    with pytest.raises(ImageReadError):
        features.features([_png(tmp_path / "ok.png"), bad], ("pooled", "spatial"))
    assert not cache.exists()
    with pytest.raises(ConfigError, match="no tap points"):
        features.features([_png(tmp_path / "ok.png")], ("tap2",))


def test_resnet_equals_torchxrayvision(xrv: ModuleType, home: Path, tmp_path: Path) -> None:
    """ResNet-50 weights are a state_dict of torchvision's resnet50 with a one-channel stem; cache_dir= is used."""
    import torchvision

    from kgclip.models.xrv import xrv_weights_path

    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=18, weights=None)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    cache_dir = tmp_path / "xrv-cache"
    path = xrv_weights_path(RESNET, cache_dir, xrv=xrv)
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    tower = load_image_tower(f"xrv:{RESNET}", cache_dir=str(cache_dir))
    assert (tower.dim, tower.image_size) == (2048, 512)
    reference = xrv.models.ResNet(weights=RESNET, cache_dir=str(cache_dir)).eval()
    x = torch.rand(1, 1, 512, 512) * 2048 - 1024
    with torch.no_grad():
        fmap = tower.forward_features(x.expand(-1, 3, -1, -1))
        assert fmap.shape == (1, 2048, 16, 16)
        expected = reference.features(x)  # random weights give large activations: tolerance relative to them
        assert torch.allclose(tower.pool(fmap), expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
        assert torch.allclose(tower(x.expand(-1, 3, -1, -1)), expected, rtol=1e-4,
                              atol=1e-5 * float(expected.abs().max()))
