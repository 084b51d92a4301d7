"""Bad input to the index, through the Python API and ``kgclip index``: every case gets a clear ``KgclipError``
(through the CLI: ``kgclip: error:`` naming the file and line where there is one), never a raw traceback, and
never a changed index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgclip.cli.main import main
from kgclip.errors import KgclipError
from kgclip.index.faiss_index import FaissIndex
from kgclip.index.milvus_support import milvus_filter
from kgclip.index.vectors import MAX_K


@pytest.fixture(scope="module")
def index() -> FaissIndex:
    rng = np.random.default_rng(0)
    idx = FaissIndex(dim=8)
    idx.add(np.arange(300), rng.standard_normal((300, 8)).astype(np.float32),
            [{"modality": ["CT", "MR"][i % 2], "finding": f"f{i % 7}"} for i in range(300)])
    return idx


def _q() -> np.ndarray:
    return np.ones((1, 8), np.float32)


# ---------------------------------------------------------------- API: k, ids, filters
def test_k_above_index_size_is_capped(index: FaissIndex) -> None:
    hits = index.search(_q(), k=10**9)[0]
    assert len(hits) == 300
    scores, ids = index.search_arrays(_q(), k=10**9)
    assert ids.shape == (1, 300)


@pytest.mark.parametrize("k", [0, -1, "five", 2.5, True, None])
def test_bad_k(index: FaissIndex, k: Any) -> None:
    with pytest.raises(KgclipError, match="k must be"):
        index.search(_q(), k=k)


def test_k_above_documented_maximum() -> None:
    big = FaissIndex(dim=2)
    big.add(np.arange(MAX_K + 1), np.ones((MAX_K + 1, 2), np.float32))
    with pytest.raises(KgclipError, match=f"more than {MAX_K}"):
        big.search_arrays(np.ones((1, 2), np.float32), k=MAX_K + 1)


def test_many_queries_times_k_is_refused_not_allocated(index: FaissIndex) -> None:
    with pytest.raises(KgclipError, match="fewer queries"):
        index.search_arrays(np.ones((200_000, 8), np.float32), k=300)


@pytest.mark.parametrize("ids", [[2**63], [2**64], np.array([2**63], dtype=np.uint64), [2**70, 1]])
def test_ids_above_int64(ids: Any) -> None:
    idx = FaissIndex(dim=8)
    with pytest.raises(KgclipError, match="largest id"):
        idx.add(ids, np.ones((len(ids), 8), np.float32))
    with pytest.raises(KgclipError, match="largest id"):
        idx.remove(ids)
    assert len(idx) == 0


@pytest.mark.parametrize("ids", [[1.5], ["a"], [None], [[1]]])
def test_ids_not_integers(ids: Any) -> None:
    with pytest.raises(KgclipError):
        FaissIndex(dim=8).add(ids, np.ones((1, 8), np.float32))


@pytest.mark.parametrize("value", [{"a": 1}, object(), [{"a": 1}], [[1]], float("nan"), True, b"CT"])
def test_filter_value_not_a_string_or_number(index: FaissIndex, value: Any) -> None:
    with pytest.raises(KgclipError, match="strings or numbers"):
        index.search(_q(), 5, {"modality": value})


@pytest.mark.parametrize("filters", ["modality=CT", ["modality"], 5])
def test_filters_not_a_mapping(index: FaissIndex, filters: Any) -> None:
    with pytest.raises(KgclipError, match="mapping"):
        index.search(_q(), 5, filters)


@pytest.mark.parametrize("key", ["a') OR 1=1 --", '$."x"', "", "x" * 100, 3])
def test_filter_key_not_a_name(index: FaissIndex, key: Any) -> None:
    with pytest.raises(KgclipError, match="metadata key"):
        index.search(_q(), 5, {key: "x"})


def test_filter_key_absent_from_the_data_lists_the_keys(index: FaissIndex) -> None:
    with pytest.raises(KgclipError, match="finding"):
        index.search(_q(), 5, {"findings": "f1"})


def test_300k_filter_values(index: FaissIndex) -> None:
    values = [f"f{i}" for i in range(300_000)]
    hits = index.search(_q(), 300, {"finding": values})[0]
    assert len(hits) == 300
    ids = list(range(100_000, 400_000))
    assert len(index.metadata.match({"finding": ids})) == 0  # numbers: no item has a numeric finding


def test_300k_filter_values_on_milvus_are_refused_clearly() -> None:
    with pytest.raises(KgclipError, match="at most"):
        milvus_filter({"modality": [str(i) for i in range(300_000)]})


# ---------------------------------------------------------------- CLI: input files, ids, filters
def _write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


BAD_FILES: dict[str, tuple[str, str | bytes, str]] = {
    # name: (file name, content, what the error must say)
    "jsonl_missing_text": ("a.jsonl", '{"id": "x1", "text": "ok"}\n{"id": "x2", "body": "no text"}\n',
                           r"a\.jsonl:2: missing the 'text' field"),
    "jsonl_empty_text": ("a.jsonl", '{"text": "  "}\n', r"a\.jsonl:1: 'text' must be non-empty"),
    "jsonl_text_object": ("a.jsonl", '{"text": {"a": 1}}\n', r"a\.jsonl:1: 'text' must be"),
    "jsonl_id_above_int64": ("a.jsonl", '{"id": 9223372036854775808, "text": "x"}\n', r"a\.jsonl:1: .*2\^63"),
    "jsonl_id_negative": ("a.jsonl", '{"id": -3, "text": "x"}\n', r"a\.jsonl:1: .*>= 0"),
    "jsonl_id_float": ("a.jsonl", '{"id": 1.5, "text": "x"}\n', r"a\.jsonl:1: .*integer or a string"),
    "jsonl_id_bool": ("a.jsonl", '{"id": true, "text": "x"}\n', r"a\.jsonl:1: .*integer or a string"),
    "jsonl_id_empty": ("a.jsonl", '{"id": "", "text": "x"}\n', r"a\.jsonl:1: .*empty"),
    "jsonl_id_repeated": ("a.jsonl", '{"id": "a", "text": "x"}\n\n{"id": "a", "text": "y"}\n',
                          r"a\.jsonl:3: .*line 1"),
    "jsonl_not_utf8": ("a.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', r"a\.jsonl:2: not UTF-8"),
    "jsonl_invalid": ("a.jsonl", '{"text": "ok"}\n{"text": \n', r"a\.jsonl:2: invalid JSON"),
    "jsonl_scalar_line": ("a.jsonl", '"just a string"\n', r"a\.jsonl:1: each line must be a JSON object"),
    "jsonl_empty_file": ("a.jsonl", "", r"a\.jsonl: has no rows"),
    "csv_unterminated_quote": ("a.csv", 'id,text\n1,fine\n2,"never closed\n3,more\n',
                               r"a\.csv:3: malformed CSV.*close the quote"),
    "csv_missing_text_column": ("a.csv", "id,body\n1,x\n", r"a\.csv:2: missing the 'text' field"),
    "csv_extra_fields": ("a.csv", "id,text\n1,a,b\n", r"a\.csv:2: 3 fields but the header has 2"),
    "csv_id_above_int64": ("a.csv", "id,text\n99999999999999999999,x\n", r"a\.csv:2: .*2\^63"),
    "csv_not_utf8": ("a.csv", b"id,text\n1,caf\xe9\n", r"a\.csv: not UTF-8"),
    "unsupported_suffix": ("a.txt", "text\n", r"a\.txt: unsupported file type"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_index_build_bad_input_file(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, content, message = BAD_FILES[case]
    path = _write(tmp_path / name, content)
    assert main(["index", "build", str(tmp_path / "ix"), "--input", path, "--encoder", "hashing-16"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kgclip: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "ix").exists()


@pytest.fixture
def built(tmp_path: Path) -> Path:
    rows = [{"id": "case-7/a", "text": "left pleural effusion", "finding": "effusion", "year": 2020},
            {"id": 11, "text": "acute subdural hematoma", "modality": "CT"}]
    path = _write(tmp_path / "a.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert main(["index", "build", str(tmp_path / "ix"), "--input", path, "--encoder", "hashing-16"]) == 0
    return tmp_path / "ix"


@pytest.mark.parametrize("argv, message", [
    (["search", "{ix}", "x", "--filter", "modality="], "KEY=VALUE"),
    (["search", "{ix}", "x", "--filter", "=CT"], "KEY=VALUE"),
    (["search", "{ix}", "x", "--filter", "colour=red"], "no item has that metadata key"),
    (["search", "{ix}", "x", "--filter", "a'b=1"], "not a metadata key name"),
    (["search", "{ix}", "x", "-k", "0"], "k must be"),
    (["remove", "{ix}", "99999999999999999999"], "2\\^63"),
    (["remove", "{ix}", ""], "empty"),
])
def test_index_cli_bad_arguments(built: Path, argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in built.iterdir())
    capsys.readouterr()
    assert main(["index", *[a.replace("{ix}", str(built)) for a in argv]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kgclip: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in built.iterdir()) == before


def test_index_cli_huge_k_is_capped(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["index", "search", str(built), "effusion", "-k", str(10**12), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2
