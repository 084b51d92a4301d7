"""The on-disk cache of compiled lexicons: one safetensors file per (graph names, lexicon settings, format).

Layout of ``kgclip_home()/cache/linker/lexicon-<key>.safetensors``:

* ``strings.<table>`` (``uint8``): a list of strings (concept ids, names, trie nodes - the surface keys first, in
  row order, then the prefixes that are not keys -, word-order bags, bag tokens, vocabulary) as NUL-joined UTF-8,
  split back with one C-level call (faster than JSON); a list holding a NUL, or an empty one, goes to ``tables``;
* ``tables``: UTF-8 JSON of the abbreviations, the display spellings and any list not stored as ``strings.*``;
* ``node_flags`` (``uint8``): the ``IS_TERM`` / ``HAS_LONGER`` flags of the nodes;
* ``offsets`` / ``indices`` (``int32``): the candidate lists of the surface keys in CSR form;
* ``bag_rows`` (``int32``): the surface key each word-order bag stands for, as a position in the keys;
* ``deprecated`` (``int32``): indices of deprecated concepts;
* metadata: the format, the cache key's inputs (``meta``) and a CRC-32 of every tensor's bytes (corruption
  detection, not a key: the key is a blake2b fingerprint).

The key covers only what the lexicon is built from (:func:`lexicon_inputs_fingerprint`: ids, names, synonyms,
sources and deprecation of every concept, in graph order), the lexicon settings and the normalisation tables, so an
edit to a name rebuilds while an edit to a relation or a definition does not. Loading never trusts a file: a
missing, truncated, corrupted, foreign or stale file gives ``None`` and the caller rebuilds. No pickle anywhere.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from kgclip.atomic import atomic_write_bytes
from kgclip.config import kgclip_home
from kgclip.fingerprint import Hasher, fingerprint_json
from kgclip.ontology.model import ConceptGraph
from kgclip.text.lexicon import (HAS_LONGER, IS_TERM, LEXICON_FORMAT, Lexicon, borrowed_synonyms,
                                 normalisation_digest)

__all__ = ["lexicon_inputs_fingerprint", "lexicon_cache_key", "lexicon_cache_path", "cached_lexicon", "save_lexicon",
           "load_lexicon", "CACHE_FORMAT"]

CACHE_FORMAT = "kgclip-lexicon"
_STRING_TABLES = ("concept_ids", "names", "nodes", "bag_keys", "bag_tokens", "vocabulary")
_ARRAYS = frozenset({"tables", "node_flags", "offsets", "indices", "bag_rows", "deprecated"})
_PACKED = frozenset(f"strings.{name}" for name in _STRING_TABLES)
# What a damaged or foreign file can raise while it is decoded (UnicodeDecodeError / JSONDecodeError are ValueErrors).
_DECODE_ERRORS = (SafetensorError, ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
                  RecursionError)


def _update_strings(hasher: Hasher, values: list[str] | tuple[str, ...]) -> None:
    # NUL-joined: one C-level join instead of one update per string. Unambiguous when no value holds a NUL (checked
    # by counting); otherwise the lengths (in code points) make it so.
    joined = "\x00".join(values)
    hasher.update_str(f"{len(values)}:{joined}")
    if joined.count("\x00") != max(len(values) - 1, 0):
        hasher.update_array(np.fromiter(map(len, values), dtype=np.int64, count=len(values)))


def lexicon_inputs_fingerprint(graph: ConceptGraph) -> str:
    """Fingerprint of exactly what :meth:`Lexicon.build` reads from ``graph``: id, name, synonyms, source and
    deprecation of each concept, in graph order, and the names it borrows (:func:`borrowed_synonyms`).

    About 40 ms for 59k concepts, against about a second for :meth:`ConceptGraph.fingerprint` (which also hashes
    relations, definitions and cross-references, none of which changes the lexicon).
    """
    columns = graph.columns()
    hasher = Hasher().update_str(f"{CACHE_FORMAT}:{len(columns.ids)}")
    for column in (columns.ids, columns.names, columns.sources):
        _update_strings(hasher, column)
    hasher.update_array(np.fromiter(map(len, columns.synonyms), dtype=np.int64, count=len(columns.synonyms)))
    _update_strings(hasher, list(itertools.chain.from_iterable(columns.synonyms)))
    hasher.update_bytes(bytes(columns.deprecated))
    borrowed = borrowed_synonyms(columns)  # from same_as relations and shared cross-references
    hasher.update_array(np.fromiter(map(len, borrowed), dtype=np.int64, count=len(borrowed)))
    _update_strings(hasher, list(itertools.chain.from_iterable(borrowed)))
    return hasher.hexdigest()


def lexicon_cache_key(inputs_fingerprint: str, settings: dict[str, Any]) -> str:
    """The cache key of a lexicon: its graph inputs, its settings, the format and the normalisation tables."""
    return fingerprint_json({"inputs": inputs_fingerprint, "settings": settings, "format": LEXICON_FORMAT,
                             "normalisation": normalisation_digest()})


def lexicon_cache_path(key: str) -> Path:
    """Where the lexicon of ``key`` is cached (read ``KGCLIP_HOME`` now, not at import)."""
    return kgclip_home() / "cache" / "linker" / f"lexicon-{key}.safetensors"


def cached_lexicon(inputs_fingerprint: str, settings: dict[str, Any], build: Callable[[], Lexicon], *,
                   disk_cache: bool = True) -> tuple[Lexicon, str]:
    """The lexicon of these inputs and settings, from disk when an intact copy is there, else built (and saved).

    Returns the lexicon and where it came from: ``"disk"`` or ``"built"``.
    """
    path = lexicon_cache_path(lexicon_cache_key(inputs_fingerprint, settings))
    meta = {"lexicon_inputs": inputs_fingerprint, "settings": settings, "normalisation": normalisation_digest()}
    lexicon = load_lexicon(path, meta) if disk_cache else None
    if lexicon is not None:
        return lexicon, "disk"
    lexicon = build()
    if disk_cache:
        try:
            save_lexicon(lexicon, path, meta)
        except (OSError, ValueError):
            pass  # a read-only home (or an unencodable name) only costs the rebuild next time
    return lexicon, "built"


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    # CRC-32 runs at memory speed (blake2b costs ~50 ms on a 17 MB lexicon); it only has to catch damage.
    crc = 0
    for name in sorted(arrays):
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).view(np.uint8).data, zlib.crc32(name.encode(), crc))
    return f"crc32:{crc:08x}"


def _pack(values: list[str]) -> np.ndarray | None:
    """NUL-joined UTF-8 of ``values``, or ``None`` when that would be ambiguous (a value holds a NUL; no values)."""
    joined = "\x00".join(values)
    if not values or joined.count("\x00") != len(values) - 1:
        return None
    return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)


def save_lexicon(lexicon: Lexicon, path: Path, meta: dict[str, Any]) -> None:
    """Write ``lexicon`` to ``path`` atomically, stamped with ``meta`` (the inputs of its cache key)."""
    bag_keys = list(lexicon.bags)
    nodes = lexicon.keys + sorted(node for node, flags in lexicon.nodes.items() if not flags & IS_TERM)
    lists = {"concept_ids": lexicon.concept_ids, "names": lexicon.names, "nodes": nodes, "bag_keys": bag_keys,
             "bag_tokens": sorted(lexicon.bag_tokens), "vocabulary": sorted(lexicon.vocabulary)}
    tables: dict[str, Any] = {"abbreviations": lexicon.abbreviations, "key_text": lexicon.key_text}
    arrays: dict[str, np.ndarray] = {}
    for name, values in lists.items():
        packed = _pack(values)
        if packed is None:
            tables[name] = values
        else:
            arrays[f"strings.{name}"] = packed
    blob = json.dumps(tables, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    terms = lexicon.terms
    arrays |= {
        "tables": np.frombuffer(blob, dtype=np.uint8),
        "node_flags": np.fromiter(map(lexicon.nodes.__getitem__, nodes), dtype=np.uint8, count=len(nodes)),
        "offsets": np.asarray(lexicon.offsets, dtype=np.int32),
        "indices": np.asarray(lexicon.indices, dtype=np.int32),
        "bag_rows": np.fromiter((terms[lexicon.bags[b]] for b in bag_keys), dtype=np.int32, count=len(bag_keys)),
        "deprecated": np.asarray(lexicon.deprecated, dtype=np.int32),
    }
    metadata = {"format": CACHE_FORMAT, "format_version": str(LEXICON_FORMAT), "checksum": _checksum(arrays),
                "meta": json.dumps(meta, sort_keys=True)}
    atomic_write_bytes(path, st_save(arrays, metadata=metadata))


def load_lexicon(path: Path, meta: dict[str, Any]) -> Lexicon | None:
    """The cached lexicon at ``path`` if it is intact and was built for ``meta``; ``None`` otherwise."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode(data, meta)
    except _DECODE_ERRORS:
        return None  # a damaged cache is rebuilt, never trusted


