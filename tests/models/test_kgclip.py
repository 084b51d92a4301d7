"""The KG-enriched dual encoder: shapes, enrichment, save/load round-trip, refusal of other configurations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from kgclip.errors import (ArtifactCorruptError, ConfigError, EncoderMismatchError, ModelNotFoundError,
                           ResolutionError)
from kgclip.models.kgclip import KGClipConfig, KGClipModel
from kgclip.testing import tiny_graph
from kgclip.text.linker import ConceptLinker

TEXTS = ["left pleural effusion, no pneumothorax", "unremarkable study", "lung cancer with consolidation"]


@pytest.fixture(scope="module")
def linker() -> ConceptLinker:
    return ConceptLinker.from_graph(tiny_graph())


def _config(**changes: object) -> KGClipConfig:
    base = KGClipConfig(text_tower="hashing-64", image_size=32, image_widths=(4, 8, 8, 16), embed_dim=16,
                        text_hidden=16, max_concepts=4)
    return dataclasses.replace(base, **changes)


def _model(linker: ConceptLinker, enrichment: str = "gnn", seed: int = 0, **changes: object) -> KGClipModel:
    torch.manual_seed(seed)
    ids = list(tiny_graph().ids)
    if enrichment == "none":
        return KGClipModel(_config(**changes), linker=linker)
    vectors = torch.randn(len(ids), 8, generator=torch.Generator().manual_seed(1))
    return KGClipModel(_config(enrichment=enrichment, concept_dim=8, **changes), concept_ids=ids,
                       concept_vectors=vectors, concept_fingerprint="fp-test", linker=linker)


@pytest.mark.parametrize("enrichment", ["none", "gnn"])
def test_shapes_and_unit_norm(linker: ConceptLinker, enrichment: str) -> None:
    model = _model(linker, enrichment)
    images = torch.randint(0, 256, (3, 1, 40, 50), dtype=torch.uint8)
    img = model.encode_images(images)
    txt = model.encode_text(TEXTS)
    assert img.shape == (3, 16) and txt.shape == (3, 16)
    assert torch.allclose(img.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(txt.norm(dim=1), torch.ones(3), atol=1e-5)
    pixels = model.prepare_pixels(images)
    assert pixels.shape == (3, 3, 32, 32)
    out = model(pixels, model.text_encoder.encode(TEXTS), *model.concept_indices(model.link(TEXTS)))
    assert out.image_embeds.shape == out.text_embeds.shape == (3, 16)
    assert float(out.logit_scale.detach()) == pytest.approx(1 / 0.07, rel=1e-4)


def test_enrichment_uses_linked_concepts(linker: ConceptLinker) -> None:
    model = _model(linker, "gnn")
    links = model.link(TEXTS)
    assert "RADLEX:RID4872" in links[0][0] and "RADLEX:RID5352" in links[0][1]  # negated goes to its own list
    idx, mask, neg_idx, neg_mask = model.concept_indices(links)
    assert idx.shape == mask.shape == (3, 4) and bool(neg_mask[0].any())
    before = model.encode_text(TEXTS)
    # Changing the effusion concept's vector moves only the text that mentions it.
    row = model.concept_ids.index("RADLEX:RID4872")
    model.concept_vectors[row] = torch.randn(8)
    with torch.no_grad():
        model.fusion.gate.bias.fill_(3.0)  # open the gate so the concept term is visible
    after = model.encode_text(TEXTS)
    assert not torch.allclose(before[0], after[0], atol=1e-4)
    # A text without linked concepts is unaffected by any concept vector.
    assert model.link(["unremarkable"])[0] == ([], [])


def test_save_load_round_trip(tmp_path: Path, linker: ConceptLinker) -> None:
    model = _model(linker, "gnn", concept_head=True)
    images = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    model.save_pretrained(tmp_path / "m", extra={"note": "test"})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["concepts.json", "kgclip_model.json",
                                                                 "model.safetensors"]
    info = KGClipModel.read_checkpoint_info(tmp_path / "m")
    assert info["fingerprints"] == {"concept_embeddings": "fp-test", "text_tower": model.text_fingerprint}
    assert {"torch", "safetensors", "kgclip"} <= set(info["versions"])
    assert info["extra"] == {"note": "test"}
    loaded = KGClipModel.from_pretrained(tmp_path / "m", linker=linker)
    assert loaded.config == model.config
    assert torch.allclose(loaded.encode_text(TEXTS), model.encode_text(TEXTS), atol=1e-6)
    assert torch.allclose(loaded.encode_images(images), model.encode_images(images), atol=1e-6)
    # Saving again replaces the directory as a whole.
    loaded.save_pretrained(tmp_path / "m")
    assert not list(tmp_path.glob(".m.*"))


def test_other_configuration_is_refused(tmp_path: Path, linker: ConceptLinker) -> None:
    model = _model(linker, "gnn")
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="another configuration"):
        KGClipModel.from_pretrained(tmp_path / "m", expected_config=_config())
    other = _model(linker, "none")
    with pytest.raises(ConfigError, match="another configuration"):
        other.load_weights(dict(model.state_dict()))
    # A header edited to claim another architecture no longer matches the weights.
    header = json.loads((tmp_path / "m" / "kgclip_model.json").read_text())
    header["config"]["embed_dim"] = 32
    (tmp_path / "m" / "kgclip_model.json").write_text(json.dumps(header))
    with pytest.raises(ConfigError):
        KGClipModel.from_pretrained(tmp_path / "m", linker=linker)


def test_text_tower_mismatch_and_missing_or_corrupt(tmp_path: Path, linker: ConceptLinker) -> None:
    model = _model(linker, "none")
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(EncoderMismatchError):
        KGClipModel.from_pretrained(tmp_path / "m", text_encoder=_FakeEncoder())
    with pytest.raises(ModelNotFoundError):
        KGClipModel.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ArtifactCorruptError):
        KGClipModel.from_pretrained(tmp_path / "m")


def test_failed_save_keeps_the_old_model(tmp_path: Path, linker: ConceptLinker,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(linker, "none")
    model.save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    import kgclip.models.kgclip as mod

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mod, "atomic_write_json", broken)
    with pytest.raises(OSError):
        _model(linker, "none", seed=5).save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        KGClipConfig(enrichment="graph")
    with pytest.raises(ConfigError):
        KGClipConfig(enrichment="gnn")  # no concept_dim
    with pytest.raises(ConfigError):
        KGClipConfig(concept_head=True)
    with pytest.raises(ResolutionError):
        KGClipModel(_config(image_tower="no-such-tower"))
    cfg = _config(enrichment="text", concept_dim=4)
    assert KGClipConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


class _FakeEncoder:
    name = "fake"
    dim = 64
    fingerprint = "another-tower"

    def encode(self, texts, batch_size=64, show_progress=False):  # noqa: ANN001, ANN201
        return torch.nn.functional.normalize(torch.ones(len(texts), 64), dim=-1)


def test_image_dropout_acts_in_training_only(linker: ConceptLinker) -> None:
    model = _model(linker, "none", image_dropout=0.5, train_blocks=0)
    feats = torch.randn(6, model.image_tower.dim, generator=torch.Generator().manual_seed(2))
    model.eval()
    first, second = model.encode_image_features(feats), model.encode_image_features(feats)
    assert torch.equal(first, second)  # eval: deterministic, no features dropped
    plain = _model(linker, "none", image_dropout=0.0, train_blocks=0)
    plain.load_state_dict(model.state_dict())  # dropout has no weights: same state dict either way
    assert torch.allclose(plain.eval().encode_image_features(feats), first)
    model.train()
    assert not torch.allclose(model.encode_image_features(feats), first)
    with pytest.raises(ConfigError):
        KGClipConfig(image_dropout=1.0)


def test_an_ensemble_averages_its_members_similarities(tmp_path: Path, linker: ConceptLinker) -> None:
    """ensemble=3: three independently initialised heads on the same towers; the embedding is their unit embeddings
    joined, so a cosine is the mean of the members' cosines; it saves, reloads and refuses a single-head config."""
    single = _model(linker, "gnn")
    model = _model(linker, "gnn", ensemble=3)
    assert model.config.output_dim == 48 and len(model.members) == 2
    # Member 0 is the single-head model's own parts: same keys, same initial weights for the same seed.
    assert set(single.state_dict()) < set(model.state_dict())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in single.state_dict().items())
    assert not torch.equal(model.members[0].image_proj.weight, model.image_proj.weight)  # initialised apart
    model.eval()
    images = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    img, txt = model.encode_images(images), model.encode_text(TEXTS)
    assert img.shape == txt.shape == (3, 48)
    assert torch.allclose(img.norm(dim=1), torch.ones(3), atol=1e-5)
    members = zip(model.split_members(img), model.split_members(txt))
    member_cos = torch.stack([i @ t.T for i, t in members])
    assert torch.allclose(img @ txt.T, member_cos.mean(0), atol=1e-5)
    assert torch.allclose(model.split_members(img)[0], single.eval().encode_images(images), atol=1e-5)
    model.save_pretrained(tmp_path / "ens")
    loaded = KGClipModel.from_pretrained(tmp_path / "ens", linker=linker)
    assert torch.allclose(loaded.encode_text(TEXTS), txt, atol=1e-6)
    with pytest.raises(ConfigError, match="another configuration"):
        KGClipModel.from_pretrained(tmp_path / "ens", linker=linker, expected_config=single.config)
    with pytest.raises(ConfigError, match="ensemble"):
        _config(ensemble=0)
    with pytest.raises(ConfigError, match="concept_head"):
        _config(enrichment="gnn", concept_dim=8, concept_head=True, ensemble=2)


def test_each_member_of_an_ensemble_draws_its_own_dropout_mask(linker: ConceptLinker) -> None:
    model = _model(linker, "none", ensemble=2, image_dropout=0.5, image_tower="builtin-cnn").train()
    with torch.no_grad():
        model.members[0].image_proj.weight.copy_(model.image_proj.weight)
    feats = torch.randn(4, model.image_tower.dim)
    first, second = model.split_members(model.encode_image_features(feats))
    assert not torch.allclose(first, second)  # same weights, different masks
    model.eval()
    first, second = model.split_members(model.encode_image_features(feats))
    assert torch.allclose(first, second, atol=1e-6)
