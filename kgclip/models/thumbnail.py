"""The training-free thumbnail image descriptor: the engine's default image features.

A fixed descriptor (a normalised 32x32 grey thumbnail plus an intensity histogram). It recognises the same or a
near-identical image reliably and similar acquisitions (modality, plane, body region) roughly; it does not understand
pathology. A trained image tower (a KG-CLIP model, a pretrained backbone) is used for semantic search instead.
It has the interface of every image-feature extractor: ``name``, ``dim``, ``fingerprint``, ``embed`` and
``embed_one``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgclip.fingerprint import Hasher
from kgclip.models.image_input import ImageLike, LoadedImage, load_image

__all__ = ["ThumbnailFeaturizer"]


class ThumbnailFeaturizer:
    """Training-free image descriptor: a 32x32 grey thumbnail (zero mean) and a 32-bin histogram, L2-normalised.

    Shapes:
        ``embed(images)`` -> ``[N, dim]`` float32 unit vectors, ``dim = size * size + 32``.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.dim = size * size + 32
        self.name = f"thumbnail-{size}"

    @property
    def fingerprint(self) -> str:
        return Hasher().update_str(f"kgclip-thumbnail-v1-{self.size}").hexdigest()

    def embed_one(self, image: ImageLike | LoadedImage) -> np.ndarray:
        from PIL import Image

        pixels = load_image(image).pixels
        img = Image.fromarray((pixels * 255).astype(np.uint8)).resize((self.size, self.size), Image.BILINEAR)
        thumb = np.asarray(img, dtype=np.float32).ravel() / 255.0
        thumb = thumb - thumb.mean()
        thumb /= max(float(np.linalg.norm(thumb)), 1e-6)
        hist = np.histogram(pixels, bins=32, range=(0.0, 1.0))[0].astype(np.float32)
        hist = np.sqrt(hist / max(hist.sum(), 1.0))
        vec = np.concatenate([thumb, 0.5 * hist])
        return vec / max(float(np.linalg.norm(vec)), 1e-6)

    def embed(self, images: Sequence[ImageLike | LoadedImage], show_progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = [self.embed_one(im) for im in tqdm(images, desc="image features", disable=not show_progress,
                                                   leave=False)]
        return np.stack(rows).astype(np.float32)
