"""Fixtures for the kg tests: a small synthetic graph with learnable structure, and a fast training config."""

from __future__ import annotations

import random

import pytest
import torch

from kgclip.kg.train import KGTrainConfig
from kgclip.ontology.model import Concept, ConceptGraph, Relation


def synthetic_graph(groups: int = 6, members: int = 10, seed: int = 0) -> ConceptGraph:
    """``groups`` hubs, each with ``members`` children (is_a) that also relate to siblings (co_occurs) and to one
    organ per group (located_in). Names are uninformative ("item 17"), so only the structure can be learned."""
    rng = random.Random(seed)
    records: list[Concept | Relation] = []
    for g in range(groups):
        records.append(Concept(f"SYN:hub{g}", f"hub {g}"))
        records.append(Concept(f"SYN:organ{g}", f"place {g}"))
        kids = [f"SYN:g{g}m{m}" for m in range(members)]
        for k in kids:
            records.append(Concept(k, f"item {rng.randrange(10**6)}"))
            records.append(Relation(k, "is_a", f"SYN:hub{g}"))
            records.append(Relation(k, "located_in", f"SYN:organ{g}"))
        for _ in range(members):
            a, b = rng.sample(kids, 2)
            records.append(Relation(a, "co_occurs", b))
    return ConceptGraph.from_records(records, name="synthetic")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the test machine's cores are shared


@pytest.fixture
def fast_config() -> KGTrainConfig:
    return KGTrainConfig(hidden_dim=32, epochs=12, batch_size=64, num_negatives=32, eval_every=2, patience=10,
                         val_fraction=0.1, lr=0.01, dropout=0.0)


@pytest.fixture
def make_synthetic():  # noqa: ANN201 - returns the factory
    return synthetic_graph
