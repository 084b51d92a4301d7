from __future__ import annotations

import pytest

from kgclip.cli.main import main
from kgclip.kg.embeddings import ConceptEmbeddings
from kgclip.ontology.curation import Curator
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph


@pytest.fixture
def workspace(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("KGCLIP_HOME", str(tmp_path / "home"))
    save_graph(tiny_graph(), tmp_path / "onto")
    return tmp_path


def test_train_neighbors_refresh(workspace, capsys) -> None:  # noqa: ANN001
    onto, out = workspace / "onto", workspace / "kg"
    assert main(["kg", "train", "--ontology", str(onto), "--text-encoder", "hashing-64", "--epochs", "3",
                 "--out", str(out), "--no-progress"]) == 0
    assert "wrote 20 x 128 embeddings" in capsys.readouterr().out
    ConceptEmbeddings.load(out, graph=load_graph_dir(onto))

    assert main(["kg", "neighbors", "--embeddings", str(out), "DOID:552", "-k", "3", "--ontology", str(onto)]) == 0
    text = capsys.readouterr().out
    assert "pneumonia" in text and len([line for line in text.splitlines() if line.startswith("  ")]) == 3

    assert main(["kg", "refresh", "--ontology", str(onto), "--embeddings", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out

    curator = Curator.open(onto, author="test")
    curator.add_concept("DOID:9998", "viral pneumonia", parents=["DOID:552"])
    assert main(["kg", "refresh", "--ontology", str(onto), "--embeddings", str(out)]) == 0
    assert "refreshed" in capsys.readouterr().out
    emb = ConceptEmbeddings.load(out, graph=load_graph_dir(onto))
    assert "DOID:9998" in emb
    # the refresh remembered the changelog position: a second refresh has nothing to do
    assert main(["kg", "refresh", "--embeddings", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_errors_are_reported_not_raised(workspace, capsys) -> None:  # noqa: ANN001
    assert main(["kg", "neighbors", "--embeddings", str(workspace / "missing"), "DOID:552"]) == 1
    assert "kgclip kg train" in capsys.readouterr().err
    assert main(["kg", "train", "--ontology", str(workspace / "onto"), "--encoder", "nope", "--text-encoder",
                 "hashing-64", "--out", str(workspace / "kg")]) == 1
    assert "among choices" in capsys.readouterr().err


def test_unknown_concept_in_neighbors(workspace, capsys) -> None:  # noqa: ANN001
    out = workspace / "kg"
    assert main(["kg", "train", "--ontology", str(workspace / "onto"), "--text-encoder", "hashing-64", "--epochs",
                 "1", "--out", str(out), "--no-progress"]) == 0
    assert main(["kg", "neighbors", "--embeddings", str(out), "DOID:0"]) == 1
    assert "no embedding" in capsys.readouterr().err
