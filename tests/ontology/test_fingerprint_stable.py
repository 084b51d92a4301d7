"""Graph fingerprints are part of the on-disk contract: every artifact records the fingerprint of the graph it was
built from, so a refactor of :class:`ConceptGraph` must leave them bit-for-bit identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.store import load_graph_dir, read_meta
from kgclip.testing import tiny_graph

# Computed before ConceptGraph and Curator were each folded into one class (issue 12); they must never change.
SHIPPED = {
    "radlex": "b8bed2db28f97c1df63350a7161253b3",
    "doid": "bd0b66c5c3487fc7afe61595cf93e450",
}
TINY = "e4d9a7e657a191c03fe71d47f56842ee"


def test_tiny_graph_fingerprint_unchanged() -> None:
    graph = tiny_graph()
    assert graph.fingerprint() == TINY
    assert ConceptGraph.from_records([*graph.concepts(), *graph.relations()]).fingerprint() == TINY


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_graph_fingerprint_unchanged(repo_root: Path, name: str) -> None:
    directory = repo_root / "ontologies" / name
    graph = load_graph_dir(directory, strict=True)
    assert graph.fingerprint() == SHIPPED[name] == read_meta(directory)["graph_fingerprint"]
    assert graph.copy().fingerprint() == SHIPPED[name]
