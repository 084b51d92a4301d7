"""JSON routes for curators: concept search and pages, edits with author and reason, changelog, undo, validation.

Every edit goes through :class:`~kgclip.ontology.curation.Curator` holding the directory's writers' lock (as the CLI
does), so concurrent edits from the browser, the CLI and other servers are serialised and none is lost.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kgclip.errors import InputFormatError, UnknownConceptError
from kgclip.serve.security import safe_id
from kgclip.serve.state import json_body, require_text, run_blocking, state_of

__all__ = ["routes", "GraphCache"]

_MAX_LIST = 50


class GraphCache:
    """Each ontology directory's graph, reloaded only when its ``meta.json`` changed (an edit from anywhere)."""

    def __init__(self) -> None:
        self._graphs: dict[Path, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def get(self, directory: Path) -> Any:
        from kgclip.ontology.locking import meta_stamp
        from kgclip.ontology.store import load_graph_dir

        stamp = meta_stamp(directory)
        with self._lock:
            cached = self._graphs.get(directory)
            if cached is None or cached[0] != stamp:
                cached = (stamp, load_graph_dir(directory))
                self._graphs[directory] = cached
            return cached[1]


_CACHE = GraphCache()
# Edits from this server to one directory queue here, so a burst of them waits its turn instead of timing out on
# the directory's file lock (which then only arbitrates with other processes: the CLI, other servers).
_EDIT_QUEUES: dict[Path, threading.Lock] = {}
_EDIT_QUEUES_LOCK = threading.Lock()


def _edit_queue(directory: Path) -> threading.Lock:
    with _EDIT_QUEUES_LOCK:
        return _EDIT_QUEUES.setdefault(directory.resolve(), threading.Lock())


def _directory(request: Request) -> Path:
    name = request.path_params["name"]
    directory = state_of(request).ontologies.get(name) if safe_id(name) else None
    if directory is None:
        raise UnknownConceptError(f"no ontology named {name!r} is served; start with --ontology DIR")
    return directory


def _graph(request: Request) -> Any:
    return _CACHE.get(_directory(request))


def concept_json(graph: Any, concept_id: str) -> dict[str, Any]:
    """A concept with its names, definition, parents, children and relations (both directions, named)."""
    c = graph.concept(concept_id)

    def named(ids: list[str]) -> list[dict[str, str]]:
        return [{"id": i, "name": graph.name_of(i) if i in graph else i} for i in ids[:_MAX_LIST]]

    relations = [{"source": r.source, "type": r.type, "target": r.target, "origin": r.origin,
                  "source_name": graph.name_of(r.source) if r.source in graph else r.source,
                  "target_name": graph.name_of(r.target) if r.target in graph else r.target}
                 for r in graph.relations(concept_id, direction="both")[:200] if r.type != "is_a"]
    return {"id": c.id, "name": c.name, "synonyms": list(c.synonyms), "definition": c.definition,
            "xrefs": list(c.xrefs), "deprecated": bool(c.deprecated), "source": c.source,
            "parents": named(graph.parents(concept_id)), "children": named(graph.children(concept_id)),
            "relations": relations}


async def ontologies(request: Request) -> Response:
    return JSONResponse({"ontologies": sorted(state_of(request).ontologies)})


async def find(request: Request) -> Response:
    from kgclip.ontology.query import find_concepts

    query = request.query_params.get("q", "").strip()
    if not query or len(query) > 200:
        raise InputFormatError("search for 1 to 200 characters")
    graph = await run_blocking(_graph, request)
    hits = find_concepts(graph, query, limit=25)
    return JSONResponse({"hits": [{"id": c.id, "name": c.name, "deprecated": bool(c.deprecated)} for c in hits]})


def _known(graph: Any, concept_id: str) -> str:
    if not isinstance(concept_id, str) or not safe_id(concept_id) or concept_id not in graph:
        raise UnknownConceptError(f"unknown concept {concept_id!r}: search for it first")
    return concept_id


async def concept(request: Request) -> Response:
    graph = await run_blocking(_graph, request)
    return JSONResponse(concept_json(graph, _known(graph, request.path_params["concept_id"])))


async def concept_svg(request: Request) -> Response:
    from kgclip.display import subgraph_html

    graph = await run_blocking(_graph, request)
    cid = _known(graph, request.path_params["concept_id"])
    ids = graph.neighborhood([cid], hops=1)[:30]
    html = subgraph_html(graph.subgraph_nx(ids), highlight=[cid])
    svg = html[html.index("<svg"):html.rindex("</svg>") + len("</svg>")]
    return Response(svg, media_type="image/svg+xml")


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or len(value) > _MAX_LIST or not all(isinstance(v, str) for v in value):
        raise InputFormatError(f"{key} must be a list of at most {_MAX_LIST} strings")
    return [v.strip() for v in value if v.strip()]


def _edit(cur: Any, op: str, data: dict[str, Any], author: str, reason: str | None) -> Any:
    common = {"author": author, "reason": reason}
    if op == "add_concept":
        return cur.add_concept(require_text(data, "id", 200), require_text(data, "name", 500),
                               synonyms=_strings(data, "synonyms"), parents=_strings(data, "parents"),
                               definition=str(data.get("definition") or ""), **common)
    if op == "add_relation":
        return cur.add_relation(require_text(data, "source", 200), require_text(data, "type", 100),
                                require_text(data, "target", 200), **common)
    if op == "remove_relation":
        return cur.remove_relation(require_text(data, "source", 200), require_text(data, "type", 100),
                                   require_text(data, "target", 200), **common)
    if op == "update_concept":
        name = data.get("name") or None
        return cur.update_concept(require_text(data, "id", 200), name=name, add_synonyms=_strings(data, "add_synonyms"),
                                  definition=data.get("definition") or None, **common)
    if op == "deprecate":
        return cur.deprecate(require_text(data, "id", 200), replaced_by=data.get("replaced_by") or None, **common)
    if op == "merge":
        return cur.merge(require_text(data, "keep", 200), require_text(data, "other", 200), **common)
    if op == "undo":
        n = data.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 100:
            raise InputFormatError("n must be an integer in 1..100")
        return cur.undo(n, author=author, reason=reason)
    raise InputFormatError(f"unknown edit {op!r}")


_OPS = ("add_concept", "add_relation", "remove_relation", "update_concept", "deprecate", "merge", "undo")


async def edit(request: Request) -> Response:
    from kgclip.ontology.curation import Curator

    state = state_of(request)
    state.require_writable()
    op = request.path_params["op"]
    if op not in _OPS:
        return JSONResponse({"error": f"unknown edit {op!r}; one of {list(_OPS)}"}, status_code=404)
    directory = _directory(request)
    data = await json_body(request)
    author = require_text(data, "author", 100)
    reason = data.get("reason") if isinstance(data.get("reason"), str) and data.get("reason").strip() else None

    def run() -> Any:
        with _edit_queue(directory), Curator.locked(directory, author=author) as cur:
            return _edit(cur, op, data, author, reason)

    result = await run_blocking(run)
    entries = result if isinstance(result, list) else [result]
    return JSONResponse({"ok": True, "entries": [{"seq": e.seq, "op": e.op, "summary": e.describe()} for e in entries]})


async def changelog(request: Request) -> Response:
    from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog

    log = await run_blocking(Changelog.load, _directory(request) / CHANGELOG_FILE)
    entries = log.entries[-100:][::-1]
    return JSONResponse({"entries": [{"seq": e.seq, "op": e.op, "summary": e.describe(), "author": e.author,
                                      "reason": e.reason, "timestamp": e.timestamp} for e in entries]})


async def validate(request: Request) -> Response:
    graph = await run_blocking(_graph, request)
    report = await run_blocking(graph.validate)
    return JSONResponse({"ok": report.ok, "summary": report.summary()})


async def suggestions(request: Request) -> Response:
    """The review queue: pending suggested links (none when ``kgclip ontology suggest`` has not run)."""
    from kgclip.ontology.suggestions import SUGGESTIONS_FILE, read_suggestions

    directory = _directory(request)
    if not (directory / SUGGESTIONS_FILE).is_file():
        return JSONResponse({"pending": [], "note": f"no suggestions yet: run `kgclip ontology suggest {directory}`"})
    file = await run_blocking(read_suggestions, directory)
    pending = [{"n": s.n, "kind": s.kind, "source": s.source, "target": s.target, "source_name": s.source_name,
                "target_name": s.target_name, "score": round(float(s.score), 4), "method": s.method, "why": s.why}
               for s in file.pending()[:100]]
    return JSONResponse({"pending": pending, "total_pending": len(file.pending())})


async def review(request: Request) -> Response:
    from kgclip.ontology.suggestions import review as review_suggestions

    state = state_of(request)
    state.require_writable()
    directory = _directory(request)
    data = await json_body(request)
    author = require_text(data, "author", 100)
    n, decision = data.get("n"), data.get("decision")
    if not isinstance(n, int) or decision not in ("accept", "reject"):
        raise InputFormatError("send {'n': <suggestion number>, 'decision': 'accept' | 'reject', 'author': ...}")
    reason = data.get("reason") if isinstance(data.get("reason"), str) and data.get("reason").strip() else None
    def run() -> Any:
        with _edit_queue(directory):
            return review_suggestions(directory, accept=[n] if decision == "accept" else [],
                                      reject=[n] if decision == "reject" else [], author=author, reason=reason)

    entries = await run_blocking(run)
    return JSONResponse({"ok": True, "entries": [{"seq": e.seq, "op": e.op, "summary": e.describe()} for e in entries]})


def routes() -> list[Route]:
    return [
        Route("/api/ontology", ontologies),
        Route("/api/ontology/{name}/search", find),
        Route("/api/ontology/{name}/concept/{concept_id}", concept),
        Route("/api/ontology/{name}/concept/{concept_id}/graph.svg", concept_svg),
        Route("/api/ontology/{name}/changelog", changelog),
        Route("/api/ontology/{name}/validate", validate),
        Route("/api/ontology/{name}/edit/{op}", edit, methods=["POST"]),
        Route("/api/ontology/{name}/suggestions", suggestions),
        Route("/api/ontology/{name}/review", review, methods=["POST"]),
    ]
