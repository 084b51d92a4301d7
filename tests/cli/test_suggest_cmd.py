"""``kgclip ontology suggest`` / ``review``: suggestions are written, never applied; review makes curated edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["ontology", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    radlex, doid = tmp_path / "radlex", tmp_path / "doid"
    save_graph(tiny_graph(), radlex)
    save_graph(ConceptGraph.from_records([
        Concept("DOID:4", "disease"), Concept("DOID:3905", "hydrothorax disease", synonyms=("pleural effusions",)),
        Concept("DOID:1324", "lung cancer"), Concept("DOID:3907", "squamous cell lung cancer"),
        Relation("DOID:1324", "is_a", "DOID:4"), Relation("DOID:3905", "is_a", "DOID:4")], name="doid"), doid)
    return radlex, doid


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_suggest_same_as_across_graphs_writes_suggestions_only(capsys, dirs) -> None:
    radlex, doid = dirs
    before = {k: v for k, v in files(doid).items()}
    code, out, err = run(capsys, "suggest", doid, "--kind", "same_as", "--with", radlex)
    assert code == 0, err
    assert "DOID:3905 -same_as-> RADLEX:RID4872" in out
    after = files(doid)
    assert {k: v for k, v in after.items() if k != "suggestions.jsonl"} == before  # the graph is untouched
    header = json.loads(after["suggestions.jsonl"].decode().splitlines()[0])
    assert header["graphs"]["self"] == load_graph_dir(doid).fingerprint()
    assert str(radlex.resolve()) in header["graphs"]


def test_review_accept_is_an_undoable_curated_edit(capsys, dirs) -> None:
    radlex, doid = dirs
    run(capsys, "suggest", doid, "--kind", "is_a", "--concept", "DOID:3907")
    code, out, _ = run(capsys, "review", doid)
    assert code == 0 and "#1 DOID:3907 -is_a-> DOID:1324" in out
    code, out, err = run(capsys, "review", doid, "--accept", "1", "--author", "ann", "--reason", "head noun")
    assert code == 0, err
    graph = load_graph_dir(doid)
    assert "DOID:1324" in graph.parents("DOID:3907")
    code, out, _ = run(capsys, "log", doid)
    assert "add_relation" in out and "by ann" in out and "(head noun)" in out
    code, out, _ = run(capsys, "review", doid, "--all")
    assert "[accepted]" in out
    assert run(capsys, "undo", doid)[0] == 0
    assert "DOID:1324" not in load_graph_dir(doid).parents("DOID:3907")


def test_accepting_a_cross_graph_same_as_adds_an_xref(capsys, dirs) -> None:
    radlex, doid = dirs
    run(capsys, "suggest", doid, "--with", radlex)
    code, _, err = run(capsys, "review", doid, "--accept", "1", "--author", "ann")
    assert code == 0, err
    assert "RADLEX:RID4872" in load_graph_dir(doid).concept("DOID:3905").xrefs
    union = ConceptGraph.union([load_graph_dir(radlex), load_graph_dir(doid)])
    assert union.has_relation("DOID:3905", "same_as", "RADLEX:RID4872")


def test_reject_is_logged_and_second_decision_refused(capsys, dirs) -> None:
    radlex, doid = dirs
    run(capsys, "suggest", doid, "--with", radlex)
    fp = load_graph_dir(doid).fingerprint()
    code, _, err = run(capsys, "review", doid, "--reject", "1", "--author", "bob", "--reason", "different concept")
    assert code == 0, err
    assert load_graph_dir(doid).fingerprint() == fp
    assert "review" in run(capsys, "log", doid)[1]
    code, _, err = run(capsys, "review", doid, "--accept", "1")
    assert code == 1 and "already rejected" in err


def test_review_against_a_changed_graph_writes_nothing(capsys, dirs) -> None:
    radlex, doid = dirs
    run(capsys, "suggest", doid, "--with", radlex)
    run(capsys, "add-concept", doid, "DOID:5", "--name", "new thing")
    before = files(doid)
    code, _, err = run(capsys, "review", doid, "--accept", "1")
    assert code == 1 and "changed since they were computed" in err and "nothing was written" in err
    assert files(doid) == before


def test_bad_input_is_refused_with_a_fix(capsys, dirs) -> None:
    radlex, doid = dirs
    code, _, err = run(capsys, "suggest", doid, "--kind", "is_a", "--concept", "DOID:nope")
    assert code == 1 and "kgclip ontology search" in err
    code, _, err = run(capsys, "suggest", doid, "--kind", "has_symptom")
    assert code == 1 and "kgclip kg train" in err
    code, _, err = run(capsys, "review", radlex)
    assert code == 1 and "kgclip ontology suggest" in err
    run(capsys, "suggest", doid, "--with", radlex)
    code, _, err = run(capsys, "review", doid, "--accept", "9")
    assert code == 1 and "no suggestion #9" in err


def test_suggest_with_embeddings_refreshes_for_a_new_concept(capsys, dirs, tmp_path) -> None:
    import torch

    from kgclip.kg.build import train_embeddings
    from kgclip.kg.train import KGTrainConfig

    torch.set_num_threads(1)
    radlex, doid = dirs
    cfg = KGTrainConfig(hidden_dim=16, epochs=2, batch_size=8, num_negatives=4, val_fraction=0.2, dropout=0.0)
    train_embeddings(load_graph_dir(doid), cfg, text_encoder="hashing-32", cache_dir=tmp_path / "c",
                     show_progress=False).save(tmp_path / "kg")
    run(capsys, "add-concept", doid, "DOID:3908", "--name", "large cell lung cancer")
    code, out, err = run(capsys, "suggest", doid, "--kind", "is_a", "--concept", "DOID:3908", "--embeddings",
                         tmp_path / "kg")
    assert code == 0, err
    assert "re-encoding 1 new concept" in err
    assert out.startswith("#1 DOID:3908 -is_a-> DOID:1324") and "link_predictor" in out
    header = json.loads((doid / "suggestions.jsonl").read_text().splitlines()[0])
    assert header["embeddings"]
