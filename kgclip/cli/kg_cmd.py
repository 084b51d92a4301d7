"""``kgclip kg``: train concept embeddings, refresh them after curation, inspect nearest concepts.

    kgclip kg train [--ontology DIR ...] [--encoder rgcn|attention] [--text-encoder minilm] [--out DIR]
    kgclip kg refresh [--ontology DIR ...] [--embeddings DIR]
    kgclip kg neighbors [--embeddings DIR] ID [-k 10] [--ontology DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "default_embeddings_dir"]


def default_embeddings_dir() -> Path:
    """``indexes/kg`` under the current directory (as every other default output path), never the install's tree."""
    return Path("indexes") / "kg"


def _ontology_dirs(values: list[str] | None) -> list[Path]:
    from kgclip.errors import InputFormatError
    from kgclip.ontology.store import shipped_ontology_dirs

    dirs = [Path(v) for v in values] if values else shipped_ontology_dirs()
    if not dirs:
        raise InputFormatError("no ontologies given and none shipped; pass --ontology DIR or build them with "
                               "`python ontologies/build.py`")
    return dirs


def _changelog_seqs(dirs: list[Path]) -> dict[str, int]:
    from kgclip.ontology.curation import Changelog

    seqs = {}
    for d in dirs:
        log = d / "changelog.jsonl"
        seqs[str(d.resolve())] = Changelog.load(log).last_seq if log.is_file() else 0
    return seqs


def _train(args: argparse.Namespace) -> int:
    from kgclip.kg.build import train_embeddings
    from kgclip.kg.train import KGTrainConfig
    from kgclip.ontology.store import load_ontologies

    start = time.perf_counter()
    dirs = _ontology_dirs(args.ontology)
    graph = load_ontologies(dirs)
    config = KGTrainConfig(encoder=args.encoder, seed=args.seed, device=args.device)
    if args.quick:
        config = dataclasses.replace(config, epochs=10, patience=2)
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    print(f"training {config.encoder} concept embeddings on {graph}")
    emb = train_embeddings(graph, config, text_encoder=args.text_encoder, cache_dir=args.cache_dir,
                           show_progress=not args.no_progress)
    emb.meta["ontology_dirs"] = [str(d.resolve()) for d in dirs]
    emb.meta["changelog_seqs"] = _changelog_seqs(dirs)
    out = Path(args.out) if args.out else default_embeddings_dir()
    emb.save(out)
    m = emb.meta["metrics"]
    print(f"wrote {len(emb)} x {emb.dim} embeddings to {out} (validation MRR {m['best_val_mrr']}, "
          f"{m['epochs_run']} epochs, {time.perf_counter() - start:.0f} s)")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from kgclip.errors import StaleArtifactError
    from kgclip.kg.embeddings import ConceptEmbeddings
    from kgclip.ontology.curation import Changelog
    from kgclip.ontology.store import load_ontologies

    target = Path(args.embeddings) if args.embeddings else default_embeddings_dir()
    emb = ConceptEmbeddings.load(target)
    dirs = _ontology_dirs(args.ontology or emb.meta.get("ontology_dirs"))
    graph = load_ontologies(dirs)
    if graph.fingerprint() == emb.graph_fingerprint:
        print(f"{target} is up to date with {graph.name!r}; nothing to refresh")
        return 0
    seen: dict[str, int] = emb.meta.get("changelog_seqs", {})
    changed: set[str] = set()
    for d in dirs:
        path = d / "changelog.jsonl"
        if not path.is_file():
            continue
        log = Changelog.load(path)
        since = int(seen.get(str(d.resolve()), 0))
        if log.full_refresh_needed(since):
            raise StaleArtifactError(f"{d} was re-imported since the embeddings were trained; retrain with "
                                     f"`kgclip kg train --out {target}`")
        changed |= log.changed_ids(since)
    new_ids = sum(1 for cid in graph.ids if cid not in emb)
    if not changed and not new_ids:
        raise StaleArtifactError(f"the ontology changed but its changelog records no edit since the embeddings were "
                                 f"trained (was it rebuilt?); retrain with `kgclip kg train --out {target}`")
    start = time.perf_counter()
    fresh = emb.refresh(graph, changed, cache_dir=args.cache_dir)
    seconds = time.perf_counter() - start
    fresh.meta["ontology_dirs"] = [str(d.resolve()) for d in dirs]
    fresh.meta["changelog_seqs"] = _changelog_seqs(dirs)
    fresh.save(target)
    print(f"refreshed {len(fresh.refreshed_ids)} concept embedding(s) around {len(changed)} edited concept(s) "
          f"in {seconds:.2f} s; wrote {target}")
    return 0


def _neighbors(args: argparse.Namespace) -> int:
    from kgclip.kg.embeddings import ConceptEmbeddings

    emb = ConceptEmbeddings.load(Path(args.embeddings) if args.embeddings else default_embeddings_dir())
    names: dict[str, str] = {}
    if args.ontology:
        from kgclip.ontology.store import load_ontologies

        graph = load_ontologies([Path(d) for d in args.ontology])
        names = {c.id: c.name for c in graph.concepts()}
    hits = emb.nearest(args.id, args.k)
    print(f"nearest concepts to {args.id}{' (' + names[args.id] + ')' if args.id in names else ''}:")
    for cid, score in hits:
        print(f"  {score:6.3f}  {cid}  {names.get(cid, '')}".rstrip())
    return 0


_EMB_HELP = "embeddings directory (default: ./indexes/kg)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("kg", help="concept-graph embeddings: train, refresh, neighbors")
    sub = parser.add_subparsers(dest="kg_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    train = sub.add_parser("train", help="train concept embeddings on ontologies (default: the shipped ones)")
    train.add_argument("--ontology", action="append", metavar="DIR", help="graph directory (repeatable)")
    train.add_argument("--encoder", default="rgcn", help="rgcn (default) or attention")
    train.add_argument("--text-encoder", default="minilm", help="minilm (default), hashing-<dim>, or a model dir")
    train.add_argument("--out", metavar="DIR", help=f"output directory (default {default_embeddings_dir()})")
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping usually ends sooner)")
    train.add_argument("--quick", action="store_true", help="at most 10 epochs")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    train.add_argument("--cache-dir", help="text feature cache root (default $KGCLIP_HOME)")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(handler=_train)

    refresh = sub.add_parser("refresh", help="re-encode concepts changed by curation (reads the changelog)")
    refresh.add_argument("--ontology", action="append", metavar="DIR",
                         help="curated graph directory (repeatable; default: the ones the embeddings were trained on)")
    refresh.add_argument("--embeddings", metavar="DIR", help=_EMB_HELP)
    refresh.add_argument("--cache-dir", help="text feature cache root (default $KGCLIP_HOME)")
    refresh.set_defaults(handler=_refresh)

    neighbors = sub.add_parser("neighbors", help="nearest concepts by embedding, to sanity-check a concept")
    neighbors.add_argument("id", help="concept id, e.g. DOID:552")
    neighbors.add_argument("-k", type=int, default=10, help="how many (default 10)")
    neighbors.add_argument("--embeddings", metavar="DIR", help=_EMB_HELP)
    neighbors.add_argument("--ontology", action="append", metavar="DIR", help="show names from these graphs")
    neighbors.set_defaults(handler=_neighbors)
