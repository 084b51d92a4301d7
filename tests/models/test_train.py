"""Training loop on a tiny synthetic dataset: steps, checkpoints, exact resume, refusal of another config."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import kgclip.models.train as train_mod
from kgclip.errors import ConfigError, ImageReadError
from kgclip.models.kgclip import KGClipConfig, KGClipModel
from kgclip.models.train import TrainConfig, split_by_group, train
from kgclip.models.train_data import ImageTextPair, manifest_pairs, prepare_features
from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder
from kgclip.text.linker import ConceptLinker

FINDINGS = ["pleural effusion", "pneumothorax", "cardiomegaly", "lung cancer"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ImageTextPair], Path]:
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(12):
        k = i % 4
        pixels = (rng.random((36, 30)) * 80).astype(np.uint8)
        pixels[:, k * 7:k * 7 + 7] = 255  # the finding is a bright stripe at its own position
        Image.fromarray(pixels).save(root / f"img{i}.png")
        pairs.append(ImageTextPair(str(root / f"img{i}.png"), f"{FINDINGS[k]} in case {i}", f"case{i // 2}"))
    return pairs, root


@pytest.fixture(scope="module")
def features(dataset: tuple[list[ImageTextPair], Path]):  # noqa: ANN201
    pairs, root = dataset
    return prepare_features(pairs, image_size=32, text_encoder=load_text_encoder("hashing-64"),
                            linker=ConceptLinker.from_graph(tiny_graph()), cache_dir=root / "cache", progress=False)


def _config(**changes: object) -> TrainConfig:
    model = KGClipConfig(text_tower="hashing-64", image_size=32, image_widths=(4, 8, 8, 16), embed_dim=16,
                         text_hidden=16, max_concepts=4)
    # 8 training pairs, batch 8: one step per epoch.
    return dataclasses.replace(TrainConfig(model=model, epochs=2, batch_size=8, val_fraction=0.3, warmup_steps=1,
                                           lr=5e-3, threads=1), **changes)


def test_features_are_cached_and_linked(features, dataset) -> None:  # noqa: ANN001
    pairs, root = dataset
    assert features.images.shape == (12, 1, 32, 32) and features.images.dtype == torch.uint8
    assert features.text_emb.shape == (12, 64)
    assert features.links[0][0] == ["RADLEX:RID4872"]
    assert bool(features.link_mask.any(dim=1).all())
    again = prepare_features(pairs, image_size=32, text_encoder=load_text_encoder("hashing-64"),
                             linker=ConceptLinker.from_graph(tiny_graph()), cache_dir=root / "cache", progress=False)
    assert torch.equal(again.images, features.images) and again.fingerprint == features.fingerprint
    assert len(list((root / "cache" / "pairs").glob("*.safetensors"))) == 2


def test_split_keeps_groups_together() -> None:
    groups = [f"g{i // 3}" for i in range(30)]
    train_idx, val_idx = split_by_group(groups, 0.2, seed=1)
    assert sorted(train_idx + val_idx) == list(range(30))
    assert not {groups[i] for i in train_idx} & {groups[i] for i in val_idx}
    assert len({groups[i] for i in val_idx}) == 2
    assert split_by_group(groups, 0.2, seed=1) == (train_idx, val_idx)


def test_two_steps_with_checkpoint_and_exact_resume(tmp_path: Path, features,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    ids = features.linked_concepts()
    vectors = torch.randn(len(ids), 8, generator=torch.Generator().manual_seed(0))
    table = {"concept_ids": ids, "concept_vectors": vectors, "concept_fingerprint": "t"}
    config = _config(model=dataclasses.replace(_config().model, enrichment="gnn", concept_dim=8))
    full = train(config, features, tmp_path / "full", progress=False, **table)
    assert [h["epoch"] for h in full.history] == [1, 2]
    assert full.n_train + full.n_val == 12 and full.n_val > 0
    assert all(np.isfinite(h["loss"]) for h in full.history)
    assert not (tmp_path / "full.checkpoint").exists()  # a completed run leaves only its model
    saved = KGClipModel.from_pretrained(tmp_path / "full", check_text_tower=True)
    assert saved.concept_ids == ids
    assert KGClipModel.read_checkpoint_info(tmp_path / "full")["extra"]["best_epoch"] == full.best_epoch

    # Interrupt a second run after its first epoch's checkpoint, then resume it.
    real_save = train_mod._save_checkpoint

    def save_then_stop(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config, features, tmp_path / "resumed", progress=False, **table)
    assert not (tmp_path / "resumed").exists()  # nothing half-written where the model goes
    assert (tmp_path / "resumed.checkpoint" / "optimizer.safetensors").is_file()
    monkeypatch.setattr(train_mod, "_save_checkpoint", real_save)

    # The interrupted run's checkpoint is refused by a run of another configuration instead of mixed in.
    with pytest.raises(ConfigError, match="another configuration"):
        train(dataclasses.replace(config, lr=1e-3), features, tmp_path / "resumed", progress=False, **table)

    resumed = train(config, features, tmp_path / "resumed", progress=False, **table)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[1]["loss"] == pytest.approx(full.history[1]["loss"], rel=1e-5)
    for key, value in full.model.state_dict().items():
        assert torch.allclose(value.float(), resumed.model.state_dict()[key].float(), atol=1e-5), key
    assert not (tmp_path / "resumed.checkpoint").exists()
    fresh = train(dataclasses.replace(config, epochs=1, lr=1e-3), features, tmp_path / "resumed", progress=False,
                  **table)
    assert len(fresh.history) == 1


def test_plain_training_with_alignment_is_rejected_without_concepts() -> None:
    with pytest.raises(ConfigError):
        _config(alignment_weight=0.5)


def test_alignment_loss_trains(tmp_path: Path, features) -> None:  # noqa: ANN001
    ids = features.linked_concepts()
    model = dataclasses.replace(_config().model, enrichment="text", concept_dim=8, concept_head=True)
    result = train(_config(model=model, epochs=1, alignment_weight=0.5, soft_target_weight=0.0), features, None,
                   progress=False, concept_ids=ids, concept_vectors=torch.randn(len(ids), 8))
    assert result.out_dir is None and np.isfinite(result.history[0]["loss"])


def test_manifest_reader_and_bad_image(tmp_path: Path, dataset) -> None:  # noqa: ANN001
    pairs, root = dataset
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("image,text,group\n" + "".join(f"{p.image},{p.text},{p.group}\n" for p in pairs[:3]))
    read = manifest_pairs(manifest)
    assert [p.text for p in read] == [p.text for p in pairs[:3]] and read[0].group == "case0"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError):
        prepare_features([ImageTextPair(str(bad), "x", "g")], image_size=32,
                         text_encoder=load_text_encoder("hashing-64"), cache_dir=tmp_path / "c", progress=False)


@pytest.mark.slow
@pytest.mark.data
def test_cli_quick_run_on_medpix(tmp_path: Path, shared_data: Path) -> None:
    from kgclip.cli.main import main

    out = tmp_path / "model"
    code = main(["train", "--data", "medpix", str(shared_data / "medpix-2.0"), "--out", str(out), "--quick",
                 "--enrichment", "none", "--no-progress", "--threads", "1"])
    assert code == 0
    info = json.loads((out / "kgclip_model.json").read_text())
    assert info["extra"]["source"] == {"dataset": "medpix-2.0", "split": "train"}
