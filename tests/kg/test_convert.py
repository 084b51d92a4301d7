from __future__ import annotations

import logging

import torch

from kgclip.kg.convert import FeatureCache, concept_features, concept_text, to_pyg
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.testing import tiny_graph
from kgclip.text.encoders import HashingTextEncoder


class CountingEncoder(HashingTextEncoder):
    """Hashing encoder that counts the texts it really encodes (the in-memory LRU is bypassed)."""

    def __init__(self) -> None:
        super().__init__(32)
        self.encoded: list[str] = []

    def encode(self, texts, batch_size=64, show_progress=False):  # noqa: ANN001
        self.encoded.extend(texts)
        return self._encode_uncached(list(texts), batch_size, show_progress)


def test_inverse_edges_and_maps() -> None:
    g = tiny_graph()
    data = to_pyg(g)
    nb = len(g.relation_types)
    assert data.num_base_relations == nb
    assert data.relation_types[:nb] == g.relation_types
    assert data.relation_types[nb:] == [t + "_inv" for t in g.relation_types]
    assert data.edge_index.shape == (2, 2 * g.num_relations)
    assert data.node_ids == list(g.ids)
    assert data.node_index["DOID:552"] == g.index_of("DOID:552")
    # Every base edge has its inverse, reversed, with type + nb.
    ei, et = data.edge_index, data.edge_type
    base = {(int(s), int(t), int(d)) for s, t, d in zip(ei[0], et, ei[1]) if t < nb}
    inv = {(int(d), int(t) - nb, int(s)) for s, t, d in zip(ei[0], et, ei[1]) if t >= nb}
    assert base == inv
    s, r, d = g.index_of("DOID:552"), data.relation_index["has_symptom"], g.index_of("SYMP:0000614")
    assert (s, r, d) in base


def test_fixed_vocabulary_drops_unknown_types_and_keeps_empty_ones(caplog) -> None:  # noqa: ANN001
    g = tiny_graph()
    vocab = ["is_a", "never_used"]
    with caplog.at_level(logging.WARNING):
        data = to_pyg(g, relation_types=vocab)
    assert "dropping" in caplog.text
    assert data.relation_types == ["is_a", "never_used", "is_a_inv", "never_used_inv"]
    assert int((data.edge_type == 0).sum()) == len(g.relations(relation_type="is_a"))
    assert int((data.edge_type == 1).sum()) == 0


def test_graph_without_relations() -> None:
    g = ConceptGraph.from_records([Concept("X:1", "alone"), Concept("X:2", "also alone")])
    data = to_pyg(g)
    assert data.edge_index.shape == (2, 0) and data.num_nodes == 2 and data.relation_types == []


def test_concept_text_uses_name_synonyms_definition() -> None:
    text = concept_text(tiny_graph().concept("RADLEX:RID4872"))
    assert "pleural effusion" in text and "hydrothorax" in text and "Fluid in the pleural cavity" in text


def test_features_cached_on_disk_by_content(tmp_path) -> None:  # noqa: ANN001
    g = tiny_graph()
    enc = CountingEncoder()
    x1 = FeatureCache(enc, tmp_path).encode([concept_text(c) for c in g.concepts()])
    assert len(enc.encoded) == len(g)
    enc.encoded.clear()
    # A new cache object (a new process) reads the shards: nothing re-encoded.
    x2 = FeatureCache(enc, tmp_path).encode([concept_text(c) for c in g.concepts()])
    assert enc.encoded == [] and torch.equal(x1, x2)
    # Editing one concept re-encodes only that one.
    g.replace_concept(Concept("DOID:552", "pneumonia", synonyms=("lung infection",)))
    FeatureCache(enc, tmp_path).encode([concept_text(c) for c in g.concepts()])
    assert enc.encoded == [concept_text(g.concept("DOID:552"))]


def test_corrupted_cache_shard_is_recomputed(tmp_path, caplog) -> None:  # noqa: ANN001
    g = tiny_graph()
    enc = CountingEncoder()
    x1 = concept_features(g, enc, cache_dir=tmp_path)
    for shard in (tmp_path / "kg-features").rglob("shard-*.safetensors"):
        shard.write_bytes(b"garbage")
    enc.encoded.clear()
    with caplog.at_level(logging.WARNING):
        x2 = FeatureCache(enc, tmp_path).encode([concept_text(c) for c in g.concepts()])
    assert "ignoring unreadable" in caplog.text
    assert len(enc.encoded) == len(g) and torch.allclose(x1, x2)


def test_features_shape_and_subset(tmp_path) -> None:  # noqa: ANN001
    g = tiny_graph()
    x = concept_features(g, "hashing-64", cache_dir=tmp_path)
    assert x.shape == (len(g), 64) and x.dtype == torch.float32
    sub = concept_features(g, "hashing-64", ids=["DOID:552", "DOID:4"], cache_dir=False)
    assert torch.allclose(sub, x[[g.index_of("DOID:552"), g.index_of("DOID:4")]])


def test_relation_added_later_keeps_node_order() -> None:
    g = tiny_graph()
    g.add_concept(Concept("DOID:9", "new disease"))
    g.add_relation(Relation("DOID:9", "is_a", "DOID:4"))
    data = to_pyg(g)
    assert data.node_ids[-1] == "DOID:9" and data.num_nodes == len(g)
