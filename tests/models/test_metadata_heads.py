"""Image metadata heads: softmax regression on frozen features, class-balanced, L2 and temperature on a carve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgclip.errors import (
    ArtifactCorruptError,
    ConfigError,
    InputFormatError,
    ModelNotFoundError,
    StaleArtifactError,
)
from kgclip.models.metadata_heads import HeadConfig, MetadataHeads, fit_metadata_heads


def _blobs(n: int = 240, dim: int = 32, seed: int = 0, labels=("CT", "MR", "XR"), weights=None):
    """Unit rows around one centre per class; ``weights``: class shares (imbalanced when given)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(labels), dim))
    y = rng.choice(len(labels), size=n, p=weights)
    x = centres[y] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), [labels[k] for k in y], centres


def test_heads_learn_the_classes_and_give_calibrated_probabilities():
    x, y, centres = _blobs()
    heads = fit_metadata_heads(x, {"modality": y}, feature_fingerprint="fp", groups=[str(i // 2) for i in range(240)])
    assert heads.fields == ["modality"] and heads.labels("modality") == ["CT", "MR", "XR"]
    probe = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    p = heads.predict_proba("modality", probe)
    assert p.shape == (3, 3) and np.allclose(p.sum(axis=1), 1.0)
    assert p.argmax(axis=1).tolist() == [0, 1, 2]  # each class centre is its own class
    fig = heads.heads["modality"].figures
    assert fig["val_acc"] > fig["val_majority"] and fig["val_n"] > 0
    assert heads.heads["modality"].temperature > 0 and heads.heads["modality"].l2 in HeadConfig().l2_grid
    assert heads.predict(probe[:1])[0]["modality"]["CT"] == pytest.approx(float(p[0, 0]))


def test_a_rare_class_is_still_predicted_thanks_to_class_balance():
    x, y, centres = _blobs(n=400, weights=[0.9, 0.07, 0.03], seed=1)
    heads = fit_metadata_heads(x, {"modality": y}, feature_fingerprint="fp")
    probe = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    assert heads.predict_proba("modality", probe[2:3]).argmax() == 2


def test_label_sets_unknowns_and_untrainable_fields():
    x, y, _ = _blobs(n=120)
    region = [{"abdomen", "pelvis"} if v == "CT" else ("head" if v == "MR" else "chest") for v in y]
    plane = ["" if i % 3 else "axial" for i in range(len(y))]  # one class only: no head
    heads = fit_metadata_heads(x, {"region": region, "plane": plane}, feature_fingerprint="fp")
    assert heads.labels("region") == ["abdomen", "chest", "head", "pelvis"]
    assert "plane" in heads.info["skipped"]
    p = heads.predict(x[:1])[0]["region"]
    if y[0] == "CT":  # a CT image is abdomen *and* pelvis: the two share its probability
        assert p["abdomen"] + p["pelvis"] > 0.8
    with pytest.raises(ConfigError, match="no metadata head for 'plane'"):
        heads.predict_proba("plane", x[:1])


def test_bad_inputs_say_what_to_do():
    x, y, _ = _blobs(n=60)
    with pytest.raises(InputFormatError, match="one per image"):
        fit_metadata_heads(x, {"modality": y[:-1]}, feature_fingerprint="fp")
    with pytest.raises(InputFormatError, match="finite"):
        fit_metadata_heads(np.full((4, 3), np.nan), {"modality": ["a", "b", "a", "b"]}, feature_fingerprint="fp")
    with pytest.raises(InputFormatError, match="Label more images"):
        fit_metadata_heads(x, {"modality": ["CT"] * len(x)}, feature_fingerprint="fp")
    heads = fit_metadata_heads(x, {"modality": y}, feature_fingerprint="fp")
    with pytest.raises(InputFormatError, match="feature extractor"):
        heads.predict_proba("modality", np.zeros((2, 7)))
    with pytest.raises(ConfigError):
        HeadConfig(val_fraction=1.5)


def test_save_load_round_trip_and_refusals(tmp_path):
    x, y, _ = _blobs(n=90)
    heads = fit_metadata_heads(x, {"modality": y}, feature_fingerprint="fp-a")
    out = heads.save(tmp_path / "heads")
    assert sorted(p.name for p in out.iterdir()) == ["heads.json", "heads.safetensors"]  # no pickle anywhere
    back = MetadataHeads.load(out, feature_fingerprint="fp-a")
    assert np.allclose(back.predict_proba("modality", x), heads.predict_proba("modality", x))
    assert back.info["training_fingerprint"] == heads.info["training_fingerprint"]
    with pytest.raises(StaleArtifactError, match="other image features"):
        MetadataHeads.load(out, feature_fingerprint="fp-b")
    with pytest.raises(ModelNotFoundError, match="holds no metadata heads"):
        MetadataHeads.load(tmp_path / "nothing")
    (out / "heads.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactCorruptError, match="unreadable"):
        MetadataHeads.load(out)
    meta = json.loads((out / "heads.json").read_text())
    (out / "heads.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ArtifactCorruptError, match="format"):
        MetadataHeads.load(out)


def test_a_failed_save_leaves_the_old_heads_in_place(tmp_path, monkeypatch):
    x, y, _ = _blobs(n=90)
    heads = fit_metadata_heads(x, {"modality": y}, feature_fingerprint="fp")
    target = heads.save(tmp_path / "heads")
    before = (target / "heads.safetensors").read_bytes()

    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        heads.save(target)
    assert (target / "heads.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heads"]  # no temporary directory left behind
