from __future__ import annotations

import dataclasses

import pytest
import torch

from kgclip.errors import ConfigError
from kgclip.kg.convert import concept_features, to_pyg
from kgclip.kg.encoders import build_encoder
from kgclip.kg.metrics import CosineScorer, DistMultScorer, KnownTriples, filtered_ranks, rank_metrics
from kgclip.kg.train import (DistMultDecoder, KGTrainConfig, base_triples, embed, fit, message_graph,
                             sample_subgraph, split_triples)


def _setup(make):  # noqa: ANN001, ANN202
    g = make()
    data = to_pyg(g, concept_features(g, "hashing-32", cache_dir=False))
    triples = base_triples(data)
    test, train = split_triples(triples, (0.15,), seed=0)
    known = KnownTriples([triples], len(g), data.num_base_relations)
    return g, data, train, test, known


def _test_mrr(result, data, train, test, known) -> float:  # noqa: ANN001
    ei, et = message_graph(train, data.num_base_relations)
    emb = embed(result.encoder, data.x, ei, et)
    return rank_metrics(filtered_ranks(DistMultScorer(emb, result.decoder.relations.detach()), test, known))["mrr"]


@pytest.mark.parametrize("encoder", ["rgcn", "attention"])
def test_training_improves_mrr(encoder: str, fast_config: KGTrainConfig, make_synthetic) -> None:
    g, data, train, test, known = _setup(make_synthetic)
    torch.manual_seed(0)
    untrained = build_encoder(encoder, in_dim=32, num_relations=len(data.relation_types), hidden_dim=32)
    ei, et = message_graph(train, data.num_base_relations)
    before = rank_metrics(filtered_ranks(
        DistMultScorer(embed(untrained, data.x, ei, et),
                       DistMultDecoder(data.num_base_relations, 32).relations.detach()),
        test, known))["mrr"]
    cfg = dataclasses.replace(fast_config, encoder=encoder, epochs=30)
    result = fit(data, cfg, train=train, known=known, show_progress=False)
    after = _test_mrr(result, data, train, test, known)
    assert after > before + 0.1, (before, after)
    assert result.history and result.epochs_run >= 1 and result.epoch_seconds > 0


def test_reproducible_with_seed(fast_config: KGTrainConfig, make_synthetic) -> None:
    _, data, train, _, known = _setup(make_synthetic)
    cfg = dataclasses.replace(fast_config, epochs=4)
    a = fit(data, cfg, train=train, known=known, show_progress=False)
    b = fit(data, cfg, train=train, known=known, show_progress=False)
    for (ka, va), (kb, vb) in zip(a.encoder.state_dict().items(), b.encoder.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = fit(data, dataclasses.replace(cfg, seed=1), train=train, known=known, show_progress=False)
    assert not torch.equal(a.encoder.input.weight, c.encoder.input.weight)


def test_minibatch_path_learns(fast_config: KGTrainConfig, make_synthetic) -> None:
    g, data, train, test, known = _setup(make_synthetic)
    cfg = dataclasses.replace(fast_config, mode="minibatch", fanout=3, epochs=30, batch_size=32)
    result = fit(data, cfg, train=train, known=known, show_progress=False)
    assert _test_mrr(result, data, train, test, known) > 0.2


def test_sample_subgraph_caps_fanout() -> None:
    # A star: 50 leaves point at node 0; with fanout 5, node 0 hears from at most 5 of them.
    leaves = torch.arange(1, 51)
    ei = torch.stack([leaves, torch.zeros(50, dtype=torch.long)])
    gen = torch.Generator().manual_seed(0)
    nodes, edge_ids, pos = sample_subgraph(torch.tensor([0]), ei, 51, num_hops=2, fanout=5, generator=gen)
    assert edge_ids.numel() == 5 and nodes.numel() == 6 and int(nodes[pos[0]]) == 0
    assert set(ei[1, edge_ids].tolist()) == {0}


def test_shallow_baseline_trains(fast_config: KGTrainConfig, make_synthetic) -> None:
    _, data, train, test, known = _setup(make_synthetic)
    result = fit(data, dataclasses.replace(fast_config, encoder="shallow"), train=train, known=known,
                 show_progress=False)
    assert result.encoder.embedding.weight.shape[0] == data.num_nodes


@pytest.mark.parametrize("field,value", [("encoder", "nope"), ("hidden_dim", 0), ("mode", "sideways"),
                                         ("dropout", 1.5), ("val_fraction", 0.7)])
def test_config_validation(field: str, value: object) -> None:
    with pytest.raises((ConfigError, KeyError)):
        KGTrainConfig(**{field: value})


def test_config_json_round_trip(tmp_path) -> None:  # noqa: ANN001
    cfg = KGTrainConfig(encoder="attention", epochs=3)
    cfg.save(tmp_path / "c.json")
    assert KGTrainConfig.load(tmp_path / "c.json") == cfg


def test_filtered_ranks_filter_known_answers_and_self() -> None:
    # 4 nodes; scores = cosine of features. Query (0, r, ?) with answers {1, 2}; node 0 itself scores highest.
    feats = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05], [0.0, 1.0]])
    known = KnownTriples([torch.tensor([[0, 0, 1], [0, 0, 2]])], 4, 1)
    ranks = filtered_ranks(CosineScorer(feats), torch.tensor([[0, 0, 1]]), known)
    assert ranks[0] == 1.0  # node 2 (another true answer) filtered, node 0 (the query itself) excluded
    raw = filtered_ranks(CosineScorer(feats), torch.tensor([[0, 0, 1]]),
                         KnownTriples([torch.tensor([[0, 0, 1]])], 4, 1), exclude_self=False)
    assert raw[0] == 3.0
    assert rank_metrics(torch.tensor([1.0, 2.0, 20.0]))["hits10"] == pytest.approx(2 / 3)
