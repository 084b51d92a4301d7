"""Image towers by name: a built-in compact CNN, a Hugging Face ``CLIPModel`` directory, an open_clip directory.

Every tower is an :class:`ImageTower` (a ``torch.nn.Module``) with ``dim``, ``image_size``, ``mean``/``std``
(the normalisation its weights expect, applied by :mod:`kgclip.imaging.transforms`), ``forward(pixels) -> [B, dim]``
and a ``fingerprint`` of its architecture and current weights. Choose one with :func:`load_image_tower`:

- ``"builtin-cnn"`` (alias ``"builtin"``, ``"default"``): a ~1.2 M-parameter residual CNN sized to train from scratch
  on a 2-core CPU (no pretrained weights exist for it; the KG-CLIP model trains it);
- ``"hf-clip:<dir>"`` or just ``"<dir>"`` holding a Hugging Face ``CLIPModel`` (``config.json`` with
  ``model_type == "clip"``): its vision tower and visual projection, loaded with ``local_files_only=True``;
- ``"open_clip:<dir>"`` or a ``<dir>`` holding ``open_clip_config.json``: an open_clip model from local files
  (needs the optional extra ``pip install kgclip[openclip]``).

Models are never downloaded. The text towers of the same CLIP directories load with
:func:`kgclip.text.encoders.load_text_encoder` (``HFTextEncoder`` reads a ``CLIPModel`` directory's text tower).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kgclip.config import Config
from kgclip.errors import ConfigError, ModelNotFoundError
from kgclip.fingerprint import Hasher
from kgclip.resolver import Registry

__all__ = [
    "ImageTower",
    "BuiltinCNNConfig",
    "BuiltinCNN",
    "HFCLIPImageTower",
    "OpenCLIPImageTower",
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
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageTower(nn.Module):
    """Base class of image towers.

    Attributes:
        name: how the tower was resolved (``"builtin-cnn"``, ``"hf-clip:/path"``...).
        dim: output feature size.
        image_size: square input side in pixels the weights expect.
        mean: per-channel mean subtracted after scaling pixels to [0, 1] (RGB order).
        std: per-channel standard deviation divided by after the mean.
    """

    name: str
    dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Shapes: ``pixels`` ``[B, 3, H, W]`` float, normalised with ``mean``/``std`` -> ``[B, dim]``
        (not L2-normalised; use :meth:`encode` for unit vectors)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description of the architecture (what ``fingerprint`` hashes besides the weights)."""
        return {"name": self.name, "dim": self.dim, "image_size": self.image_size,
                "mean": list(self.mean), "std": list(self.std), "class": type(self).__name__}

    @property
    def fingerprint(self) -> str:
        """Hash of :meth:`describe` and the current weights (changes when the tower is trained further).

        Hashes every parameter and buffer: a few ms for the built-in tower, about a second for a ViT-B CLIP.
        """
        h = Hasher().update_json(self.describe())
        for key, value in sorted(self.state_dict().items()):
            h.update_str(key).update_array(value.detach().to("cpu").contiguous().numpy())
        return h.hexdigest()

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Embed a batch in eval mode, in chunks, as unit vectors.

        Shapes: ``pixels`` ``[N, 3, H, W]`` -> ``[N, dim]`` float32 on the CPU, unit L2 norm.
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        chunks = [self(pixels[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(pixels), batch_size)]
        self.train(was_training)
        out = torch.cat(chunks) if chunks else torch.empty(0, self.dim)
        return nn.functional.normalize(out, dim=-1)


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


# ------------------------------------------------------------------------------------------ Hugging Face CLIP


def _read_preprocessor(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    proc = path / "preprocessor_config.json"
    if proc.is_file():
        try:
            cfg = json.loads(proc.read_text(encoding="utf-8"))
            mean, std = cfg.get("image_mean"), cfg.get("image_std")
            if mean and std and len(mean) == 3 and len(std) == 3:
                return tuple(float(m) for m in mean), tuple(float(s) for s in std)
        except (OSError, json.JSONDecodeError):
            pass  # a broken preprocessor file falls back to CLIP's own statistics
    return CLIP_MEAN, CLIP_STD


class HFCLIPImageTower(ImageTower):
    """The vision tower and visual projection of a local Hugging Face ``CLIPModel`` directory.

    Args:
        path: directory written by ``CLIPModel.save_pretrained`` (``config.json`` + weights).

    Shapes: ``[B, 3, S, S]`` with ``S = image_size`` -> ``[B, projection_dim]``.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        _require_dir(self.path, "config.json", "a Hugging Face CLIPModel directory")
        from transformers import AutoConfig, CLIPModel
        config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        if getattr(config, "model_type", "") != "clip":
            raise ModelNotFoundError(
                f"{self.path} holds a {getattr(config, 'model_type', '?')!r} model, not a CLIP model; pass a "
                "CLIPModel directory (model_type 'clip') or use 'builtin-cnn'"
            )
        clip = CLIPModel.from_pretrained(self.path, local_files_only=True)
        self.vision_model = clip.vision_model
        self.visual_projection = clip.visual_projection
        del clip  # the text tower is loaded separately, by kgclip.text.encoders
        self.name = f"hf-clip:{self.path}"
        self.dim = int(config.projection_dim)
        self.image_size = int(config.vision_config.image_size)
        self.mean, self.std = _read_preprocessor(self.path)  # type: ignore[assignment]

    def describe(self) -> dict[str, Any]:
        # The path is left out so that the same weights copied elsewhere keep their fingerprint.
        return {**super().describe(), "name": "hf-clip"}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, S, S]`` -> ``[B, dim]``."""
        pooled = self.vision_model(pixel_values=pixels).pooler_output
        return self.visual_projection(pooled)


# -------------------------------------------------------------------------------------------------- open_clip


class OpenCLIPImageTower(ImageTower):
    """The visual tower of an open_clip model stored in a local directory.

    The directory holds ``open_clip_config.json`` (``model_cfg`` + ``preprocess_cfg``, the Hugging Face hub layout)
    and ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``. Needs ``pip install kgclip[openclip]``.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            import open_clip
        except ImportError as exc:
            raise ModelNotFoundError(
                "open_clip towers need the optional extra: pip install 'kgclip[openclip]' (open_clip_torch), "
                "or use a Hugging Face CLIPModel directory or 'builtin-cnn'"
            ) from exc
        self.path = Path(path).expanduser()
        _require_dir(self.path, "open_clip_config.json", "an open_clip model directory")
        cfg = json.loads((self.path / "open_clip_config.json").read_text(encoding="utf-8"))
        model_cfg = dict(cfg.get("model_cfg") or {})
        if "embed_dim" not in model_cfg or "vision_cfg" not in model_cfg:
            raise ModelNotFoundError(f"{self.path}/open_clip_config.json has no model_cfg with embed_dim/vision_cfg")
        try:
            # open_clip >= 3 resolves "local-dir:" itself (config, weights, preprocessing) without network.
            model = open_clip.create_model(f"local-dir:{self.path}", device="cpu")
        except Exception:  # noqa: BLE001 - older open_clip: build from the config and load the weights ourselves
            model = self._build_manually(open_clip, model_cfg)
        self.visual = model.visual
        del model
        pre = cfg.get("preprocess_cfg") or {}
        model_cfg = cfg["model_cfg"]
        self.name = f"open_clip:{self.path}"
        self.dim = int(model_cfg["embed_dim"])
        size = model_cfg.get("vision_cfg", {}).get("image_size", 224)
        self.image_size = int(size[0] if isinstance(size, list | tuple) else size)
        self.mean = tuple(pre.get("mean", CLIP_MEAN))  # type: ignore[assignment]
        self.std = tuple(pre.get("std", CLIP_STD))  # type: ignore[assignment]

    def _build_manually(self, open_clip: Any, model_cfg: dict[str, Any]) -> nn.Module:
        weights = next((self.path / n for n in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
                        if (self.path / n).is_file()), None)
        if weights is None:
            raise ModelNotFoundError(f"{self.path} has no open_clip_model.safetensors or open_clip_pytorch_model.bin")
        custom_text = bool(model_cfg.pop("custom_text", False))
        model = (open_clip.CustomTextCLIP if custom_text else open_clip.CLIP)(**model_cfg)
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": "open_clip"}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, S, S]`` -> ``[B, dim]``."""
        return self.visual(pixels)


# ------------------------------------------------------------------------------------------------ resolution


def _require_dir(path: Path, marker: str, what: str) -> None:
    if not path.is_dir():
        raise ModelNotFoundError(
            f"{path} is not a directory. Pass the local path of {what} (models are never downloaded), "
            "or use 'builtin-cnn'."
        )
    if not (path / marker).is_file():
        raise ModelNotFoundError(f"{path} has no {marker}, so it is not {what}. Save one with save_pretrained().")


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


def is_builtin(name: str) -> bool:
    """Whether ``name`` resolves to the built-in CNN (the one tower that takes architecture options)."""
    kind = name.strip().partition(":")[0]
    return kind in IMAGE_TOWERS and IMAGE_TOWERS.resolve(kind) is _builtin


def load_image_tower(name_or_path: str = "builtin-cnn", **kwargs: Any) -> ImageTower:
    """Resolve an image tower by name, ``name:argument`` or local directory.

    Args:
        name_or_path: ``"builtin-cnn"``, ``"hf-clip:<dir>"``, ``"open_clip:<dir>"`` or a directory (its files tell
            which kind it is).
        **kwargs: architecture options for ``builtin-cnn`` (fields of :class:`BuiltinCNNConfig`: ``dim``,
            ``image_size``, ``widths``...). Pretrained towers take none.

    Returns:
        The tower in eval mode on the CPU.

    Raises:
        ResolutionError: an unknown name (the message lists the choices).
        ModelNotFoundError: a missing or malformed model directory, or a missing optional package.
    """
    key = name_or_path.strip()
    path = Path(key).expanduser()
    if path.is_dir():
        if (path / "open_clip_config.json").is_file():
            kind, arg = "open_clip", str(path)
        else:
            kind, arg = "hf-clip", str(path)
    else:
        kind, _, arg = key.partition(":")
        if not arg and ("/" in key or key.startswith(".")):
            raise ModelNotFoundError(
                f"{key} is neither a known image tower nor an existing directory; choices are "
                f"{{{', '.join(IMAGE_TOWERS)}}} or a local CLIPModel / open_clip directory"
            )
    tower = IMAGE_TOWERS.resolve(kind)(arg, **kwargs)
    return tower.eval()
