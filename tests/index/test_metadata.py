"""The SQLite metadata store: round trip, filters, validation, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from kgclip.errors import ArtifactCorruptError, IndexError_
from kgclip.index.metadata import MetadataStore, normalise_filters


def store_with_items() -> MetadataStore:
    store = MetadataStore()
    store.upsert(np.array([1, 2, 3, 4]), [
        {"kind": "image", "modality": "CT", "body_part": "HEAD", "concepts": ["RADLEX:RID1", "RADLEX:RID1"]},
        {"kind": "text", "text": "effusion", "modality": "XR", "concepts": "RADLEX:RID2", "nested": {"a": [1]}},
        {"kind": "case", "case_id": "c1", "modality": "CT", "body_part": "CHEST", "view": "PA"},
        None,
    ])
    return store


def test_round_trip_and_extra_keys() -> None:
    store = store_with_items()
    got = store.get_many([2, 1, 99])
    assert set(got) == {1, 2}
    assert got[1] == {"kind": "image", "modality": "CT", "body_part": "HEAD", "concepts": ["RADLEX:RID1"]}
    assert got[2]["nested"] == {"a": [1]} and got[2]["concepts"] == ["RADLEX:RID2"]
    assert store.get_many([4]) == {4: {}}
    assert len(store) == 4 and store.contains(np.array([4, 5])).tolist() == [True, False]


def test_filters() -> None:
    store = store_with_items()
    assert store.match(None) is None
    assert store.match({"modality": "CT"}).tolist() == [1, 3]
    assert store.match({"modality": ["CT", "XR"], "kind": "text"}).tolist() == [2]
    assert store.match({"concept": "RADLEX:RID1"}).tolist() == [1]
    assert store.match({"concepts": ["RADLEX:RID1", "RADLEX:RID2"]}).tolist() == [1, 2]
    assert store.match({"modality": "PET"}).tolist() == []
    assert store.match({"view": "PA", "case_id": "c1"}).tolist() == [3]
    assert store.match({"text": "effusion"}).tolist() == [2]
    with pytest.raises(IndexError_, match="valid filters.*nested"):
        store.match({"colour": "x"})
    with pytest.raises(IndexError_, match="empty list"):
        normalise_filters({"modality": []})


def test_filter_cache_invalidated_by_writes() -> None:
    store = store_with_items()
    assert store.match({"modality": "CT"}).tolist() == [1, 3]
    store.upsert(np.array([5]), [{"modality": "CT", "concepts": ["RADLEX:RID1"]}])
    assert store.match({"modality": "CT"}).tolist() == [1, 3, 5]
    assert store.delete(np.array([1, 42])).tolist() == [1]
    assert store.match({"modality": "CT"}).tolist() == [3, 5]
    assert store.match({"concept": "RADLEX:RID1"}).tolist() == [5]


def test_validation() -> None:
    store = MetadataStore()
    with pytest.raises(IndexError_, match="kind must be"):
        store.upsert(np.array([1]), [{"kind": "video"}])
    with pytest.raises(IndexError_, match="JSON"):
        store.upsert(np.array([1]), [{"x": object()}])
    with pytest.raises(IndexError_, match="metadata entries"):
        store.upsert(np.array([1, 2]), [{}])
    assert len(store) == 0


def test_serialise_and_corruption() -> None:
    data = store_with_items().to_bytes()
    again = MetadataStore.from_bytes(data)
    assert again.get_many([3]) == store_with_items().get_many([3])
    assert again.stats()["modalities"] == {"CT": 2, "XR": 1, "?": 1}
    with pytest.raises(ArtifactCorruptError):
        MetadataStore.from_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactCorruptError):
        MetadataStore.from_bytes(b"not a database" * 100)


def test_filters_on_any_metadata_key_in_the_data() -> None:
    store = MetadataStore()
    store.upsert(np.arange(5), [{"finding": "effusion", "year": 2020, "tags": ["a", "b"]},
                                {"finding": "nodule", "year": 2021, "tags": ["b"]},
                                {"finding": "effusion", "year": 2021.5},
                                {"finding": 7},
                                None])
    assert store.match({"finding": "effusion"}).tolist() == [0, 2]
    assert store.match({"finding": ["nodule", 7]}).tolist() == [1, 3]
    assert store.match({"year": 2021, "finding": "nodule"}).tolist() == [1]
    assert store.match({"year": 2021.5}).tolist() == [2]
    assert store.match({"tags": "b"}).tolist() == [0, 1]  # a list holding the value
    assert store.match({"year": "2020"}).tolist() == []  # a string is not the number
    with pytest.raises(IndexError_, match="no item has that metadata key.*finding"):
        store.match({"findings": "effusion"})
    with pytest.raises(IndexError_, match="not a metadata key name"):
        store.match({"a') OR 1=1 --": "x"})
