"""Generic image-text manifests: CSV (with a header) or JSONL, one image-text pair per row.

Columns ``image`` (a path, relative to the manifest's directory or absolute) and ``text`` by default; every other
column is kept in ``metadata``. Example CSV::

    image,text,modality,split
    scans/001.dcm,Small right pleural effusion.,CR,train
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.data._common import OnError, handle_bad_row
from kgclip.errors import DataNotFoundError

__all__ = ["ManifestItem", "read_manifest", "write_manifest"]


@dataclasses.dataclass(frozen=True)
class ManifestItem:
    """One row: the image's absolute path, its text, and the other columns as ``metadata``."""

    image_path: Path
    text: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    line: int = 0


def read_manifest(
    path: str | Path,
    *,
    image_column: str = "image",
    text_column: str = "text",
    on_error: OnError = "raise",
    check_images: bool = True,
    allow_empty_text: bool = False,
) -> list[ManifestItem]:
    """Read a ``.csv`` / ``.tsv`` (header row) or ``.jsonl`` / ``.json`` (one object per line) manifest.

    Raises:
        InputFormatError: a malformed row, a missing image or an empty text (with ``on_error="raise"``); the message
            names the file and line.
        FileNotFoundError: the manifest itself is missing.
    """
    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise DataNotFoundError(f"manifest {manifest} not found")
    rows: list[tuple[int, Any]] = []
    suffix = manifest.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        with open(manifest, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    handle_bad_row(on_error, f"invalid JSON ({exc.msg})", manifest, line_no)
    elif suffix in (".csv", ".tsv"):
        with open(manifest, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            header = set(reader.fieldnames or ())
            if not {image_column, text_column} <= header:
                raise DataNotFoundError(
                    f"{manifest} has columns {sorted(header)}; it needs {image_column!r} and {text_column!r} "
                    "(or pass image_column= / text_column=)"
                )
            rows.extend((reader.line_num, dict(row)) for row in reader)
    else:
        raise ValueError(f"{manifest}: manifests are .csv, .tsv or .jsonl, not {suffix or 'no suffix'!r}")
    items: list[ManifestItem] = []
    for line_no, row in rows:
        if not isinstance(row, dict) or None in row:
            handle_bad_row(on_error, "row is not an object / has more fields than the header", manifest, line_no)
            continue
        image, text = row.get(image_column), row.get(text_column)
        if not image:
            handle_bad_row(on_error, f"no {image_column!r} value", manifest, line_no)
            continue
        text = "" if text is None else str(text).strip()
        if not text and not allow_empty_text:
            handle_bad_row(on_error, f"empty {text_column!r} value", manifest, line_no)
            continue
        image_path = Path(str(image)).expanduser()
        if not image_path.is_absolute():
            image_path = manifest.parent / image_path
        if check_images and not image_path.is_file():
            handle_bad_row(on_error, f"image {image_path} not found", manifest, line_no)
            continue
        metadata = {k: v for k, v in row.items() if k not in (image_column, text_column)}
        items.append(ManifestItem(image_path=image_path.resolve(), text=text, metadata=metadata, line=line_no))
    return items


def write_manifest(path: str | Path, items: list[ManifestItem] | list[tuple[Path, str]]) -> None:
    """Write a JSONL manifest atomically (image paths relative to its directory when they are below it)."""
    target = Path(path)
    base = target.parent.resolve()
    lines = []
    for item in items:
        image, text, meta = ((item.image_path, item.text, item.metadata) if isinstance(item, ManifestItem)
                             else (Path(item[0]), item[1], {}))
        image = Path(image).resolve()
        rel = image.relative_to(base) if image.is_relative_to(base) else image
        lines.append(json.dumps({"image": rel.as_posix(), "text": text, **meta}, ensure_ascii=False))
    atomic_write_text(target, "\n".join(lines) + ("\n" if lines else ""))
