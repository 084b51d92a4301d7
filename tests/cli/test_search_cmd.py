"""``kgclip search``: cases of a concept and its descendants, with the path each matched through; text search marks
the cases saying the opposite of the query."""

from __future__ import annotations

import json

import pytest

from kgclip.cli.main import main
from kgclip.engine import Engine, EngineConfig
from kgclip.testing import tiny_graph
from kgclip.testing.synthetic import make_vqa_folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=6)
    ws = tmp_path_factory.mktemp("ws") / "ws"
    engine = Engine.build(EngineConfig(text_encoder="hashing-64"), ws, vqa_rad=data, graph=tiny_graph(),
                          show_progress=False)
    img = str(data / "images" / "synth000.png")
    engine.add_cases([{"case_id": "adeno", "image": img, "text": "Lung adenocarcinoma in the right upper lobe."},
                      {"case_id": "cancer", "image": img, "text": "Known lung cancer."},
                      {"case_id": "no-effusion", "image": img, "text": "No pleural effusion."}])
    return ws


def test_search_concept_prints_expansion_and_paths(capsys, workspace) -> None:
    assert main(["search", "--workspace", str(workspace), "--concept", "DOID:1324"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("searched: lung cancer (DOID:1324) + 1 descendant(s)")
    assert "adeno" in out and "[lung adenocarcinoma ⊂ lung cancer]" in out


def test_search_json_and_no_descendants(capsys, workspace) -> None:
    assert main(["search", "--workspace", str(workspace), "--concept", "DOID:1324", "--no-descendants",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [h["case_id"] for h in result["hits"]] == ["cancer"]
    assert result["hits"][0]["matched_through"] == "lung cancer"


def test_search_refuses_unknown_concept_and_no_query(capsys, workspace) -> None:
    assert main(["search", "--workspace", str(workspace), "--concept", "DOID:nope"]) == 1
    assert "DOID:nope" in capsys.readouterr().err
    assert main(["search", "--workspace", str(workspace)]) == 1
    assert "--concept" in capsys.readouterr().err


def test_text_search_marks_cases_saying_the_opposite(capsys, workspace) -> None:
    n = "50"  # every case, so the opposing ones are printed (they come last)
    assert main(["search", "--workspace", str(workspace), "--text", "pleural effusion", "-k", n]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    marked = ["[says the opposite: no pleural effusion]" in line for line in lines]
    assert any(marked) and not all(marked) and marked == sorted(marked)  # the marked ones after the others
    assert any(line.startswith("no-effusion\t") for line, m in zip(lines, marked) if m)
    assert main(["search", "--workspace", str(workspace), "--text", "pleural effusion", "-k", n, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [bool(h["opposes_query"]) for h in hits] == marked
    assert {h["case_id"]: h for h in hits}["no-effusion"]["opposes_query"] == "no pleural effusion"
