"""``kgclip encode MANIFEST --out DIR [--ray [--address ADDR]]``: batch-encode images or texts into Parquet shards.

Without ``--ray`` the items are encoded in this process; with ``--ray`` on Ray Data (a local Ray, or the cluster
at ``--address`` / ``$RAY_ADDRESS``), with the same encoder code and identical vectors. Items that fail (a corrupt
image) are skipped and listed in ``DIR/errors.jsonl``. Load the shards with ``kgclip.index.bulk.bulk_load_parquet``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("encode", help="batch-encode a manifest into Parquet shards (optionally on Ray)",
                                   description=__doc__)
    parser.add_argument("manifest", help="CSV / JSONL manifest (image, text and metadata columns)")
    parser.add_argument("--out", required=True, help="output directory (replaced): shards/, errors.jsonl")
    parser.add_argument("--kind", default="image", choices=("image", "text"), help="encode images or texts")
    parser.add_argument("--model", default="builtin-cnn",
                        help="image tower / text encoder name or directory, or kgclip:<trained model dir>")
    parser.add_argument("--seed", type=int, default=0, help="init seed of towers without pretrained weights")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ray", action="store_true", help="run on Ray Data (pip install 'kgclip[ray]')")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (auto, ray://head:10001); default $RAY_ADDRESS or a local Ray")
    parser.add_argument("--workers", type=int, default=2, help="Ray encoder actors (each loads the model once)")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="CPUs of a local Ray")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    parser.set_defaults(handler=_encode)


def _encode(args: argparse.Namespace) -> int:
    from kgclip.models.encode_distributed import EncodeConfig, encode_manifest

    address = args.address or (os.environ.get("RAY_ADDRESS") if args.ray else None)
    config = EncodeConfig(kind=args.kind, model=args.model, seed=args.seed, batch_size=args.batch_size,
                          address=address, num_cpus=max(1, args.num_cpus), workers=args.workers,
                          gpus_per_worker=args.gpus_per_worker)
    result = encode_manifest(args.manifest, args.out, config, use_ray=args.ray)
    summary = {"out": str(result.out), "count": result.count, "errors": len(result.errors), "dim": result.dim,
               "engine": result.engine, "seconds": round(result.seconds, 2),
               "encoder_fingerprint": result.encoder_fingerprint}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"encoded {result.count} items ({result.dim}-d, {result.engine}, {result.seconds:.1f} s) into "
              f"{result.out}/shards")
        for error in result.errors[:10]:
            print(f"  skipped id={error['id']} {error['source']}: {error['error']}")
        if len(result.errors) > 10:
            print(f"  ... {len(result.errors) - 10} more in {result.out}/errors.jsonl")
    return 0
