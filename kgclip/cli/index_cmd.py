"""``kgclip index build|add|remove|search|info``: thin calls into :mod:`kgclip.index`.

Build from a JSONL / CSV of texts (encoded with a kgclip text encoder) or from a safetensors vectors file; search
by text with the encoder the index was built with (recorded as given to ``build --encoder``; a different encoder is
refused). Ids are integers or strings (see :mod:`kgclip.index.io`); ``--filter`` takes any metadata key in the data.
``add`` and ``remove`` hold the index's writer lock for their whole load-modify-save, so concurrent writers queue
instead of losing updates.

``--backend faiss`` (default) or ``--backend milvus [--uri URI] [--collection NAME]``: Milvus keeps the vectors in a
Milvus Lite file (default ``DIR/milvus.db``) or on a server (``http://host:19530``); the directory then holds the
manifest naming the uri and collection. ``add`` / ``remove`` / ``search`` / ``info`` use the backend the manifest names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("index", help="build, update and search vector indexes", description=__doc__)
    sub = parser.add_subparsers(dest="index_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    def items_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--input", help="JSONL or CSV rows: id (optional), text, metadata fields")
        p.add_argument("--vectors", help="safetensors file with 'vectors' [N, dim] (and optionally 'ids')")
        p.add_argument("--text-field", default="text")
        p.add_argument("--id-field", default="id")
        p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("build", help="build a new index directory (replaces an existing one)")
    p.add_argument("dir")
    items_args(p)
    p.add_argument("--encoder", default="minilm", help="text encoder: minilm, hashing-<dim> or a model directory")
    p.add_argument("--backend", default="faiss", choices=("faiss", "milvus"), help="index backend")
    p.add_argument("--factory", default="Flat", help="FAISS factory string: Flat, IVF1024,Flat, HNSW32...")
    p.add_argument("--uri", help="milvus: a Milvus Lite file (x.db) or http://host:19530 (default: DIR/milvus.db)")
    p.add_argument("--collection", help="milvus: collection name (default: a new unique one)")
    p.add_argument("--encoder-fingerprint", help="with --vectors: fingerprint of the encoder that made them")
    p.add_argument("--device", default="cpu", choices=("cpu", "auto", "cuda"))
    p.set_defaults(handler=_build)

    p = sub.add_parser("add", help="add (or replace) items in an existing index")
    p.add_argument("dir")
    items_args(p)
    p.add_argument("--encoder", help="text encoder (default: the one the index was built with)")
    p.add_argument("--lock-timeout", type=float, default=60.0)
    p.set_defaults(handler=_add)

    p = sub.add_parser("remove", help="remove items by id")
    p.add_argument("dir")
    p.add_argument("ids", nargs="+", help="item ids (integers, or the string ids given at build/add)")
    p.add_argument("--lock-timeout", type=float, default=60.0)
    p.set_defaults(handler=_remove)

    p = sub.add_parser("search", help="search an index by text")
    p.add_argument("dir")
    p.add_argument("query", nargs="+", help="one or more query texts")
    p.add_argument("-k", type=int, default=5, help="hits per query (capped at the index size; at most 100000)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="any metadata key in the data, e.g. --filter modality=CT --filter concept=RADLEX:RID4872 "
                        "--filter finding=effusion (repeat a key for OR)")
    p.add_argument("--encoder", help="text encoder (default: the one the index was built with)")
    p.add_argument("--nprobe", type=int)
    p.add_argument("--ef-search", type=int)
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(handler=_search)

    p = sub.add_parser("info", help="manifest and counts of an index")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_info)


def _encoder(name: str | None, fallback: str | None) -> Any:
    from kgclip.errors import ModelNotFoundError
    from kgclip.text.encoders import load_text_encoder

    try:
        return load_text_encoder(name or fallback or "minilm")
    except ModelNotFoundError as exc:
        if name is not None:
            raise
        raise ModelNotFoundError(f"{exc} The index records encoder {fallback!r}: pass --encoder with the encoder "
                                 "it was built with (e.g. --encoder minilm).") from None


def _encoder_record(given: str) -> str:
    """The encoder name stored in the manifest: as given, with a local directory made absolute (so that search
    finds it from any working directory)."""
    path = Path(given).expanduser()
    return str(path.resolve()) if path.is_dir() else given


def _load_items(args: argparse.Namespace, encoder: Any, next_id: int) -> tuple[Any, Any, list[dict[str, Any]] | None]:
    import numpy as np

    from kgclip.errors import InputFormatError
    from kgclip.index.io import AUTO_ID_LIMIT, read_items, read_vectors

    if not args.input and not args.vectors:
        raise InputFormatError("give --input (texts) or --vectors (a vectors file)")
    rows = read_items(args.input, args.text_field, args.id_field, require_text=not args.vectors) \
        if args.input else None
    if args.vectors:
        ids, vectors = read_vectors(args.vectors)
        if rows is not None and len(rows) != len(vectors):
            raise InputFormatError(f"{len(rows)} rows but {len(vectors)} vectors", path=args.vectors)
    else:
        assert rows is not None
        if not rows:
            raise InputFormatError("has no rows to index", path=args.input)
        texts = [str(r.get("text", "")) for r in rows]
        vectors = encoder.encode(texts, batch_size=args.batch_size, show_progress=True).numpy()
        ids = None
    if ids is None:
        given = [r.get("id") for r in rows] if rows is not None else [None] * len(vectors)
        # Rows without an id get the next free ones below the range string ids map into; never reuse a given id.
        start = max([next_id] + [g + 1 for g in given if g is not None and g < AUTO_ID_LIMIT])
        counter = iter(range(start, start + len(given)))
        ids = np.array([g if g is not None else next(counter) for g in given], dtype=np.int64)
    metadata = None
    if rows is not None:
        metadata = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    return ids, vectors, metadata


def _build(args: argparse.Namespace) -> int:
    encoder = _encoder(args.encoder, None) if not args.vectors else None
    ids, vectors, metadata = _load_items(args, encoder, 0)
    fingerprint = encoder.fingerprint if encoder is not None else args.encoder_fingerprint
    name = _encoder_record(args.encoder) if encoder is not None else \
        (args.encoder if args.encoder_fingerprint else None)
    if args.backend == "milvus":
        index = _new_milvus(args, int(vectors.shape[1]), fingerprint, name)
    else:
        from kgclip.index.faiss_index import FaissIndex, IndexConfig

        config = IndexConfig(dim=int(vectors.shape[1]), factory=args.factory, device=args.device)
        index = FaissIndex(config, encoder_fingerprint=fingerprint, encoder_name=name)
    index.add(ids, vectors, metadata)
    index.save(args.dir)
    print(f"built {index!r} at {args.dir}")
    return 0


def _new_milvus(args: argparse.Namespace, dim: int, fingerprint: str | None, name: str | None) -> Any:
    from kgclip.index.milvus_index import MilvusIndex

    uri = args.uri or str(Path(args.dir) / "milvus.db")
    collection = args.collection or _previous_collection(Path(args.dir), uri)
    if collection and not args.collection:  # this directory's own earlier collection (any encoder): replace it
        from kgclip.index.milvus_support import drop_collection

        drop_collection(uri, collection)
    kwargs = {"dim": dim, "uri": uri, "collection": collection, "encoder_fingerprint": fingerprint,
              "encoder_name": name}
    index = MilvusIndex(**kwargs)
    if collection and len(index):  # build replaces: a named collection that already holds items starts over
        index.drop()
        index.close()
        index = MilvusIndex(**kwargs)
    return index


def _previous_collection(directory: Path, uri: str) -> str | None:
    """The collection an earlier Milvus build of ``directory`` at the same ``uri`` used (rebuilt in place, not
    left behind), else ``None``."""
    from kgclip.index.base import MANIFEST_NAME

    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("backend") != "milvus":
        return None
    saved = str(manifest.get("uri") or "")
    if saved and "://" not in saved and not Path(saved).is_absolute():
        saved = str(directory / saved)
    same = saved == uri or ("://" not in uri and Path(saved).resolve() == Path(uri).resolve())
    return manifest.get("collection") if same else None


def _backend_class(directory: str) -> Any:
    """The index class the manifest in ``directory`` names (``FaissIndex``, ``MilvusIndex``)."""
    from kgclip.index.base import backend_class

    return backend_class(directory)


def _add(args: argparse.Namespace) -> int:
    from kgclip.index.base import read_manifest
    from kgclip.index.io import AUTO_ID_LIMIT

    manifest = read_manifest(args.dir)
    encoder = None if args.vectors else _encoder(args.encoder, manifest.get("encoder_name"))
    fingerprint = encoder.fingerprint if encoder is not None else None
    with _backend_class(args.dir).updating(args.dir, fingerprint, lock_timeout=args.lock_timeout) as index:
        existing = index.ids()
        existing = existing[existing < AUTO_ID_LIMIT]
        next_id = int(existing.max()) + 1 if len(existing) else 0
        ids, vectors, metadata = _load_items(args, encoder, next_id)
        if metadata is not None:
            _check_string_ids(index, ids, metadata)
        index.add(ids, vectors, metadata)
        count = len(index)
    print(f"added {len(ids)} items; {count} in {args.dir}")
    return 0


def _check_string_ids(index: Any, ids: Any, metadata: list[dict[str, Any]]) -> None:
    """Refuse a string id whose 64-bit id already belongs to a different item (an integer id, or another string)."""
    from kgclip.errors import InputFormatError
    from kgclip.index.io import EXTERNAL_ID

    keyed = [(int(i), m[EXTERNAL_ID]) for i, m in zip(ids.tolist(), metadata) if EXTERNAL_ID in m]
    if not keyed:
        return
    for (item_id, key), stored in zip(keyed, index.get([i for i, _ in keyed])):
        if stored is not None and stored.get(EXTERNAL_ID) != key:
            raise InputFormatError(f"string id {key!r} maps to id {item_id}, which the index already holds for "
                                   f"{stored.get(EXTERNAL_ID, 'an integer id')!r}; rename the item")


def _remove(args: argparse.Namespace) -> int:
    from kgclip.errors import InputFormatError
    from kgclip.index.io import parse_id

    ids = []
    for raw in args.ids:
        try:
            ids.append(parse_id(raw)[0])
        except ValueError as exc:
            raise InputFormatError(f"remove: {exc}") from None
    with _backend_class(args.dir).updating(args.dir, lock_timeout=args.lock_timeout) as index:
        removed = index.remove(ids)
        count = len(index)
    print(f"removed {removed} items; {count} in {args.dir}")
    return 0


def _parse_filters(pairs: list[str]) -> dict[str, Any] | None:
    """``--filter KEY=VALUE`` pairs as filters (a repeated key ORs its values). A number-like VALUE also matches
    the number, since metadata read from JSONL keeps numbers as numbers."""
    from kgclip.errors import InputFormatError

    filters: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputFormatError(f"--filter expects KEY=VALUE, got {pair!r}")
        values = filters.setdefault(key, [])
        values.append(value)
        for kind in (int, float):
            try:
                values.append(kind(value))
                break
            except ValueError:
                continue
    return {k: v if len(v) > 1 else v[0] for k, v in filters.items()} or None


def _search(args: argparse.Namespace) -> int:
    from kgclip.index.base import load_index, read_manifest
    from kgclip.index.io import EXTERNAL_ID

    manifest = read_manifest(args.dir)
    encoder = _encoder(args.encoder, manifest.get("encoder_name"))
    index = load_index(args.dir, encoder_fingerprint=encoder.fingerprint)
    index.set_search_params(nprobe=args.nprobe, ef_search=args.ef_search)
    queries = encoder.encode(args.query).numpy()
    results = index.search(queries, k=args.k, filters=_parse_filters(args.filter))
    for query, hits in zip(args.query, results):
        if args.json:
            print(json.dumps({"query": query, "hits": [{"id": h.metadata.get(EXTERNAL_ID, h.id),
                                                        "score": round(h.score, 6), "metadata": h.metadata}
                                                       for h in hits]}, ensure_ascii=False))
            continue
        print(f"query: {query}")
        for rank, hit in enumerate(hits, 1):
            text = str(hit.metadata.get("text", ""))[:100]
            print(f"  {rank:>2}. id={hit.metadata.get(EXTERNAL_ID, hit.id)} score={hit.score:.4f} {text}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from kgclip.index.base import load_index, read_manifest

    manifest = read_manifest(args.dir)
    index = load_index(args.dir)
    info = {k: manifest.get(k) for k in ("backend", "factory", "uri", "collection", "dimension", "metric",
                                         "encoder_name", "encoder_fingerprint", "counts", "generation", "versions",
                                         "saved_at")}
    info = {k: v for k, v in info.items() if v is not None or k not in ("uri", "collection")}
    info["counts"] = {**(info.get("counts") or {}), "items": len(index)}  # live count (Milvus may have changed)
    stats = getattr(getattr(index, "metadata", None), "stats", None)
    info["metadata"] = stats() if callable(stats) else {"items": len(index)}
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0
