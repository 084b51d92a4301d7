"""Encoded-vector shards on disk (Parquet) and bulk-loading them into any index backend.

A shard is a Parquet file with three columns, written by :mod:`kgclip.models.encode_distributed` (one file per Ray
task, or per batch group in the single-process path):

- ``id``: int64 item id;
- ``vector``: ``fixed_size_list<float32>[dim]`` (unit vectors);
- ``metadata``: the item's metadata as a JSON object string (``kind``, ``text``, ``modality``... as for ``add``).

An encode output directory holds ``shards/*.parquet``, ``errors.jsonl`` (items that failed and were skipped) and
``encode_manifest.json`` (encoder fingerprint, dimension, counts), which :func:`bulk_load_parquet` checks against
the index's encoder fingerprint before loading anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import ArtifactCorruptError, EncoderMismatchError, IndexError_

__all__ = ["SHARD_COLUMNS", "ENCODE_MANIFEST", "shard_table", "iter_shards", "shard_paths", "bulk_load_parquet"]

SHARD_COLUMNS = ("id", "vector", "metadata")
ENCODE_MANIFEST = "encode_manifest.json"


def shard_table(ids: Sequence[int] | np.ndarray, vectors: np.ndarray, metadata: Sequence[dict[str, Any]]) -> Any:
    """A ``pyarrow.Table`` in the shard layout.

    Shapes: ``ids`` ``[N]``, ``vectors`` ``[N, dim]`` float32, ``metadata`` N dicts.
    """
    import pyarrow as pa

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = x.shape[1] if x.ndim == 2 else 0
    flat = pa.array(x.reshape(-1), type=pa.float32())
    return pa.table({
        "id": pa.array(np.asarray(ids, dtype=np.int64), type=pa.int64()),
        "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        "metadata": pa.array([json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in metadata],
                             type=pa.string()),
    })


def shard_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Parquet files named by ``paths``: files as given, directories searched recursively, sorted."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(path.rglob("*.parquet")))
        elif path.is_file():
            out.append(path)
        else:
            raise IndexError_(f"no Parquet shard or directory at {path}; run `kgclip encode` first")
    return out


def iter_shards(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], batch_size: int = 10_000
                ) -> Iterator[tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """Stream ``(ids [N], vectors [N, dim], metadata)`` batches from shards, with bounded memory."""
    import pyarrow.parquet as pq

    for path in shard_paths(paths):
        try:
            handle = pq.ParquetFile(path)
            missing = set(SHARD_COLUMNS) - set(handle.schema_arrow.names)
            if missing:
                raise ArtifactCorruptError(f"{path} lacks shard columns {sorted(missing)}; it is not a kgclip shard")
            for batch in handle.iter_batches(batch_size=batch_size, columns=list(SHARD_COLUMNS)):
                ids = batch.column("id").to_numpy(zero_copy_only=False).astype(np.int64)
                column = batch.column("vector")
                values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
                vectors = values.reshape(len(ids), -1) if len(ids) else np.zeros((0, 0), np.float32)
                meta = [json.loads(m) if m else {} for m in batch.column("metadata").to_pylist()]
                yield ids, vectors, meta
        except (OSError, ValueError) as exc:
            if isinstance(exc, ArtifactCorruptError):
                raise
            raise ArtifactCorruptError(f"{path} is not a readable Parquet shard ({exc}); re-run the encoding") from exc


def bulk_load_parquet(index: Any, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                      batch_size: int = 10_000, check_encoder: bool = True) -> int:
    """Add every row of the Parquet shards under ``paths`` to ``index`` (any backend); returns the rows added.

    An ``encode_manifest.json`` found in a given directory (or its parent) is checked first: its encoder
    fingerprint must equal the index's, and its dimension the index's ``dim``.

    Raises:
        EncoderMismatchError: the shards were encoded with another encoder than the index was built for.
        IndexError_: a dimension mismatch, or no shard found.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if check_encoder:
        for item in items:
            for candidate in (Path(item) / ENCODE_MANIFEST, Path(item).parent / ENCODE_MANIFEST):
                if candidate.is_file():
                    _check_encode_manifest(candidate, index)
                    break
    total = 0
    for ids, vectors, meta in iter_shards(items, batch_size):
        if len(ids) == 0:
            continue
        if vectors.shape[1] != index.dim:
            raise IndexError_(f"shards hold {vectors.shape[1]}-d vectors but the index is {index.dim}-d; "
                              "encode with the index's encoder or create the index with that dim")
        index.add(ids, vectors, meta)
        total += len(ids)
    return total


def _check_encode_manifest(path: Path, index: Any) -> None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is unreadable ({exc}); re-run the encoding") from exc
    theirs, mine = info.get("encoder_fingerprint"), getattr(index, "encoder_fingerprint", None)
    if theirs and mine and theirs != mine:
        raise EncoderMismatchError(
            f"the shards in {path.parent} were encoded with encoder fingerprint {theirs}, but the index was built "
            f"for {mine}; encode with the index's encoder, or build a new index for this one"
        )
    if info.get("dim") and int(info["dim"]) != index.dim:
        raise IndexError_(f"{path.parent} holds {info['dim']}-d vectors but the index is {index.dim}-d")
