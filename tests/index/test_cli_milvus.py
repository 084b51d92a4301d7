"""``kgclip index ... --backend milvus`` on Milvus Lite: the same commands and the same top-k as FAISS Flat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from kgclip.cli.main import main  # noqa: E402
from kgclip.index.base import load_index, read_manifest  # noqa: E402

TEXTS = ["left pleural effusion", "right pleural effusion with atelectasis", "acute subdural hematoma",
         "no acute intracranial abnormality", "right pneumothorax", "cardiomegaly with pulmonary edema",
         "small bowel obstruction", "fracture of the left femur", "normal chest radiograph", "lung nodule"]
QUERIES = ["pleural effusion", "intracranial bleed", "acute left pneumothorax", "fracture femur"]  # no score ties


@pytest.fixture
def items(tmp_path: Path) -> Path:
    rows = [{"id": 10 + i, "text": t, "modality": "CT" if i % 2 else "XR"} for i, t in enumerate(TEXTS)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _search(ix: str, capsys: pytest.CaptureFixture[str], *extra: str) -> list[list[int]]:
    capsys.readouterr()
    assert main(["index", "search", ix, *QUERIES, "-k", "4", "--json", *extra]) == 0
    return [[h["id"] for h in json.loads(line)["hits"]] for line in capsys.readouterr().out.strip().splitlines()]


def test_milvus_build_add_remove_search_info(tmp_path: Path, items: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    mv, fx = str(tmp_path / "mv"), str(tmp_path / "fx")
    assert main(["index", "build", mv, "--input", str(items), "--encoder", "hashing-64", "--backend", "milvus",
                 "--collection", "cli_test"]) == 0
    assert main(["index", "build", fx, "--input", str(items), "--encoder", "hashing-64"]) == 0
    manifest = read_manifest(mv)
    assert manifest["backend"] == "milvus" and manifest["collection"] == "cli_test"
    assert manifest["uri"] == "milvus.db" and (tmp_path / "mv" / "milvus.db").exists()  # relative: dir can move
    assert _search(mv, capsys) == _search(fx, capsys)  # exact search: same top-k ids as FAISS Flat
    assert _search(mv, capsys, "--filter", "modality=CT") == _search(fx, capsys, "--filter", "modality=CT")

    more = tmp_path / "more.csv"
    more.write_text("id,text,modality\n40,tension pneumothorax,XR\n")
    for ix in (mv, fx):
        assert main(["index", "add", ix, "--input", str(more)]) == 0
        assert main(["index", "remove", ix, "12", "13"]) == 0
    assert _search(mv, capsys) == _search(fx, capsys)
    index = load_index(mv)
    assert index.ids().tolist() == sorted([10, 11, *range(14, 20), 40])
    assert index.get([40])[0]["text"] == "tension pneumothorax"
    index.close()

    capsys.readouterr()
    assert main(["index", "info", mv, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "milvus" and info["collection"] == "cli_test" and info["encoder_name"] == "hashing-64"
    assert info["counts"]["items"] == 9 and info["metadata"] == {"items": 9}

    # build again into the same named collection: replaced, not appended to
    assert main(["index", "build", mv, "--input", str(more), "--encoder", "hashing-64", "--backend", "milvus",
                 "--collection", "cli_test"]) == 0
    capsys.readouterr()
    assert main(["index", "info", mv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["items"] == 1


def test_milvus_rebuild_without_collection_reuses_it(tmp_path: Path, items: Path) -> None:
    ix = str(tmp_path / "ix")
    build = ["index", "build", ix, "--input", str(items), "--encoder", "hashing-64", "--backend", "milvus"]
    assert main(build) == 0
    first = read_manifest(ix)["collection"]
    assert main(build) == 0  # the earlier collection is replaced, not left behind in milvus.db
    assert read_manifest(ix)["collection"] == first
    index = load_index(ix)
    assert len(index) == len(TEXTS)
    index.close()
    assert main([*build[:-4], "--encoder", "hashing-32", "--backend", "milvus"]) == 0  # another encoder: rebuilt
    assert read_manifest(ix)["encoder_name"] == "hashing-32" and read_manifest(ix)["dimension"] == 32


def test_milvus_search_with_other_encoder_is_refused(tmp_path: Path, items: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(items), "--encoder", "hashing-64", "--backend", "milvus"]) == 0
    capsys.readouterr()
    assert main(["index", "search", ix, "x", "--encoder", "hashing-32"]) == 1
    assert "encoder fingerprint" in capsys.readouterr().err


def test_milvus_unreachable_uri_is_a_clear_error(tmp_path: Path, items: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ix = str(tmp_path / "ix")
    assert main(["index", "build", ix, "--input", str(items), "--encoder", "hashing-64", "--backend", "milvus",
                 "--uri", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:1" in err and "cannot reach Milvus" in err
    assert not (tmp_path / "ix" / "manifest.json").exists()
