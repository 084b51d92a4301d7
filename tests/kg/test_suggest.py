"""Link suggestions: the trained DistMult link predictor, fusion with names, and same_as re-ranked by embeddings."""

from __future__ import annotations

import pytest
import torch

from kgclip.errors import ConfigError, UnknownConceptError
from kgclip.kg.build import train_embeddings
from kgclip.kg.suggest import LinkPredictor, default_heads, fuse_rankings, suggest_links
from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.ontology.suggestions import Suggestion
from kgclip.testing import tiny_graph
from tests.kg.conftest import synthetic_graph


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN001, ANN201
    """Synthetic graph with one member's is_a link removed, and embeddings trained on the rest."""
    torch.set_num_threads(1)
    from kgclip.kg.train import KGTrainConfig

    graph = synthetic_graph(groups=4, members=8)
    graph.remove_relation("SYN:g2m3", "is_a", "SYN:hub2")
    cfg = KGTrainConfig(hidden_dim=32, epochs=30, batch_size=64, num_negatives=32, eval_every=5, patience=10,
                        val_fraction=0.1, lr=0.01, dropout=0.0, seed=1)
    emb = train_embeddings(graph, cfg, text_encoder="hashing-32", cache_dir=tmp_path_factory.mktemp("c"),
                           show_progress=False)
    return graph, emb


def test_predictor_recovers_the_hidden_parent_from_structure(trained) -> None:  # noqa: ANN001
    graph, emb = trained
    hubs = [f"SYN:hub{g}" for g in range(4)]
    ranked = LinkPredictor(emb).rank(["SYN:g2m3"], "is_a", hubs, k=4)["SYN:g2m3"]
    assert [t for t, _ in ranked][0] == "SYN:hub2"  # names are uninformative: only the graph can tell
    assert ranked[0][1] >= ranked[-1][1]


def test_suggest_links_is_a_excludes_existing_parents_and_self(trained) -> None:  # noqa: ANN001
    graph, emb = trained
    found = suggest_links(graph, "is_a", embeddings=emb, concept="SYN:g1m0", limit=5)
    assert found and all(s.source == "SYN:g1m0" and s.kind == "is_a" for s in found)
    assert all(s.target not in ("SYN:g1m0", "SYN:hub1") for s in found)
    assert any("link_predictor" in s.method for s in found)


def test_default_heads_are_concepts_without_parents_or_children(trained) -> None:  # noqa: ANN001
    graph, _ = trained
    heads = default_heads(graph, "is_a")
    assert "SYN:g2m3" in heads and "SYN:hub2" not in heads and "SYN:g1m0" not in heads


def test_predictor_needs_known_relation(trained) -> None:  # noqa: ANN001
    _, emb = trained
    with pytest.raises(ConfigError, match="not trained on relation"):
        LinkPredictor(emb).rank(["SYN:g1m0"], "has_symptom", ["SYN:hub1"])


def test_new_concept_without_parents_gets_suggested_parents(tmp_path) -> None:
    torch.set_num_threads(1)
    from kgclip.kg.train import KGTrainConfig

    graph = tiny_graph()
    cfg = KGTrainConfig(hidden_dim=16, epochs=4, batch_size=16, num_negatives=8, val_fraction=0.2, dropout=0.0)
    emb = train_embeddings(graph, cfg, text_encoder="hashing-32", cache_dir=tmp_path, show_progress=False)
    graph.add_concept(Concept("DOID:3907", "squamous cell lung cancer"))
    fresh = emb.refresh(graph)
    found = suggest_links(graph, "is_a", embeddings=fresh, concept="DOID:3907", limit=3)
    assert found[0].target == "DOID:1324"  # the name's head, fused with the predictor's ranking
    assert "head_noun" in found[0].method


def test_same_as_is_reranked_by_embedding_similarity(tmp_path) -> None:
    torch.set_num_threads(1)
    from kgclip.kg.train import KGTrainConfig

    graph = tiny_graph()
    cfg = KGTrainConfig(hidden_dim=16, epochs=2, batch_size=16, num_negatives=8, val_fraction=0.2, dropout=0.0)
    emb = train_embeddings(graph, cfg, text_encoder="hashing-32", cache_dir=tmp_path, show_progress=False)
    other = ConceptGraph.from_records([Concept("DOID:3905", "hydrothorax")], name="other")
    plain = suggest_links(graph, "same_as", other=other)
    assert [(s.source, s.target) for s in plain] == [("RADLEX:RID4872", "DOID:3905")]
    both = ConceptGraph.union([graph, other])
    emb2 = emb.refresh(both)
    ranked = suggest_links(graph, "same_as", other=other, embeddings=emb2)
    assert ranked[0].method.endswith("+embedding") and "GNN cosine" in ranked[0].why


def test_fuse_rankings_rewards_agreement() -> None:
    a = [Suggestion("is_a", "X", "P", 1.0, "link_predictor"), Suggestion("is_a", "X", "Q", 0.9, "link_predictor")]
    b = [Suggestion("is_a", "X", "Q", 0.8, "head_noun"), Suggestion("is_a", "X", "R", 0.7, "head_noun")]
    fused = fuse_rankings([a, b], 3)
    assert [s.target for s in fused] == ["Q", "P", "R"]
    assert fused[0].method == "link_predictor+head_noun"


def test_bad_input() -> None:
    g = tiny_graph()
    with pytest.raises(ConfigError, match="choose one of"):
        suggest_links(g, "bogus_rel")
    with pytest.raises(UnknownConceptError):
        suggest_links(g, "is_a", concept="DOID:nope")
    with pytest.raises(ConfigError, match="kgclip kg train"):
        suggest_links(g, "has_symptom")
