"""Image towers from other libraries: Hugging Face ``CLIPModel``, open_clip and timm, from local directories or
hub names.

- ``"hf-clip:<dir>"`` (or a ``<dir>`` whose ``config.json`` says ``model_type == "clip"``): the vision tower and
  visual projection of a ``CLIPModel``, loaded with ``local_files_only=True``;
- ``"open_clip:<dir>"`` (or a ``<dir>`` holding ``open_clip_config.json``): an open_clip model's visual tower (needs
  the optional extra ``pip install kgclip[openclip]``);
- ``"hf-hub:<org>/<repo>"``: either of the two above, resolved through the normal hub cache
  (:func:`kgclip.hub.resolve_hub_snapshot`), e.g. BiomedCLIP
  ``hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224`` (open_clip) or PubMedCLIP (``CLIPModel``); the
  text tower of the same snapshot loads with :func:`kgclip.text.encoders.load_text_encoder`, so both share one space;
- ``"timm:<name>"``: a timm model (``pretrained=True`` through the hub cache, or ``checkpoint=<file>``), pooled
  features, when timm is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kgclip.errors import ModelNotFoundError
from kgclip.models.tower import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, ImageTower

__all__ = ["HFCLIPImageTower", "OpenCLIPImageTower", "TimmImageTower", "tower_for_directory", "hub_tower",
           "require_dir"]


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
        require_dir(self.path, "config.json", "a Hugging Face CLIPModel directory")
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
        require_dir(self.path, "open_clip_config.json", "an open_clip model directory")
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


def require_dir(path: Path, marker: str, what: str) -> None:
    if not path.is_dir():
        raise ModelNotFoundError(
            f"{path} is not a directory. Pass the local path of {what} (models are never downloaded), "
            "or use 'builtin-cnn'."
        )
    if not (path / marker).is_file():
        raise ModelNotFoundError(f"{path} has no {marker}, so it is not {what}. Save one with save_pretrained().")


# ------------------------------------------------------------------------------------------------------- timm


class TimmImageTower(ImageTower):
    """Pooled features of a timm model (``num_classes=0``), with the normalisation of its pretrained config.

    Args:
        model_name: a timm architecture name (``tf_efficientnet_lite0``, ``resnet50``...).
        checkpoint: a state_dict file of that architecture (loaded with ``weights_only=True``); default: timm's
            pretrained weights through the hub cache.
    """

    def __init__(self, model_name: str, checkpoint: str | None = None) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as exc:
            raise ModelNotFoundError(
                f"'timm:{model_name}' needs timm: pip install timm (check that it keeps your torch), or use the "
                "built-in 'efficientnet-lite0'") from exc
        try:
            self.model = timm.create_model(model_name, pretrained=checkpoint is None, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - unknown name, offline without cache...: name the fix
            raise ModelNotFoundError(f"timm could not create {model_name!r} ({type(exc).__name__}: {exc}); check the "
                                     "name (timm.list_models()) and that its weights are in the hub cache") from exc
        if checkpoint is not None:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if k in self.model.state_dict()}
            self.model.load_state_dict(state, strict=False)
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        self.name = f"timm:{model_name}"
        self.dim = int(self.model.num_features)
        size = cfg.get("input_size", (3, 224, 224))
        self.image_size = int(size[-1])
        self.mean = tuple(cfg.get("mean", IMAGENET_MEAN))  # type: ignore[assignment]
        self.std = tuple(cfg.get("std", IMAGENET_STD))  # type: ignore[assignment]

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, S, S]`` -> the model's last feature map (``[B, C, h, w]`` for CNNs)."""
        return self.model.forward_features(pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, S, S]`` -> ``[B, dim]``."""
        return self.model(pixels)


# --------------------------------------------------------------------------------------------- by directory


def tower_for_directory(path: Path) -> ImageTower:
    """An open_clip tower when ``path`` holds ``open_clip_config.json``, else a Hugging Face CLIP tower."""
    if (path / "open_clip_config.json").is_file():
        return OpenCLIPImageTower(path)
    return HFCLIPImageTower(path)


def hub_tower(name: str) -> ImageTower:
    """``hf-hub:<org>/<repo>`` -> the tower of the cached snapshot (open_clip or ``CLIPModel``, from its files)."""
    from kgclip.hub import resolve_hub_snapshot

    tower = tower_for_directory(resolve_hub_snapshot(name))
    tower.name = name if name.startswith("hf-hub:") else f"hf-hub:{name}"
    return tower
