"""Server-rendered pages. Every value from a workspace, an ontology or a request is escaped here; the JavaScript in
``static/app.js`` fills pages from the JSON routes with ``textContent`` only (never ``innerHTML`` with data)."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from kgclip.serve.security import safe_id
from kgclip.serve.state import run_blocking, state_of

__all__ = ["routes", "not_found"]


def _layout(request: Request, title: str, body: str, *, page: str) -> HTMLResponse:
    state = state_of(request)
    csrf = getattr(request.state, "csrf", "")
    nav = [("/", "Scan"), ("/search", "Search")]
    if state.ontologies:
        nav.append(("/curate", "Curate"))
    links = "".join(f'<a href="{href}"{" class=on" if page == label.lower() else ""}>{label}</a>'
                    for href, label in nav)
    mode = '<span class="badge">read-only</span>' if state.config.read_only else ""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{escape(csrf)}"><title>{escape(title)} · kgclip</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body data-page="{escape(page)}" data-read-only="{str(state.config.read_only).lower()}">
<header><b>kgclip</b><nav>{links}</nav>{mode}</header>
<main>{body}</main>
<p class="foot">Drafts and answers are decision support: every sentence cites the case it came from; check them.</p>
<script src="/static/app.js"></script></body></html>"""
    return HTMLResponse(html)


def _window_options() -> str:
    return '<select id="window" aria-label="window"><option value="auto">as read</option></select>'


async def scan_page(request: Request) -> Response:
    body = f"""
<section class="cols">
 <div class="col">
  <h2>Scan</h2>
  <div id="drop" class="drop" tabindex="0">Drop a DICOM, PNG or JPEG here, or
   <label class="button">choose a file<input id="file" type="file" hidden></label></div>
  <div id="viewer" hidden><img id="scan" alt="uploaded scan"><div class="row">{_window_options()}
   <span id="scanmeta" class="muted"></span></div></div>
  <p id="status" class="status" role="status"></p>
  <h3>Ask</h3>
  <form id="askform" class="row"><input id="question" maxlength="2000" placeholder="Is there a pleural effusion?">
   <button type="submit">Ask</button></form>
  <div id="answer" class="panel" hidden></div>
 </div>
 <div class="col">
  <h2>Draft report</h2>
  <div class="row"><select id="region"
   aria-label="body region"><option value="">region: from the image</option></select>
   <button id="draftbtn" type="button">Draft from similar cases</button></div>
  <div id="draft" class="panel" hidden>
   <p id="draftconf" class="muted" hidden></p>
   <p id="draftnotice" class="abstain" hidden></p>
   <h4>Findings</h4><ol id="findings" class="sentences"></ol>
   <button id="addfinding" type="button" class="tool">+ finding</button>
   <h4>Impression</h4><ol id="impression" class="sentences"></ol>
   <button id="addimpression" type="button" class="tool">+ impression</button>
   <div class="row"><button id="exporttext" type="button">Export text</button>
    <button id="exportfhir" type="button">Export FHIR</button></div>
   <pre id="exported" hidden></pre>
   <div class="row"><input id="author" maxlength="100" placeholder="your name">
    <button id="acceptbtn" type="button">Accept into the archive</button></div>
  </div>
 </div>
 <aside id="citation" class="col panel" hidden><h3>Cited case <span id="citeid"></span></h3>
  <img id="citeimg" alt="cited case"><p id="citetext"></p>
  <button id="citeclose" type="button">Close</button></aside>
</section>"""
    return _layout(request, "Scan", body, page="scan")


async def search_page(request: Request) -> Response:
    body = """
<h2>Search cases</h2>
<form id="searchform" class="row">
 <select id="searchkind" aria-label="search by"><option value="text">text</option>
  <option value="concept">concept id</option><option value="image">the uploaded scan</option></select>
 <input id="searchq" maxlength="2000" placeholder="right lower lobe consolidation">
 <input id="fmodality" maxlength="50" placeholder="modality (e.g. CT)">
 <input id="fbody" maxlength="50" placeholder="body part">
 <button type="submit">Search</button></form>
<p id="status" class="status" role="status"></p>
<div id="gallery" class="gallery"></div>"""
    return _layout(request, "Search", body, page="search")


async def curate_page(request: Request) -> Response:
    names = sorted(state_of(request).ontologies)
    read_only = state_of(request).config.read_only
    options = "".join(f'<option value="{escape(n)}">{escape(n)}</option>' for n in names)
    body = f"""
<h2>Curate</h2>
<form id="conceptsearch" class="row"><select id="onto" aria-label="ontology">{options}</select>
 <input id="conceptq" maxlength="200" placeholder="pneumonia"><button type="submit">Find concepts</button>
 <button id="validatebtn" type="button">Validate</button></form>
<p id="status" class="status" role="status"></p>
<ul id="concepthits" class="hits"></ul>
{"" if read_only else _CURATE_EDITS}
<h3>Review queue</h3><p class="muted" id="reviewnote"></p>
<div class="row"><input id="reviewauthor" maxlength="100" placeholder="your name (to accept or reject)"></div>
<ol id="suggestions" class="log"></ol>
<h3>Changelog</h3>
<ol id="changelog" class="log"></ol>"""
    return _layout(request, "Curate", body, page="curate")


