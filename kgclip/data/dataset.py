"""A torch ``Dataset`` of image-text pairs with a transform, decoding each image once.

>>> from kgclip.data.medpix import read_medpix, medpix_pairs                     # doctest: +SKIP
>>> ds = ImageTextDataset(medpix_pairs(read_medpix(split="train")), ImageTransform(train=True))  # doctest: +SKIP
>>> batch = next(iter(DataLoader(ds, batch_size=32, collate_fn=collate_image_text)))           # doctest: +SKIP
>>> batch["pixels"].shape                                                                       # doctest: +SKIP
torch.Size([32, 3, 160, 160])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from kgclip.errors import ImageReadError
from kgclip.imaging.io import read_image
from kgclip.imaging.transforms import ImageTransform, to_chw

__all__ = ["ImageTextDataset", "collate_image_text"]


def _path_and_text(item: Any) -> tuple[Path, str]:
    if isinstance(item, tuple | list) and len(item) == 2:
        return Path(item[0]), str(item[1])
    if hasattr(item, "image_path") and hasattr(item, "text"):
        return Path(item.image_path), str(item.text)
    raise TypeError(f"items are (image_path, text) pairs or records with .image_path and .text, got {type(item)}")


class ImageTextDataset(Dataset):
    """Image-text pairs -> ``{"pixels": [3, S, S], "text": str, "index": int}``.

    Args:
        items: ``(image_path, text)`` pairs or records with ``image_path`` and ``text`` (MedPix images, manifest
            items, ...).
        transform: turns a ``[3, H, W]`` tensor in ``[0, 1]`` into model input (default: eval
            :class:`ImageTransform`); use ``ImageTransform(train=True)`` for augmentation.
        cache: keep each decoded image in memory (downscaled so its longer side is ``cache_side``, as uint8), so
            epochs after the first skip decoding; about ``cache_side**2 * 3`` bytes per image.
        cache_side: longer side of cached images (default: 1.25 x the transform's size, room for random crops).
        read_kwargs: passed to :func:`kgclip.imaging.io.read_image` (e.g. ``window="lung"``).
    """

    def __init__(self, items: Sequence[Any], transform: ImageTransform | None = None, *, cache: bool = True,
                 cache_side: int | None = None, read_kwargs: dict[str, Any] | None = None) -> None:
        self.pairs = [_path_and_text(item) for item in items]
        self.transform = transform or ImageTransform()
        self.cache = cache
        self.cache_side = cache_side or round(self.transform.config.size * 1.25)
        self.read_kwargs = read_kwargs or {}
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.pairs]

    def _decode(self, index: int) -> torch.Tensor:
        hit = self._cache.get(index)
        if hit is not None:
            return hit.float().div_(255.0).expand(3, -1, -1)
        path = self.pairs[index][0]
        try:
            kwargs = {"max_side": self.cache_side, **self.read_kwargs}  # the cache keeps no more than this anyway
            chw = self.transform.prepare(to_chw(read_image(path, **kwargs)))
        except ImageReadError as exc:
            raise ImageReadError(f"item {index} ({os.fspath(path)}): {exc}") from exc
        if self.cache:
            h, w = chw.shape[-2:]
            scale = min(1.0, self.cache_side / max(h, w))
            small = chw
            if scale < 1.0:
                small = F.interpolate(chw.unsqueeze(0), size=(max(1, round(h * scale)), max(1, round(w * scale))),
                                      mode="bilinear", align_corners=False, antialias=True).squeeze(0)
            grey = bool((small[0] == small[1]).all() and (small[1] == small[2]).all())
            stored = small[:1] if grey else small  # grey scans (most of them) cost a third of the memory
            self._cache[index] = stored.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
            return self._cache[index].float().div_(255.0).expand(3, -1, -1)
        return chw

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Shapes: ``pixels`` ``[3, S, S]`` float32."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        return {"pixels": self.transform(self._decode(index).contiguous()), "text": self.pairs[index][1],
                "index": index}

    def preload(self, show_progress: bool = True) -> None:
        """Decode every image into the cache now (with a progress bar), so errors surface before training."""
        from tqdm.auto import tqdm

        if not self.cache:
            return
        for i in tqdm(range(len(self)), desc="decoding images", disable=not show_progress, leave=False):
            if i not in self._cache:
                self._decode(i)


def collate_image_text(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of items: ``pixels`` ``[B, 3, S, S]``, ``text`` list of B strings, ``index`` ``[B]`` long."""
    return {"pixels": torch.stack([b["pixels"] for b in batch]), "text": [b["text"] for b in batch],
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long)}
