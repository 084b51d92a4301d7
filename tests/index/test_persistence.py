"""Persistence: manifest, corruption, crash safety (SIGKILL mid-save), readers during saves, writer locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from kgclip.errors import ArtifactCorruptError, IndexError_, LockedError, StaleArtifactError
from kgclip.index.faiss_index import FaissIndex
from kgclip.index.persistence import DirectoryLock

from .conformance import dataset

REPO = Path(__file__).resolve().parents[2]


def build(path: Path, n: int = 200, factory: str = "Flat", seed: int = 0) -> FaissIndex:
    ids, x, meta = dataset(seed=seed, n=n)
    index = FaissIndex(dim=x.shape[1], factory=factory, encoder_fingerprint="enc")
    index.add(ids, x, meta)
    index.save(path)
    return index


def test_manifest_contents(tmp_path: Path) -> None:
    build(tmp_path / "ix", factory="HNSW16")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["dimension"] == 16 and manifest["metric"] == "inner_product"
    assert manifest["factory"] == "HNSW16" and manifest["encoder_fingerprint"] == "enc"
    assert manifest["counts"] == {"items": 200, "vectors": 200, "tombstones": 0}
    assert set(manifest["files"]) == {"index.faiss", "metadata.sqlite", "positions.safetensors"}
    assert {"faiss", "numpy", "python", "kgclip"} <= set(manifest["versions"])
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == sorted(
        ["index.faiss", "metadata.sqlite", "positions.safetensors", "manifest.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ix.new") or p.name.startswith(".ix.old")]


@pytest.mark.parametrize("name", ["index.faiss", "metadata.sqlite"])
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupt_files_are_detected(tmp_path: Path, name: str, damage: str) -> None:
    build(tmp_path / "ix")
    path = tmp_path / "ix" / name
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    else:
        path.unlink()
    with pytest.raises(ArtifactCorruptError, match=name):
        FaissIndex.load(tmp_path / "ix")


def test_corrupt_bytes_behind_a_matching_manifest(tmp_path: Path) -> None:
    # Even with checksums rewritten to match, FAISS / SQLite content errors surface as ArtifactCorruptError.
    from kgclip.fingerprint import fingerprint_bytes

    build(tmp_path / "ix")
    manifest_path = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in ("index.faiss", "metadata.sqlite"):
        junk = b"\x00garbage" * 64
        (tmp_path / "ix" / name).write_bytes(junk)
        manifest["files"][name] = {"bytes": len(junk), "blake2b": fingerprint_bytes(junk)}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactCorruptError):
        FaissIndex.load(tmp_path / "ix")


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="no index at"):
        FaissIndex.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactCorruptError, match="no manifest"):
        FaissIndex.load(tmp_path / "empty")


def test_hnsw_tombstones_compacted_at_save(tmp_path: Path) -> None:
    ids, x, meta = dataset(n=200)
    index = FaissIndex(dim=16, factory="HNSW16", ef_search=200)
    index.add(ids, x, meta)
    index.remove(ids[:20])
    assert index.tombstones == 20 and len(index) == 180
    index.save(tmp_path / "ix")
    assert index.tombstones == 0
    loaded = FaissIndex.load(tmp_path / "ix")
    assert loaded.tombstones == 0 and loaded._index.ntotal == 180
    assert loaded.search(x[20:21], 1)[0][0].id == ids[20]


def test_hnsw_tombstones_kept_below_threshold(tmp_path: Path) -> None:
    ids, x, meta = dataset(n=200)
    index = FaissIndex(dim=16, factory="HNSW16", ef_search=200, compact_min_dead_fraction=0.5)
    index.add(ids, x, meta)
    index.remove(ids[:20])
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix")
    assert loaded.tombstones == 20 and len(loaded) == 180
    assert not {h.id for row in loaded.search(x[:20], 10) for h in row} & set(ids[:20].tolist())


_CRASHER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import kgclip.atomic as atomic
    import kgclip.index.persistence as fs
    from kgclip.index.faiss_index import FaissIndex

    target, stage = sys.argv[1], sys.argv[2]
    index = FaissIndex.load(target)
    rng = np.random.default_rng(5)
    index.add(np.arange(10**6, 10**6 + 50), rng.standard_normal((50, 16)).astype("float32"))

    def announce_and_hang():
        print("IN-SAVE", flush=True)
        time.sleep(60)

    if stage == "files":  # killed while the new files are being written into the temporary directory
        real = fs._write_synced
        def slow(path, data):
            real(path, data)
            if path.name == "index.faiss":
                announce_and_hang()
        fs._write_synced = slow
    else:  # killed between the two renames: the old directory is aside, the new one not yet in place
        real_replace = os.replace
        calls = []
        def replace(src, dst):
            real_replace(src, dst)
            calls.append(dst)
            if len(calls) == 1:
                announce_and_hang()
        atomic.os.replace = replace
    index.save(target)
""")


