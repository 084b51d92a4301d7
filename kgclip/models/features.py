"""Image features by name, with a content-addressed on-disk cache of frozen tower features.

Every image-feature extractor has one interface (what the engine, VQA and drafting use):

- ``name``, ``dim``, ``fingerprint`` (changes when the features would change);
- ``encode(images, show_progress=False) -> np.ndarray`` ``[N, dim]`` float32 unit rows;
- ``embed`` / ``embed_one``: the same, under the names the engine's workspace code calls.

They resolve by name through :data:`IMAGE_FEATURES` (:func:`load_image_features`): ``"efficientnet-lite0"`` (the
pretrained tower's pooled features, cached), ``"thumbnail"`` (the training-free 32x32 descriptor of
:mod:`kgclip.models.thumbnail`) and ``"tower:<image tower name>"`` for any other tower
(:func:`kgclip.models.backbones.load_image_tower`).

Cache (:class:`TowerFeatures`): one safetensors file per image and part under
``<cache_dir>/image-features/<key>/<h[:2]>/<h>.<part>.safetensors`` where ``h`` is the sha256 of the image file's
bytes (or of an array's values) and ``key`` hashes the tower fingerprint, the preprocessing and the precision. Parts:
``pooled`` ``[dim]`` float32, ``spatial`` ``[C, h, w]`` float16 (the 7x7 map at 224 px; towers with
``forward_features`` and no tap points give it from the same pass), ``tap<k>`` float16 (the
input of block ``k``, for partial fine-tuning). A damaged entry is recomputed; entries are written atomically and
only after every image of the call was decoded, so an unreadable image leaves the cache untouched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.config import kgclip_home
from kgclip.errors import ConfigError, ImageReadError
from kgclip.fingerprint import Hasher
from kgclip.models.tower import ImageTower, resolve_device
from kgclip.resolver import Registry

__all__ = ["TowerFeatures", "IMAGE_FEATURES", "load_image_features", "PREPROCESS_VERSION", "default_cache_dir"]

# Bump when decoding / resizing changes: old cache entries then stop matching instead of being reused.
PREPROCESS_VERSION = "read_image-resize_pad-v1"
_FORMATS = {"pooled": torch.float32, "spatial": torch.float16}


def default_cache_dir() -> Path:
    """``kgclip_home()/cache/image-features`` (``$KGCLIP_HOME`` or ``~/.cache/kgclip``)."""
    return kgclip_home() / "cache" / "image-features"


def _content_hash(image: Any) -> str:
    h = hashlib.sha256()
    if isinstance(image, str | os.PathLike):
        try:
            with open(image, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise ImageReadError(f"{image}: cannot read the file ({exc.strerror}); check the path") from exc
        return h.hexdigest()
    if isinstance(image, bytes | bytearray | memoryview):
        h.update(bytes(image))
        return h.hexdigest()
    array = np.ascontiguousarray(getattr(image, "pixels", image))
    h.update(f"array:{array.dtype.str}:{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


class TowerFeatures:
    """Frozen features of an image tower, batched, cached by image content and tower fingerprint.

    Args:
        tower: the image tower (``efficientnet-lite0`` also gives ``spatial`` and ``tap<k>`` parts, ``xrv:`` and
            ``timm:`` CNN towers ``spatial``; other towers give ``pooled`` only).
        cache_dir: cache root (default :func:`default_cache_dir`); ``None``-like ``""`` turns caching off.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
        precision: ``"auto"`` (bfloat16 autocast on CUDA, float32 on the CPU), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        batch_size: images per forward pass.
    """

    def __init__(self, tower: ImageTower, *, cache_dir: str | os.PathLike[str] | None = None,
                 device: str = "auto", precision: str = "auto", batch_size: int = 32) -> None:
        if precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.precision = precision
        self.tower = tower.eval().to(self.device)
        self.batch_size = batch_size
        self.name = tower.name
        self.dim = int(tower.dim)
        self.cache_dir = None if cache_dir == "" else Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._fingerprint = Hasher().update_str("tower-features-v1").update_str(tower.fingerprint).update_str(
            PREPROCESS_VERSION).update_str(precision).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Hash of the tower's weights and architecture, the preprocessing and the precision."""
        return self._fingerprint

    # ------------------------------------------------------------------------------------------- interface

    def encode(self, images: Sequence[Any], show_progress: bool = False) -> np.ndarray:
        """Images (paths, bytes, arrays, or objects with ``.pixels``) -> ``[N, dim]`` float32 unit rows."""
        pooled = self.features(images, ("pooled",), show_progress=show_progress)["pooled"]
        return torch.nn.functional.normalize(pooled.float(), dim=-1).numpy()

    def embed(self, images: Sequence[Any], show_progress: bool = False) -> np.ndarray:
        """The engine's name for :meth:`encode`."""
        return self.encode(images, show_progress=show_progress)

    def embed_one(self, image: Any) -> np.ndarray:
        """One image -> ``[dim]`` float32 unit vector."""
        return self.encode([image])[0]

    # --------------------------------------------------------------------------------------------- features

    def features(self, images: Sequence[Any], parts: Sequence[str] = ("pooled",), *,
                 show_progress: bool = False) -> dict[str, torch.Tensor]:
        """Raw (not normalised) features of each part, from the cache where present.

        Args:
            images: paths, bytes, ``[H, W]`` / ``[H, W, 3]`` arrays in [0, 1], or objects with ``.pixels``.
            parts: ``"pooled"`` (``[N, dim]``), ``"spatial"`` (``[N, C, h, w]``), ``"tap<k>"`` (input of block k).

        Raises:
            ImageReadError: an image cannot be read (the message names it); nothing is written to the cache.
        """
        from tqdm.auto import tqdm

        for part in parts:
            self._check_part(part)
        keys = [_content_hash(im) for im in images]
        out: dict[str, list[torch.Tensor | None]] = {p: [None] * len(images) for p in parts}
        todo: dict[str, int] = {}  # content hash -> first index needing computation
        for i, key in enumerate(keys):
            cached = self._load(key, parts)
            if cached is None:
                todo.setdefault(key, i)
            else:
                for p in parts:
                    out[p][i] = cached[p]
        if todo:
            order = list(todo.items())
            # Decode everything first: an unreadable image fails before any cache entry is written.
            pixels = [self._decode(images[i]) for _, i in tqdm(order, desc="decoding images", disable=not show_progress,
                                                               leave=False)]
            computed: dict[str, dict[str, torch.Tensor]] = {}
            for start in tqdm(range(0, len(order), self.batch_size), desc=f"{self.name} features",
                              disable=not show_progress, leave=False):
                batch = torch.stack(pixels[start:start + self.batch_size])
                result = self._forward(batch, parts)
                for j, (key, _) in enumerate(order[start:start + self.batch_size]):
                    computed[key] = {p: result[p][j] for p in parts}
            for key, value in computed.items():
                self._store(key, value)
            for i, key in enumerate(keys):
                if key in computed:
                    for p in parts:
                        out[p][i] = computed[key][p]
        return {p: torch.stack(v) if v else self._empty(p) for p, v in out.items()}  # type: ignore[arg-type]

    def _check_part(self, part: str) -> None:
        if part == "pooled":
            return
        if not hasattr(self.tower, "forward_features"):
            raise ConfigError(f"tower {self.name!r} gives pooled features only; ask for parts=('pooled',)")
        if part.startswith("tap"):
            n = getattr(self.tower, "n_blocks", 0)
            if not n:
                raise ConfigError(f"tower {self.name!r} has no tap points; ask for 'pooled' or 'spatial'")
            if not part[3:].isdigit() or not 0 < int(part[3:]) < n:
                raise ConfigError(f"part {part!r}: write tap<k> with 0 < k < {n} (the input of block k)")
        elif part != "spatial":
            raise ConfigError(f"unknown feature part {part!r}; choose pooled, spatial or tap<k>")

    def _empty(self, part: str) -> torch.Tensor:
        return torch.zeros(0, self.dim) if part == "pooled" else torch.zeros(0)

    def _decode(self, image: Any) -> torch.Tensor:
        """One image -> ``[3, S, S]`` normalised float32 (read_image, grey as 3 channels, pad to square, resize)."""
        from kgclip.imaging.transforms import ImageTransform

        transform = ImageTransform.for_tower(self.tower)
        source = getattr(image, "pixels", image)
        if isinstance(source, str | os.PathLike | bytes | bytearray):
            from kgclip.imaging.io import read_image

            source = read_image(source, max_side=round(1.25 * self.tower.image_size))
        return transform(source)

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor, parts: Sequence[str]) -> dict[str, torch.Tensor]:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        x = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if parts == ("pooled",) or not hasattr(self.tower, "forward_features"):
                return {"pooled": self.tower(x).float().cpu()}
            return self._forward_parts(x, parts)

    def _forward_parts(self, x: torch.Tensor, parts: Sequence[str]) -> dict[str, torch.Tensor]:
        tower: Any = self.tower
        if not hasattr(tower, "stem"):  # a feature map but no tap points (xrv:, timm: CNNs): one pass for both parts
            fmap = tower.forward_features(x)
            pooled = tower.pool(fmap) if hasattr(tower, "pool") else tower(x)
            out = {"spatial": fmap.half().cpu(), "pooled": pooled.float().cpu()}
            return {p: out[p] for p in parts}
        taps = sorted(int(p[3:]) for p in parts if p.startswith("tap"))
        out: dict[str, torch.Tensor] = {}
        h, done = tower.stem(x), 0
        for k in taps:
            h = tower.blocks(h, done, k)
            done = k
            out[f"tap{k}"] = h.half().cpu()
        fmap = tower.head(tower.blocks(h, done))
        out["spatial"] = fmap.half().cpu()
        out["pooled"] = fmap.float().mean(dim=(2, 3)).cpu()
        return {p: out[p] for p in parts}

    # ------------------------------------------------------------------------------------------------ cache

    def _path(self, key: str, part: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self._fingerprint[:24] / key[:2] / f"{key}.{part}.safetensors"

    def _load(self, key: str, parts: Sequence[str]) -> dict[str, torch.Tensor] | None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        found = {}
        for part in parts:
            path = self._path(key, part)
            if path is None or not path.is_file():
                return None
            try:
                found[part] = load_file(str(path))["data"]
            except (OSError, KeyError, SafetensorError):
                return None  # damaged entry: recomputed and rewritten
        return found

    def _store(self, key: str, value: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        from kgclip.atomic import atomic_path

        for part, tensor in value.items():
            path = self._path(key, part)
            if path is None:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_file({"data": tensor.to(_FORMATS.get(part, torch.float16)).contiguous()}, str(tmp))


IMAGE_FEATURES: Registry[Callable[..., Any]] = Registry("image feature extractor")


@IMAGE_FEATURES.register("efficientnet-lite0")
def _lite0_features(arg: str = "", **kwargs: Any) -> TowerFeatures:
    from kgclip.models.backbones import load_image_tower

    return TowerFeatures(load_image_tower(f"efficientnet-lite0:{arg}" if arg else "efficientnet-lite0"), **kwargs)


@IMAGE_FEATURES.register("tower")
def _tower_features(arg: str = "", **kwargs: Any) -> TowerFeatures:
    from kgclip.models.backbones import load_image_tower

    if not arg:
        raise ConfigError("write 'tower:<image tower name>', e.g. 'tower:hf-hub:org/repo' or 'tower:/path/to/clip'")
    return TowerFeatures(load_image_tower(arg), **kwargs)


@IMAGE_FEATURES.register("thumbnail")
def _thumbnail(arg: str = "", **kwargs: Any) -> Any:
    from kgclip.models.thumbnail import ThumbnailFeaturizer

    if arg or kwargs:
        raise ConfigError(f"'thumbnail' takes no argument or options, got {arg!r} {sorted(kwargs)}")
    return ThumbnailFeaturizer()


def load_image_features(name: str = "efficientnet-lite0", **kwargs: Any) -> Any:
    """An image-feature extractor by name (``"efficientnet-lite0"``, ``"thumbnail"``, ``"tower:<tower>"``).

    Args:
        name: the extractor; ``kind:argument`` passes the argument (a weights file, a tower name).
        **kwargs: options of :class:`TowerFeatures` (``cache_dir``, ``device``, ``precision``, ``batch_size``).

    Raises:
        ResolutionError: an unknown name (the message lists the choices); ModelNotFoundError /
        ArtifactCorruptError: the tower's weights are missing or fail their checksum.
    """
    kind, _, arg = name.strip().partition(":")
    return IMAGE_FEATURES.resolve(kind)(arg, **kwargs)
