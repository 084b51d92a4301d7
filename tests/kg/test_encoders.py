from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv

from kgclip.errors import ResolutionError
from kgclip.kg.convert import concept_features, to_pyg
from kgclip.kg.encoders import ENCODERS, BasisRGCNConv, build_encoder
from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.testing import tiny_graph


def test_basis_rgcn_matches_pyg_rgcnconv() -> None:
    torch.manual_seed(0)
    n, r, b = 40, 6, 3
    x = torch.randn(n, 8)
    ei, et = torch.randint(0, n, (2, 150)), torch.randint(0, r, (150,))
    ref = RGCNConv(8, 5, r, num_bases=b, aggr="mean")
    ours = BasisRGCNConv(8, 5, r, b)
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
        ours.comp.copy_(ref.comp)
        ours.root.weight.copy_(ref.root.T)
        ours.root.bias.copy_(ref.bias)
    assert torch.allclose(ours(x, ei, et), ref(x, ei, et), atol=1e-5)


@pytest.mark.parametrize("name", ["rgcn", "attention"])
def test_forward_backward(name: str) -> None:
    g = tiny_graph()
    data = to_pyg(g, concept_features(g, "hashing-64", cache_dir=False))
    enc = build_encoder(name, in_dim=64, num_relations=len(data.relation_types), hidden_dim=16)
    out = enc(data.x, data.edge_index, data.edge_type)
    assert out.shape == (len(g), 16) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert all(gr is not None for gr in grads)
    assert enc.convs[0].parameters().__next__().grad is not None


@pytest.mark.parametrize("name", ["rgcn", "attention"])
def test_isolated_concepts_and_no_edges(name: str) -> None:
    g = ConceptGraph.from_records([Concept("X:1", "pleural effusion"), Concept("X:2", "pneumothorax")])
    data = to_pyg(g, concept_features(g, "hashing-64", cache_dir=False))
    enc = build_encoder(name, in_dim=64, num_relations=0, hidden_dim=16).eval()
    out = enc(data.x, data.edge_index, data.edge_type)
    assert out.shape == (2, 16) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # text still separates them


def test_hidden_states_end_with_the_embedding() -> None:
    g = tiny_graph()
    data = to_pyg(g, concept_features(g, "hashing-64", cache_dir=False))
    enc = build_encoder("rgcn", in_dim=64, num_relations=len(data.relation_types), hidden_dim=16, num_layers=3)
    states = enc.hidden_states(data.x, data.edge_index, data.edge_type)
    assert len(states) == 4
    with torch.no_grad():
        assert torch.allclose(states[-1], enc.eval()(data.x, data.edge_index, data.edge_type))


def test_unknown_encoder_lists_choices() -> None:
    with pytest.raises(ResolutionError, match="attention.*rgcn"):
        build_encoder("gcnx", in_dim=4, num_relations=2)
    assert {"rgcn", "attention", "shallow"} <= set(ENCODERS)
