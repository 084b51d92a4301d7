"""A hand-edited index manifest (dimension, counts) is refused with the fix, never served with the wrong shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgclip.errors import ArtifactCorruptError
from kgclip.index.faiss_index import FaissIndex, IndexConfig


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    index = FaissIndex(IndexConfig(dim=8), encoder_fingerprint="enc")
    vectors = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    index.add(list(range(5)), vectors, [{"text": f"row {i}"} for i in range(5)])
    index.save(tmp_path / "ix")
    return tmp_path / "ix"


@pytest.mark.parametrize("edit", [("dimension", None, 16), ("counts", "vectors", 99), ("counts", "items", 2)])
def test_edited_manifest_field_is_refused(saved: Path, edit: tuple[str, str | None, int]) -> None:
    key, sub, value = edit
    path = saved / "manifest.json"
    manifest = json.loads(path.read_text())
    if sub is None:
        manifest[key] = value
    else:
        manifest[key][sub] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactCorruptError, match="does not match its index"):
        FaissIndex.load(saved, "enc")


def test_untouched_manifest_loads(saved: Path) -> None:
    assert len(FaissIndex.load(saved, "enc")) == 5
