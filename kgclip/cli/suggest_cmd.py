"""``kgclip ontology suggest`` and ``kgclip ontology review``: suggested links for curators, and their review.

``suggest`` ranks links missing from a graph directory (``same_as`` from the aligner, optionally against other
graphs given with ``--with``; ``is_a`` and ``has_symptom`` from the trained link predictor fused with names) and
writes them to ``DIR/suggestions.jsonl`` with the fingerprints of the graphs they were computed against. Nothing
in the graph changes.

``review`` lists them, or accepts / rejects them by number. An accepted suggestion is a normal curated edit through
:class:`~kgclip.ontology.curation.Curator` (logged with author and reason, undoable with ``kgclip ontology undo``):
``add_relation`` for a link inside the graph, or an added cross-reference for a ``same_as`` to a concept of another
graph (which :meth:`ConceptGraph.link_xrefs` turns into ``same_as`` wherever both graphs are loaded together). A
rejection is logged in the changelog too. Suggestions computed against a graph that changed since are refused with
nothing written.

Registered by :mod:`kgclip.cli.ontology_cmd`; heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``suggest`` and ``review`` to the ``kgclip ontology`` sub-commands."""
    p = sub.add_parser("suggest", help="rank links missing from a graph (written as suggestions, never applied)",
                       description="Rank missing same_as / is_a / has_symptom links and write them to "
                                   "DIR/suggestions.jsonl for `kgclip ontology review`. The graph is not changed.")
    p.set_defaults(handler=_suggest)
    p.add_argument("dir", help="graph directory (e.g. ontologies/doid)")
    p.add_argument("--kind", choices=("same_as", "is_a", "has_symptom"), default="same_as")
    p.add_argument("--concept", help="only links of this concept (e.g. one just added without parents)")
    p.add_argument("--with", dest="others", action="append", default=[], metavar="DIR",
                   help="another graph directory to align with (same_as) or to load beside DIR (repeatable)")
    p.add_argument("--embeddings", help="concept embeddings from `kgclip kg train` (the link predictor; re-ranks "
                                        "same_as by GNN similarity)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--no-xrefs", action="store_true", help="do not use shared cross-references as evidence")

    p = sub.add_parser("review", help="list, accept or reject suggested links (accepting is a curated edit)",
                       description="Without --accept/--reject: list the pending suggestions (--interactive asks "
                                   "about each). Accepted ones become curated edits (undoable); rejections are "
                                   "logged. Suggestions against a changed graph are refused, nothing written.")
    p.set_defaults(handler=_review)
    p.add_argument("dir", help="graph directory holding suggestions.jsonl")
    p.add_argument("--accept", type=int, action="append", default=[], metavar="N", help="accept suggestion #N")
    p.add_argument("--reject", type=int, action="append", default=[], metavar="N", help="reject suggestion #N")
    p.add_argument("--interactive", action="store_true", help="ask about each pending suggestion")
    p.add_argument("--all", action="store_true", help="list reviewed suggestions too")
    p.add_argument("--author", help="recorded in the changelog")
    p.add_argument("--reason", help="why; recorded in the changelog")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another writer of the directory (default 10)")


# ---------------------------------------------------------------------------------------------- suggest
def _embeddings(path: str, graph: Any) -> Any:
    """Embeddings for ``graph``: loaded, and refreshed in memory when the graph changed since (new concepts)."""
    from kgclip.kg.embeddings import ConceptEmbeddings

    emb = ConceptEmbeddings.load(path)
    if emb.graph_fingerprint != graph.fingerprint():
        new = sum(1 for cid in graph.ids if cid not in emb)
        print(f"note: the graph changed since the embeddings were computed; re-encoding {new} new concept(s) "
              "in memory (`kgclip kg refresh` makes it permanent)", file=sys.stderr)
        emb = emb.refresh(graph)
    return emb


def _suggest(args: argparse.Namespace) -> int:
    from kgclip.kg.suggest import suggest_links
    from kgclip.ontology.align import AlignConfig
    from kgclip.ontology.model import ConceptGraph
    from kgclip.ontology.store import load_graph_dir
    from kgclip.ontology.suggestions import SELF, write_suggestions

    graph = load_graph_dir(args.dir)
    others = [load_graph_dir(d) for d in args.others]
    if args.concept is not None and args.concept not in graph:
        graph.index_of(args.concept)  # UnknownConceptError naming the fix
    fingerprints = {SELF: graph.fingerprint(), **{str(Path(d).resolve()): g.fingerprint()
                                                  for d, g in zip(args.others, others)}}
    emb = None
    if args.embeddings:
        emb = _embeddings(args.embeddings, ConceptGraph.union([graph, *others]) if others else graph)
    other = (ConceptGraph.union(others, name="+".join(g.name for g in others)) if len(others) > 1
             else others[0] if others else None)
    config = AlignConfig(use_xrefs=not args.no_xrefs, limit=max(args.limit, 1))
    found = suggest_links(graph, args.kind, embeddings=emb, other=other if args.kind == "same_as" else None,
                          concept=args.concept, limit=args.limit, align_config=config)
    if args.kind != "same_as":  # links to concepts outside DIR cannot be curated in DIR
        found = [s for s in found if s.target in graph]
    out = write_suggestions(args.dir, found, fingerprints, kind=args.kind, concept=args.concept,
                            embeddings=emb.fingerprint if emb is not None else None)
    for s in out.suggestions:
        print(s.describe())
    print(f"wrote {len(out.suggestions)} suggestion(s) to {out.path}; nothing was applied. Review them with "
          f"`kgclip ontology review {args.dir}`", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- review
def _ask(file: Any) -> tuple[list[int], list[int]]:
    accept, reject = [], []
    for s in file.pending():
        answer = input(f"{s.describe()}\n  [a]ccept, [r]eject, [s]kip, [q]uit? ").strip().lower()[:1]
        if answer == "q":
            break
        if answer == "a":
            accept.append(s.n)
        elif answer == "r":
            reject.append(s.n)
    return accept, reject


def _review(args: argparse.Namespace) -> int:
    from kgclip.ontology.suggestions import read_suggestions, review

    file = read_suggestions(args.dir)
    accept, reject = list(args.accept), list(args.reject)
    if not accept and not reject and not args.interactive:
        shown = file.suggestions if args.all else file.pending()
        for s in shown:
            print(s.describe())
        print(f"{len(file.pending())} pending of {len(file.suggestions)}; accept or reject with "
              f"`kgclip ontology review {args.dir} --accept N --reject N --author NAME --reason TEXT`",
              file=sys.stderr)
        return 0
    if args.interactive:
        accept, reject = _ask(file)
    for entry in review(args.dir, accept=accept, reject=reject, author=args.author, reason=args.reason,
                        timeout=args.wait):
        print(f"{entry.op}: {entry.describe()}")
    return 0
