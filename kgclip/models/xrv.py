"""torchxrayvision chest X-ray backbones as image towers: ``"xrv:<weights>"`` (optional extra ``kgclip[xrv]``).

``xrv:densenet121-res224-all`` (and the other ``densenet121-res224-*`` weights, or their short names ``all``, ``nih``,
``chex``...) and ``xrv:resnet50-res512-all`` are the CNNs of torchxrayvision, trained on hundreds of thousands of
chest radiographs. The tower is the network without its pathology classifier:

- **weights** are resolved through torchxrayvision's own cache folder (``~/.torchxrayvision/models_data/``, or the
  ``cache_dir=`` option, which is torchxrayvision's ``cache_dir`` argument). A missing file is fetched by
  torchxrayvision's own downloader only when a network is allowed; with ``HF_HUB_OFFLINE=1`` (the rule kgclip's hub
  names follow too) nothing is downloaded and a missing file is a :class:`~kgclip.errors.ModelNotFoundError` that
  names the path to put it at. kgclip never runs torchxrayvision's loader (it unpickles with
  ``weights_only=False``): files are read with ``torch.load(weights_only=True)``, allowing only the torch and
  torchxrayvision module classes the published DenseNet files pickle. ``sha256=`` pins the file's hash;
  ``checkpoint=<file>`` loads a state_dict of the same architecture instead (e.g. fine-tuned).
- **preprocessing** is torchxrayvision's: one channel (the mean of the three equal grey channels kgclip's transforms
  produce), values scaled to [-1024, 1024] (``mean`` 0.5 and ``std`` 1/2048 on [0, 1] pixels, the same as
  ``xrv.utils.normalize(img, 255)``), the weights' native side (224 or 512 px; another side is resized bilinearly
  with antialiasing, as torchxrayvision's ``fix_resolution`` does). kgclip pads to a square where torchxrayvision
  crops the centre.
- **outputs**: :meth:`XRVImageTower.forward_features` is the last feature map (``relu(features(x))`` for DenseNet,
  ``layer4`` for ResNet) and :meth:`XRVImageTower.forward` its global average, equal to torchxrayvision's
  ``features2`` (DenseNet) / ``features`` (ResNet).
- **fingerprint**: the weights name, the file's sha256, this tower's version and torchxrayvision's version (plus
  the loaded tensors, as for every tower), so cached features follow a changed file.

Shapes: ``[B, 3, S, S]`` normalised -> spatial ``[B, 1024, 7, 7]`` (DenseNet-121 at 224) or ``[B, 2048, 16, 16]``
(ResNet-50 at 512) -> pooled ``[B, 1024]`` / ``[B, 2048]``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kgclip.errors import ArtifactCorruptError, ConfigError, ModelNotFoundError, ResolutionError
from kgclip.models.efficientnet import sha256_file
from kgclip.models.tower import ImageTower, state_mismatch

__all__ = ["XRVImageTower", "XRV_TOWER_VERSION", "import_xrv", "xrv_weights_names", "xrv_weights_path",
           "resolve_xrv_weights", "load_xrv_state", "build_xrv"]

# Bump when this tower's preprocessing or pooling changes: cached features then stop matching.
XRV_TOWER_VERSION = "xrv-tower-v1"
# [0, 1] pixels -> (2 p - 1) * 1024, torchxrayvision's range: (p - 0.5) / (1 / 2048).
XRV_MEAN = (0.5, 0.5, 0.5)
XRV_STD = (1.0 / 2048.0,) * 3
_INSTALL = ("pip install 'kgclip[xrv]' (torchxrayvision; install the torchvision built for your torch first, e.g. "
            "the CPU wheel from download.pytorch.org for a CPU torch, so that pip keeps your torch)")


def _offline() -> bool:
    """Whether downloads are forbidden (``HF_HUB_OFFLINE``, read when called, never written)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def import_xrv() -> ModuleType:
    """Import torchxrayvision without letting its import-time ``warnings.filterwarnings("ignore")`` leak out.

    Raises:
        ModelNotFoundError: torchxrayvision (or its torchvision) is not installed or does not import; the message
            names the pip command.
    """
    try:
        with warnings.catch_warnings():  # restores the process's warning filters on exit
            import torchxrayvision
    except Exception as exc:  # noqa: BLE001 - ImportError, or a torchvision built for another torch (RuntimeError)
        raise ModelNotFoundError(
            f"'xrv:' towers need torchxrayvision, which did not import ({type(exc).__name__}: {exc}); {_INSTALL}; "
            "or use 'efficientnet-lite0'") from exc
    return torchxrayvision


