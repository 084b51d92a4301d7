"""Item metadata for vector indexes: an SQLite store ``id -> item`` with filters.

Each item has a ``kind`` (``image`` / ``text`` / ``case``), a ``source``, imaging fields (``modality``,
``body_part``, ``view``), a ``case_id``, its ``text``, the ids of its linked concepts (a separate table, so that
``concept="RADLEX:RID…"`` is an indexed lookup) and any other keys as a JSON object. The store lives in memory
while an index is in use and is written to / read from ``metadata.sqlite`` with SQLite's backup API, so a saved
file is always a consistent snapshot and readers of the file never see a writer's half-done transaction.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import ArtifactCorruptError, IndexError_

__all__ = ["MetadataStore", "COLUMNS", "FILTER_KEYS", "MAX_FILTER_VALUES", "normalise_filters"]

#: Metadata keys stored as indexed columns (and usable as filters).
COLUMNS = ("kind", "source", "modality", "body_part", "view", "case_id", "text")
#: Keys with their own index in ``filters`` (``concept`` / ``concepts`` match any linked concept id); any other
#: metadata key present in the data is matched in the stored JSON.
FILTER_KEYS = tuple(c for c in COLUMNS if c != "text") + ("concept",)
_KINDS = {"image", "text", "case"}
# SQLite's default limit on host parameters is 32766 (>= 3.32); stay well below it.
_CHUNK = 20_000
_FEW = 64  # up to this many ids are bound one parameter each
_MARKS = [",".join("?" * n) for n in range(_FEW + 1)]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    kind TEXT, source TEXT, modality TEXT, body_part TEXT, view TEXT, case_id TEXT, text TEXT,
    doc TEXT  -- the whole metadata object as JSON (columns above duplicate its filterable fields)
);
CREATE TABLE IF NOT EXISTS item_concepts (id INTEGER NOT NULL, concept TEXT NOT NULL, PRIMARY KEY (id, concept));
CREATE INDEX IF NOT EXISTS items_kind ON items(kind);
CREATE INDEX IF NOT EXISTS items_modality ON items(modality);
CREATE INDEX IF NOT EXISTS items_body_part ON items(body_part);
CREATE INDEX IF NOT EXISTS items_case ON items(case_id);
CREATE INDEX IF NOT EXISTS item_concepts_concept ON item_concepts(concept);
"""


#: Metadata keys a filter may name beyond the columns: JSON-path safe names (letters, digits, ``_``, ``-``).
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
#: Most accepted values in one filter (beyond this, filter on a coarser key or search without the filter).
MAX_FILTER_VALUES = 1_000_000