def _decode(data: bytes, meta: dict[str, Any]) -> Lexicon | None:
    header = _read_metadata(data)
    if (header.get("format") != CACHE_FORMAT or header.get("format_version") != str(LEXICON_FORMAT)
            or json.loads(header.get("meta", "null")) != meta):
        return None  # another format, or stale
    arrays = st_load(data)
    if not _ARRAYS <= set(arrays) <= _ARRAYS | _PACKED or _checksum(arrays) != header.get("checksum"):
        return None  # damaged: bytes differ from what was written
    tables = json.loads(arrays["tables"].tobytes().decode("utf-8"))
    for name in _STRING_TABLES:
        packed = arrays.get(f"strings.{name}")
        if (packed is None) == (name not in tables):
            return None  # a list stored twice, or not at all
        if packed is not None:
            tables[name] = packed.tobytes().decode("utf-8").split("\x00")
    concept_ids, n = tables["concept_ids"], len(tables["concept_ids"])
    offsets, indices, bag_rows, deprecated, flags = (arrays[k] for k in ("offsets", "indices", "bag_rows",
                                                                         "deprecated", "node_flags"))
    keys = tables["nodes"][:len(offsets) - 1]
    # Cheap structural checks, so that even a well-formed file from a buggy writer cannot index out of range.
    if (not all(isinstance(tables[name], list) for name in _STRING_TABLES) or len(tables["names"]) != n
            or len(flags) != len(tables["nodes"]) or len(keys) != len(offsets) - 1 or offsets[0] != 0
            or offsets[-1] != len(indices) or np.any(np.diff(offsets) < 0)
            or not np.all(flags[:len(keys)] & IS_TERM) or np.any(flags[len(keys):] != HAS_LONGER)
            or len(bag_rows) != len(tables["bag_keys"])):
        return None
    nodes = dict(zip(tables["nodes"], flags.tolist()))
    if len(nodes) != len(flags):
        return None  # a repeated node
    for values, bound in ((indices, n), (deprecated, n), (bag_rows, len(keys))):
        if len(values) and (values.min() < 0 or values.max() >= bound):
            return None
    if any(not isinstance(v, list) or any(not 0 <= i < n for i in v) for v in tables["abbreviations"].values()):
        return None
    return Lexicon(concept_ids=concept_ids, names=tables["names"], deprecated=deprecated.tolist(), keys=keys,
                   offsets=offsets.tolist(), indices=indices.tolist(), nodes=nodes,
                   abbreviations=tables["abbreviations"], key_text=tables["key_text"],
                   bags=dict(zip(tables["bag_keys"], map(keys.__getitem__, bag_rows.tolist()))),
                   bag_tokens=set(tables["bag_tokens"]), vocabulary=set(tables["vocabulary"]))


def _read_metadata(data: bytes) -> dict[str, str]:
    """The safetensors ``__metadata__`` of ``data`` without decoding any tensor (a stale file is rejected cheaply)."""
    size = int.from_bytes(data[:8], "little")
    if len(data) < 8 or size > len(data) - 8:
        raise ValueError("truncated safetensors header")
    metadata = json.loads(data[8:8 + size].decode("utf-8")).get("__metadata__")
    if not isinstance(metadata, dict):
        raise ValueError("no metadata")
    return metadata
