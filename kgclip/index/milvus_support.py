"""Helpers of the Milvus backend: connecting (with a clear error naming the uri), the per-process temporary
Milvus Lite database, filter expressions with escaped literals, and input validation shared with FAISS' rules."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import ConfigError, IndexError_, KgclipError
from kgclip.index.metadata import COLUMNS, normalise_filters

__all__ = ["milvus_filter", "milvus_rows", "drop_collection"]

FILTER_COLUMNS = tuple(c for c in COLUMNS if c != "text")
_MAX_EXPR_VALUES = 16_384  # values per key in one Milvus filter expression (the expression is sent as text)
_KINDS = {"image", "text", "case"}

_EPHEMERAL: dict[str, Any] = {}
_EPHEMERAL_LOCK = threading.Lock()


def _ephemeral_uri() -> str:
    # One temporary Milvus Lite database per process, shared by every uri=None index (each in its own collection):
    # starting a Lite server costs seconds, a collection milliseconds.
    with _EPHEMERAL_LOCK:
        if "uri" not in _EPHEMERAL:
            root = tempfile.mkdtemp(prefix="kgclip-milvus-")
            _EPHEMERAL["uri"] = os.path.join(root, "ephemeral.db")
            atexit.register(_cleanup_ephemeral, root, _EPHEMERAL["uri"])
        return _EPHEMERAL["uri"]


def _cleanup_ephemeral(root: str, uri: str) -> None:
    _release_lite(uri)
    shutil.rmtree(root, ignore_errors=True)


def _release_lite(path: str) -> None:
    try:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)
    except Exception:  # noqa: BLE001 - an older milvus-lite without the manager, or already stopped
        pass


def _is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def _literal(value: Any) -> str:
    # JSON string syntax is what Milvus' expression parser reads: quotes, backslashes and control characters are
    # escaped, so a value can never end the literal early and inject expression syntax.
    return json.dumps(str(value), ensure_ascii=False)


def milvus_filter(filters: Mapping[str, Any] | None) -> str:
    """The Milvus boolean expression of kgclip ``filters`` (``""`` for none).

    >>> milvus_filter({"modality": ["CT", "MR"], "concept": "RADLEX:RID1"})
    'array_contains_any(concepts, ["RADLEX:RID1"]) and modality in ["CT", "MR"]'
    """
    parts = []
    for name, values in normalise_filters(filters):
        if name != "concept" and name not in COLUMNS:
            raise IndexError_(
                f"unknown filter {name!r} for a Milvus index: valid filters are {[*FILTER_COLUMNS, 'text', 'concept']} "
                "(filters on other metadata keys need the faiss backend)"
            )
        if len(values) > _MAX_EXPR_VALUES:
            raise IndexError_(f"filter {name!r} has {len(values)} values; a Milvus filter takes at most "
                              f"{_MAX_EXPR_VALUES} (filter on a coarser key, or use the faiss backend)")
        listed = ", ".join(_literal(v) for v in values)
        parts.append(f"array_contains_any(concepts, [{listed}])" if name == "concept" else f"{name} in [{listed}]")
    return " and ".join(parts)


def _column(value: Any) -> str | None:
    # Same rule as the SQLite store: scalars are filterable (compared as text), anything else lives only in JSON.
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def drop_collection(uri: str, collection: str, *, token: str | None = None, timeout: float = 10.0) -> bool:
    """Drop ``collection`` at ``uri`` if it exists (a rebuild that replaces an earlier index).
    Returns whether it did."""
    client = _connect(uri, token, timeout)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
            return True
        return False
    finally:
        client.close()


def _connect(uri: str, token: str | None, timeout: float) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise IndexError_("the Milvus backend needs pymilvus and milvus-lite: pip install 'kgclip[milvus]'") from exc
    if not _is_remote(uri) and not uri.endswith(".db"):
        raise ConfigError(f"Milvus uri {uri!r}: give a Milvus Lite file ending in .db, or http://host:19530")
    if not _is_remote(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MilvusClient(uri=uri, token=token or "", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - pymilvus raises MilvusException or grpc errors
        raise IndexError_(
            f"cannot reach Milvus at {uri} within {timeout:g} s ({exc}). Start the server or fix the address "
            "(index.uri / --uri), or use a local Milvus Lite file such as uri='index.db'"
        ) from exc
    return GuardedClient(client, uri)


class GuardedClient:
    """A ``MilvusClient`` whose failures (server gone, deadline exceeded, rejected request) raise ``IndexError_``
    naming the uri and the operation, instead of raw gRPC / pymilvus exceptions."""

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except KgclipError:
                raise
            except Exception as exc:  # noqa: BLE001 - MilvusException, grpc.RpcError, connection errors
                raise IndexError_(
                    f"Milvus at {self._uri} failed in {name} ({type(exc).__name__}: {exc}). Check that the server "
                    "is up and not overloaded; a slow server needs a larger request_timeout or smaller batch_size"
                ) from exc

        return call


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("kgclip", "pymilvus", "milvus-lite", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def milvus_rows(ids: np.ndarray, x: np.ndarray, metadata: Sequence[Mapping[str, Any] | None] | None,
                max_field_length: int, max_text_length: int) -> list[dict[str, Any]]:
    """Insert rows for the Milvus schema, validated like the SQLite store (kinds, JSON, field lengths)."""
    if metadata is not None and len(metadata) != len(ids):
        raise IndexError_(f"got {len(ids)} ids but {len(metadata)} metadata entries; give one per id")
    rows = []
    for i, item_id in enumerate(ids.tolist()):
        meta = dict(metadata[i] or {}) if metadata is not None else {}
        concepts = meta.get("concepts") or ()
        concepts = [str(c) for c in dict.fromkeys((concepts,) if isinstance(concepts, str) else concepts)]
        if concepts:
            meta["concepts"] = concepts
        else:
            meta.pop("concepts", None)
        if meta.get("kind") is not None and meta["kind"] not in _KINDS:
            raise IndexError_(f"item {item_id}: kind must be one of {sorted(_KINDS)}, got {meta['kind']!r}")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise IndexError_(f"item {item_id}: metadata must be JSON-serialisable ({exc})") from exc
        row: dict[str, Any] = {"id": item_id, "vector": x[i], "concepts": concepts, "metadata": meta}
        for column in FILTER_COLUMNS:
            value = _column(meta.get(column))
            if value is not None and len(value.encode("utf-8")) > max_field_length:
                raise IndexError_(f"item {item_id}: {column} is longer than {max_field_length} "
                                  "bytes; shorten it or raise max_field_length")
            row[column] = value
        text = _column(meta.get("text"))
        if text is not None:
            text = text.encode("utf-8")[: max_text_length].decode("utf-8", "ignore")
        row["text"] = text
        rows.append(row)
    return rows

