"""The binary cache of a :class:`~kgclip.ontology.model.ConceptGraph`: one safetensors file, no pickle.

Every string column is one UTF-8 blob (NUL-separated; list columns mark each item with ``\\x01``), the edges are
``int32`` arrays, and the rest (relation types, origins, dangling relations, duplicate ids, fingerprints, kgclip
version) is JSON metadata. Saving exports :meth:`ConceptGraph.columns` and loading rebuilds the graph with
:meth:`ConceptGraph.from_columns`, without per-record parsing, so a UMLS-scale graph loads tens of times faster than
re-parsing its source.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.artifacts import kgclip_version
from kgclip.atomic import atomic_path
from kgclip.errors import ArtifactCorruptError
from kgclip.ontology.model import ConceptGraph, GraphColumns, Relation

__all__ = ["save_cache", "load_cache", "read_cache_meta", "CACHE_FORMAT", "CACHE_FORMAT_VERSION"]

CACHE_FORMAT = "kgclip-ontology-cache"
CACHE_FORMAT_VERSION = 1
_SEP, _ITEM_SEP = "\x00", "\x01"


def _pack_strings(values: Sequence[str], label: str) -> np.ndarray:
    blob = _SEP.join(values)
    if blob.count(_SEP) != max(len(values) - 1, 0):
        raise ValueError(f"a {label} value contains a NUL character; it cannot be cached")
    return np.frombuffer(blob.encode("utf-8"), dtype=np.uint8)


def _unpack_strings(data: np.ndarray, count: int) -> list[str]:
    if count == 0:
        return []
    return data.tobytes().decode("utf-8").split(_SEP)


def _pack_lists(values: Sequence[Sequence[str]], label: str) -> np.ndarray:
    # Each non-empty tuple is written as "\x01item\x01item..." so that () and ("",) stay distinct.
    joined = [_ITEM_SEP + _ITEM_SEP.join(items) if items else "" for items in values]
    if sum(x.count(_ITEM_SEP) for x in joined) != sum(len(items) for items in values):
        raise ValueError(f"a {label} holds a \\x01 control character; it cannot be cached")
    return _pack_strings(joined, label)


def _unpack_lists(data: np.ndarray, count: int) -> list[tuple[str, ...]]:
    empty: tuple[str, ...] = ()
    return [tuple(x[1:].split(_ITEM_SEP)) if x else empty for x in _unpack_strings(data, count)]


def save_cache(graph: ConceptGraph, path: str | os.PathLike[str], *, fingerprint: str | bool = True,
               sources: Sequence[dict[str, Any]] = ()) -> Path:
    """Write ``graph`` as one safetensors file (atomically) that :func:`load_cache` reads back fast.

    Args:
        graph: the graph to write.
        path: the ``.safetensors`` file to create or replace.
        fingerprint: the graph fingerprint to record: ``True`` computes it (:meth:`ConceptGraph.fingerprint`, which
            costs tens of seconds on a UMLS-scale graph), a string records one already known (e.g. from
            ``meta.json``), ``False`` records none (then ``load_cache(verify=True)`` cannot check it).
        sources: provenance of the graph (``{"format", "path", "fingerprint"}`` per source file), recorded so a
            consumer can tell the cache is stale when a source changes.

    Returns:
        ``path``.

    Tensors: ``ids``, ``names``, ``definitions``, ``sources``, ``synonyms``, ``types``, ``xrefs`` (``uint8``
    UTF-8 blobs), ``deprecated`` (``uint8 [N]``), ``src`` / ``rel`` / ``dst`` / ``org`` (``int32 [E]``).
    Metadata: name, relation types, origins, dangling relations, duplicate ids, graph fingerprint, kgclip version.
    """
    from safetensors.numpy import save_file

    cols = graph.columns()
    tensors = {
        "ids": _pack_strings(cols.ids, "id"),
        "names": _pack_strings(cols.names, "name"),
        "definitions": _pack_strings(cols.definitions, "definition"),
        "sources": _pack_strings(cols.sources, "source"),
        "synonyms": _pack_lists(cols.synonyms, "synonym"),
        "types": _pack_lists(cols.semantic_types, "semantic type"),
        "xrefs": _pack_lists(cols.xrefs, "xref"),
        "deprecated": np.frombuffer(cols.deprecated, dtype=np.uint8),
        "src": cols.edge_source, "rel": cols.edge_type, "dst": cols.edge_target, "org": cols.edge_origin,
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    metadata = {
        "format": CACHE_FORMAT,
        "format_version": str(CACHE_FORMAT_VERSION),
        "name": graph.name,
        "concepts": str(len(cols.ids)),
        "relations": str(len(cols.edge_source)),
        "relation_types": json.dumps(cols.relation_types),
        "origins": json.dumps(cols.origins),
        "dangling": json.dumps([[r.source, r.type, r.target, r.origin] for r in cols.dangling]),
        "duplicate_ids": json.dumps(cols.duplicate_ids),
        "declared_relation_types": json.dumps(cols.declared_relation_types),
        "graph_fingerprint": graph.fingerprint() if fingerprint is True else (fingerprint or ""),
        "sources": json.dumps(list(sources)),
        "kgclip_version": kgclip_version(),
    }
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_cache_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a cache (name, counts, graph fingerprint, sources, kgclip version) without loading it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = dict(handle.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a truncated or foreign file
        raise ArtifactCorruptError(f"cannot read ontology cache {path}: {exc}. Delete it and rebuild it") from exc
    for key in ("relation_types", "origins", "dangling", "duplicate_ids", "sources", "declared_relation_types"):
        if key in meta:
            meta[key] = json.loads(meta[key])
    return meta


def load_cache(path: str | os.PathLike[str], *, verify: bool = False,
               trust_stored_fingerprint: bool = False) -> ConceptGraph:
    """Read a graph written by :func:`save_cache`, rebuilding the columnar core directly (no per-record parsing).

    Args:
        path: the ``.safetensors`` file.
        verify: recompute the graph fingerprint and compare it with the stored one (slower; catches corruption
            that the safetensors header check does not).
        trust_stored_fingerprint: take the fingerprint stored at save time as the graph's own instead of
            recomputing it (about a second on the shipped graphs) on first use. Only for a caller that has
            checked the file's bytes against a checksum recorded when it was written (a workspace manifest).

    Raises:
        ArtifactCorruptError: the file is truncated, foreign, internally inconsistent, or (``verify``) does not
            match its fingerprint.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            t = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises several types for a truncated or foreign file
        raise ArtifactCorruptError(f"cannot read ontology cache {path}: {exc}. Delete it and rebuild it with "
                                   "save_cache (or re-import the source)") from exc
    if meta.get("format") != CACHE_FORMAT:
        raise ArtifactCorruptError(f"{path} is not a kgclip ontology cache (format {meta.get('format')!r})")
    inconsistent = f"ontology cache {path} is inconsistent (column lengths differ); delete and rebuild it"
    try:
        n = int(meta["concepts"])
        columns = GraphColumns(
            ids=_unpack_strings(t["ids"], n), names=_unpack_strings(t["names"], n),
            synonyms=_unpack_lists(t["synonyms"], n), semantic_types=_unpack_lists(t["types"], n),
            definitions=_unpack_strings(t["definitions"], n), sources=_unpack_strings(t["sources"], n),
            deprecated=t["deprecated"].tobytes(), xrefs=_unpack_lists(t["xrefs"], n),
            edge_source=t["src"], edge_type=t["rel"], edge_target=t["dst"], edge_origin=t["org"],
            relation_types=json.loads(meta["relation_types"]), origins=json.loads(meta["origins"]),
            dangling=[Relation(*r) for r in json.loads(meta["dangling"])],
            duplicate_ids=json.loads(meta["duplicate_ids"]),
            declared_relation_types=[str(t) for t in json.loads(meta.get("declared_relation_types", "[]"))])
        if len(columns.ids) != n or len(columns.edge_source) != int(meta["relations"]):
            raise ValueError("counts differ from the metadata")
        graph = ConceptGraph.from_columns(columns, name=meta.get("name", "graph"))
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ArtifactCorruptError(f"{inconsistent} ({exc})") from exc
    if verify and not meta.get("graph_fingerprint"):
        raise ArtifactCorruptError(f"ontology cache {path} was saved without a fingerprint; it cannot be verified")
    if verify and graph.fingerprint() != meta.get("graph_fingerprint"):
        raise ArtifactCorruptError(f"ontology cache {path} does not match its stored fingerprint; delete and "
                                   "rebuild it")
    if trust_stored_fingerprint and meta.get("graph_fingerprint"):
        graph.remember_fingerprint(meta["graph_fingerprint"])
    return graph