def normalise_filters(filters: Mapping[str, Any] | None) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Validate ``filters`` and return a canonical, hashable form (sorted keys, tuples of accepted values).

    A key is a column (``kind``, ``source``, ``modality``, ``body_part``, ``view``, ``case_id``, ``text``),
    ``concept`` / ``concepts`` (any linked concept id), or any other metadata key (matched in the stored JSON: a
    scalar equal to one of the values, or a list holding one). A value is a string or number, or a list of them
    (OR within a key, AND across keys).
    """
    if not filters:
        return ()
    if not isinstance(filters, Mapping):
        raise IndexError_(f"filters must be a mapping of key -> value(s), got {type(filters).__name__}")
    out = []
    for key, value in filters.items():
        name = "concept" if key == "concepts" else key
        if not isinstance(name, str) or not _KEY_RE.match(name):
            raise IndexError_(
                f"filter key {key!r} is not a metadata key name; valid filters are {list(FILTER_KEYS)} or another "
                "metadata key made of letters, digits, '_' and '-'"
            )
        if value is None:
            continue
        values = tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else (value,)
        if not values:
            raise IndexError_(f"filter {key!r} has an empty list of values; drop the filter or give a value")
        if len(values) > MAX_FILTER_VALUES:
            raise IndexError_(f"filter {key!r} has {len(values)} values; at most {MAX_FILTER_VALUES} are accepted")
        for v in values:
            if not isinstance(v, (str, int, float)) or isinstance(v, bool) or (isinstance(v, float) and v != v):
                raise IndexError_(
                    f"filter {key!r}: values must be strings or numbers (or a list of them), got "
                    f"{type(v).__name__} {_short(v)}; give e.g. {{{key!r}: ['a', 'b']}}"
                )
        out.append((name, tuple(sorted(set(values), key=lambda v: (isinstance(v, str), str(v))))))
    return tuple(sorted(out))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class MetadataStore:
    """In-memory SQLite metadata store, saved to / loaded from a file.

    Thread-safe: every call holds one lock (SQLite in-memory connections are not safe to share otherwise).
    """

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._version = 0
        self._match_cache: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()

    # ---------------------------------------------------------------- persistence
    @classmethod
    def from_bytes(cls, data: bytes, name: str = "metadata.sqlite") -> "MetadataStore":
        """Load a serialised store (the bytes of ``metadata.sqlite``); ``ArtifactCorruptError`` if damaged."""
        store = cls()
        try:
            store._conn.deserialize(data)
            status = store._conn.execute("PRAGMA quick_check").fetchone()
            if not status or status[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {status}")
            store._conn.execute("SELECT count(*) FROM items").fetchone()
            store._conn.execute("SELECT count(*) FROM item_concepts").fetchone()
        except sqlite3.Error as exc:
            raise ArtifactCorruptError(
                f"metadata store {name} is corrupted or truncated ({exc}); rebuild the index or restore a backup"
            ) from exc
        return store

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "MetadataStore":
        """Copy a saved ``metadata.sqlite`` into memory."""
        return cls.from_bytes(Path(path).read_bytes(), name=str(path))

    def to_bytes(self) -> bytes:
        """A consistent snapshot of the whole store as the bytes of an SQLite database file."""
        with self._lock:
            return bytes(self._conn.serialize())

    # ---------------------------------------------------------------- writes
    def upsert(self, ids: np.ndarray, metadata: Sequence[Mapping[str, Any] | None] | None) -> None:
        """Insert or replace the metadata of ``ids`` (``metadata`` ``None`` stores empty rows)."""
        ids = np.asarray(ids, dtype=np.int64)
        if metadata is not None and len(metadata) != len(ids):
            raise IndexError_(f"got {len(ids)} ids but {len(metadata)} metadata entries; give one per id")
        rows = []
        concept_rows = []
        for i, item_id in enumerate(ids.tolist()):
            meta = dict(metadata[i] or {}) if metadata is not None else {}
            concepts = meta.get("concepts") or ()
            if isinstance(concepts, str):
                concepts = (concepts,)
            concepts = [str(c) for c in dict.fromkeys(concepts)]
            if concepts:
                meta["concepts"] = concepts
            else:
                meta.pop("concepts", None)
            kind = meta.get("kind")
            if kind is not None and kind not in _KINDS:
                raise IndexError_(f"item {item_id}: kind must be one of {sorted(_KINDS)}, got {kind!r}")
            try:
                doc = json.dumps(meta, ensure_ascii=False, separators=(",", ":")) if meta else None
            except (TypeError, ValueError) as exc:
                raise IndexError_(f"item {item_id}: metadata must be JSON-serialisable ({exc})") from exc
            rows.append((item_id, *(_column_value(meta.get(c)) for c in COLUMNS), doc))
            concept_rows.extend((item_id, c) for c in concepts)
        with self._lock, self._conn:
            self._delete_concepts(ids)
            self._conn.executemany(f"INSERT OR REPLACE INTO items VALUES ({','.join('?' * (len(COLUMNS) + 2))})", rows)
            self._conn.executemany("INSERT INTO item_concepts VALUES (?, ?)", concept_rows)
            self._touch()

    def delete(self, ids: np.ndarray) -> np.ndarray:
        """Delete ``ids``; returns those that were present."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock, self._conn:
            present = ids[self.contains(ids)]
            for chunk in _chunks(present):
                self._conn.execute("DELETE FROM items WHERE id IN (SELECT value FROM json_each(?))",
                                   (json.dumps(chunk),))
            self._delete_concepts(present)
            self._touch()
        return present

    def _delete_concepts(self, ids: np.ndarray) -> None:
        for chunk in _chunks(ids):
            self._conn.execute("DELETE FROM item_concepts WHERE id IN (SELECT value FROM json_each(?))",
                               (json.dumps(chunk),))

    def _touch(self) -> None:
        self._version += 1
        self._match_cache.clear()

    # ---------------------------------------------------------------- reads
    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ids`` are stored."""
        ids = np.asarray(ids, dtype=np.int64)
        found: set[int] = set()
        with self._lock:
            for chunk in _chunks(ids):
                rows = self._conn.execute("SELECT id FROM items WHERE id IN (SELECT value FROM json_each(?))",
                                          (json.dumps(chunk),))
                found.update(r[0] for r in rows)
        return np.fromiter((i in found for i in ids.tolist()), dtype=bool, count=len(ids))

    def all_ids(self) -> np.ndarray:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM items ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def get_many(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Metadata of the stored ``ids`` (unknown ids are absent), in one set query per 20,000 ids."""
        unique = list(dict.fromkeys(int(i) for i in ids))
        out: dict[int, dict[str, Any]] = {}
        loads = json.loads
        with self._lock:
            for chunk in _chunks(unique):
                if len(chunk) <= _FEW:  # one search's hits: bound parameters (SQLite caches the statement)
                    rows = self._conn.execute(
                        f"SELECT id, coalesce(doc, '{{}}') FROM items WHERE id IN ({_MARKS[len(chunk)]})", chunk
                    ).fetchall()
                else:  # one JSON parameter instead of thousands of bound ones: much cheaper for SQLite to take in
                    rows = self._conn.execute(
                        "SELECT id, coalesce(doc, '{}') FROM items WHERE id IN (SELECT value FROM json_each(?))",
                        (json.dumps(chunk),),
                    ).fetchall()
                if rows:
                    found_ids, docs = zip(*rows)
                    # One parse of a JSON array instead of one json.loads call per row.
                    out.update(zip(found_ids, loads("[" + ",".join(docs) + "]")))
        return out

    def match(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """Sorted int64 ids of items matching ``filters``; ``None`` when there is no filter (everything matches).

        Results are cached per filter until the next write, so repeated filtered searches pay the SQL once.
        """
        key = normalise_filters(filters)
        if not key:
            return None
        with self._lock:
            cached = self._match_cache.get(key)
            if cached is not None:
                self._match_cache.move_to_end(key)
                return cached
            where, params = [], []
            for name, values in key:
                # One JSON parameter per key, however many values: no "too many SQL variables".
                if name == "concept":
                    where.append("id IN (SELECT id FROM item_concepts "
                                 "WHERE concept IN (SELECT value FROM json_each(?)))")
                elif name in COLUMNS:
                    where.append(f"{name} IN (SELECT CAST(value AS TEXT) FROM json_each(?))")
                else:
                    self._check_key_present(name)
                    # json_each over a scalar yields the scalar itself, over a list each element.
                    where.append("EXISTS (SELECT 1 FROM json_each(items.doc, ?) AS m "
                                 "WHERE m.value IN (SELECT value FROM json_each(?)))")
                    params.append(f'$."{name}"')
                params.append(json.dumps(list(values)))
            rows = self._conn.execute(f"SELECT id FROM items WHERE {' AND '.join(where)} ORDER BY id", params)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64)
            self._match_cache[key] = ids
            while len(self._match_cache) > 32:
                self._match_cache.popitem(last=False)
            return ids

    def _check_key_present(self, name: str) -> None:
        """Refuse a filter on a metadata key no item has (a typo would otherwise match nothing, silently)."""
        if self._conn.execute("SELECT 1 FROM items WHERE json_type(doc, ?) IS NOT NULL LIMIT 1",
                              (f'$."{name}"',)).fetchone():
            return
        present = [r[0] for r in self._conn.execute(
            "SELECT DISTINCT m.key FROM (SELECT doc FROM items WHERE doc IS NOT NULL LIMIT 10000), json_each(doc) AS m "
            "ORDER BY 1 LIMIT 50")]
        extra = [k for k in present if k not in FILTER_KEYS and k not in ("concepts",)]
        raise IndexError_(f"unknown filter {name!r}: no item has that metadata key; valid filters are "
                          f"{list(FILTER_KEYS)} and the other metadata keys in this index: {extra}")

    def stats(self) -> dict[str, Any]:
        """Counts per kind and modality (for ``kgclip index info``)."""
        with self._lock:
            kinds = dict(self._conn.execute("SELECT coalesce(kind, '?'), count(*) FROM items GROUP BY 1"))
            modalities = dict(self._conn.execute("SELECT coalesce(modality, '?'), count(*) FROM items GROUP BY 1"))
            n_concepts = self._conn.execute("SELECT count(DISTINCT concept) FROM item_concepts").fetchone()[0]
        return {"items": len(self), "kinds": kinds, "modalities": modalities, "distinct_concepts": n_concepts}


def _column_value(value: Any) -> Any:
    # Filter columns hold scalars; anything else is kept only in the JSON document.
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _chunks(ids: Sequence[int] | np.ndarray) -> Iterable[list[int]]:
    values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]
