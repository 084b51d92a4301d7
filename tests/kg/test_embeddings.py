from __future__ import annotations

import pytest
import torch

from kgclip.errors import ArtifactCorruptError, ConfigError, StaleArtifactError, UnknownConceptError
from kgclip.kg.build import train_embeddings
from kgclip.kg.convert import concept_features, to_pyg
from kgclip.kg.embeddings import ConceptEmbeddings
from kgclip.kg.train import KGTrainConfig
from kgclip.ontology.curation import Curator
from kgclip.ontology.model import Concept, Relation
from kgclip.testing import tiny_graph


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN001, ANN201
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("cache")
    cfg = KGTrainConfig(hidden_dim=32, epochs=10, batch_size=8, num_negatives=16, val_fraction=0.2, dropout=0.0)
    emb = train_embeddings(tiny_graph(), cfg, text_encoder="hashing-64", cache_dir=cache, show_progress=False)
    return emb, cache


def _full_encode(emb: ConceptEmbeddings, graph, cache) -> torch.Tensor:  # noqa: ANN001
    x = concept_features(graph, "hashing-64", cache_dir=cache)
    data = to_pyg(graph, x, relation_types=emb.meta["relation_types"])
    return emb.build_encoder().hidden_states(x, data.edge_index, data.edge_type)[-1]


def test_api(trained) -> None:  # noqa: ANN001
    emb, _ = trained
    g = tiny_graph()
    assert emb.vectors.shape == (len(g), 32) and emb.vectors.dtype == torch.float32
    assert emb.ids == list(g.ids) and emb.dim == 32 and len(emb) == len(g)
    assert torch.equal(emb.get(["DOID:552"])[0], emb.vectors[emb.index_of("DOID:552")])
    assert emb.get("DOID:552").shape == (32,)
    hits = emb.nearest("DOID:552", k=3)
    assert len(hits) == 3 and all(cid != "DOID:552" for cid, _ in hits)
    assert hits[0][1] >= hits[-1][1]
    with pytest.raises(UnknownConceptError, match="kgclip kg refresh"):
        emb.index_of("DOID:0")
    assert "ConceptEmbeddings" in emb._repr_html_()
    assert len(emb.fingerprint) == 32


def test_save_load_round_trip(trained, tmp_path) -> None:  # noqa: ANN001
    emb, _ = trained
    emb.save(tmp_path / "kg")
    back = ConceptEmbeddings.load(tmp_path / "kg", graph=tiny_graph())
    assert torch.equal(back.vectors, emb.vectors) and back.ids == emb.ids
    assert back.fingerprint == emb.fingerprint
    assert back.meta["config"] == emb.meta["config"]
    assert all(torch.equal(a, b) for a, b in zip(back.states, emb.states))


@pytest.mark.parametrize("name", ["embeddings.safetensors", "encoder.safetensors"])
def test_corrupted_safetensors_is_a_clear_error(trained, tmp_path, name: str) -> None:  # noqa: ANN001
    emb, _ = trained
    emb.save(tmp_path / "kg")
    path = tmp_path / "kg" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data still parses: the checksum catches it
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorruptError, match="corrupted.*kgclip kg train"):
        ConceptEmbeddings.load(tmp_path / "kg")
    path.write_bytes(b"\x00" * 10)  # truncated
    with pytest.raises(ArtifactCorruptError):
        ConceptEmbeddings.load(tmp_path / "kg")


def test_missing_or_unparsable_meta(trained, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ArtifactCorruptError, match="kgclip kg train"):
        ConceptEmbeddings.load(tmp_path / "nothing")
    emb, _ = trained
    emb.save(tmp_path / "kg")
    (tmp_path / "kg" / "meta.json").write_text("{not json")
    with pytest.raises(ArtifactCorruptError):
        ConceptEmbeddings.load(tmp_path / "kg")


