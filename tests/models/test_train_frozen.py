"""KG-CLIP on the pretrained EfficientNet-Lite0 tower: training on cached frozen features (frozen and last-block
modes), save/load round trip, agreement between cached features and pixels, refusal of mismatched features."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kgclip.errors import ConfigError
from kgclip.models.kgclip import KGClipModel
from kgclip.models.train import (encode_pair_images, evaluate_retrieval, frozen_feature_source, pretrained_recipe,
                                 train)
from kgclip.models.train_data import ImageTextPair, prepare_features
from kgclip.text.encoders import load_text_encoder

FINDINGS = ["pleural effusion", "pneumothorax", "cardiomegaly"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[ImageTextPair]:
    root = tmp_path_factory.mktemp("frozen")
    rng = np.random.default_rng(0)
    out = []
    for i in range(9):
        k = i % 3
        pixels = (rng.random((40, 40)) * 60).astype(np.uint8)
        pixels[k * 13:k * 13 + 13, :] = 255
        Image.fromarray(pixels).save(root / f"img{i}.png")
        out.append(ImageTextPair(str(root / f"img{i}.png"), f"{FINDINGS[k]} case {i}", f"case{i}"))
    return out


def _config(train_blocks: int):  # noqa: ANN202
    config = pretrained_recipe(train_blocks=train_blocks, text_tower="hashing-64", embed_dim=16, text_hidden=16)
    model = dataclasses.replace(config.model, image_hidden=16, ensemble=1)  # the recipe's 5 heads: see below
    return dataclasses.replace(config, model=model, epochs=2, batch_size=4, val_fraction=0.3, warmup_steps=1,
                               threads=1)


@pytest.mark.parametrize("train_blocks", [0, 1])
def test_train_on_cached_features_and_reload(tmp_path: Path, pairs: list[ImageTextPair], train_blocks: int) -> None:
    config = _config(train_blocks)
    encoder = load_text_encoder("hashing-64")
    source = frozen_feature_source(config.model, cache_dir=tmp_path / "cache")
    assert source["image_part"] == ("pooled" if train_blocks == 0 else "tap15")
    feats = prepare_features(pairs, image_size=32, text_encoder=encoder, cache_dir=tmp_path / "cache",
                             progress=False, **source)
    assert feats.images.numel() == 0 and feats.image_feats is not None
    before = {k: v.clone() for k, v in KGClipModel(config.model, text_encoder=encoder).image_tower.state_dict().items()}
    run = train(config, feats, tmp_path / "model", progress=False, text_encoder=encoder)
    tower = run.model.image_tower.state_dict()
    changed = {k for k, v in tower.items() if not torch.equal(v, before[k])}
    if train_blocks == 0:
        assert changed == set()  # frozen backbone: only the heads train
    else:  # only the last block and the head train; batch-norm statistics stay ImageNet's
        assert changed and all(k.startswith(("_blocks.15.", "_conv_head", "_bn1.")) for k in changed)
        assert not any("running_" in k for k in changed)
    loaded = KGClipModel.from_pretrained(tmp_path / "model", text_encoder=encoder)
    cached = encode_pair_images(loaded, feats)
    assert torch.allclose(cached, encode_pair_images(run.model, feats), atol=1e-5)
    # The cached features are the tower's own outputs: raw pixels through the saved model give the same vectors.
    pixels = torch.stack([source["image_features"]._decode(p.image) for p in pairs])
    with torch.no_grad():
        direct = loaded.encode_image(pixels)
    assert torch.allclose(direct, cached, atol=1e-3)
    assert evaluate_retrieval(loaded, feats).n_images == len(pairs)


def test_features_must_match_the_mode(tmp_path: Path, pairs: list[ImageTextPair]) -> None:
    encoder = load_text_encoder("hashing-64")
    pixels = prepare_features(pairs, image_size=32, text_encoder=encoder, cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="image_features=TowerFeatures"):
        train(_config(0), pixels, None, progress=False, text_encoder=encoder)
    with pytest.raises(ConfigError, match="train_blocks"):
        dataclasses.replace(_config(0).model, train_blocks=-2)


def test_pretrained_recipe_drops_pooled_features() -> None:
    assert pretrained_recipe().model.image_dropout == 0.5 and pretrained_recipe().model.ensemble == 5
    assert pretrained_recipe(image_dropout=0.0).model.image_dropout == 0.0  # an explicit option wins


def test_an_ensemble_trains_its_members_as_single_heads_and_joins_them(tmp_path: Path,
                                                                       pairs: list[ImageTextPair]) -> None:
    """Member 0 is exactly the single head of the same seed; the other members start, shuffle and drop out
    differently but are selected on the same validation cases; the joined model saves and reloads."""
    config = _config(0)
    ens_config = dataclasses.replace(config, model=dataclasses.replace(config.model, ensemble=3))
    encoder = load_text_encoder("hashing-64")
    source = frozen_feature_source(config.model, cache_dir=tmp_path / "cache")
    feats = prepare_features(pairs, image_size=32, text_encoder=encoder, cache_dir=tmp_path / "cache",
                             progress=False, **source)
    single = train(config, feats, None, progress=False, text_encoder=encoder)
    run = train(ens_config, feats, tmp_path / "ens", progress=False, text_encoder=encoder)
    image, single_image = encode_pair_images(run.model, feats), encode_pair_images(single.model, feats)
    assert image.shape == (len(pairs), 3 * config.model.embed_dim)
    members = run.model.split_members(image)
    assert torch.allclose(members[0], single_image, atol=1e-6)
    assert not torch.allclose(members[1], members[0], atol=1e-3) and not torch.allclose(members[2], members[1],
                                                                                          atol=1e-3)
    assert {r["member"] for r in run.history} == {0, 1, 2} and run.n_val == single.n_val
    info = KGClipModel.read_checkpoint_info(tmp_path / "ens")["extra"]
    assert len(info["best_epoch"]) == 3 and len(info["member_val_scores"]) == 3
    loaded = KGClipModel.from_pretrained(tmp_path / "ens", text_encoder=encoder)
    assert torch.allclose(encode_pair_images(loaded, feats), image, atol=1e-5)
    with pytest.raises(ConfigError, match="member"):
        dataclasses.replace(config, member=-1)
