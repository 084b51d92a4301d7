"""Engine: build a workspace, ask, search, draft, explain, add cases, reload; refusals on bad input and stale or
mismatched artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgclip.engine import Engine, EngineConfig
from kgclip.errors import (ArtifactCorruptError, ConfigError, EncoderMismatchError, ImageReadError,
                           InputFormatError, StaleArtifactError, UnknownConceptError)
from kgclip.fingerprint import fingerprint_file
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.testing import tiny_graph

CONFIG = EngineConfig(text_encoder="hashing-64")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=12)
    ws = tmp_path_factory.mktemp("ws") / "workspace"
    engine = Engine.build(CONFIG, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    return engine, data, ws


def test_ask_returns_answer_with_evidence(built):
    engine, data, _ = built
    ans = engine.ask(data / "images" / "synth010.png", "Is there a pleural effusion?")
    assert ans.text.lower() == "yes" and ans.kind == "closed" and 0.5 < ans.confidence <= 1.0
    ev = ans.evidence
    assert [c.concept_id for c in ev.concepts] == ["RADLEX:RID4872"]
    assert any(f.relation == "located_in" and f.target_name == "pleura" for f in ev.kg_facts)
    assert ev.similar_questions and ev.similar_cases
    assert ev.similar_cases[0].case_id.startswith("synth")
    html = ans._repr_html_()
    assert "pleural effusion" in html and "data:image/png;base64," in html
    choice = engine.ask(data / "images" / "synth011.png", "Is this a CT or an MRI?")
    assert choice.text == "MRI" and choice.kind == "closed"


def test_search_draft_explain(built):
    engine, data, _ = built
    hits = engine.search(text="pleural effusion", k=3)
    assert len(hits) == 3 and all("effusion" in h.text.lower() for h in hits)
    assert "<img" in hits._repr_html_()
    by_image = engine.search(image=data / "images" / "synth010.png", k=2, filters={"body_part": "CHEST"})
    assert by_image[0].case_id == "synth010" and all(h.metadata["body_part"] == "CHEST" for h in by_image)
    # Cases made of question/answer pairs have no findings to draft from: a clear notice, no draft (drafting from
    # cases with findings: tests/rag/test_report_engine.py).
    report = engine.draft_report(data / "images" / "synth010.png")
    assert not report.findings and "no similar chest" in report.notice and "findings" in report.notice
    sub = engine.explain("pleural effusion")
    assert sub.concept_id == "RADLEX:RID4872" and "pleura" in {d["name"] for _, d in sub.graph.nodes(data=True)}
    assert "<svg" in sub._repr_html_()
    with pytest.raises(UnknownConceptError):
        engine.explain("no such thing at all")
    with pytest.raises(InputFormatError):
        engine.search()


def test_bad_input_is_refused_clearly(built, tmp_path):
    engine, data, _ = built
    with pytest.raises(InputFormatError, match="empty"):
        engine.ask(data / "images" / "synth010.png", "   ")
    with pytest.raises(ImageReadError, match="missing.dcm"):
        engine.ask(tmp_path / "missing.dcm", "Is there a pleural effusion?")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError):
        engine.ask(bad, "Is there a pleural effusion?")
    with pytest.raises(ConfigError):
        EngineConfig(k_cases=0)
    with pytest.raises(ConfigError):
        EngineConfig(draft_k=0)


def test_reload_add_cases_and_staleness(built, tmp_path):
    engine, data, ws = built
    loaded = Engine.load(ws)
    q = "What organ is shown?"
    a, b = engine.ask(data / "images" / "synth011.png", q), loaded.ask(data / "images" / "synth011.png", q)
    assert a.text == b.text and a.confidence == pytest.approx(b.confidence, abs=1e-6)
    # A case added later is searchable at once and survives a reload.
    n = loaded.add_cases([{"case_id": "new-1", "image": str(data / "images" / "synth000.png"),
                           "text": "Large right pneumothorax.", "body_part": "CHEST"}])
    assert n == 1 and loaded.search(text="pneumothorax", k=1)[0].case_id == "new-1"
    assert Engine.load(ws).search(text="pneumothorax", k=1)[0].case_id == "new-1"
    with pytest.raises(ImageReadError):
        loaded.add_cases([{"case_id": "x", "image": str(tmp_path / "nope.png"), "text": "x"}])
    # Another text encoder than the one the workspace was built with is refused.
    with pytest.raises(EncoderMismatchError, match="hashing-64"):
        Engine.load(ws, text_encoder="hashing-32")
    # The workspace graph (tiny) differs from its ontology sources (the shipped ones): refused, with the remedy.
    from kgclip.ontology.store import shipped_ontology_dirs

    if shipped_ontology_dirs():
        with pytest.raises(StaleArtifactError, match="refresh"):
            Engine.load(ws, check_ontology_sources=True)
    # A tampered artifact is detected through the manifest.
    cases = json.loads((ws / "cases.json").read_text())
    cases[0]["text"] = "tampered"
    (ws / "cases.json").write_text(json.dumps(cases))
    with pytest.raises(StaleArtifactError, match="cases.json"):
        Engine.load(ws)
    with pytest.raises(ArtifactCorruptError, match="not a kgclip workspace"):
        Engine.load(tmp_path)


def test_llm_fallback_through_engine(built):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    engine, data, _ = built
    engine.use_llm(FakeListChatModel(responses=["Yes, clearly."]))  # no citation: must not be used
    try:
        ans = engine.ask(data / "images" / "synth010.png", "Is there a pleural effusion?")
        assert ans.text.lower() == "yes" and ans.flags["llm_fallback"] == "citations dropped"
    finally:
        engine.use_llm(None)
    assert np.isfinite(ans.confidence)


def test_index_backend_config_is_validated():
    with pytest.raises(ConfigError, match="index_backend"):
        EngineConfig(index_backend="annoy")
    with pytest.raises(ConfigError, match="index_uri"):
        EngineConfig(index_uri="ix.db")  # a uri without the milvus backend is a mistake, not ignored
    assert EngineConfig().index_backend == "faiss"
    cfg = EngineConfig(text_encoder="hashing-64", index_backend="milvus", index_uri="http://host:19530")
    assert EngineConfig.from_dict(cfg.to_dict()) == cfg


def test_milvus_workspace_agrees_with_faiss(built, tmp_path):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from kgclip.index.base import read_manifest as read_index_manifest

    engine, data, _ = built
    ws = tmp_path / "ws-milvus"
    config = EngineConfig(text_encoder="hashing-64", index_backend="milvus")
    mv = Engine.build(config, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    assert type(mv.image_table).__name__ == "MilvusIndex" and "index=milvus" in repr(mv)
    manifest = read_index_manifest(ws / "index_text")
    assert manifest["backend"] == "milvus" and manifest["uri"] == "milvus.db"  # inside the workspace
    image = data / "images" / "synth010.png"
    for query in ({"text": "pleural effusion"}, {"text": "fracture"}, {"text": "normal brain"},
                  {"image": image, "filters": {"body_part": "CHEST"}}):
        _assert_same_topk(mv.search(k=4, **query), engine.search(k=4, **query))
    loaded = Engine.load(ws)
    assert type(loaded.image_table).__name__ == "MilvusIndex"
    loaded.add_cases([{"case_id": "new-1", "image": str(data / "images" / "synth000.png"),
                       "text": "Large right pneumothorax.", "body_part": "CHEST"}])
    assert Engine.load(ws).search(text="pneumothorax", k=1)[0].case_id == "new-1"
    # Rebuilding the workspace replaces its collections instead of appending to them, and keeps the added case.
    n_built = len(engine.cases)
    again = Engine.build(config, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    assert len(again.text_table) == len(again.cases) == n_built + 1
    assert again.search(text="pneumothorax", k=1)[0].case_id == "new-1"
    other = Engine.build(EngineConfig(text_encoder="hashing-32", index_backend="milvus"), ws, vqa_rad=data,
                         graph=tiny_graph(), show_progress=False)  # another encoder (and dim) rebuilds too
    assert other.text_table.dim == 32 and Engine.load(ws).text_table.dim == 32


def test_milvus_backend_failure_is_raised_not_hidden(tmp_path):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from kgclip.errors import IndexError_

    data = make_vqa_folder(tmp_path / "data", n_images=4)
    config = EngineConfig(text_encoder="hashing-64", index_backend="milvus", index_uri="http://127.0.0.1:1")
    with pytest.raises(IndexError_, match="http://127.0.0.1:1"):
        Engine.build(config, tmp_path / "ws", vqa_rad=data, graph=tiny_graph(), show_progress=False)


def _assert_same_topk(got, want):
    """Same scores in the same order, and the same cases above the k-th score (synthetic cases share texts, so
    cases tied at the k-th score may legitimately differ between backends)."""
    assert [round(h.score, 4) for h in got] == pytest.approx([round(h.score, 4) for h in want], abs=2e-4)
    cut = round(want[-1].score, 4)
    assert ({h.case_id for h in got if round(h.score, 4) > cut + 2e-4}
            == {h.case_id for h in want if round(h.score, 4) > cut + 2e-4})


def test_default_workspace_has_no_trained_parts(built):
    engine, _, _ = built
    assert engine.config.model_dir is None and engine.config.concept_embeddings_dir is None
    assert engine.featurizer.name == "efficientnet-lite0" and engine.table_text_encoder is engine.text_encoder
    fps = engine.manifest["fingerprints"]
    assert "model" not in fps and "concept_embeddings" not in fps
    assert not any(f.relation == "similar_by_embedding" for f in engine.explain("RADLEX:RID4872").facts)
    with pytest.raises(ConfigError, match="model_dir"):
        engine.search(image=np.zeros((8, 8)), cross_modal=True)
    with pytest.raises(ConfigError, match="concept_embeddings_dir"):
        engine.nearest_concepts("RADLEX:RID4872")


def test_a_thumbnail_workspace_is_refused_naming_the_rebuild(tmp_path):
    from dataclasses import replace

    from kgclip.errors import StaleArtifactError

    data = make_vqa_folder(tmp_path / "data", n_images=6)
    ws = tmp_path / "thumb"
    Engine.build(replace(CONFIG, image_features="thumbnail"), ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    config = ws / "engine_config.json"  # as an earlier kgclip wrote it: no image_features field, the thumbnail
    payload = json.loads(config.read_text())
    del payload["config"]["image_features"]
    config.write_text(json.dumps(payload))
    manifest = json.loads((ws / "manifest.json").read_text())
    manifest["fingerprints"]["config_file"] = fingerprint_file(config)
    (ws / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleArtifactError, match="kgclip demo --out"):
        Engine.load(ws)


def test_excluded_images_stay_out_and_sidecar_metadata_fills_cases(tmp_path):
    """``exclude_images`` keeps an image's case and questions out; ``image_metadata.json`` gives modality/region."""
    data = make_vqa_folder(tmp_path / "data", n_images=8)
    names = sorted(p.name for p in (data / "images").iterdir())
    sidecar = {names[1]: {"modality": "CT", "region": "ABD"}, names[2]: {"modality": "MR", "region": "HEAD"}}
    (data / "image_metadata.json").write_text(json.dumps(sidecar))
    config = EngineConfig(text_encoder="hashing-64", exclude_images=(names[0],))
    engine = Engine.build(config, tmp_path / "ws", vqa_rad=data, graph=tiny_graph(), show_progress=False)
    held_out = names[0].rsplit(".", 1)[0]
    assert held_out not in {c.case_id for c in engine.cases} and len(engine.cases) == len(names) - 1
    assert held_out not in {ex.image_key for ex in engine.answerer.examples}
    by_id = {c.case_id: c for c in engine.cases}
    second = by_id[names[1].rsplit(".", 1)[0]]
    assert second.modality == "CT"  # the sidecar fills what the questions did not say
    assert second.body_part  # the dataset's own organ wins over the sidecar's region
    hits = engine.search(text="pleural effusion", k=10, filters={"modality": "CT"})
    assert [h.case_id for h in hits] == [second.case_id]
    # the setting travels with the workspace: a reload sees the same exclusion
    assert Engine.load(tmp_path / "ws").config.exclude_images == (names[0],)
    with pytest.raises(ConfigError, match="nothing to build from"):
        Engine.build(EngineConfig(text_encoder="hashing-64", exclude_images=tuple(names)), tmp_path / "ws2",
                     vqa_rad=data, graph=tiny_graph(), show_progress=False)
    assert not (tmp_path / "ws2").exists()
    with pytest.raises(ConfigError, match="exclude_images"):
        EngineConfig(exclude_images=("",))
