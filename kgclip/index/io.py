"""Read items to index: JSONL / CSV rows of text + metadata, and vector files (safetensors).

A row has an optional integer ``id``, a ``text`` and any metadata fields (``kind``, ``modality``, ``body_part``,
``view``, ``case_id``, ``source``; ``concepts`` as a list in JSONL or ``;``-separated in CSV). A vectors file is a
safetensors file with a ``vectors`` tensor ``[N, dim]`` and optionally ``ids`` ``[N]``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import InputFormatError

__all__ = ["read_items", "read_vectors", "write_vectors"]


def read_items(path: str | os.PathLike[str], text_field: str = "text", id_field: str = "id") -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` or ``.csv`` file as dicts with ``id`` (int or ``None``), ``text`` and metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    rows: list[dict[str, Any]] = []
    if suffix in (".jsonl", ".ndjson", ".json"):
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFormatError(f"invalid JSON ({exc.msg})", path=str(path), line=line_no) from None
                if not isinstance(row, dict):
                    raise InputFormatError("each line must be a JSON object", path=str(path), line=line_no)
                rows.append(_normalise_row(row, text_field, id_field, path, line_no))
    elif suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            for line_no, row in enumerate(reader, 2):
                row = {k: v for k, v in row.items() if v not in (None, "")}
                if isinstance(row.get("concepts"), str):
                    row["concepts"] = [c.strip() for c in row["concepts"].split(";") if c.strip()]
                rows.append(_normalise_row(row, text_field, id_field, path, line_no))
    else:
        raise InputFormatError("unsupported file type; give a .jsonl or .csv file", path=str(path))
    return rows


def _normalise_row(row: dict[str, Any], text_field: str, id_field: str, path: Path, line_no: int) -> dict[str, Any]:
    row = dict(row)
    raw_id = row.pop(id_field, None)
    try:
        item_id = int(raw_id) if raw_id is not None else None
    except (TypeError, ValueError):
        raise InputFormatError(f"{id_field!r} must be an integer, got {raw_id!r}", path=str(path), line=line_no) from None
    text = row.pop(text_field, None)
    if text is not None:
        row["text"] = str(text)
    row["id"] = item_id
    return row


def read_vectors(path: str | os.PathLike[str]) -> tuple[np.ndarray | None, np.ndarray]:
    """``(ids or None, vectors)`` from a safetensors file. Shapes: ids ``[N]`` int64, vectors ``[N, dim]`` float32."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputFormatError(f"cannot read vectors ({exc}); write them with kgclip.index.io.write_vectors",
                               path=str(path)) from exc
    if "vectors" not in arrays or arrays["vectors"].ndim != 2:
        raise InputFormatError("needs a 2-D tensor named 'vectors'", path=str(path))
    ids = arrays.get("ids")
    return (ids.astype(np.int64) if ids is not None else None), arrays["vectors"].astype(np.float32)


def write_vectors(path: str | os.PathLike[str], vectors: np.ndarray, ids: np.ndarray | None = None) -> None:
    """Write a vectors file (atomically) that :func:`read_vectors` and ``kgclip index build --vectors`` accept."""
    from safetensors.numpy import save

    from kgclip.atomic import atomic_write_bytes

    tensors = {"vectors": np.ascontiguousarray(vectors, dtype=np.float32)}
    if ids is not None:
        tensors["ids"] = np.ascontiguousarray(ids, dtype=np.int64)
    atomic_write_bytes(path, save(tensors))