_CURATE_EDITS = """<details><summary>Add a concept</summary>
<form id="addconcept" class="grid"><input name="id" placeholder="DOID:9000001" required>
 <input name="name" placeholder="name" required><input name="parents" placeholder="parent ids, comma-separated">
 <input name="synonyms" placeholder="synonyms, comma-separated"><input name="author" placeholder="your name" required>
 <input name="reason" placeholder="reason"><button type="submit">Add concept</button></form></details>
<form id="undoform" class="row"><input id="undoauthor"
 placeholder="your name"><button type="submit">Undo last edit</button>
 </form>"""


def _concept_body(name: str, c: dict[str, Any], *, read_only: bool) -> str:
    def links(items: list[dict[str, str]]) -> str:
        return "".join(f'<li><a href="/curate/{escape(name)}/{escape(i["id"])}">{escape(i["name"])}</a> '
                       f'<span class="muted">{escape(i["id"])}</span></li>' for i in items) or "<li>none</li>"

    rels = "".join(f'<li>{escape(r["source_name"])} <i>{escape(r["type"].replace("_", " "))}</i> '
                   f'{escape(r["target_name"])} <span class="muted">{escape(r["origin"] or "")}</span></li>'
                   for r in c["relations"]) or "<li>none</li>"
    dep = ' <span class="badge">deprecated</span>' if c["deprecated"] else ""
    return f"""
<h2 id="conceptname">{escape(c["name"])}{dep}</h2><p class="muted" id="conceptid">{escape(c["id"])}</p>
<p>{escape(c["definition"] or "")}</p>
<p><b>Synonyms:</b> {escape("; ".join(c["synonyms"]) or "none")}</p>
<p><b>Cross-references:</b> {escape("; ".join(c["xrefs"]) or "none")}</p>
<div class="cols"><div class="col"><h3>Parents</h3><ul>{links(c["parents"])}</ul>
 <h3>Children</h3><ul>{links(c["children"])}</ul><h3>Relations</h3><ul>{rels}</ul></div>
 <div class="col"><img class="svg" alt="neighbourhood"
  src="/api/ontology/{escape(name)}/concept/{escape(c["id"])}/graph.svg">
 </div></div>
{"" if read_only else _EDIT_FORMS.format(id=escape(c["id"]))}
<p id="status" class="status" role="status"></p>"""


_EDIT_FORMS = """<h3>Edit</h3>
<form class="edit grid" data-op="add_relation"><input type="hidden" name="source" value="{id}">
 <input name="type" placeholder="relation type (e.g. has_symptom)" required><input name="target"
  placeholder="target id" required>
 <input name="author" placeholder="your name" required><input name="reason" placeholder="reason">
 <button type="submit">Add relation</button></form>
<form class="edit grid" data-op="update_concept"><input type="hidden" name="id" value="{id}">
 <input name="name" placeholder="new name"><input name="add_synonyms" placeholder="synonyms to add, comma-separated">
 <input name="definition" placeholder="definition"><input name="author" placeholder="your name" required>
 <input name="reason" placeholder="reason"><button type="submit">Update</button></form>
<form class="edit grid" data-op="deprecate"><input type="hidden" name="id" value="{id}">
 <input name="replaced_by" placeholder="replaced by (id)"><input name="author" placeholder="your name" required>
 <input name="reason" placeholder="reason"><button type="submit">Deprecate</button></form>
<form class="edit grid" data-op="merge"><input type="hidden" name="keep" value="{id}">
 <input name="other" placeholder="merge this id into it" required><input name="author" placeholder="your name" required>
 <input name="reason" placeholder="reason"><button type="submit">Merge</button></form>"""


async def concept_page(request: Request) -> Response:
    from kgclip.errors import UnknownConceptError
    from kgclip.serve.curate_api import _CACHE, concept_json

    name, cid = request.path_params["name"], request.path_params["concept_id"]
    directory = state_of(request).ontologies.get(name) if safe_id(name) else None
    if directory is None or not safe_id(cid):
        return not_found(request)
    graph = await run_blocking(_CACHE.get, directory)
    if cid not in graph:
        return not_found(request, f"unknown concept {cid!r} in {name}")
    try:
        body = _concept_body(name, concept_json(graph, cid), read_only=state_of(request).config.read_only)
    except UnknownConceptError:
        return not_found(request)
    return _layout(request, cid, f'<div data-onto="{escape(name)}">{body}</div>', page="curate")


def not_found(request: Request, message: str = "There is nothing at this address.") -> HTMLResponse:
    response = _layout(request, "Not found", f"<h2>Not found</h2><p>{escape(message)}</p>", page="")
    response.status_code = 404
    return response


def routes() -> list[Route]:
    return [
        Route("/", scan_page),
        Route("/search", search_page),
        Route("/curate", curate_page),
        Route("/curate/{name}/{concept_id}", concept_page),
    ]
