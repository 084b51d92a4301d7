"""A workspace build trains the image metadata classifiers on its cases; ask and draft use them; the header wins."""

from __future__ import annotations

import shutil

import pytest

from kgclip.engine import Engine
from kgclip.engine.build import METADATA_HEADS
from kgclip.errors import ArtifactCorruptError


@pytest.fixture(scope="module")
def built(small_workspace):
    return small_workspace


def test_build_trains_region_and_modality_heads_and_ask_uses_them(built):
    engine, _ = built
    heads = engine.metadata_heads
    assert heads is not None and (engine.directory / METADATA_HEADS / "heads.safetensors").is_file()
    assert set(heads.labels("region")) == {"chest", "head"}  # the cases' organs, in the shared vocabulary
    assert set(heads.labels("modality")) == {"CT", "MR"}  # what the cases' own questions say ("CT or MRI?")
    case = next(c for c in engine.cases if c.body_part == "CHEST")
    labels = engine.image_labels(engine.featurizer.embed_one(engine.image_path(case.image)))
    assert max(labels["region"], key=labels["region"].get) == "chest"
    answer = engine.ask(engine.image_path(case.image), "Is this an MRI?")
    assert answer.flags.get("source") == "image-classifier" and answer.text == "no"
    loaded = Engine.load(engine.directory)
    assert loaded.metadata_heads is not None and loaded.metadata_heads.fields == heads.fields


def test_a_workspace_without_heads_still_loads_and_damaged_heads_are_refused(built, tmp_path):
    engine, _ = built
    copy = tmp_path / "ws"
    shutil.copytree(engine.directory, copy)
    shutil.rmtree(copy / METADATA_HEADS)  # a workspace built before the classifiers
    assert Engine.load(copy).metadata_heads is None
    shutil.copytree(engine.directory / METADATA_HEADS, copy / METADATA_HEADS)
    (copy / METADATA_HEADS / "heads.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ArtifactCorruptError, match="metadata heads"):
        Engine.load(copy)


def test_cases_added_with_new_labels_retrain_the_heads_at_once(built):
    engine, data = built
    rows = [{"case_id": f"us-{i}", "image": str(data / "images" / f"synth{i:03d}.png"), "modality": "US",
             "body_part": "ABDOMEN", "text": "Ultrasound of the abdomen."} for i in range(6)]
    engine.add_cases(rows)
    assert "US" in engine.metadata_heads.labels("modality") and "abdomen" in engine.metadata_heads.labels("region")
    assert "US" in Engine.load(engine.directory).metadata_heads.labels("modality")
    # Cases without metadata, QA or findings leave the trained parts as they are (nothing to learn from).
    before = engine.metadata_heads
    engine.add_cases([{"case_id": "plain", "image": str(data / "images" / "synth000.png"), "text": "A note."}])
    assert engine.metadata_heads is before
