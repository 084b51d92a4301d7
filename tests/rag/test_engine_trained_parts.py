"""Engine with the trained parts configured: a (tiny) KG-CLIP model for image / joint-space text vectors and GNN
concept embeddings for nearest concepts; the manifest records both and load refuses changed ones."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from kgclip.engine import Engine, EngineConfig
from kgclip.errors import ConfigError, ModelNotFoundError, StaleArtifactError
from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.engine.model_parts import NEAREST_RELATION
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.testing import tiny_graph
from kgclip.testing.parts import save_tiny_embeddings, save_tiny_model


@pytest.fixture(scope="module")
def built(tmp_path_factory):  # noqa: ANN001, ANN201
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("parts")
    save_tiny_model(root / "model")
    save_tiny_embeddings(root / "kg", tiny_graph())
    data = make_vqa_folder(root / "data", n_images=12)
    config = EngineConfig(text_encoder="hashing-64", model_dir=str(root / "model"),
                          concept_embeddings_dir=str(root / "kg"))
    engine = Engine.build(config, root / "ws", vqa_rad=data, graph=tiny_graph(), show_progress=False)
    return engine, data, root


def test_model_vectors_flow_through(built) -> None:  # noqa: ANN001
    engine, data, _ = built
    assert engine.featurizer.dim == 16 and engine.image_table.dim == 16 and engine.text_table.dim == 16
    assert engine.answerer.core.train_img.shape[1] == 16  # the answerer trained on model embeddings
    fps, parts = engine.manifest["fingerprints"], engine.manifest["parts"]
    assert {"model", "concept_embeddings"} <= set(fps) and parts["image_featurizer"].startswith("kgclip-model:")
    ans = engine.ask(data / "images" / "synth010.png", "Is there a pleural effusion?")
    assert ans.text and ans.kind == "closed" and 0.0 < ans.confidence <= 1.0
    vias = {c.via for c in ans.evidence.similar_cases}
    assert "image" in vias and vias <= {"image", "image->text"}
    assert any(f.relation == NEAREST_RELATION and f.target_id == "RADLEX:RID1362" for f in ans.evidence.kg_facts)
    assert engine.search(image=data / "images" / "synth010.png", k=2)[0].case_id == "synth010"
    cross = engine.search(image=data / "images" / "synth010.png", k=3, cross_modal=True)
    assert len(cross) == 3 and all(h.via == "image->text" for h in cross)
    assert len(engine.search(text="pleural effusion", k=3)) == 3
    draft = engine.draft_report(data / "images" / "synth010.png")  # QA-made cases are never drafted from
    assert not draft.findings and "findings" in draft.notice and draft.similar_cases


def test_an_ensemble_model_serves_the_engine(tmp_path) -> None:  # noqa: ANN001
    """A KG-CLIP ensemble (3 heads of 16) gives 48-d joint-space vectors to the image and text tables."""
    torch.set_num_threads(1)
    save_tiny_model(tmp_path / "model", ensemble=3)
    data = make_vqa_folder(tmp_path / "data", n_images=10)
    config = EngineConfig(text_encoder="hashing-64", model_dir=str(tmp_path / "model"))
    engine = Engine.build(config, tmp_path / "ws", vqa_rad=data, graph=tiny_graph(), show_progress=False)
    assert engine.featurizer.dim == engine.image_table.dim == engine.text_table.dim == 48
    image = data / "images" / "synth003.png"
    assert engine.search(image=image, k=1)[0].case_id == "synth003"
    assert len(engine.search(image=image, k=3, cross_modal=True)) == 3


def test_explain_and_nearest(built) -> None:  # noqa: ANN001
    engine, _, _ = built
    sub = engine.explain("RADLEX:RID4872")
    near = [f for f in sub.facts if f.relation == NEAREST_RELATION]
    assert near and near[0].target_id == "RADLEX:RID1362" and near[0].target_name == "pleura"
    top = engine.nearest_concepts("RADLEX:RID4872", k=2)
    assert top[0][:2] == ("RADLEX:RID1362", "pleura") and top[0][2] > 0.99


def test_reload_and_refusals(built, tmp_path) -> None:  # noqa: ANN001
    engine, data, root = built
    ws, model, kg = tmp_path / "ws", tmp_path / "model", tmp_path / "kg"
    shutil.copytree(root / "model", model)
    shutil.copytree(root / "kg", kg)
    config = dataclasses.replace(engine.config, model_dir=str(model), concept_embeddings_dir=str(kg))
    Engine.build(config, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    again = Engine.load(ws)
    img = data / "images" / "synth003.png"
    assert np.allclose(again.featurizer.embed_one(img), engine.featurizer.embed_one(img), atol=1e-5)
    assert again.explain("RADLEX:RID4872").facts
    save_tiny_embeddings(kg, tiny_graph(), seed=1)  # same graph, other embeddings
    with pytest.raises(StaleArtifactError, match="concept embeddings.*Engine.build"):
        Engine.load(ws)
    other = ConceptGraph.from_records([Concept("X:1", "one"), Concept("X:2", "two")], name="other")
    save_tiny_embeddings(kg, other, dim=4, full_meta=False)  # embeddings of another graph version
    with pytest.raises(StaleArtifactError, match="kgclip kg refresh"):
        Engine.load(ws)
    shutil.rmtree(kg)
    shutil.copytree(root / "kg", kg)
    save_tiny_model(model, seed=1)  # retrained model in the same directory
    with pytest.raises(StaleArtifactError, match="KG-CLIP model.*Engine.build"):
        Engine.load(ws)
    shutil.rmtree(model)
    with pytest.raises(ModelNotFoundError, match="restore that directory"):
        Engine.load(ws)


def test_stale_embeddings_refused_at_build(built, tmp_path) -> None:  # noqa: ANN001
    _, data, root = built
    graph = tiny_graph()
    other = ConceptGraph.from_records([Concept("X:1", "one"), Concept("X:2", "two")], name="other")
    save_tiny_embeddings(tmp_path / "kg", other, dim=4, full_meta=False)
    config = EngineConfig(text_encoder="hashing-64", concept_embeddings_dir=str(tmp_path / "kg"))
    with pytest.raises(StaleArtifactError, match="kgclip kg refresh"):
        Engine.build(config, tmp_path / "ws", vqa_rad=data, graph=graph, show_progress=False)


def test_config_validation_and_default_unchanged(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError):
        EngineConfig(model_dir="")
    with pytest.raises(ConfigError, match="is a file"):
        EngineConfig(model_dir=str(tmp_path / "f"))
    with pytest.raises(ConfigError, match="is a file"):
        EngineConfig(concept_embeddings_dir=str(tmp_path / "f"))
    assert EngineConfig().model_dir is None and EngineConfig().concept_embeddings_dir is None
    back = EngineConfig.from_dict(EngineConfig(model_dir="m").to_dict())
    assert back.model_dir == "m"
