"""Model input from :class:`~kgclip.imaging.io.ImageData`: 3-channel, aspect-preserving resize + pad, normalise,
augment.

All operations are torch tensor ops (no torchvision dependency), deterministic given a ``torch.Generator``.

>>> from kgclip.models.backbones import load_image_tower                        # doctest: +SKIP
>>> transform = ImageTransform.for_tower(load_image_tower("builtin-cnn"))       # doctest: +SKIP
>>> transform(read_image("scan.dcm")).shape                                     # doctest: +SKIP
torch.Size([3, 160, 160])
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kgclip.config import Config
from kgclip.errors import ConfigError, ImageReadError
from kgclip.imaging.io import ImageData, read_image
from kgclip.imaging.window import WINDOW_PRESETS, apply_window, resolve_window, scale_range

__all__ = [
    "ImageTransform",
    "TransformConfig",
    "to_chw",
    "resize_pad",
    "normalize",
    "random_resized_crop_box",
    "rotate",
    "adjust_brightness_contrast",
    "WINDOW_PRESETS",
    "apply_window",
    "resolve_window",
    "scale_range",
    "DEFAULT_MEAN",
    "DEFAULT_STD",
]

DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)


def to_chw(image: ImageData | np.ndarray | torch.Tensor, frame: int | str = "middle") -> torch.Tensor:
    """One frame as a ``[3, H, W]`` float32 tensor in ``[0, 1]`` (grey repeated to three channels).

    Shapes: ``[H, W]`` / ``[H, W, 3]`` (or an :class:`ImageData` with frames) -> ``[3, H, W]``.
    """
    if isinstance(image, ImageData):
        array: Any = image.frame(frame)
    else:
        array = image
    t = torch.as_tensor(np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array,
                        dtype=torch.float32)
    if t.ndim == 2:
        return t.unsqueeze(0).expand(3, -1, -1).contiguous()
    if t.ndim == 3 and t.shape[-1] == 3:
        return t.permute(2, 0, 1).contiguous()
    if t.ndim == 3 and t.shape[0] in (1, 3):
        return t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t
    raise ImageReadError(f"expected one frame [H, W] or [H, W, 3], got shape {tuple(t.shape)}; pick a frame first")


def resize_pad(image: torch.Tensor, size: int, fill: float = 0.0) -> torch.Tensor:
    """Resize the longer side to ``size`` keeping the aspect ratio, then pad centrally to ``size x size``.

    Shapes: ``[C, H, W]`` -> ``[C, size, size]``.
    """
    c, h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        # antialias keeps fine structure (e.g. reticular lung patterns) from aliasing when downscaling large scans.
        image = F.interpolate(image.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=scale < 1).squeeze(0)
    top, left = (size - nh) // 2, (size - nw) // 2
    return F.pad(image, (left, size - nw - left, top, size - nh - top), value=fill)


def normalize(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std``. Shapes: ``[..., 3, H, W]`` -> same."""
    m = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    return (image - m) / s