def _arch(xrv: ModuleType, weights: str) -> str:
    """``"densenet121"``, ``"resnet50"`` or ``"resnet101"`` for a torchxrayvision weights name."""
    if weights.startswith("resnet101"):
        return "resnet101"
    if weights.startswith("resnet50"):
        return "resnet50"
    urls = xrv.models.model_urls
    if weights.startswith("densenet121") or any(urls[weights] is urls[k] for k in urls if k.startswith("densenet121")):
        return "densenet121"
    return ""


def xrv_weights_names(xrv: ModuleType | None = None) -> list[str]:
    """The torchxrayvision weights names an ``xrv:`` tower accepts (DenseNet-121 and ResNet classifiers)."""
    xrv = xrv or import_xrv()
    return sorted(k for k in xrv.models.model_urls if _arch(xrv, k))


def _check_weights(xrv: ModuleType, weights: str) -> None:
    if weights not in xrv.models.model_urls or not _arch(xrv, weights):
        raise ResolutionError(f"Could not resolve xrv weights {weights!r} among choices "
                              f"{{{', '.join(xrv_weights_names(xrv))}}}; write xrv:<weights>, e.g. "
                              "xrv:densenet121-res224-all")


def xrv_weights_path(weights: str, cache_dir: str | os.PathLike[str] | None = None,
                     xrv: ModuleType | None = None) -> Path:
    """Where torchxrayvision keeps (or would download) the file of ``weights``; nothing is read or written.

    Args:
        weights: a name from :func:`xrv_weights_names`.
        cache_dir: torchxrayvision's ``cache_dir`` (default: its ``utils.get_cache_dir()``,
            ``~/.torchxrayvision/models_data/``).
    """
    xrv = xrv or import_xrv()
    _check_weights(xrv, weights)
    folder = os.fspath(cache_dir) if cache_dir is not None else xrv.utils.get_cache_dir()
    return Path(folder).expanduser() / os.path.basename(xrv.models.model_urls[weights]["weights_url"])


def resolve_xrv_weights(weights: str, cache_dir: str | os.PathLike[str] | None = None,
                        xrv: ModuleType | None = None) -> Path:
    """The weights file, downloaded by torchxrayvision into its cache only when it is missing and a network is
    allowed.

    Raises:
        ModelNotFoundError: the file is missing and ``HF_HUB_OFFLINE`` is set, or the download failed (the message
            names the URL and the path to put the file at).
    """
    xrv = xrv or import_xrv()
    path = xrv_weights_path(weights, cache_dir, xrv)
    if path.is_file():
        return path
    url = xrv.models.model_urls[weights]["weights_url"]
    fix = (f"run once on a machine with a network (torchxrayvision downloads it into the same cache), or put the "
           f"file at {path} (wget {url} -O {path})")
    if _offline():
        raise ModelNotFoundError(f"the xrv weights {weights!r} are not in torchxrayvision's cache and HF_HUB_OFFLINE "
                                 f"forbids downloading; {fix}")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # its progress messages must not mix into a CLI's JSON output
            got = xrv.models.get_weights(weights, cache_dir=str(path.parent))
    except Exception as exc:  # noqa: BLE001 - no network, HTTP errors, disk full...: one error with the fix
        raise ModelNotFoundError(f"the xrv weights {weights!r} could not be downloaded ({type(exc).__name__}: "
                                 f"{exc}); {fix}") from exc
    return Path(got)


