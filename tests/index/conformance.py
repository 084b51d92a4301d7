"""Conformance suite for :class:`kgclip.index.base.VectorIndex` backends.

Every backend registered in :data:`kgclip.index.base.INDEX_BACKENDS` must pass it. Use it by subclassing
:class:`IndexConformanceSuite` in a ``test_*.py`` module and providing a ``make_index`` fixture that returns a
callable ``make_index(dim, encoder_fingerprint=None) -> VectorIndex`` creating an empty index, plus ``exact``
(whether the configuration returns exact results on the small data used here). See ``test_conformance.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgclip.errors import ArtifactCorruptError, EncoderMismatchError, KgclipError
from kgclip.index.base import SearchHit, VectorIndex, load_index

DIM = 16
N = 300
MODALITIES = ["CT", "MR", "XR"]
BODY_PARTS = ["HEAD", "CHEST"]


def dataset(seed: int = 0, n: int = N, dim: int = DIM) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Ids (sparse, large), unit vectors and metadata with modality / body part / concepts / extra keys."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    meta = []
    for i in range(n):
        concepts = ["RADLEX:RID1"] if i % 10 == 0 else (["RADLEX:RID2", "RADLEX:RID3"] if i % 7 == 0 else [])
        item: dict[str, Any] = {"kind": "image" if i % 2 else "text", "modality": MODALITIES[i % 3],
                                "body_part": BODY_PARTS[i % 2], "case_id": f"case{i // 4}", "text": f"item {i}",
                                "extra_score": i}
        if concepts:
            item["concepts"] = concepts
        meta.append(item)
    return ids, x, meta


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None
                ) -> list[list[int]]:
    keep = np.flatnonzero(mask) if mask is not None else np.arange(len(ids))
    sims = q @ x[keep].T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [ids[keep[row]].tolist() for row in order]


def hit_ids(results: list[list[SearchHit]]) -> list[list[int]]:
    return [[h.id for h in hits] for hits in results]


class IndexConformanceSuite:
    """Behaviour every index backend must have. Subclasses provide the ``make_index`` and ``exact`` fixtures."""

    @pytest.fixture
    def filled(self, make_index: Any) -> tuple[VectorIndex, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        ids, x, meta = dataset()
        index = make_index(DIM)
        index.add(ids, x, meta)
        return index, ids, x, meta

    def assert_search_matches(self, index: VectorIndex, x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int,
                              exact: bool, mask: np.ndarray | None = None, filters: Any = None) -> None:
        got = hit_ids(index.search(q, k, filters))
        want = brute_force(x, ids, q, k, mask)
        if exact:
            assert got == want
        else:
            overlap = np.mean([len(set(g) & set(w)) / max(1, len(w)) for g, w in zip(got, want)])
            assert overlap >= 0.6  # approximate configurations (PQ, SQ) only need to find most

    def test_protocol(self, make_index: Any) -> None:
        index = make_index(DIM)
        assert isinstance(index, VectorIndex)
        assert len(index) == 0 and index.dim == DIM
        assert index.search(np.ones((2, DIM), np.float32), k=3) == [[], []]

    def test_add_search_and_metadata(self, filled: Any, exact: bool) -> None:
        index, ids, x, meta = filled
        assert len(index) == N
        self.assert_search_matches(index, x, ids, x[:20], 5, exact)
        hits = index.search(x[3], k=1)[0]  # a single vector is one query
        assert hits[0].id == ids[3] and hits[0].score == pytest.approx(1.0, abs=1e-2)
        assert hits[0].metadata == meta[3]
        assert "<table>" in hits[0]._repr_html_()
        assert index.get([ids[10], 123]) == [meta[10], None]

    def test_scores_are_cosine(self, filled: Any, exact: bool) -> None:
        index, ids, x, _ = filled
        q = x[:5] * 7.0  # queries are normalised too
        for row, hits in enumerate(index.search(q, k=4)):
            by_id = dict(zip(ids.tolist(), (x @ x[row]).tolist()))
            for hit in hits:
                assert hit.score == pytest.approx(by_id[hit.id], abs=0.1 if not exact else 1e-4)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    def test_k_larger_than_index(self, make_index: Any) -> None:
        ids, x, meta = dataset(n=300)
        index = make_index(DIM)
        index.add(ids, x, meta)
        index.remove(ids[5:])
        hits = index.search(x[:2], k=50)
        assert all(sorted(h.id for h in row) == sorted(ids[:5].tolist()) for row in hits)

    def test_update_replaces_vector_and_metadata(self, filled: Any, exact: bool) -> None:
        index, ids, x, meta = filled
        new_vec = -x[0:1]
        index.add(ids[:1], new_vec, [{"modality": "US", "text": "replaced"}])
        assert len(index) == N
        assert index.get(ids[:1]) == [{"modality": "US", "text": "replaced"}]
        top = index.search(new_vec, k=1)[0][0]
        assert top.id == ids[0] and top.metadata["text"] == "replaced"
        assert ids[0] not in [h.id for h in index.search(x[0:1], k=5)[0]]
        assert index.search(new_vec, k=1, filters={"modality": "US"})[0][0].id == ids[0]

    def test_remove(self, filled: Any, exact: bool) -> None:
        index, ids, x, _ = filled
        removed = index.remove(np.concatenate([ids[:50], [7, 8]]))  # unknown ids are ignored
        assert removed == 50 and len(index) == N - 50
        assert index.remove(ids[:50]) == 0
        assert not set(ids[:50].tolist()) & {h.id for row in index.search(x[:50], k=10) for h in row}
        assert index.get(ids[:1]) == [None]
        mask = np.ones(N, bool)
        mask[:50] = False
        self.assert_search_matches(index, x, ids, x[50:70], 5, exact, mask)
        index.add(ids[:1], x[:1], [{"text": "back"}])  # a removed id can come back
        assert index.search(x[:1], k=1)[0][0].id == ids[0]

    @pytest.mark.parametrize("filters, predicate", [
        ({"modality": "CT"}, lambda m: m["modality"] == "CT"),
        ({"modality": ["CT", "XR"], "body_part": "HEAD"},
         lambda m: m["modality"] in ("CT", "XR") and m["body_part"] == "HEAD"),
        ({"concept": "RADLEX:RID1"}, lambda m: "RADLEX:RID1" in m.get("concepts", [])),
        ({"concept": ["RADLEX:RID1", "RADLEX:RID3"], "kind": "text"},
         lambda m: bool({"RADLEX:RID1", "RADLEX:RID3"} & set(m.get("concepts", []))) and m["kind"] == "text"),
        ({"case_id": "case3"}, lambda m: m["case_id"] == "case3"),
    ])
    def test_filtered_search_is_true_top_k(self, filled: Any, exact: bool, filters: Any, predicate: Any) -> None:
        index, ids, x, meta = filled
        mask = np.array([predicate(m) for m in meta])
        q = np.random.default_rng(1).standard_normal((10, DIM)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        results = index.search(q, 10, filters)
        assert all(predicate(h.metadata) for row in results for h in row)
        self.assert_search_matches(index, x, ids, q, 10, exact, mask, filters)

    def test_filter_matching_nothing_and_unknown_key(self, filled: Any) -> None:
        index, _, x, _ = filled
        assert index.search(x[:3], 5, {"modality": "PET"}) == [[], [], []]
        with pytest.raises(KgclipError, match="valid filters"):
            index.search(x[:1], 5, {"colour": "red"})

    def test_input_validation(self, make_index: Any) -> None:
        index = make_index(DIM)
        ids, x, _ = dataset(n=300)
        with pytest.raises(KgclipError):
            index.add(ids[:3], x[:3, :8])  # wrong dimension
        with pytest.raises(KgclipError):
            index.add([1, 1], x[:2])  # repeated id
        with pytest.raises(KgclipError):
            index.add([1, 2], x[:3])  # count mismatch
        with pytest.raises(KgclipError):
            index.add([-1], x[:1])  # negative id
        bad = x[:1].copy()
        bad[0, 0] = np.nan
        with pytest.raises(KgclipError):
            index.add([1], bad)
        assert len(index) == 0

    def test_save_load_round_trip(self, filled: Any, tmp_path: Path) -> None:
        index, ids, x, meta = filled
        index.remove(ids[:10])
        before = index.search(x[:20], 5, {"modality": "MR"})
        index.save(tmp_path / "ix")
        loaded = load_index(tmp_path / "ix")
        assert type(loaded) is type(index) and len(loaded) == N - 10
        after = loaded.search(x[:20], 5, {"modality": "MR"})
        assert hit_ids(after) == hit_ids(before)
        assert loaded.get(ids[10:12]) == meta[10:12]
        loaded.add(ids[:1], x[:1], [meta[0]])  # a loaded index stays writable
        assert len(loaded) == N - 9

    def test_encoder_fingerprint_refused(self, make_index: Any, tmp_path: Path) -> None:
        ids, x, meta = dataset(n=300)
        index = make_index(DIM, encoder_fingerprint="enc-a")
        index.add(ids, x, meta)
        index.save(tmp_path / "ix")
        assert len(load_index(tmp_path / "ix", encoder_fingerprint="enc-a")) == 300
        with pytest.raises(EncoderMismatchError, match="enc-a"):
            load_index(tmp_path / "ix", encoder_fingerprint="enc-b")

    def test_corrupt_manifest(self, filled: Any, tmp_path: Path) -> None:
        index = filled[0]
        index.save(tmp_path / "ix")
        (tmp_path / "ix" / "manifest.json").write_text("{ not json")
        with pytest.raises(ArtifactCorruptError):
            load_index(tmp_path / "ix")
