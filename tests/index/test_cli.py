"""``kgclip index build|add|remove|search|info`` through ``kgclip.cli.main.main(argv)``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgclip.cli.main import main
from kgclip.index.faiss_index import FaissIndex
from kgclip.index.io import write_vectors


@pytest.fixture
def items(tmp_path: Path) -> Path:
    rows = [{"id": 10, "text": "left pleural effusion", "modality": "XR", "concepts": ["RADLEX:RID4872"]},
            {"id": 11, "text": "acute subdural hematoma", "modality": "CT", "body_part": "HEAD"},
            {"text": "no acute intracranial abnormality", "modality": "CT", "body_part": "HEAD"}]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_build_search_add_remove_info(tmp_path: Path, items: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(items), "--encoder", "hashing-64"]) == 0
    capsys.readouterr()
    assert main(["index", "search", ix, "pleural effusion", "-k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["hits"][0]["id"] == 10 and out["hits"][0]["metadata"]["concepts"] == ["RADLEX:RID4872"]
    assert main(["index", "search", ix, "bleed", "--filter", "modality=CT", "--filter", "body_part=HEAD",
                 "--json"]) == 0
    assert {h["id"] for h in json.loads(capsys.readouterr().out)["hits"]} == {11, 12}
    csv_path = tmp_path / "more.csv"
    csv_path.write_text("id,text,modality,concepts\n20,right pneumothorax,XR,RADLEX:RID5352;RADLEX:RID1\n")
    assert main(["index", "add", ix, "--input", str(csv_path)]) == 0
    assert main(["index", "remove", ix, "11"]) == 0
    index = FaissIndex.load(ix)
    assert index.ids().tolist() == [10, 12, 20]
    assert index.get([20])[0]["concepts"] == ["RADLEX:RID5352", "RADLEX:RID1"]
    capsys.readouterr()
    assert main(["index", "info", ix, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["items"] == 3 and info["encoder_name"] == "hashing-64"


def test_search_with_other_encoder_is_refused(tmp_path: Path, items: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(items), "--encoder", "hashing-64"]) == 0
    assert main(["index", "search", ix, "x", "--encoder", "hashing-32"]) == 1
    assert "encoder fingerprint" in capsys.readouterr().err


def test_build_from_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    write_vectors(tmp_path / "v.safetensors", vectors, np.arange(100, 400))
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--vectors", str(tmp_path / "v.safetensors"), "--factory", "IVF4,Flat"]) == 0
    index = FaissIndex.load(ix)
    assert len(index) == 300 and index.family == "ivf"
    assert main(["index", "build", ix]) == 1  # neither --input nor --vectors
    assert "--input" in capsys.readouterr().err


def test_string_ids_and_filters_on_any_metadata_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": "case-7/a", "text": "left pleural effusion", "finding": "effusion", "year": 2020},
            {"id": "case-9", "text": "right pleural effusion", "finding": "effusion", "year": 2021},
            {"id": 11, "text": "acute subdural hematoma", "finding": "hematoma", "year": 2021},
            {"text": "no acute abnormality"}]
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(src), "--encoder", "hashing-64"]) == 0
    index = FaissIndex.load(ix)
    assert sorted(m.get("external_id", "") for m in index.get(index.ids())) == ["", "", "case-7/a", "case-9"]
    assert 12 in index.ids().tolist()  # the row without an id got the next small one, not one after a hashed id
    capsys.readouterr()
    assert main(["index", "search", ix, "pleural effusion", "--filter", "finding=effusion", "--filter",
                 "year=2021", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == ["case-9"]
    more = tmp_path / "b.csv"
    more.write_text('id,text,finding\ncase-9,"right pleural effusion, larger",effusion\n')
    assert main(["index", "add", ix, "--input", str(more)]) == 0  # the same string id replaces the item
    assert main(["index", "remove", ix, "case-7/a", "11"]) == 0
    capsys.readouterr()
    assert main(["index", "search", ix, "effusion", "-k", "10", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert sorted(str(h["id"]) for h in hits) == ["12", "case-9"]
    assert next(h for h in hits if h["id"] == "case-9")["metadata"]["text"] == "right pleural effusion, larger"


def test_encoder_recorded_as_given(tmp_path: Path, items: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kgclip.index.persistence import read_manifest

    ix = tmp_path / "ix"
    assert main(["index", "build", str(ix), "--input", str(items), "--encoder", "hashing-64"]) == 0
    assert read_manifest(ix)["encoder_name"] == "hashing-64"
    # An index whose manifest names an encoder that cannot be loaded (older kgclip recorded the model folder's
    # name, e.g. "model"): the error says to pass --encoder.
    manifest = json.loads((ix / "manifest.json").read_text())
    manifest["encoder_name"] = "model"
    (ix / "manifest.json").write_text(json.dumps(manifest))
    assert main(["index", "search", str(ix), "x"]) == 1
    assert "--encoder" in capsys.readouterr().err
    assert main(["index", "search", str(ix), "x", "--encoder", "hashing-64"]) == 0


@pytest.mark.slow
def test_build_with_minilm_then_search(tmp_path: Path, items: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(items), "--encoder", "minilm"]) == 0
    capsys.readouterr()
    assert main(["index", "search", ix, "pleural effusion", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == 10
