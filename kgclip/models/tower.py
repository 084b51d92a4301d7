"""The image-tower interface every backbone implements (:class:`ImageTower`) and the normalisation constants.

Towers live in :mod:`kgclip.models.backbones` (built-in CNN, resolution by name), :mod:`kgclip.models.efficientnet`
(the pretrained default), :mod:`kgclip.models.hub_towers` (Hugging Face CLIP, open_clip, timm) and
:mod:`kgclip.models.xrv` (torchxrayvision chest X-ray CNNs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kgclip.fingerprint import Hasher

__all__ = ["ImageTower", "IMAGENET_MEAN", "IMAGENET_STD", "CLIP_MEAN", "CLIP_STD", "INCEPTION_MEAN",
           "INCEPTION_STD", "resolve_device"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# TF-trained EfficientNet-Lite weights expect pixels scaled to [-1, 1] ((x - 127) / 128 in the TF code).
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


def state_mismatch(module: nn.Module, state: dict[str, torch.Tensor], show: int = 3) -> str:
    """How ``state`` fails to fit ``module`` ("" when every key and shape matches): the first ``show`` missing,
    unexpected and reshaped keys, for an error message that says which architecture the weights belong to."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if not (missing or unexpected or shapes):
        return ""
    return f"missing {missing[:show]}, unexpected {unexpected[:show]}, other shapes {shapes[:show]}"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as torch reads it."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
