"""Milvus backend beyond the conformance suite: agreement with FAISS Flat, fingerprints in the collection,
unreachable servers, filter escaping, Lite paths in the manifest, and bulk-loading Parquet shards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from kgclip.errors import EncoderMismatchError, IndexError_  # noqa: E402
from kgclip.index.base import create_index, load_index  # noqa: E402
from kgclip.index.bulk import ENCODE_MANIFEST, bulk_load_parquet, shard_table  # noqa: E402
from kgclip.index.faiss_index import FaissIndex  # noqa: E402
from kgclip.index.milvus_index import MilvusIndex, milvus_filter  # noqa: E402

from .conformance import dataset, hit_ids  # noqa: E402


@pytest.fixture(scope="module")
def pair() -> tuple[MilvusIndex, FaissIndex, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    ids, x, meta = dataset(seed=3, n=1500, dim=32)
    milvus = MilvusIndex(dim=32)
    faiss_ = FaissIndex(dim=32, factory="Flat")
    for index in (milvus, faiss_):
        index.add(ids, x, meta)
    return milvus, faiss_, ids, x, meta


@pytest.mark.parametrize("filters", [
    None,
    {"modality": "CT"},
    {"modality": ["MR", "XR"], "kind": "image"},
    {"concept": ["RADLEX:RID2"]},
    {"case_id": ["case7", "case300"], "body_part": "HEAD"},
])
def test_top_k_agrees_with_faiss_flat(pair: Any, filters: Any) -> None:
    milvus, faiss_, _, x, _ = pair
    q = np.random.default_rng(5).standard_normal((25, 32)).astype(np.float32)
    got, want = milvus.search(q, 10, filters), faiss_.search(q, 10, filters)
    assert hit_ids(got) == hit_ids(want)
    assert np.allclose([h.score for r in got for h in r], [h.score for r in want for h in r], atol=1e-5)
    assert [h.metadata for r in got for h in r] == [h.metadata for r in want for h in r]


def test_fingerprint_stored_in_collection(tmp_path: Path) -> None:
    uri = str(tmp_path / "fp.db")
    ids, x, meta = dataset(n=20)
    index = MilvusIndex(dim=16, uri=uri, collection="images", encoder_fingerprint="enc-a")
    index.add(ids, x, meta)
    # Reopened by name, without any manifest: the collection itself records its encoder.
    again = MilvusIndex(dim=16, uri=uri, collection="images")
    assert again.encoder_fingerprint == "enc-a" and len(again) == 20
    again.check_encoder("enc-a")
    with pytest.raises(EncoderMismatchError, match="built with encoder fingerprint enc-a"):
        again.check_encoder("enc-b")
    with pytest.raises(EncoderMismatchError, match="enc-a"):
        MilvusIndex(dim=16, uri=uri, collection="images", encoder_fingerprint="enc-b")
    with pytest.raises(IndexError_, match="16-d"):
        MilvusIndex(dim=8, uri=uri, collection="images")
    # A manifest that was edited to hide the fingerprint still meets the collection's record.
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["encoder_fingerprint"] = None
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EncoderMismatchError, match="enc-a"):
        load_index(tmp_path / "ix", encoder_fingerprint="enc-b")


def test_unreachable_server_names_the_uri() -> None:
    with pytest.raises(IndexError_, match=r"127\.0\.0\.1:9") as info:
        MilvusIndex(dim=4, uri="http://127.0.0.1:9", timeout=1.0)
    assert "Milvus Lite" in str(info.value)


def test_filter_values_are_escaped(pair: Any) -> None:
    milvus = MilvusIndex(dim=4)
    tricky = ['C"T', "back\\slash", "new\nline", 'x"] or id >= 0 or modality in ["y']
    milvus.add([1, 2, 3, 4], np.eye(4, dtype=np.float32), [{"modality": m} for m in tricky])
    for i, value in enumerate(tricky):
        hits = milvus.search(np.ones(4, np.float32), 4, {"modality": value})[0]
        assert [h.id for h in hits] == [i + 1]
    assert milvus.search(np.ones(4, np.float32), 4, {"modality": 'nothing" or id >= 0 or "'})[0] == []
    assert milvus_filter({"concept": 'a"b'}) == 'array_contains_any(concepts, ["a\\"b"])'


def test_lite_file_inside_directory_moves_with_it(tmp_path: Path) -> None:
    ids, x, meta = dataset(n=30)
    index = MilvusIndex(dim=16, uri=str(tmp_path / "ix" / "data.db"), encoder_fingerprint="enc")
    index.add(ids, x, meta)
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["backend"] == "milvus" and manifest["uri"] == "data.db" and manifest["dimension"] == 16
    index.close()
    from kgclip.index.milvus_index import _release_lite

    _release_lite(str(tmp_path / "ix" / "data.db"))
    shutil.move(tmp_path / "ix", tmp_path / "moved")
    loaded = load_index(tmp_path / "moved", encoder_fingerprint="enc")
    assert isinstance(loaded, MilvusIndex) and len(loaded) == 30
    assert loaded.search(x[:1], 1)[0][0].id == ids[0]


def test_create_index_by_name() -> None:
    index = create_index("milvus", dim=8)
    assert isinstance(index, MilvusIndex) and index.ephemeral and len(index) == 0


def test_bulk_load_parquet_into_both_backends(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    ids, x, meta = dataset(n=120)
    shards = tmp_path / "enc" / "shards"
    shards.mkdir(parents=True)
    pq.write_table(shard_table(ids[:70], x[:70], meta[:70]), shards / "part-0.parquet")
    pq.write_table(shard_table(ids[70:], x[70:], meta[70:]), shards / "part-1.parquet")
    (tmp_path / "enc" / ENCODE_MANIFEST).write_text(json.dumps({"encoder_fingerprint": "enc", "dim": 16}))
    results = []
    for index in (MilvusIndex(dim=16, encoder_fingerprint="enc"), FaissIndex(dim=16, encoder_fingerprint="enc")):
        assert bulk_load_parquet(index, tmp_path / "enc", batch_size=50) == 120
        assert len(index) == 120 and index.get(ids[100:101]) == [meta[100]]
        results.append(hit_ids(index.search(x[:5], 5, {"modality": "CT"})))
    assert results[0] == results[1]
    with pytest.raises(EncoderMismatchError, match="enc"):
        bulk_load_parquet(MilvusIndex(dim=16, encoder_fingerprint="other"), tmp_path / "enc")


def test_updating_and_ids_like_faiss(tmp_path: Path) -> None:
    from kgclip.index.milvus_index import MilvusIndexConfig

    ids, x, meta = dataset(n=40)
    config = MilvusIndexConfig(dim=16, uri=str(tmp_path / "ix" / "data.db"), collection="cases")
    with MilvusIndex.updating(tmp_path / "ix", "enc", create=config) as index:
        index.add(ids[:30], x[:30], meta[:30])
    with MilvusIndex.updating(tmp_path / "ix", "enc") as index:
        index.add(ids[30:], x[30:], meta[30:])
        assert index.remove(ids[:5]) == 5
    loaded = load_index(tmp_path / "ix", encoder_fingerprint="enc")
    assert loaded.ids().tolist() == sorted(ids[5:].tolist())
    loaded.set_search_params(ef_search=128)
    assert loaded.config.ef_search == 128


def test_temporary_index_saved_twice_is_reloaded_fresh(tmp_path: Path) -> None:
    ids, x, meta = dataset(n=20)
    index = MilvusIndex(dim=16)
    index.add(ids[:10], x[:10], meta[:10])
    index.save(tmp_path / "ix")
    assert len(load_index(tmp_path / "ix")) == 10
    index.add(ids[10:], x[10:], meta[10:])
    index.save(tmp_path / "ix")  # replaces the self-contained copy
    assert len(load_index(tmp_path / "ix")) == 20
    assert not [p for p in tmp_path.glob(".ix.*") if p.name != ".ix.lock"]  # the writer lock file stays
