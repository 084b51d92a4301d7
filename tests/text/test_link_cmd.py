from __future__ import annotations

import json

import pytest

from kgclip.cli.main import main
from kgclip.testing import tiny_graph


def test_link_tiny_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["link", "--tiny", "--json", "No pleural effusion.", "Small PTX."]) == 0
    out = json.loads(capsys.readouterr().out)
    got = [(m["concept_id"], m["negated"]) for m in out["mentions"]]
    assert got == [("RADLEX:RID4872", True), ("RADLEX:RID5352", False)]
    assert out["text"] == "No pleural effusion. Small PTX."


def test_link_table_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["link", "--tiny", "Possible pneumonia. History of lung cancer."]) == 0
    out = capsys.readouterr().out
    assert "DOID:552" in out and "uncertain" in out and "historical" in out
    assert main(["link", "--tiny", "--no-negation", "No pneumonia"]) == 0
    assert "affirmed" in capsys.readouterr().out
    assert main(["link", "--tiny", "nothing at all"]) == 0
    assert "no concepts found" in capsys.readouterr().out


def test_link_against_a_graph_directory(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    store = pytest.importorskip("kgclip.ontology.store")
    store.save_graph(tiny_graph(), tmp_path / "tiny")
    argv = ["link", "--ontology", str(tmp_path / "tiny"), "--json", "--no-fuzzy", "pnuemothorax, cardiomegaly"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["concept_id"] for m in out["mentions"]] == ["RADLEX:RID1392"]


def test_link_missing_directory_is_a_clean_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("kgclip.ontology.store")
    assert main(["link", "--ontology", str(tmp_path / "nope"), "text"]) == 1
    assert "error" in capsys.readouterr().err