def random_resized_crop_box(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
                            generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """A crop ``(top, left, height, width)`` covering a random ``scale`` fraction with aspect in ``ratio``."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(2, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_r[0] + (log_r[1] - log_r[0]) * u[1])
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
            return top, left, ch, cw
    return 0, 0, h, w  # fall back to the whole image rather than a distorted crop


def rotate(image: torch.Tensor, degrees: float, fill: float = 0.0) -> torch.Tensor:
    """Rotate about the centre by ``degrees`` (bilinear), keeping the size. Shapes: ``[C, H, W]`` -> same."""
    if degrees == 0:
        return image
    theta = math.radians(degrees)
    _, h, w = image.shape
    # affine_grid works in normalised coordinates; the aspect terms keep the rotation rigid on non-square images.
    mat = torch.tensor([[math.cos(theta), -math.sin(theta) * h / w, 0.0],
                        [math.sin(theta) * w / h, math.cos(theta), 0.0]], dtype=image.dtype).unsqueeze(0)
    grid = F.affine_grid(mat, [1, *image.shape], align_corners=False)
    shifted = image.unsqueeze(0) - fill
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(0) + fill


def adjust_brightness_contrast(image: torch.Tensor, brightness: float, contrast: float) -> torch.Tensor:
    """``(x - mean) * contrast + mean + brightness``, clipped to ``[0, 1]``. Shapes: ``[C, H, W]`` -> same."""
    mean = image.mean()
    return ((image - mean) * contrast + mean + brightness).clamp_(0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class TransformConfig(Config):
    """How images become model input."""

    # Output side in pixels (square, after aspect-preserving resize and padding).
    size: int = 160
    # Per-channel normalisation the image tower expects (ImageNet statistics for the built-in tower).
    mean: tuple[float, ...] = DEFAULT_MEAN
    std: tuple[float, ...] = DEFAULT_STD
    # Smallest side (pixels) accepted; smaller images carry too little signal for the model.
    min_side: int = 16
    # Training augmentation: crop area fraction range, crop aspect range, max rotation (degrees), max brightness
    # shift and contrast factor change. Horizontal flips are off: laterality matters in radiology.
    crop_scale: tuple[float, ...] = (0.75, 1.0)
    crop_ratio: tuple[float, ...] = (0.85, 1.18)
    max_rotation: float = 7.0
    brightness: float = 0.08
    contrast: float = 0.12

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ConfigError(f"size must be >= 16 px, got {self.size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"mean and std need 3 values with std > 0, got {self.mean}, {self.std}")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"crop_scale must be (low, high) within (0, 1], got {self.crop_scale}")
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ConfigError(f"crop_ratio must be (low, high) > 0, got {self.crop_ratio}")
        if self.min_side < 1 or self.max_rotation < 0 or self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ConfigError("min_side >= 1, max_rotation >= 0, brightness >= 0 and 0 <= contrast < 1 required")


class ImageTransform:
    """Callable: image (path, bytes, :class:`ImageData`, array or ``[3, H, W]`` tensor) -> ``[3, size, size]``.

    Args:
        config: sizes, normalisation and augmentation strengths.
        train: apply random crop, rotation and brightness/contrast (eval mode is deterministic).
        generator: randomness source for reproducible augmentation.
    """

    def __init__(self, config: TransformConfig | None = None, train: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.config = config or TransformConfig()
        self.train = train
        self.generator = generator

    @classmethod
    def for_tower(cls, tower: Any, train: bool = False, **overrides: Any) -> ImageTransform:
        """The transform matching an :class:`~kgclip.models.backbones.ImageTower`'s size and normalisation."""
        config = TransformConfig(size=int(tower.image_size), mean=tuple(tower.mean), std=tuple(tower.std))
        return cls(dataclasses.replace(config, **overrides), train=train)

    def prepare(self, image: ImageData | np.ndarray | torch.Tensor | str | os.PathLike[str] | bytes) -> torch.Tensor:
        """Decode (if needed) and check the size; ``[3, H, W]`` in ``[0, 1]`` before resizing."""
        if isinstance(image, str | os.PathLike | bytes | bytearray):
            image = read_image(image)
        chw = image if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] == 3 else to_chw(image)
        h, w = chw.shape[-2:]
        if min(h, w) < self.config.min_side:
            raise ImageReadError(
                f"image is {h}x{w} px; the model needs at least {self.config.min_side} px per side. "
                "Pass the full-resolution image (not a thumbnail or icon)."
            )
        return chw

    def __call__(self, image: ImageData | np.ndarray | torch.Tensor | str | os.PathLike[str] | bytes) -> torch.Tensor:
        """Shapes: any supported image -> ``[3, size, size]`` float32, normalised."""
        cfg = self.config
        chw = self.prepare(image)
        if self.train:
            top, left, ch, cw = random_resized_crop_box(chw.shape[1], chw.shape[2], cfg.crop_scale,  # type: ignore[arg-type]
                                                        cfg.crop_ratio, self.generator)  # type: ignore[arg-type]
            chw = chw[:, top:top + ch, left:left + cw]
        out = resize_pad(chw, cfg.size)
        if self.train:
            u = torch.rand(3, generator=self.generator).tolist()
            out = rotate(out, (2 * u[0] - 1) * cfg.max_rotation)
            out = adjust_brightness_contrast(out, (2 * u[1] - 1) * cfg.brightness, 1 + (2 * u[2] - 1) * cfg.contrast)
        return normalize(out, cfg.mean, cfg.std)

    def batch(self, images: list[Any]) -> torch.Tensor:
        """Shapes: N images -> ``[N, 3, size, size]``."""
        return torch.stack([self(image) for image in images]) if images else torch.empty(0, 3, self.config.size,
                                                                                          self.config.size)