def test_failed_save_keeps_the_old_artifact(trained, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    emb, _ = trained
    emb.save(tmp_path / "kg")
    before = (tmp_path / "kg" / "meta.json").read_bytes()
    import safetensors.torch

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        emb.save(tmp_path / "kg")
    assert (tmp_path / "kg" / "meta.json").read_bytes() == before
    ConceptEmbeddings.load(tmp_path / "kg")


def test_stale_embeddings_for_changed_graph(trained, tmp_path) -> None:  # noqa: ANN001
    emb, _ = trained
    emb.save(tmp_path / "kg")
    g = tiny_graph()
    g.add_relation(Relation("DOID:1826", "has_symptom", "SYMP:0000614"))
    with pytest.raises(StaleArtifactError, match="kgclip kg refresh"):
        ConceptEmbeddings.load(tmp_path / "kg", graph=g)


def test_refresh_changes_only_the_neighbourhood_and_equals_full_encode(trained) -> None:  # noqa: ANN001
    emb, cache = trained
    g = tiny_graph()
    g.add_concept(Concept("DOID:9999", "bacterial pneumonia", synonyms=("pneumonia due to bacteria",)))
    g.add_relation(Relation("DOID:9999", "is_a", "DOID:552"))
    fresh = emb.refresh(g, ["DOID:9999", "DOID:552"], cache_dir=cache)
    assert fresh.graph_fingerprint == g.fingerprint() and "DOID:9999" in fresh
    within = set(g.neighborhood(["DOID:9999", "DOID:552"], hops=2))
    assert set(fresh.refreshed_ids) <= within and "DOID:9999" in fresh.refreshed_ids
    for cid in emb.ids:
        if cid not in fresh.refreshed_ids:
            assert torch.equal(fresh.get(cid), emb.get(cid)), cid
    assert "RADLEX:RID6434" not in fresh.refreshed_ids  # brain is far from pneumonia
    assert torch.allclose(fresh.vectors, _full_encode(emb, g, cache), atol=1e-5)
    fresh.check_current(g)


def test_new_concept_lands_near_its_relatives(trained) -> None:  # noqa: ANN001
    emb, cache = trained
    g = tiny_graph()
    g.add_concept(Concept("DOID:9999", "lung cancer subtype", synonyms=("lung carcinoma variant",)))
    g.add_relation(Relation("DOID:9999", "is_a", "DOID:1324"))
    g.add_relation(Relation("DOID:9999", "located_in", "RADLEX:RID1301"))
    fresh = emb.refresh(g, ["DOID:9999", "DOID:1324", "RADLEX:RID1301"], cache_dir=cache)
    unit = torch.nn.functional.normalize(fresh.vectors, dim=-1)
    sims = unit @ unit[fresh.index_of("DOID:9999")]
    parent, far = sims[fresh.index_of("DOID:1324")], sims[fresh.index_of("RADLEX:RID6434")]
    assert parent > far
    top5 = [cid for cid, _ in fresh.nearest("DOID:9999", 5)]
    assert {"DOID:1324", "DOID:3910", "RADLEX:RID1301"} & set(top5)


def test_curation_then_refresh_end_to_end(trained, tmp_path) -> None:  # noqa: ANN001
    from kgclip.ontology.store import save_graph

    emb, cache = trained
    save_graph(tiny_graph(), tmp_path / "onto")
    curator = Curator.open(tmp_path / "onto", author="test")
    since = curator.changelog.last_seq
    curator.add_concept("DOID:9998", "viral pneumonia", parents=["DOID:552"], reason="test")
    curator.add_relation("DOID:9998", "has_symptom", "SYMP:0000614")
    curator.update_concept("RADLEX:RID1392", add_synonyms=["big heart"])
    changed = curator.changelog.changed_ids(since)
    from kgclip.ontology.store import load_graph_dir

    graph = load_graph_dir(tmp_path / "onto")
    with pytest.raises(StaleArtifactError):
        emb.check_current(graph)
    fresh = emb.refresh(graph, changed, cache_dir=cache)
    fresh.check_current(graph)
    assert "RADLEX:RID1392" in fresh.refreshed_ids and "DOID:9998" in fresh.refreshed_ids
    assert not torch.equal(fresh.get("RADLEX:RID1392"), emb.get("RADLEX:RID1392"))
    assert torch.allclose(fresh.vectors, _full_encode(emb, graph, cache), atol=1e-5)


def test_refresh_drops_removed_concepts_and_ignores_unknown_relation_types(trained) -> None:  # noqa: ANN001
    emb, cache = trained
    g = tiny_graph()
    g.add_concept(Concept("X:1", "isolated new concept"))  # no relations: text only
    g.add_relation(Relation("DOID:552", "treated_by", "DOID:4"))  # a type the encoder never saw
    fresh = emb.refresh(g, ["DOID:552", "DOID:4"], cache_dir=cache)
    assert torch.isfinite(fresh.get("X:1")).all()
    assert torch.allclose(fresh.vectors, _full_encode(emb, g, cache), atol=1e-5)


def test_shallow_embeddings_cannot_refresh(tmp_path) -> None:  # noqa: ANN001
    cfg = KGTrainConfig(encoder="shallow", hidden_dim=8, epochs=2, batch_size=8, num_negatives=4)
    emb = train_embeddings(tiny_graph(), cfg, text_encoder="hashing-32", cache_dir=tmp_path, show_progress=False)
    g = tiny_graph()
    g.add_concept(Concept("X:1", "new"))
    with pytest.raises(ConfigError, match="cannot embed new"):
        emb.refresh(g, ["X:1"], cache_dir=tmp_path)


def test_graph_edited_after_refresh_counts_as_stale(trained) -> None:  # noqa: ANN001
    emb, cache = trained
    g = tiny_graph()
    g.add_concept(Concept("X:1", "new"))
    fresh = emb.refresh(g, ["X:1"], cache_dir=cache)
    g.add_concept(Concept("X:2", "newer"))  # edited before anyone asked for the fingerprint
    with pytest.raises(StaleArtifactError):
        fresh.check_current(g)
