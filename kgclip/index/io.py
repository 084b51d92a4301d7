"""Read items to index: JSONL / CSV rows of text + metadata, and vector files (safetensors).

A row has an optional ``id``, a ``text`` and any metadata fields (``kind``, ``modality``, ``body_part``, ``view``,
``case_id``, ``source`` and any others; ``concepts`` as a list in JSONL or ``;``-separated in CSV). An id is a
non-negative integer below 2^63 (used as it is; a string of digits counts as one) or any other string, which is
mapped to a 64-bit id by :func:`string_id` and kept in the item's metadata as ``external_id``. The input is
checked as it is read: every problem names the file and line. A vectors file is a safetensors file with a
``vectors`` tensor ``[N, dim]`` and optionally ``ids`` ``[N]``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import InputFormatError

__all__ = ["read_items", "read_vectors", "write_vectors", "string_id", "parse_id", "EXTERNAL_ID", "AUTO_ID_LIMIT"]

#: Metadata key holding a string id as given (its 64-bit id is :func:`string_id` of it).
EXTERNAL_ID = "external_id"
#: String ids map into [2^62, 2^63); ids assigned to rows without one stay below 2^62.
AUTO_ID_LIMIT = 2**62
_MAX_ID = 2**63 - 1


def string_id(key: str) -> int:
    """The 64-bit id of a string id: a stable hash into ``[2^62, 2^63)`` (the same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return AUTO_ID_LIMIT + int.from_bytes(digest, "big") % AUTO_ID_LIMIT


def parse_id(raw: Any) -> tuple[int, str | None]:
    """``(64-bit id, the string id or None)`` of an id as given; ``ValueError`` saying what is wrong."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, (float, list, dict)):
        raise ValueError(f"an id must be an integer or a string, got {raw!r}")
    text = str(raw).strip()
    if not text:
        raise ValueError("the id is empty; give an integer or a string id, or leave the field out")
    if text.isdigit() and text.isascii():
        value = int(text)
        if value > _MAX_ID:
            raise ValueError(f"id {value} is above the largest integer id {_MAX_ID} (2^63 - 1); use a smaller "
                             "integer or a string id")
        return value, None
    if isinstance(raw, int):  # a negative integer
        raise ValueError(f"ids must be >= 0, got {raw}")
    return string_id(text), text


def read_items(path: str | os.PathLike[str], text_field: str = "text", id_field: str = "id", *,
               require_text: bool = True) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` or ``.csv`` / ``.tsv`` file as dicts with ``id`` (int or ``None``), ``text`` and metadata.

    Raises:
        InputFormatError: naming ``file:line`` for invalid JSON or UTF-8, a line that is not an object, a missing
            or empty text field (when ``require_text``), a bad or repeated id, an unterminated CSV quote, or a CSV
            row with more fields than the header.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        records = _jsonl_records(path)
    elif suffix in (".csv", ".tsv"):
        records = _csv_records(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise InputFormatError("unsupported file type; give a .jsonl or .csv file", path=str(path))
    rows: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    try:
        for line_no, record in records:
            row = _normalise_row(record, text_field, id_field, require_text, path, line_no)
            if row["id"] is not None:
                if row["id"] in seen:
                    raise InputFormatError(f"id {record.get(id_field)!r} repeats the id of line {seen[row['id']]}; "
                                           "give each item once", path=str(path), line=line_no)
                seen[row["id"]] = line_no
            rows.append(row)
    except FileNotFoundError:
        raise InputFormatError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputFormatError("is a directory; give a .jsonl or .csv file", path=str(path)) from None
    return rows


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8",
                                       path=str(path), line=line_no) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFormatError(f"invalid JSON ({exc.msg})", path=str(path), line=line_no) from None
            if not isinstance(row, dict):
                raise InputFormatError("each line must be a JSON object", path=str(path), line=line_no)
            yield line_no, row


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header: list[str] | None = None
            start = 1  # the line the current record starts on (a quoted field may span lines)
            try:
                for fields in reader:
                    line_no, start = start, reader.line_num + 1
                    if header is None:
                        header = [h.strip() for h in fields]
                        continue
                    if not any(f.strip() for f in fields):
                        continue
                    if len(fields) > len(header):
                        raise InputFormatError(f"{len(fields)} fields but the header has {len(header)}; quote "
                                               "fields that contain the delimiter", path=str(path), line=line_no)
                    row = {k: v for k, v in zip(header, fields) if v != ""}
                    if isinstance(row.get("concepts"), str):
                        row["concepts"] = [c.strip() for c in row["concepts"].split(";") if c.strip()]
                    yield line_no, row
            except csv.Error as exc:
                hint = "; close the quote (a quote inside a field is written twice: \"\")" \
                    if "end of data" in str(exc) or "quote" in str(exc) else ""
                raise InputFormatError(f"malformed CSV in the record starting on this line ({exc}){hint}",
                                       path=str(path), line=start) from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"not UTF-8 text ({exc.reason}); save the file as UTF-8", path=str(path)) from None


def _normalise_row(row: dict[str, Any], text_field: str, id_field: str, require_text: bool, path: Path,
                   line_no: int) -> dict[str, Any]:
    row = dict(row)
    raw_id = row.pop(id_field, None)
    item_id = key = None
    if raw_id is not None:
        try:
            item_id, key = parse_id(raw_id)
        except ValueError as exc:
            raise InputFormatError(f"{id_field!r}: {exc}", path=str(path), line=line_no) from None
    text = row.pop(text_field, None)
    if text is None and require_text:
        raise InputFormatError(f"missing the {text_field!r} field (give --text-field NAME when the text is called "
                               "otherwise)", path=str(path), line=line_no)
    if text is not None:
        if (not isinstance(text, (str, int, float)) or isinstance(text, bool)
                or (require_text and not str(text).strip())):
            raise InputFormatError(f"{text_field!r} must be non-empty text, got {text!r}"[:200], path=str(path),
                                   line=line_no)
        row["text"] = str(text)
    if key is not None:
        row[EXTERNAL_ID] = key
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
