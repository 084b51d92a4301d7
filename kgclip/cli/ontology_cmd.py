"""``kgclip ontology ...``: import sources into a curated graph directory, inspect it, edit it, diff and export it.

Each command is a thin call into :mod:`kgclip.ontology.importing`, :mod:`~kgclip.ontology.store`,
:mod:`~kgclip.ontology.curation` and :mod:`~kgclip.ontology.diff`. Edits are validated before anything is written, so a
refused edit or a failed import leaves the directory untouched. Commands that write a directory hold its writers' lock
from reading it to writing it (:func:`kgclip.ontology.locking.graph_dir_lock`), so two simultaneous edits run one after
the other; a writer that waits longer than ``--wait`` seconds fails with a clear error instead.

Heavy libraries (numpy, rdflib, safetensors) are imported inside the handlers, never at registration, so that
``kgclip --help`` and every other command group stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ontology", help="import, inspect, curate, diff and export concept graphs",
        description="Import ontology sources into a graph directory (e.g. ontologies/radlex), inspect it, edit it "
                    "with a changelog and undo, diff two versions and export OWL. Refused edits and failed imports "
                    "leave the directory untouched.")
    sub = parser.add_subparsers(dest="ontology_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    def add(name: str, handler: Any, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    def edit(name: str, handler: Any, help_: str) -> argparse.ArgumentParser:
        p = add(name, handler, help_)
        p.add_argument("dir", help="graph directory (e.g. ontologies/radlex)")
        return p

    def wait(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                       help="how long to wait for another writer of the directory (default 10)")

    def who(p: argparse.ArgumentParser) -> None:
        p.add_argument("--author", help="recorded in the changelog")
        p.add_argument("--reason", help="why; recorded in the changelog")
        wait(p)

    p = add("import", _import, "read a source file into a graph directory (merging with what is there)")
    p.add_argument("format", help="a reader name (list them with `kgclip ontology formats`), or auto")
    p.add_argument("path", help="the source file (or UMLS META directory)")
    p.add_argument("--into", required=True, help="graph directory to create or merge into")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="bad rows: stop with an error (default) or skip them with a warning")
    p.add_argument("--name", help="graph name (default: the directory name)")
    p.add_argument("--replace", action="store_true", help="replace the directory's graph instead of merging")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. --option sab=MSH,RADLEX (repeatable)")
    p.add_argument("--author", help="recorded in the changelog")
    wait(p)

    add("formats", _formats, "the reader names (and their aliases) that import accepts")
    p = edit("info", _info, "counts, relation types, sources, fingerprint and validity of a graph")
    p.add_argument("--json", action="store_true", help="print meta.json-style JSON")
    p = edit("show", _show, "one concept with its relations")
    p.add_argument("id")
    p = edit("search", _search, "find concepts by id, name or synonym")
    p.add_argument("text")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--all", action="store_true", help="include deprecated concepts")

    p = edit("add-concept", _add_concept, "add a concept")
    p.add_argument("id", help="namespaced id, e.g. RADLEX:RID99999")
    p.add_argument("--name", required=True)
    p.add_argument("--synonym", action="append", default=[])
    p.add_argument("--definition", default="")
    p.add_argument("--parent", action="append", default=[], help="is_a parent id (repeatable)")
    p.add_argument("--type", action="append", default=[], dest="types", help="semantic type (repeatable)")
    p.add_argument("--xref", action="append", default=[])
    p.add_argument("--source", default="curator")
    who(p)
    p = edit("update-concept", _update_concept, "change a concept's fields")
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--definition")
    p.add_argument("--add-synonym", action="append", default=[])
    p.add_argument("--remove-synonym", action="append", default=[])
    p.add_argument("--add-xref", action="append", default=[])
    who(p)
    for name, handler, help_ in (("add-relation", _add_relation, "add SOURCE -TYPE-> TARGET"),
                                 ("remove-relation", _remove_relation, "remove SOURCE -TYPE-> TARGET")):
        p = edit(name, handler, help_)
        p.add_argument("source")
        p.add_argument("type", help="relation type, e.g. is_a, part_of, located_in")
        p.add_argument("target")
        who(p)
    p = edit("declare-relation", _declare_relation, "let edits use a new relation type (add-relation refuses "
                                                     "types the graph does not declare)")
    p.add_argument("type", help="the new type's name: lower-case letters, digits and _, e.g. located_in")
    who(p)
    p = edit("deprecate", _deprecate, "mark a concept deprecated")
    p.add_argument("id")
    p.add_argument("--replaced-by", help="the concept that replaces it")
    who(p)
    p = edit("merge", _merge, "unify OTHER into KEEP (relations move to KEEP; OTHER is deprecated)")
    p.add_argument("keep")
    p.add_argument("other")
    who(p)
    p = edit("undo", _undo, "revert the last N edits")
    p.add_argument("-n", type=int, default=1)
    who(p)
    p = edit("log", _log, "the changelog")
    p.add_argument("--since", type=int, default=0, help="only entries after this sequence number")
    p.add_argument("--changed-ids", action="store_true", help="print the ids changed since --since, one per line")
    p = edit("validate", _validate, "check dangling ids, is_a cycles and duplicate ids (exit 1 if any)")
    p.add_argument("--strict", action="store_true", help="also fail when files differ from meta.json")

    p = add("diff", _diff, "structural diff between two graph directories (or caches)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--limit", type=int, default=500, help="at most this many lines")
    p.add_argument("--json", action="store_true")
    p = edit("export", _export, "write the graph as OWL (Turtle or RDF/XML)")
    p.add_argument("--format", choices=("turtle", "xml"), default="turtle")
    p.add_argument("--out", required=True)
    p = edit("cache", _cache, "write the binary cache (one safetensors file) of a graph directory")
    p.add_argument("--out", required=True)
    from kgclip.cli.suggest_cmd import register as register_suggestions  # suggest, review
    register_suggestions(sub)


# ---------------------------------------------------------------------------------------------- handlers
def _curator(args: argparse.Namespace) -> Any:
    """A context manager: the directory's curator, holding its writers' lock until the edit is saved."""
    from kgclip.ontology.curation import Curator

    return Curator.locked(args.dir, author=getattr(args, "author", None), timeout=args.wait)


def _import(args: argparse.Namespace) -> int:
    from kgclip.ontology.importing import import_source
    from kgclip.ontology.sources import detect_format, parse_options

    fmt = detect_format(args.path) if args.format == "auto" else args.format
    result = import_source(fmt, args.path, args.into, on_error=args.on_error,
                           options=parse_options(fmt, args.option) if args.option else None, name=args.name,
                           replace=args.replace, author=args.author, wait=args.wait)
    print(f"imported {result.source['format']} {args.path} into {args.into}: {result.changes.summary()}")
    print(f"{result.graph!r}; {result.graph.validate().summary()}")
    return 0


def _formats(args: argparse.Namespace) -> int:
    from kgclip.ontology.sources import READERS

    aliases: dict[str, list[str]] = {}
    for alias, name in READERS.aliases().items():
        aliases.setdefault(name, []).append(alias)
    for name in READERS:
        print(f"{name}\t{', '.join(aliases.get(name, []))}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog
    from kgclip.ontology.store import load_graph_dir, read_meta

    graph = load_graph_dir(args.dir)
    meta = read_meta(args.dir)
    report = graph.validate()
    log = Changelog.load(Path(args.dir) / CHANGELOG_FILE)
    if args.json:
        print(json.dumps({**meta, "valid": report.ok, "changelog_entries": len(log)}, indent=2, sort_keys=True))
        return 0
    counts = meta.get("counts", {})
    print(f"{graph.name}: {len(graph)} concepts ({counts.get('deprecated', 0)} deprecated), "
          f"{graph.num_relations} relations, {len(graph.dangling)} dangling")
    for rtype, n in sorted(counts.get("relation_types", {}).items(), key=lambda kv: -kv[1]):
        print(f"  {rtype:<24} {n}")
    unused = meta.get("declared_relation_types", [])
    if unused:
        print(f"  declared, no relations yet: {', '.join(unused)}")
    for source in meta.get("sources", []):
        print(f"  source: {source.get('format')} {source.get('path')} ({source.get('fingerprint', '')[:12]})")
    print(f"fingerprint {graph.fingerprint()}; changelog {len(log)} entries (last #{log.last_seq})")
    print(report.summary())
    return 0


def _show(args: argparse.Namespace) -> int:
    from kgclip.ontology.model import normalize_curie
    from kgclip.ontology.store import load_graph_dir

    graph = load_graph_dir(args.dir)
    if args.id not in graph:
        if normalize_curie(args.id) not in graph:
            graph.index_of(args.id)  # raises UnknownConceptError with a hint on namespacing and search
        args.id = normalize_curie(args.id)
    c = graph.concept(args.id)
    print(f"{c.id}  {c.name}{'  [deprecated]' if c.deprecated else ''}")
    for label, value in (("synonyms", "; ".join(c.synonyms)), ("definition", c.definition),
                         ("types", ", ".join(c.semantic_types)), ("xrefs", ", ".join(c.xrefs)),
                         ("source", c.source)):
        if value:
            print(f"  {label}: {value}")
    for r in graph.relations(c.id, direction="out"):
        print(f"  -{r.type}-> {r.target} ({graph.name_of(r.target)})")
    for r in graph.relations(c.id, direction="in"):
        print(f"  <-{r.type}- {r.source} ({graph.name_of(r.source)})")
    return 0


def _search(args: argparse.Namespace) -> int:
    from kgclip.ontology.query import find_concepts
    from kgclip.ontology.store import load_graph_dir

    hits = find_concepts(load_graph_dir(args.dir), args.text, limit=args.limit, include_deprecated=args.all)
    for c in hits:
        print(f"{c.id}\t{c.name}{'  [deprecated]' if c.deprecated else ''}")
    if not hits:
        print(f"no concept matches {args.text!r}", file=sys.stderr)
    return 0


def _done(entry: Any) -> int:
    print(entry.describe())
    return 0


def _add_concept(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.add_concept(
            args.id, args.name, synonyms=args.synonym, semantic_types=args.types, definition=args.definition,
            source=args.source, xrefs=args.xref, parents=args.parent, reason=args.reason))


def _update_concept(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.update_concept(
            args.id, name=args.name, definition=args.definition, add_synonyms=args.add_synonym,
            remove_synonyms=args.remove_synonym, add_xrefs=args.add_xref, reason=args.reason))


def _add_relation(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.add_relation(args.source, args.type, args.target, reason=args.reason))


def _remove_relation(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.remove_relation(args.source, args.type, args.target, reason=args.reason))


def _declare_relation(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.declare_relation_type(args.type, reason=args.reason))


def _deprecate(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.deprecate(args.id, replaced_by=args.replaced_by, reason=args.reason))


def _merge(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        return _done(curator.merge(args.keep, args.other, reason=args.reason))


def _undo(args: argparse.Namespace) -> int:
    with _curator(args) as curator:
        for entry in curator.undo(args.n, reason=args.reason):
            print(f"undone: {entry.describe()}")
    return 0


def _log(args: argparse.Namespace) -> int:
    from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog

    log = Changelog.load(Path(args.dir) / CHANGELOG_FILE)
    if args.changed_ids:
        if log.full_refresh_needed(args.since):
            print("# an import since then changed too much to list: refresh everything", file=sys.stderr)
        for cid in sorted(log.changed_ids(args.since)):
            print(cid)
        return 0
    for entry in log.since(args.since):
        print(entry.describe())
    return 0


def _validate(args: argparse.Namespace) -> int:
    from kgclip.ontology.store import load_graph_dir

    report = load_graph_dir(args.dir, strict=args.strict).validate()
    print(report.summary())
    return 0 if report.ok else 1


def _diff(args: argparse.Namespace) -> int:
    from kgclip.ontology.diff import diff_graphs
    from kgclip.ontology.store import open_graph

    result = diff_graphs(open_graph(args.a), open_graph(args.b))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(result.summary())
    if result:
        print(result.text(limit=args.limit))
    return 0


def _export(args: argparse.Namespace) -> int:
    from kgclip.ontology.rdf import export_rdf
    from kgclip.ontology.store import load_graph_dir

    graph = load_graph_dir(args.dir)
    out = export_rdf(graph, args.out, args.format)
    print(f"wrote {len(graph)} concepts, {graph.num_relations} relations to {out} ({args.format})")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from kgclip.ontology.cache import save_cache
    from kgclip.ontology.store import load_graph_dir

    graph = load_graph_dir(args.dir)
    print(f"wrote {save_cache(graph, args.out)} ({len(graph)} concepts)")
    return 0
