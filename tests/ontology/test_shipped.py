"""``kgclip.ontology.shipped``: the one recipe for the shipped ontologies (build script, training, demo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.errors import InputFormatError
from kgclip.ontology import shipped
from kgclip.ontology.store import load_ontologies

def test_shipped_graph_is_the_shipped_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shipped.shipped_ontology_dirs()  # built in this checkout
    loaded: list[str] = []
    monkeypatch.setattr(shipped, "load_ontologies", lambda name: loaded.append(name) or "graph")
    assert shipped.shipped_graph(name="both") == "graph" and loaded == ["both"]


def test_unknown_name_and_missing_sources_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputFormatError, match="radlex, doid"):
        shipped.shipped_records("umls", tmp_path)
    monkeypatch.setattr(shipped, "shipped_ontology_dirs", lambda: [])
    with pytest.raises(InputFormatError, match="ontologies/build.py"):
        shipped.shipped_graph(tmp_path)


@pytest.mark.slow
@pytest.mark.data
def test_in_memory_build_equals_the_shipped_graph(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ontologies/build.py's byte-for-byte reproduction is tests/ontology/test_store.py's; this checks that a checkout
    # that never built the directories gets the same graph from the same recipe.
    monkeypatch.setattr(shipped, "shipped_ontology_dirs", lambda: [])
    assert shipped.shipped_graph(shared_data).fingerprint() == load_ontologies().fingerprint()
