"""Model-input transforms: channels, aspect-preserving resize + pad, normalisation, augmentation, size checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgclip.errors import ConfigError, ImageReadError
from kgclip.imaging.io import ImageData
from kgclip.imaging.transforms import (
    ImageTransform,
    TransformConfig,
    adjust_brightness_contrast,
    normalize,
    resize_pad,
    rotate,
    to_chw,
)


def test_to_chw_grey_colour_and_frames() -> None:
    grey = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    t = to_chw(grey)
    assert t.shape == (3, 3, 4) and torch.equal(t[0], t[2])
    colour = np.zeros((3, 4, 3), np.float32)
    colour[..., 1] = 1
    assert to_chw(colour)[1].eq(1).all() and to_chw(colour)[0].eq(0).all()
    frames = ImageData(np.stack([np.full((5, 6), v, np.float32) for v in (0.1, 0.5, 0.9)]), {"channels": 1})
    assert to_chw(frames).shape == (3, 5, 6) and to_chw(frames)[0, 0, 0].item() == pytest.approx(0.5)
    assert to_chw(frames, frame=2)[0, 0, 0].item() == pytest.approx(0.9)
    with pytest.raises(ImageReadError, match="one frame"):
        to_chw(np.zeros((2, 3, 4, 5), np.float32))


def test_resize_pad_keeps_aspect() -> None:
    image = torch.ones(3, 100, 50)
    out = resize_pad(image, 64)
    assert out.shape == (3, 64, 64)
    cols = out[0].sum(0) > 0
    assert cols.sum().item() == 32 and cols[16:48].all() and not cols[:16].any()  # centred, 2:1 kept
    small = resize_pad(torch.ones(3, 20, 40), 64)  # upscales too
    assert (small[0].sum(1) > 0).sum().item() == 32


def test_normalize_and_eval_transform_deterministic() -> None:
    x = torch.full((3, 2, 2), 0.5)
    out = normalize(x, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    assert out[0].eq(0).all() and out[1].eq(1).all() and out[2].eq(0.5).all()
    transform = ImageTransform(TransformConfig(size=32))
    image = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    a, b = transform(image), transform(image)
    assert a.shape == (3, 32, 32) and torch.equal(a, b)


def test_train_augmentation_is_random_but_reproducible() -> None:
    image = np.random.default_rng(0).random((80, 60), dtype=np.float32)
    cfg = TransformConfig(size=48)
    first = ImageTransform(cfg, train=True, generator=torch.Generator().manual_seed(3))
    second = ImageTransform(cfg, train=True, generator=torch.Generator().manual_seed(3))
    a1, a2 = first(image), first(image)
    assert not torch.equal(a1, a2)
    assert torch.equal(a1, second(image))
    assert a1.shape == (3, 48, 48) and torch.isfinite(a1).all()


def test_rotation_and_intensity() -> None:
    x = torch.zeros(1, 21, 21)
    x[0, 10, 15] = 1.0
    assert torch.equal(rotate(x, 0.0), x)
    turned = rotate(x, 90.0)
    y, xx = divmod(int(turned[0].argmax()), 21)
    assert abs(xx - 10) <= 1 and abs(y - 10) == 5  # a point right of centre moves above/below it
    img = torch.tensor([[[0.2, 0.8]]])
    out = adjust_brightness_contrast(img, 0.1, 2.0)
    assert torch.allclose(out, torch.tensor([[[0.0, 1.0]]]))


def test_size_checks_and_config_validation() -> None:
    with pytest.raises(ImageReadError, match="1x1 px.*at least 16"):
        ImageTransform()(np.ones((1, 1), np.float32))
    with pytest.raises(ConfigError):
        TransformConfig(size=8)
    with pytest.raises(ConfigError):
        TransformConfig(crop_scale=(0.5, 1.5))
    cfg = TransformConfig(size=64)
    assert TransformConfig.from_dict(cfg.to_dict()) == cfg


def test_for_tower_uses_tower_statistics() -> None:
    from kgclip.models.backbones import load_image_tower

    tower = load_image_tower("builtin-cnn", dim=32, image_size=64)
    transform = ImageTransform.for_tower(tower)
    assert transform.config.size == 64 and transform.config.mean == tower.mean
    batch = transform.batch([np.random.default_rng(i).random((50, 70), dtype=np.float32) for i in range(3)])
    assert batch.shape == (3, 3, 64, 64)
    assert tower(batch).shape == (3, 32)
