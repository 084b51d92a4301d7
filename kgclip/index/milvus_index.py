"""Milvus backend of :class:`~kgclip.index.protocol.VectorIndex`: the same client code for Milvus Lite and a cluster.

``uri`` chooses where the vectors live:

- ``None``: a temporary Milvus Lite database private to this process (tests, notebooks); ``save`` copies the
  collection into ``<directory>/milvus.db`` so the saved directory is self-contained, like a FAISS save;
- a path ending in ``.db``: a Milvus Lite database (embedded, in-process; ``pip install kgclip[milvus]``);
- ``http://host:19530`` (or ``https://``): a Milvus server or cluster; ``save`` writes only the manifest, since the
  data already lives in Milvus.

One collection holds one index: an ``INT64`` primary key (the item id), a ``FLOAT_VECTOR`` with an inner-product
index (``FLAT`` by default: exact search, the same top-k as FAISS ``Flat``), one nullable ``VARCHAR`` per filter
column, the linked concept ids as ``ARRAY<VARCHAR>`` (``array_contains_any``), the text, and the whole metadata
object as JSON (what ``get`` and search hits return). The encoder fingerprint is stored in the collection's
properties as well as in the manifest, so a collection built with another encoder is refused even when it is
opened by name without a manifest. Filters become Milvus boolean expressions with escaped string literals.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.config import Config
from kgclip.errors import ArtifactCorruptError, ConfigError, EncoderMismatchError, IndexError_
from kgclip.index.milvus_support import (
    FILTER_COLUMNS,
    _connect,
    _ephemeral_uri,
    _is_remote,
    _release_lite,
    _versions,
    milvus_filter,
    milvus_rows,
)
from kgclip.index.persistence import MANIFEST_NAME, read_manifest
from kgclip.index.protocol import INDEX_BACKENDS, SearchHit, SearchResults
from kgclip.index.vectors import as_ids, checked_batch, checked_k, normalised

__all__ = ["MilvusIndexConfig", "MilvusIndex", "milvus_filter"]

_FP_KEY = "kgclip.encoder_fingerprint"
_DIM_KEY = "kgclip.dim"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_MAX_TOPK = 16384  # Milvus' limit on top-k and on queries per request
_LITE_DIR = "milvus.db"
_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")


@dataclass(frozen=True)
class MilvusIndexConfig(Config):
    """Configuration of a :class:`MilvusIndex` (saved in its manifest)."""

    dim: int = 384  # vector dimension
    uri: str | None = None  # None (temporary Milvus Lite), a Milvus Lite file "x.db", or http://host:19530
    collection: str | None = None  # collection name; None: a new unique "kgclip_<random>"
    index_type: str = "FLAT"  # FLAT (exact, agrees with FAISS Flat), HNSW, IVF_FLAT or AUTOINDEX
    hnsw_m: int = 16  # HNSW graph degree
    ef_construction: int = 200  # HNSW build-time candidate list
    ef_search: int = 64  # HNSW search-time candidate list (raised to k when smaller)
    nlist: int = 1024  # IVF lists
    nprobe: int = 16  # IVF lists visited per query
    timeout: float = 10.0  # seconds to wait for the server to answer when connecting, before a clear error
    request_timeout: float = 600.0  # seconds one request (a batch insert, a search) may take on a busy server
    batch_size: int = 2000  # rows per insert request (bounded request size)
    max_field_length: int = 1024  # max bytes of a filter column value (kind, modality, case_id...)
    max_text_length: int = 65535  # max bytes of the text column (the full text always stays in the JSON)

    def __post_init__(self) -> None:
        if int(self.dim) <= 0:
            raise ConfigError(f"dim must be positive, got {self.dim}")
        if self.collection is not None and not _NAME_RE.match(self.collection):
            raise ConfigError(f"collection {self.collection!r}: Milvus names are letters, digits and '_', "
                              "starting with a letter or '_'")
        if self.index_type.upper() not in _INDEX_TYPES:
            raise ConfigError(f"index_type must be one of {_INDEX_TYPES}, got {self.index_type!r}")
        if self.timeout <= 0 or self.request_timeout <= 0 or self.batch_size < 1:
            raise ConfigError("timeout and request_timeout must be > 0 and batch_size >= 1")


@INDEX_BACKENDS.register("milvus")
class MilvusIndex:
    """A Milvus collection behind the :class:`~kgclip.index.base.VectorIndex` protocol.

    Args:
        config: a :class:`MilvusIndexConfig`, or its fields as keywords (``MilvusIndex(dim=384, uri="ix.db")``).
        encoder_fingerprint: fingerprint of the encoder whose vectors the index holds; an existing collection
            that records another one is refused with ``EncoderMismatchError``.
        encoder_name: informational, saved in the manifest.
        token: Milvus credentials (``"user:password"`` or an API key); never written to the manifest.
        create: create the collection when it does not exist (else ``ArtifactCorruptError``).

    Raises:
        IndexError_: pymilvus is missing, or the server at ``uri`` cannot be reached within ``timeout``.
    """

    def __init__(self, config: MilvusIndexConfig | None = None, *, encoder_fingerprint: str | None = None,
                 encoder_name: str | None = None, token: str | None = None, create: bool = True,
                 **fields: Any) -> None:
        config = MilvusIndexConfig(**fields) if config is None else (replace(config, **fields) if fields else config)
        self.ephemeral = config.uri is None
        if config.collection is None:
            config = replace(config, collection=f"kgclip_{secrets.token_hex(6)}")
        self.config = config
        self.encoder_name = encoder_name
        self._encoder_fingerprint = encoder_fingerprint
        self._lock = threading.RLock()
        self._writer_lock: Any = None  # the DirectoryLock held by updating(), which save() then reuses
        self.uri = _ephemeral_uri() if self.ephemeral else str(config.uri)
        self._client = _connect(self.uri, token, config.timeout)
        self._open_collection(create)

    # ------------------------------------------------------------------ collection
    @property
    def collection(self) -> str:
        return str(self.config.collection)

    def _open_collection(self, create: bool) -> None:
        client, name = self._client, self.collection
        exists = client.has_collection(name, timeout=self.config.request_timeout)
        if not exists and not create:
            raise ArtifactCorruptError(f"collection {name!r} does not exist at {self.uri}; rebuild the index")
        if exists:
            props = client.describe_collection(name, timeout=self.config.request_timeout).get("properties") or {}
            stored_dim = props.get(_DIM_KEY)
            if stored_dim is not None and int(stored_dim) != self.dim:
                raise IndexError_(f"collection {name!r} at {self.uri} holds {stored_dim}-d vectors, not {self.dim}-d; "
                                  "use another collection name or the matching dim")
            stored = props.get(_FP_KEY) or None
            self._check_built_with(stored, self._encoder_fingerprint, f"collection {name!r} at {self.uri}")
            self._encoder_fingerprint = self._encoder_fingerprint or stored
            client.load_collection(name, timeout=self.config.request_timeout)
            return
        from pymilvus import DataType, MilvusClient

        cfg = self.config
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        for column in FILTER_COLUMNS:
            schema.add_field(column, DataType.VARCHAR, max_length=cfg.max_field_length, nullable=True)
        schema.add_field("text", DataType.VARCHAR, max_length=cfg.max_text_length, nullable=True)
        schema.add_field("concepts", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4096,
                         max_length=cfg.max_field_length)
        schema.add_field("metadata", DataType.JSON)
        params = client.prepare_index_params()
        kind = cfg.index_type.upper()
        build = {"HNSW": {"M": cfg.hnsw_m, "efConstruction": cfg.ef_construction},
                 "IVF_FLAT": {"nlist": cfg.nlist}}.get(kind, {})
        params.add_index(field_name="vector", index_type=kind, metric_type="IP", params=build)
        properties = {_DIM_KEY: str(self.dim)}
        if self._encoder_fingerprint:
            properties[_FP_KEY] = self._encoder_fingerprint
        client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong",
                                 properties=properties, timeout=cfg.request_timeout)

    def drop(self) -> None:
        """Delete the collection and its data from Milvus."""
        with self._lock:
            self._client.drop_collection(self.collection)

    def close(self) -> None:
        """Close the client connection (the data stays in Milvus)."""
        self._client.close()

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return int(self.config.dim)

    @property
    def encoder_fingerprint(self) -> str | None:
        return self._encoder_fingerprint

    def check_encoder(self, fingerprint: str | None) -> None:
        """Raise ``EncoderMismatchError`` when ``fingerprint`` (of a query encoder) differs from the index's."""
        self._check_built_with(self._encoder_fingerprint, fingerprint, "this index")

    @staticmethod
    def _check_built_with(built: str | None, given: str | None, where: str) -> None:
        if built and given and built != given:
            raise EncoderMismatchError(
                f"{where} was built with encoder fingerprint {built}, but the encoder given has {given}; "
                "use the encoder it was built with, or build a new collection with this one"
            )

    def __len__(self) -> int:
        with self._lock:
            rows = self._client.query(self.collection, filter="", output_fields=["count(*)"],
                                      timeout=self.config.request_timeout)
        return int(rows[0]["count(*)"]) if rows else 0

    def __repr__(self) -> str:
        return (f"MilvusIndex(uri={'<temporary Milvus Lite>' if self.ephemeral else self.uri!r}, "
                f"collection={self.collection!r}, dim={self.dim}, index_type={self.config.index_type!r})")

    # ------------------------------------------------------------------ writes
    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any] | None] | None = None) -> None:
        """Add (or replace: Milvus upsert) items.

        Shapes: ``ids`` ``[N]``, ``vectors`` ``[N, dim]`` (normalised here), ``metadata`` length N or ``None``.
        """
        ids, x = checked_batch(ids, vectors, self.dim)
        rows = milvus_rows(ids, x, metadata, self.config.max_field_length, self.config.max_text_length)
        with self._lock:
            for start in range(0, len(rows), self.config.batch_size):
                self._client.upsert(self.collection, rows[start:start + self.config.batch_size],
                                    timeout=self.config.request_timeout)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items by id (unknown ids are ignored); returns how many were removed."""
        ids = as_ids(ids)
        with self._lock:
            present = self._present(ids)
            for start in range(0, len(present), _MAX_TOPK):
                self._client.delete(self.collection, ids=present[start:start + _MAX_TOPK],
                                    timeout=self.config.request_timeout)
        return len(present)

    def _present(self, ids: np.ndarray) -> list[int]:
        found: list[int] = []
        unique = list(dict.fromkeys(ids.tolist()))
        for start in range(0, len(unique), _MAX_TOPK):
            rows = self._client.get(self.collection, ids=unique[start:start + _MAX_TOPK], output_fields=["id"],
                                    timeout=self.config.request_timeout)
            found.extend(int(r["id"]) for r in rows)
        return found

    # ------------------------------------------------------------------ reads
    def get(self, ids: Sequence[int] | np.ndarray) -> list[dict[str, Any] | None]:
        """Stored metadata per id (``None`` for unknown ids), in the order given."""
        ids = as_ids(ids)
        unique = list(dict.fromkeys(ids.tolist()))
        found: dict[int, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(unique), _MAX_TOPK):
                rows = self._client.get(self.collection, ids=unique[start:start + _MAX_TOPK],
                                        output_fields=["metadata"], timeout=self.config.request_timeout)
                found.update((int(r["id"]), dict(r.get("metadata") or {})) for r in rows)
        return [found.get(i) for i in ids.tolist()]

    def search(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
               ) -> list[list[SearchHit]]:
        """Top-``k`` hits per query among items matching ``filters`` (exact with the default ``FLAT`` index).

        Shapes: ``query`` ``[Q, dim]`` or ``[dim]`` -> Q lists of at most ``k`` :class:`SearchHit`, best first.
        """
        return self._search(query, k, filters, ["metadata"])

    def search_ids(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
                   ) -> list[list[SearchHit]]:
        """Like :meth:`search` without fetching metadata (hits carry an empty ``metadata``): faster at scale."""
        return self._search(query, k, filters, [])

    def _search(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None, fields: list[str]
                ) -> list[list[SearchHit]]:
        q = normalised(query, self.dim, "query")
        # Counting the collection is a request: only worth it when k is large enough to need the cap.
        k = checked_k(k, len(self) if isinstance(k, int) and k > 100 else k, len(q))
        if k > _MAX_TOPK:
            raise IndexError_(f"Milvus returns at most {_MAX_TOPK} hits per query, got k={k}; ask for fewer")
        expr = milvus_filter(filters)  # validates the filter keys
        cfg = self.config
        params: dict[str, Any] = {"metric_type": "IP", "params": {}}
        if cfg.index_type.upper() == "HNSW":
            params["params"] = {"ef": max(cfg.ef_search, k)}
        elif cfg.index_type.upper() == "IVF_FLAT":
            params["params"] = {"nprobe": cfg.nprobe}
        out: list[list[SearchHit]] = []
        with self._lock:
            for start in range(0, len(q), 1024):
                batch = self._client.search(self.collection, data=list(q[start:start + 1024]), limit=k,
                                            filter=expr, output_fields=fields, search_params=params,
                                            timeout=cfg.request_timeout)
                for row in batch:
                    out.append(SearchResults(
                        SearchHit(int(h["id"]), float(h["distance"]),
                                  dict((h.get("entity") or {}).get("metadata") or {}))
                        for h in row))
        return out

    def ids(self) -> np.ndarray:
        """All stored ids, sorted (streams the collection: costly for very large ones)."""
        found: list[int] = []
        with self._lock:
            iterator = self._client.query_iterator(self.collection, batch_size=16_384, filter="",
                                                   output_fields=["id"], timeout=self.config.request_timeout)
            try:
                while batch := iterator.next():
                    found.extend(int(r["id"]) for r in batch)
            finally:
                iterator.close()
        return np.array(sorted(found), dtype=np.int64)

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change IVF ``nprobe`` / HNSW ``ef`` for later searches (no effect on the exact ``FLAT`` index)."""
        changes = {k: v for k, v in (("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
        with self._lock:
            self.config = replace(self.config, **changes)

    # ------------------------------------------------------------------ persistence
    def flush(self) -> None:
        """Make every write durable in Milvus (sealed segments)."""
        with self._lock:
            self._client.flush(self.collection, timeout=self.config.request_timeout)

    def save(self, directory: str | os.PathLike[str], *, copy: bool | None = None) -> Path:
        """Write ``manifest.json`` (backend, uri, collection, dim, encoder fingerprint) into ``directory``.

        Args:
            directory: the index directory.
            copy: also copy the collection into ``<directory>/milvus.db`` (Milvus Lite), making the directory
                self-contained. Default: only for a temporary (``uri=None``) index, whose data would otherwise be
                lost at exit. Otherwise the data stays in Milvus and the manifest points at it.
        """
        target = Path(directory)
        copy = self.ephemeral if copy is None else copy
        with self._lock:
            self.flush()
            if copy:
                from kgclip.index.persistence import maybe_locked, restore_abandoned

                # Under the writer lock, as a FAISS save: readers then never mistake this save's temporary
                # directory for one a dead writer left behind.
                with maybe_locked(target, self._writer_lock, 60.0):
                    restore_abandoned(target)
                    with atomic_directory(target) as tmp:
                        self._copy_to(str(tmp / _LITE_DIR))
                        atomic_write_json(tmp / MANIFEST_NAME, self._manifest(_LITE_DIR))
                        # Milvus Lite keeps one server per path: stop the one serving the copy being replaced, so
                        # the next load reads the new copy (indexes loaded from the old copy must be reloaded).
                        _release_lite(str(target / _LITE_DIR))
                return target
            target.mkdir(parents=True, exist_ok=True)
            uri = self.uri
            if not _is_remote(uri):
                path, root = Path(uri).resolve(), target.resolve()
                # A Lite database inside the saved directory is recorded relative to it, so the directory can move.
                uri = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
            atomic_write_json(target / MANIFEST_NAME, self._manifest(uri))
        return target

    def _copy_to(self, lite_path: str) -> None:
        dest = MilvusIndex(replace(self.config, uri=lite_path), encoder_fingerprint=self._encoder_fingerprint)
        try:
            fields = ["id", "vector", *FILTER_COLUMNS, "text", "concepts", "metadata"]
            iterator = self._client.query_iterator(self.collection, batch_size=self.config.batch_size, filter="",
                                                   output_fields=fields, timeout=self.config.request_timeout)
            try:
                while batch := iterator.next():
                    dest._client.insert(dest.collection, [{f: r.get(f) for f in fields} for r in batch])
            finally:
                iterator.close()
            dest.flush()
        finally:
            dest.close()
            _release_lite(lite_path)  # the directory is about to be renamed into place

    def _manifest(self, uri: str) -> dict[str, Any]:
        from kgclip.index.persistence import FORMAT_NAME, FORMAT_VERSION

        return {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "backend": "milvus",
            "uri": uri, "collection": self.collection, "dimension": self.dim, "metric": "inner_product",
            "normalized": True, "config": replace(self.config, uri=uri).to_dict(),
            "encoder_fingerprint": self._encoder_fingerprint, "encoder_name": self.encoder_name,
            "counts": {"items": len(self)}, "versions": _versions(),
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "files": {},
        }

    @classmethod
    def load(cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, *,
             token: str | None = None, uri: str | None = None, timeout: float | None = None) -> "MilvusIndex":
        """Reconnect to the collection a manifest names; ``uri`` overrides the saved one (e.g. another host).

        Raises:
            EncoderMismatchError: ``encoder_fingerprint`` differs from the manifest's or the collection's.
            ArtifactCorruptError: the manifest is unreadable, or the collection it names is gone.
            IndexError_: the server cannot be reached.
        """
        target = Path(directory)
        manifest = read_manifest(target)
        if manifest.get("backend") != "milvus":
            raise IndexError_(f"{target} holds a {manifest.get('backend')!r} index; load it with that backend")
        stored = manifest.get("encoder_fingerprint")
        if encoder_fingerprint and stored and encoder_fingerprint != stored:
            raise EncoderMismatchError(
                f"the index at {target} was built with encoder fingerprint {stored}, but the query encoder has "
                f"{encoder_fingerprint}; query with the encoder used to build it, or rebuild the index"
            )
        try:
            config = MilvusIndexConfig.from_dict(manifest["config"])
        except (KeyError, TypeError) as exc:
            raise ArtifactCorruptError(f"{target}/{MANIFEST_NAME} has no valid 'config'; rebuild the index") from exc
        where = uri or str(manifest.get("uri") or config.uri)
        if not _is_remote(where) and not Path(where).is_absolute():
            where = str(target / where)
        if not _is_remote(where) and not Path(where).exists():
            raise ArtifactCorruptError(f"{target}: its Milvus Lite database {where} is missing; rebuild the index")
        config = replace(config, uri=where, **({"timeout": timeout} if timeout else {}))
        return cls(config, encoder_fingerprint=encoder_fingerprint or stored, encoder_name=manifest.get("encoder_name"),
                   token=token, create=False)

    @classmethod
    @contextlib.contextmanager
    def updating(cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, *,
                 lock_timeout: float = 60.0, create: MilvusIndexConfig | None = None) -> Iterator["MilvusIndex"]:
        """Load (or create with ``create``), modify and save ``directory`` under its writer lock, so concurrent
        writers serialise (:func:`kgclip.index.persistence.updating`)."""
        from kgclip.index.persistence import updating

        with updating(cls, directory, encoder_fingerprint, lock_timeout=lock_timeout, create=create) as index:
            yield index