@pytest.mark.parametrize("stage", ["files", "swap"])
def test_sigkill_mid_save_leaves_previous_index(tmp_path: Path, stage: str) -> None:
    target = tmp_path / "ix"
    build(target)
    before = FaissIndex.load(target)
    proc = subprocess.Popen([sys.executable, "-c", _CRASHER, str(target), stage], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "IN-SAVE", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = FaissIndex.load(target)  # restores the old directory after a crash between the renames
    assert len(after) == len(before) == 200
    assert np.array_equal(after.ids(), before.ids())
    again = FaissIndex.load(target)
    again.add([5], np.ones((1, 16), np.float32))
    again.save(target)  # and the next save cleans up after the crash
    assert len(FaissIndex.load(target)) == 201
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ix.new") or p.name.startswith(".ix.old")]


def test_readers_keep_working_while_a_writer_saves(tmp_path: Path) -> None:
    target = tmp_path / "ix"
    writer = build(target, n=300)
    ids, x, _ = dataset(n=300)
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            for i in range(15):
                writer.add([10**9 + i], x[i:i + 1], [{"text": f"extra {i}"}])
                writer.save(target)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=write)
    thread.start()
    loads = 0
    while not stop.is_set() or loads == 0:
        reader = FaissIndex.load(target)
        manifest = json.loads(json.dumps(reader._manifest({})))
        assert manifest["counts"]["items"] == len(reader) >= 300
        assert reader.search(x[:1], 1)[0][0].id == ids[0]
        loads += 1
    thread.join()
    assert not errors, errors
    assert len(FaissIndex.load(target)) == 315


def test_read_retries_when_the_opened_version_is_swapped_away_mid_read(tmp_path: Path, monkeypatch) -> None:
    """Deterministic form of the race above: between reading the manifest and the files, a writer swaps a new
    version in and deletes the old one. The path then holds a manifest again, yet the read must retry, not report
    the old version's files as missing."""
    import shutil

    from kgclip.index import persistence

    target = tmp_path / "ix"
    build(target, n=100)
    build(tmp_path / "next", n=120, seed=1)
    real_loads = json.loads
    swapped: list[bool] = []

    class SwapOnce:
        @staticmethod
        def loads(text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN205
            if not swapped:  # the first manifest read: swap the directory under the reader
                swapped.append(True)
                target.rename(tmp_path / "old")
                (tmp_path / "next").rename(target)
                shutil.rmtree(tmp_path / "old")
            return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(persistence, "json", SwapOnce)
    index = FaissIndex.load(target)
    assert swapped and len(index) == 120  # the new version, read after a retry


def test_lock_refuses_clearly_when_held(tmp_path: Path) -> None:
    target = tmp_path / "ix"
    build(target)
    with DirectoryLock(target, timeout=5):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            with FaissIndex.updating(target, lock_timeout=0):
                pass
        index = FaissIndex.load(target)
        with pytest.raises(LockedError):
            index.save(target, lock_timeout=0.1)
    with FaissIndex.updating(target, lock_timeout=0) as index:
        index.remove(index.ids()[:1])
    assert len(FaissIndex.load(target)) == 199


def test_stale_writer_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "ix"
    build(target)
    a, b = FaissIndex.load(target), FaissIndex.load(target)
    a.remove(a.ids()[:1])
    a.save(target)
    b.remove(b.ids()[1:2])
    with pytest.raises(StaleArtifactError, match="another writer"):
        b.save(target)
    b.save(tmp_path / "elsewhere")  # saving somewhere else is fine


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from kgclip.index.faiss_index import FaissIndex

    target, offset = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(offset)
    for i in range(8):
        with FaissIndex.updating(target, lock_timeout=120) as index:
            index.add([offset + i], rng.standard_normal((1, 16)).astype("float32"), [{"text": f"w{offset}-{i}"}])
""")


def test_concurrent_writers_from_two_processes_are_serialised(tmp_path: Path) -> None:
    target = tmp_path / "ix"
    build(target)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(offset)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for offset in (10**7, 2 * 10**7)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    final = FaissIndex.load(target)
    assert len(final) == 216  # no update lost
    for offset in (10**7, 2 * 10**7):
        assert all(m is not None for m in final.get(np.arange(offset, offset + 8)))
