"""Batch encoding into Parquet shards: the single-process path, the Ray Data path (local mode), bad items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from kgclip.cli.main import main  # noqa: E402
from kgclip.index.bulk import bulk_load_parquet, iter_shards  # noqa: E402
from kgclip.index.faiss_index import FaissIndex  # noqa: E402
from kgclip.models.encode_distributed import EncodeConfig, encode_manifest  # noqa: E402


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """Five readable PNGs, one corrupt file and one missing file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (48 + 8 * i, 64), dtype=np.uint8)).save(path)
        rows.append({"image": path.name, "text": f"finding {i}", "modality": "CT" if i % 2 else "MR"})
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    rows.insert(2, {"image": "corrupt.png", "text": "broken"})
    rows.append({"image": "missing.png", "text": "gone"})
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def vectors_by_id(out: Path) -> dict[int, tuple[np.ndarray, dict[str, Any]]]:
    found = {}
    for ids, x, meta in iter_shards(out / "shards"):
        found.update((int(i), (v, m)) for i, v, m in zip(ids, x, meta))
    return found


CONFIG = EncodeConfig(batch_size=3, workers=2, num_cpus=2)


def test_local_encode_skips_and_reports_bad_items(manifest: Path, tmp_path: Path) -> None:
    result = encode_manifest(manifest, tmp_path / "out", CONFIG)
    assert result.count == 5 and result.engine == "local" and result.dim == 256
    assert [e["id"] for e in result.errors] == [2, 6]
    assert "corrupt.png" in result.errors[0]["source"] and "missing.png" in result.errors[1]["source"]
    on_disk = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert on_disk == result.errors
    found = vectors_by_id(tmp_path / "out")
    assert sorted(found) == [0, 1, 3, 4, 5]
    assert np.allclose([np.linalg.norm(v) for v, _ in found.values()], 1.0, atol=1e-5)
    assert found[3][1] == {"kind": "image", "modality": "MR", "text": "finding 2",
                           "path": str(tmp_path / "img2.png")}
    info = json.loads((tmp_path / "out" / "encode_manifest.json").read_text())
    assert info["encoder_fingerprint"] == result.encoder_fingerprint and info["count"] == 5
    index = FaissIndex(dim=256, encoder_fingerprint=result.encoder_fingerprint)
    assert bulk_load_parquet(index, tmp_path / "out") == 5
    assert index.search(found[4][0], 1, {"modality": "CT"})[0][0].id == 4
    assert "5 items encoded" in result._repr_html_()


def test_same_seed_same_vectors(manifest: Path, tmp_path: Path) -> None:
    a = encode_manifest(manifest, tmp_path / "a", CONFIG)
    b = encode_manifest(manifest, tmp_path / "b", EncodeConfig(batch_size=5))
    assert a.encoder_fingerprint == b.encoder_fingerprint
    va, vb = vectors_by_id(tmp_path / "a"), vectors_by_id(tmp_path / "b")
    assert max(float(np.abs(va[i][0] - vb[i][0]).max()) for i in va) < 1e-5


def test_text_manifest(tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    texts = ["a cyst", "an effusion"]
    path.write_text("".join(json.dumps({"id": 10 + i, "text": t}) + "\n" for i, t in enumerate(texts)))
    result = encode_manifest(path, tmp_path / "out", EncodeConfig(kind="text", model="hashing-64"))
    assert result.count == 2 and result.dim == 64 and not result.errors
    assert sorted(vectors_by_id(tmp_path / "out")) == [10, 11]


def test_cli_encode(manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["encode", str(manifest), "--out", str(tmp_path / "cli"), "--batch-size", "4", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["count"] == 5 and summary["errors"] == 2 and summary["engine"] == "local"


@pytest.mark.slow  # starting Ray and its actors takes ~1 min on a shared 2-core machine
def test_ray_local_mode_matches_single_process(manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    local = encode_manifest(manifest, tmp_path / "local", CONFIG)
    distributed = encode_manifest(manifest, tmp_path / "ray", CONFIG, use_ray=True)
    assert distributed.engine == "ray" and distributed.count == 5
    assert distributed.errors == local.errors  # the corrupt and the missing image, reported once each
    assert distributed.encoder_fingerprint == local.encoder_fingerprint
    a, b = vectors_by_id(tmp_path / "local"), vectors_by_id(tmp_path / "ray")
    assert sorted(a) == sorted(b) == [0, 1, 3, 4, 5]
    assert max(float(np.abs(a[i][0] - b[i][0]).max()) for i in a) < 1e-5
    assert all(a[i][1] == b[i][1] for i in a)


def test_trained_kgclip_model_image_side(manifest: Path, tmp_path: Path) -> None:
    import torch

    from kgclip.imaging.transforms import ImageTransform
    from kgclip.models.kgclip import KGClipConfig, KGClipModel

    torch.manual_seed(0)
    model = KGClipModel(KGClipConfig(text_tower="hashing-64", image_size=32, image_widths=(4, 8, 8, 16),
                                     embed_dim=16, text_hidden=16))
    model.save_pretrained(tmp_path / "model")
    result = encode_manifest(manifest, tmp_path / "out", EncodeConfig(model=f"kgclip:{tmp_path / 'model'}"))
    assert result.count == 5 and result.dim == 16
    found = vectors_by_id(tmp_path / "out")
    pixels = ImageTransform.for_tower(model.image_tower)(tmp_path / "img0.png")[None]
    with torch.no_grad():
        want = model.eval().encode_image(pixels)[0].numpy()
    assert np.allclose(found[0][0], want, atol=1e-5)
