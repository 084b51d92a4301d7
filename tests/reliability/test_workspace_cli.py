"""``kgclip cases add``: good input adds cases; every bad input exits 1 with a message naming the line (never a
traceback) and leaves the workspace as it was."""

from __future__ import annotations

import json

import pytest

from kgclip.cli.main import main
from kgclip.engine import Engine
from kgclip.testing.workspaces import build_tiny_workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    engine = build_tiny_workspace(tmp, n_images=4)
    return engine, tmp / "data" / "images", tmp / "ws"


def test_cases_add_from_jsonl(built, tmp_path, capsys):
    _, images, ws = built
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes((images / "synth001.png").read_bytes())
    lines = [{"case_id": "cli-1", "image": "img/x.png", "text": "Large pneumothorax.", "body_part": "CHEST"},
             {"case_id": "cli-2", "image": str(images / "synth002.png"), "text": "Normal brain."}]
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n\n", encoding="utf-8")
    assert main(["cases", "add", str(ws), "--input", str(tmp_path / "cases.jsonl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["added"] == 2
    assert {"cli-1", "cli-2"} <= {c.case_id for c in Engine.load(ws).cases}


@pytest.mark.parametrize("content,message", [
    (b'{"case_id": "a", "image": "x.png", "text": "ok"}\n{"case_id": "b", "image": ', "line 2: not JSON"),
    (b'["a list"]\n', "line 1: a case is a JSON object"),
    (b'{"case_id": "a", "image": "nowhere.png", "text": "t"}\n', "line 1 ('a'): image"),
    (b'{"case_id": "a", "text": "no image"}\n', "line 1: 'image' is missing"),
    (b'{"case_id": "a", "image": "x.png", "text": 5}\n', "line 1: 'text' must be text"),
    (b'{"case_id": "\xff\xfe", "image": "x.png"}\n', "line 1: not UTF-8"),
    (b"\n\n", "holds no cases"),
])
def test_bad_jsonl_is_a_clear_error(built, tmp_path, capsys, content, message):
    _, images, ws = built
    (tmp_path / "x.png").write_bytes((images / "synth000.png").read_bytes())
    (tmp_path / "bad.jsonl").write_bytes(content)
    before = (ws / "cases.json").read_bytes()
    assert main(["cases", "add", str(ws), "--input", str(tmp_path / "bad.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kgclip: error:") and message in err and "Traceback" not in err
    assert (ws / "cases.json").read_bytes() == before


def test_missing_input_and_missing_workspace_are_clear_errors(built, tmp_path, capsys):
    _, images, ws = built
    assert main(["cases", "add", str(ws), "--input", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"case_id": "z", "image": str(images / "synth000.png"), "text": "t"}) + "\n")
    assert main(["cases", "add", str(tmp_path / "nows"), "--input", str(good)]) == 1
    assert "not a kgclip workspace" in capsys.readouterr().err
