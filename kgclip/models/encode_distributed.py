"""Batch-encode an image or text manifest into Parquet shards, on Ray Data or in one process, with the same code.

>>> from kgclip.models.encode_distributed import EncodeConfig, encode_manifest
>>> result = encode_manifest("pairs.jsonl", "encoded/", EncodeConfig(kind="image"), use_ray=True)  # doctest: +SKIP
>>> result.count, result.errors[:1]                                                              # doctest: +SKIP

What runs where: the driver (this process) reads the manifest and writes ``encode_manifest.json`` and
``errors.jsonl``; with ``use_ray=True`` the rows are split into blocks and ``Dataset.map_batches`` runs a pool of
:class:`BatchEncoder` actors (each loads the model once, in its constructor) on the Ray cluster at
``EncodeConfig.address`` (``None``: a local Ray started here with ``num_cpus`` CPUs; ``"auto"``: the cluster this
machine belongs to; ``"ray://head:10001"``: a remote cluster). Workers write ``shards/*.parquet`` themselves, so
on a cluster ``out`` must be storage every node can reach (NFS, or ``s3://`` via pyarrow). ``use_ray=False``
calls the very same :class:`BatchEncoder` in a loop: identical vectors, no Ray needed.

An item that cannot be read or encoded (a corrupt image, an empty file) is skipped and reported: its id, source
and error go to ``errors.jsonl`` and :attr:`EncodeResult.errors`; every other item is written. Shards are
``(id, vector, metadata)`` (see :mod:`kgclip.index.bulk`), loadable into any index with ``bulk_load_parquet``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError, DataNotFoundError

__all__ = ["EncodeConfig", "EncodeResult", "BatchEncoder", "encode_manifest", "manifest_rows"]

_KINDS = ("image", "text")


@dataclasses.dataclass(frozen=True)
class EncodeConfig(Config):
    """How a manifest is encoded (saved in ``encode_manifest.json``)."""

    kind: str = "image"  # "image" (encode the image column) or "text" (encode the text column)
    # Image: a tower name or directory (kgclip.models.backbones.load_image_tower) or "kgclip:<dir>" (a trained
    # KGClipModel's image side). Text: a text encoder name or directory, or "kgclip:<dir>" (its text side).
    model: str = "builtin-cnn"
    # Seeds the weight initialisation of towers without pretrained weights (builtin-cnn), so that every worker
    # builds the same tower; use a trained model (kgclip:<dir>) for meaningful vectors.
    seed: int = 0
    batch_size: int = 32  # items per model call (and per Ray batch)
    address: str | None = None  # Ray cluster address; None: a local Ray with num_cpus CPUs
    num_cpus: int = 2  # CPUs of the local Ray (ignored with an address)
    workers: int = 2  # encoder actors (each loads the model once)
    cpus_per_worker: float = 1.0  # Ray CPUs reserved per actor
    gpus_per_worker: float = 0.0  # Ray GPUs per actor (the model moves to CUDA when > 0)
    torch_threads: int = 1  # torch threads per worker (1 avoids oversubscribing cores shared by actors)
    rows_per_shard: int = 10_000  # at most this many rows per Parquet file

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if self.batch_size < 1 or self.workers < 1 or self.num_cpus < 1 or self.torch_threads < 1:
            raise ConfigError("batch_size, workers, num_cpus and torch_threads must be >= 1")
        if self.rows_per_shard < 1 or self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ConfigError("rows_per_shard >= 1, cpus_per_worker > 0 and gpus_per_worker >= 0 required")


@dataclasses.dataclass
class EncodeResult:
    """What an encoding run wrote.

    Attributes:
        out: the output directory (``shards/``, ``errors.jsonl``, ``encode_manifest.json``).
        count: items encoded and written.
        errors: ``{"id", "source", "error"}`` for each skipped item.
        dim: vector dimension.
        encoder_fingerprint: fingerprint of the model that produced the vectors.
        seconds: wall time of the encoding (model loading included).
        engine: ``"ray"`` or ``"local"``.
    """

    out: Path
    count: int
    errors: list[dict[str, Any]]
    dim: int
    encoder_fingerprint: str
    seconds: float
    engine: str

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{e['id']}</td><td>{html.escape(str(e['source']))}</td>"
                       f"<td>{html.escape(str(e['error']))}</td></tr>" for e in self.errors[:20])
        return (f"<p>{self.count} items encoded ({self.dim}-d, {self.engine}, {self.seconds:.1f} s) into "
                f"<code>{html.escape(str(self.out))}</code>; {len(self.errors)} skipped</p>"
                + (f"<table><tr><th>id</th><th>source</th><th>error</th></tr>{rows}</table>" if rows else ""))


def _load_model(config: EncodeConfig) -> tuple[Any, Any, str, int]:
    """(encode function: list of sources -> [N, dim] float32 array, per-item loader, fingerprint, dim)."""
    import torch

    from kgclip.fingerprint import fingerprint_json

    name = config.model
    if name.startswith("kgclip:"):
        from kgclip.models.kgclip import KGClipModel

        model = KGClipModel.from_pretrained(name.split(":", 1)[1]).eval()
        fp = fingerprint_json({"kgclip_model": model.fingerprints(), "image": model.image_tower.fingerprint})
        if config.kind == "text":
            return (lambda texts: model.encode_text(texts).numpy()), str, fp, int(model.config.output_dim)
        tower, embed = model.image_tower, (lambda px: model.encode_image(px))
        dim = int(model.config.output_dim)
    elif config.kind == "text":
        from kgclip.text.encoders import load_text_encoder

        encoder = load_text_encoder(name, device="cpu")
        probe = encoder.encode(["probe"]).shape[-1]
        return (lambda texts: encoder.encode(list(texts)).float().numpy()), str, str(encoder.fingerprint), int(probe)
    else:
        from kgclip.models.backbones import load_image_tower

        # Towers without pretrained weights get the same init in every worker; the caller's RNG stays untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            tower = load_image_tower(name)
        fp, dim = tower.fingerprint, int(tower.dim)

        def embed(px: Any) -> Any:
            return torch.nn.functional.normalize(tower(px), dim=-1)
    from kgclip.imaging.transforms import ImageTransform

    transform = ImageTransform.for_tower(tower)
    device = "cuda" if config.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
    module = model if name.startswith("kgclip:") else tower
    module.to(device).eval()

    @torch.inference_mode()
    def encode(pixels: list[Any]) -> np.ndarray:
        return embed(torch.stack(pixels).to(device)).float().cpu().numpy()

    return encode, transform, fp, dim


class BatchEncoder:
    """Ray Data callable class: loads the model once (per actor), then turns row batches into shard rows.

    A batch is a ``pyarrow.Table`` of ``id``, ``source`` (image path or text) and ``metadata`` (JSON); the result
    is a table in the shard layout (:func:`kgclip.index.bulk.shard_table`). Items that fail are left out of the
    result and appended to a per-actor errors file under ``errors_dir``.
    """

    def __init__(self, config: EncodeConfig, errors_dir: str | None = None, in_worker: bool = False) -> None:
        import torch

        if in_worker:  # never change the calling process' thread count in the single-process path
            torch.set_num_threads(config.torch_threads)
        self.config = config
        self.errors_dir = errors_dir
        self.encode, self.prepare, self.fingerprint, self.dim = _load_model(config)
        self.errors: list[dict[str, Any]] = []

    def __call__(self, batch: Any) -> Any:
        from kgclip.index.bulk import shard_table

        ids = batch.column("id").to_pylist()
        sources = batch.column("source").to_pylist()
        metas = batch.column("metadata").to_pylist()
        ok, inputs, failed = [], [], []
        for i, (item_id, source) in enumerate(zip(ids, sources)):
            try:
                inputs.append(self.prepare(source))
                ok.append(i)
            except Exception as exc:  # noqa: BLE001 - any unreadable item is reported, never fatal to the batch
                failed.append({"id": int(item_id), "source": str(source)[:500],
                               "error": f"{type(exc).__name__}: {exc}"})
        vectors = np.zeros((0, self.dim), np.float32)
        if inputs:
            try:
                vectors = self.encode(inputs)
            except Exception:  # noqa: BLE001 - one bad input can break the whole call: retry item by item
                good, rows = [], []
                for i, item in zip(ok, inputs):
                    try:
                        rows.append(self.encode([item])[0])
                        good.append(i)
                    except Exception as exc:  # noqa: BLE001
                        failed.append({"id": int(ids[i]), "source": str(sources[i])[:500],
                                       "error": f"{type(exc).__name__}: {exc}"})
                ok, vectors = good, (np.stack(rows) if rows else vectors)
        self._report(failed)
        return shard_table([ids[i] for i in ok], vectors, [json.loads(metas[i]) for i in ok])

    def _report(self, failed: list[dict[str, Any]]) -> None:
        self.errors.extend(failed)
        if failed and self.errors_dir:
            # One file per actor: concurrent actors never write the same file; the driver merges them.
            path = Path(self.errors_dir) / f"errors-{os.getpid()}-{id(self):x}.jsonl"
            with open(path, "a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in failed)


def manifest_rows(manifest: str | os.PathLike[str], kind: str = "image") -> list[dict[str, Any]]:
    """Rows ``{"id", "source", "metadata"}`` of an image-text manifest (CSV / JSONL, see :mod:`kgclip.data.manifest`).

    Ids come from an integer ``id`` column when every row has one, else the row order (0, 1, ...). Missing image
    files are not dropped here: they fail in the encoder and are reported with the other errors.
    """
    from kgclip.data.manifest import read_manifest

    if kind == "text":
        entries = [(None, text, meta) for text, meta in _text_rows(Path(manifest))]
    else:
        entries = [(item.image_path, item.text, item.metadata)
                   for item in read_manifest(manifest, check_images=False, allow_empty_text=True)]
    given = [meta.get("id") for _, _, meta in entries]
    use_given = bool(entries) and all(str(v).strip().isdigit() for v in given)
    rows = []
    for pos, (image, text, metadata) in enumerate(entries):
        extra = {k: v for k, v in metadata.items() if k != "id" and v not in (None, "")}
        meta = {"kind": kind, **extra, "text": text}
        if image is not None:
            meta["path"] = str(image)
        rows.append({"id": int(given[pos]) if use_given else pos, "source": str(image) if kind == "image" else text,
                     "metadata": json.dumps(meta, ensure_ascii=False)})
    return rows


def _text_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    # A text manifest needs no image column: JSONL objects or CSV rows with a "text" field.
    import csv

    from kgclip.errors import InputFormatError

    if not path.is_file():
        raise DataNotFoundError(f"manifest {path} not found")
    if path.suffix.lower() in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    else:
        records = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputFormatError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from exc
    out = []
    for number, record in enumerate(records, 1):
        text = str(record.get("text") or "").strip() if isinstance(record, dict) else ""
        if not text:
            raise InputFormatError(f"{path}: row {number} has no 'text'; give every row a text")
        out.append((text, {k: v for k, v in record.items() if k != "text"}))
    return out


def encode_manifest(manifest: str | os.PathLike[str], out: str | os.PathLike[str],
                    config: EncodeConfig | None = None, *, use_ray: bool = False) -> EncodeResult:
    """Encode every item of ``manifest`` into ``out`` (replaced atomically), on Ray or in this process.

    Raises:
        InputFormatError / FileNotFoundError: the manifest is unreadable.
        ModelNotFoundError: the model cannot be found.
        ConfigError: Ray is requested but not installed (``pip install 'kgclip[ray]'``).
    """
    from kgclip.atomic import atomic_directory, atomic_write_json

    config = config or EncodeConfig()
    rows = manifest_rows(manifest, config.kind)
    start = time.perf_counter()
    with atomic_directory(out) as tmp:
        (tmp / "shards").mkdir()
        (tmp / "errors").mkdir()
        if use_ray:
            fingerprint, dim = _encode_ray(rows, tmp, config)
        else:
            fingerprint, dim = _encode_local(rows, tmp, config)
        errors = _merge_errors(tmp / "errors")
        (tmp / "errors.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors),
                                          encoding="utf-8")
        seconds = time.perf_counter() - start
        count = len(rows) - len(errors)
        atomic_write_json(tmp / "encode_manifest.json", {
            "format": "kgclip-encoded", "format_version": 1, "engine": "ray" if use_ray else "local",
            "manifest": str(Path(manifest).resolve()), "config": config.to_dict(), "encoder_fingerprint": fingerprint,
            "dim": dim, "count": count, "errors": len(errors), "seconds": round(seconds, 3),
        })
    return EncodeResult(Path(out), count, errors, dim, fingerprint, seconds, "ray" if use_ray else "local")


def _merge_errors(directory: Path) -> list[dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                seen.setdefault(int(entry["id"]), entry)  # a retried Ray task may report an item twice
    for path in directory.glob("*.jsonl"):
        path.unlink()
    directory.rmdir()
    return sorted(seen.values(), key=lambda e: e["id"])


def _encode_local(rows: list[dict[str, Any]], out: Path, config: EncodeConfig) -> tuple[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    encoder = BatchEncoder(config, str(out / "errors"))
    tables: list[Any] = []
    buffered, shard = 0, 0
    for start in tqdm(range(0, len(rows), config.batch_size), desc="encoding", unit="batch", leave=False):
        tables.append(encoder(pa.Table.from_pylist(rows[start:start + config.batch_size])))
        buffered += tables[-1].num_rows
        if buffered >= config.rows_per_shard:
            pq.write_table(pa.concat_tables(tables), out / "shards" / f"part-{shard:05d}.parquet")
            tables, buffered, shard = [], 0, shard + 1
    if tables and buffered:
        pq.write_table(pa.concat_tables(tables), out / "shards" / f"part-{shard:05d}.parquet")
    return encoder.fingerprint, encoder.dim


def _start_ray(ray: Any, kwargs: dict[str, Any], *, local: bool, attempts: int = 2) -> None:
    """``ray.init`` with one retry: a local start on a busy machine can time out waiting for its own processes
    ("Timed out waiting for file .../gcs_server_port", "The current node timed out during startup").

    Raises:
        ConfigError: every attempt failed; the message names what to try instead.
    """
    import time

    for attempt in range(1, attempts + 1):
        try:
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, **kwargs)
            return
        except (RuntimeError, TimeoutError, ConnectionError, OSError, ValueError) as exc:
            ray.shutdown()  # clean up a half-started local cluster before trying again
            if attempt == attempts:
                hint = ("the local Ray cluster did not start (the machine may be busy): run again with fewer "
                        "workers (--workers), without --ray, or against a running cluster with --address "
                        "ray://HOST:10001" if local else
                        f"could not connect to the Ray cluster at {kwargs.get('address')}: check the address, "
                        "or run without --address for a local cluster")
                raise ConfigError(f"{hint} ({type(exc).__name__}: {str(exc)[:200]})") from exc
            time.sleep(2.0 * attempt)


def _encode_ray(rows: list[dict[str, Any]], out: Path, config: EncodeConfig) -> tuple[str, int]:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("encoding with Ray needs pip install 'kgclip[ray]' (or run without --ray)") from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": config.address} if config.address else {"num_cpus": config.num_cpus}
        _start_ray(ray, kwargs, local=not config.address)
        started = True
    try:
        # The driver learns the fingerprint and dim from the same loader the actors use (cheap next to encoding).
        _, _, fingerprint, dim = _load_model(config)
        n_blocks = max(1, min(len(rows), -(-len(rows) // config.batch_size)))
        ds = ray.data.from_items(rows, override_num_blocks=n_blocks)
        ds = ds.map_batches(
            BatchEncoder, fn_constructor_args=(config, str(out / "errors"), True), batch_size=config.batch_size,
            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=config.workers),
            num_cpus=config.cpus_per_worker,
            num_gpus=config.gpus_per_worker or None,
        )
        # Writing is I/O: it must not wait for a CPU that the encoder actors hold until the input is exhausted.
        ds.write_parquet(str(out / "shards"), max_rows_per_file=config.rows_per_shard,
                         ray_remote_args={"num_cpus": 0})
    finally:
        if started:
            ray.shutdown()
    return fingerprint, dim