def _safe_globals(xrv: ModuleType) -> list[Any]:
    """The classes a published DenseNet file pickles (a whole ``xrv.models.DenseNet``): module classes only, whose
    unpickling sets attributes and runs no code."""
    m = xrv.models
    return [m.DenseNet, m._DenseLayer, m._DenseBlock, m._Transition, nn.Sequential, nn.Conv2d, nn.BatchNorm2d,
            nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Linear, set]


def load_xrv_state(path: str | os.PathLike[str], xrv: ModuleType | None = None,
                   sha256: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Read a torchxrayvision weights file safely: ``(state_dict, sha256 of the file)``.

    Accepts a state_dict (the ResNet files, a ``checkpoint=``) or a pickled whole ``xrv.models.DenseNet`` (the
    DenseNet files), loaded with ``weights_only=True`` and only the classes of :func:`_safe_globals` allowed.

    Raises:
        ArtifactCorruptError: the hash differs from ``sha256``, or the file is damaged or pickles anything else.
    """
    xrv = xrv or import_xrv()
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"no xrv weights file at {path}; pass an existing state_dict file")
    digest = sha256_file(path)
    again = f"delete {path} and run once with a network so that torchxrayvision fetches it again"
    if sha256 is not None and digest != sha256.lower():
        raise ArtifactCorruptError(f"{path} has sha256 {digest}, not the pinned {sha256}: the weights file is damaged "
                                   f"or was replaced; {again}")
    try:
        with torch.serialization.safe_globals(_safe_globals(xrv)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors of many types: name the file and the fix
        raise ArtifactCorruptError(
            f"{path} cannot be read safely as xrv weights ({type(exc).__name__}: {str(exc)[:300]}); {again}, or, on a "
            "trusted machine, save the model's state_dict with torch.save(model.state_dict(), 'f.pt') and load "
            "xrv:<weights> with checkpoint='f.pt'") from exc
    state = obj.state_dict() if isinstance(obj, nn.Module) else obj
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ArtifactCorruptError(f"{path} holds a {type(obj).__name__}, not xrv weights (a DenseNet or a "
                                   f"state_dict of tensors); {again}")
    return {k: v for k, v in state.items() if k != "op_threshs"}, digest  # thresholds: classifier calibration


def _build_network(xrv: ModuleType, arch: str, n_classes: int) -> nn.Module:
    """The architecture torchxrayvision builds for ``arch``, with random weights (nothing is read or fetched)."""
    if arch == "densenet121":
        return xrv.models.DenseNet(weights=None, num_classes=n_classes, in_channels=1,
                                   **xrv.models.get_densenet_params("densenet121"))
    import torchvision

    net = getattr(torchvision.models, arch)(num_classes=n_classes, weights=None)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # xrv's single-channel patch
    return net


class XRVImageTower(ImageTower):
    """A torchxrayvision DenseNet-121 or ResNet as a feature extractor (see the module docstring).

    Args:
        weights: the torchxrayvision weights name (``"densenet121-res224-all"``, ``"resnet50-res512-all"``...).
        state: the weights (:func:`load_xrv_state`), or ``None`` for random weights.
        weights_sha256: sha256 of the weights file (recorded in :meth:`describe`).
        xrv: the imported torchxrayvision module (default: :func:`import_xrv`).

    Attributes:
        model: the torchxrayvision ``DenseNet`` or the torchvision ResNet it wraps (classifier included, unused).
        arch: ``"densenet121"``, ``"resnet50"`` or ``"resnet101"``.

    Shapes: ``[B, 3 or 1, H, W]`` (values as ``mean``/``std`` make them, [-1024, 1024]) -> ``[B, dim]``.
    """

    def __init__(self, weights: str, state: dict[str, torch.Tensor] | None = None, weights_sha256: str = "",
                 xrv: ModuleType | None = None) -> None:
        super().__init__()
        xrv = xrv or import_xrv()
        _check_weights(xrv, weights)
        info = xrv.models.model_urls[weights]
        self.weights = weights
        self.arch = _arch(xrv, weights)
        self.weights_sha256 = weights_sha256
        self.xrv_version = str(getattr(xrv, "__version__", "?"))
        self.model = _build_network(xrv, self.arch, len(info["labels"]))
        if state is not None:
            self._load(state)
        self.name = f"xrv:{weights}"
        self.dim = 1024 if self.arch == "densenet121" else 2048
        self.image_size = int(info.get("input_resolution", 224))
        self.mean = XRV_MEAN
        self.std = XRV_STD

    def _load(self, state: dict[str, torch.Tensor]) -> None:
        if mismatch := state_mismatch(self.model, state):
            raise ArtifactCorruptError(
                f"the weights do not fit the {self.arch} of xrv:{self.weights} ({mismatch}); pass the file of these "
                "weights, or a state_dict of the same architecture")
        self.model.load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.weights, "arch": self.arch,
                "weights_sha256": self.weights_sha256, "tower_version": XRV_TOWER_VERSION,
                "torchxrayvision": self.xrv_version}

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels -> torchxrayvision's input: one channel at the native side.

        Shapes: ``[B, 3 or 1, H, W]`` -> ``[B, 1, S, S]`` with ``S = image_size``.
        """
        if pixels.dim() != 4 or pixels.shape[1] not in (1, 3):
            raise ConfigError(f"xrv towers take [B, 1|3, H, W] pixels, got {tuple(pixels.shape)}")
        x = pixels.mean(dim=1, keepdim=True) if pixels.shape[1] == 3 else pixels
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        return x

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last feature map, for attention over regions.

        Shapes: ``[B, 3, H, W]`` -> ``[B, 1024, S/32, S/32]`` (DenseNet) or ``[B, 2048, S/32, S/32]`` (ResNet).
        """
        x = self.preprocess(pixels)
        net: Any = self.model
        if self.arch == "densenet121":
            return F.relu(net.features(x))
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        """Global average of :meth:`forward_features`. Shapes: ``[B, C, h, w]`` -> ``[B, C]``."""
        return fmap.mean(dim=(2, 3))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled features (torchxrayvision's ``features2`` / ``features``).

        Shapes: ``[B, 3, H, W]`` -> ``[B, dim]``.
        """
        return self.pool(self.forward_features(pixels))


def build_xrv(arg: str = "", *, cache_dir: str | None = None, sha256: str | None = None,
              checkpoint: str | None = None, **kwargs: Any) -> XRVImageTower:
    """Registry factory of ``"xrv:<weights>"``.

    Args:
        arg: the weights name.
        cache_dir: torchxrayvision's cache folder (default ``~/.torchxrayvision/models_data/``).
        sha256: the expected sha256 of the weights file (torchxrayvision publishes none; pin your own).
        checkpoint: a state_dict file of the same architecture, read instead of the cached weights.

    Raises:
        ConfigError: no weights name, or unknown options. ModelNotFoundError: torchxrayvision or the weights file
        is missing. ResolutionError: an unknown weights name. ArtifactCorruptError: a hash mismatch or an unreadable
        file.
    """
    if kwargs:
        raise ConfigError(f"'xrv' towers take only cache_dir, sha256 and checkpoint, got {sorted(kwargs)}")
    if not arg:
        raise ConfigError("write 'xrv:<weights>', e.g. 'xrv:densenet121-res224-all' or 'xrv:resnet50-res512-all'")
    xrv = import_xrv()
    _check_weights(xrv, arg)
    path = Path(checkpoint).expanduser() if checkpoint else resolve_xrv_weights(arg, cache_dir, xrv)
    state, digest = load_xrv_state(path, xrv, sha256=sha256)
    return XRVImageTower(arg, state, weights_sha256=digest, xrv=xrv)
