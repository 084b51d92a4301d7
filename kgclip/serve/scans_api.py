"""JSON routes for scans: upload, ask, draft, export, accept, search, and the cases they cite."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kgclip.errors import InputFormatError
from kgclip.rag.regions import regions_of_label
from kgclip.serve.results import answer_json, draft_json, hit_json
from kgclip.serve.security import safe_id
from kgclip.serve.state import json_body, require_text, run_blocking, state_of
from kgclip.serve.uploads import Upload, png_bytes

__all__ = ["routes"]

_MAX_K = 50
_MAX_SENTENCES = 200
_MAX_SENTENCE_CHARS = 2000
_FILTER_KEYS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _upload_of(request: Request, upload_id: Any) -> Upload:
    upload = state_of(request).uploads.get(upload_id) if isinstance(upload_id, str) and safe_id(upload_id) else None
    if upload is None:
        raise InputFormatError("unknown upload: upload the image again (uploads are kept in memory only)")
    return upload


async def upload(request: Request) -> Response:
    state = state_of(request)
    limit = state.config.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        return JSONResponse({"error": f"the file is larger than the {limit // (1024 * 1024)} MB upload limit"},
                            status_code=413)
    async with request.form(max_files=1, max_fields=4, max_part_size=limit) as form:
        item = form.get("file")
        if item is None or isinstance(item, str):
            raise InputFormatError("send the image as the multipart field 'file'")
        raw = await item.read(limit + 1)
    if len(raw) > limit:
        return JSONResponse({"error": f"the file is larger than the {limit // (1024 * 1024)} MB upload limit"},
                            status_code=413)
    result = await run_blocking(state.uploads.add, raw)
    del raw  # the only copy of the original bytes (and of any PHI in them)
    return JSONResponse({"upload": result.upload_id, "meta": result.public_meta(), "windows": list(result.renders)})


async def upload_image(request: Request) -> Response:
    item = _upload_of(request, request.path_params["upload_id"])
    window = request.query_params.get("window", "auto")
    png = item.renders.get(window)
    if png is None:
        return JSONResponse({"error": f"no {window!r} view; choose one of {sorted(item.renders)}"}, status_code=404)
    return Response(png, media_type="image/png")


async def ask(request: Request) -> Response:
    state = state_of(request)
    data = await json_body(request)
    question = require_text(data, "question", state.config.max_question_chars)
    item = _upload_of(request, data.get("upload"))

    def run() -> Any:
        with state.engine_busy:
            return state.engine.ask(item.image, question)

    return JSONResponse(answer_json(await run_blocking(run)))


def _filters(raw: Any) -> dict[str, Any] | None:
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict) or len(raw) > 8:
        raise InputFormatError("filters must be an object of at most 8 KEY: VALUE pairs")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not _FILTER_KEYS.match(str(key)) or not isinstance(value, str) or len(value) > 200:
            raise InputFormatError(f"bad filter {key!r}: keys are identifiers, values strings of <= 200 characters")
        if value.strip():
            out[key] = value.strip()
    return out or None


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InputFormatError(f"{key} must be a short name, e.g. 'chest'")
    return value.strip() or None


async def draft(request: Request) -> Response:
    state = state_of(request)
    data = await json_body(request)
    item = _upload_of(request, data.get("upload"))
    filters = _filters(data.get("filters"))
    region, modality = _optional_text(data, "region"), _optional_text(data, "modality")

    def run() -> Any:
        with state.engine_busy:
            return state.engine.draft_report(item.image, filters=filters, region=region, modality=modality)

    return JSONResponse(draft_json(await run_blocking(run)))


def _strings(value: Any, what: str, limit: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        raise InputFormatError(f"{what} must be a list of at most {limit} strings")
    return [v for v in value if v]


def _sentences(data: dict[str, Any], key: str, known_cases: set[str]) -> list[Any]:
    """The edited sentences of ``data[key]`` as ``ReportSentence``s; every cited case must exist."""
    from kgclip.rag.report import ReportSentence

    raw = data.get(key, [])
    if not isinstance(raw, list) or len(raw) > _MAX_SENTENCES:
        raise InputFormatError(f"{key} must be a list of at most {_MAX_SENTENCES} sentences")
    out = []
    for s in raw:
        if not isinstance(s, dict) or not isinstance(s.get("text"), str):
            raise InputFormatError(f"each of {key} is {{'text': ..., 'case_id': ...}}")
        text, case_id = s["text"].strip(), s.get("case_id") or ""
        if len(text) > _MAX_SENTENCE_CHARS or not isinstance(case_id, str):
            raise InputFormatError(f"a sentence of {key} is too long or has a bad case id")
        cases = _strings(s.get("cases"), "cases", 50)
        facts = _strings(s.get("facts"), "facts", 50)
        for cited in [case_id, *cases]:
            if cited and cited not in known_cases:
                raise InputFormatError(f"sentence cites unknown case {cited!r}")
        if text:
            out.append(ReportSentence(text, case_id, 1.0, cases=tuple(cases), facts=tuple(facts),
                                      source="graph" if key == "impression" else "findings"))
    return out


def _edited_report(state: Any, data: dict[str, Any]) -> Any:
    from kgclip.rag.report import DraftReport

    known = set(state.engine.case_index)
    return DraftReport(findings=_sentences(data, "findings", known), impression=_sentences(data, "impression", known))


async def export(request: Request) -> Response:
    state = state_of(request)
    data = await json_body(request)
    report = _edited_report(state, data)
    if data.get("format") == "fhir":
        graph = state.engine.graph
        names = {c: graph.name_of(c) for s in report.findings + report.impression for c in s.concepts if c in graph}
        return JSONResponse(report.to_fhir(names=names), media_type="application/fhir+json")
    return PlainTextResponse(report.text(citations=True))


async def accept(request: Request) -> Response:
    state = state_of(request)
    state.require_writable()
    data = await json_body(request)
    item = _upload_of(request, data.get("upload"))
    author = require_text(data, "author", 100)
    report = _edited_report(state, data)
    if not report.findings and not report.impression:
        raise InputFormatError("the report is empty: keep at least one sentence before accepting")
    case_id = f"accepted-{item.upload_id[1:13]}"

    def run() -> str:
        with state.engine_busy, tempfile.TemporaryDirectory(prefix="kgclip-accept-") as tmp:
            # The stored image is the de-identified pixels (a PNG), never the uploaded file.
            path = Path(tmp) / f"{case_id}.png"
            path.write_bytes(png_bytes(item.image.frame(), max_side=4096))
            meta = item.image.meta
            findings = " ".join(s.text for s in report.findings)
            impression = " ".join(s.text for s in report.impression)
            state.engine.add_cases([{"case_id": case_id, "image": str(path), "findings": findings,
                                     "impression": impression, "author": author,
                                     "modality": _optional_text(data, "modality") or meta.get("modality") or "",
                                     "body_part": _optional_text(data, "region") or meta.get("body_part") or ""}])
        return case_id

    return JSONResponse({"case_id": await run_blocking(run)})


async def workspace_info(request: Request) -> Response:
    """What the workspace holds, for the pages' choices: case count, body parts and modalities present."""
    engine = state_of(request).engine
    # Only labels a draft can place in a body region are offered (another would be refused by draft_report).
    parts = sorted({c.body_part for c in engine.cases if c.body_part and regions_of_label(c.body_part)})
    modalities = sorted({c.modality for c in engine.cases if c.modality})
    return JSONResponse({"cases": len(engine.cases), "body_parts": parts, "modalities": modalities})


async def search(request: Request) -> Response:
    state = state_of(request)
    data = await json_body(request)
    k = data.get("k", 12)
    if not isinstance(k, int) or not 1 <= k <= _MAX_K:
        raise InputFormatError(f"k must be an integer in 1..{_MAX_K}")
    filters = _filters(data.get("filters"))
    kwargs: dict[str, Any] = {"k": k, "filters": filters}
    if data.get("upload"):
        kwargs["image"] = _upload_of(request, data["upload"]).image
    elif data.get("concept"):
        kwargs["concept"] = require_text(data, "concept", 200)
    else:
        kwargs["text"] = require_text(data, "text", state.config.max_question_chars, what="the search text")

    def run() -> Any:
        with state.engine_busy:
            return state.engine.search(**kwargs)

    hits = await run_blocking(run)
    expansion = getattr(hits, "expansion", None)
    return JSONResponse({"hits": [hit_json(h) for h in hits],
                         "expansion": expansion.describe() if expansion is not None else ""})


def _case_of(request: Request) -> Any:
    case_id = request.path_params["case_id"]
    engine = state_of(request).engine
    if not safe_id(case_id) or case_id not in engine.case_index:
        return None
    return engine.cases[engine.case_index[case_id]]


async def case(request: Request) -> Response:
    found = _case_of(request)
    if found is None:
        return JSONResponse({"error": "no such case"}, status_code=404)
    return JSONResponse({"case_id": found.case_id, "text": found.text, "modality": found.modality,
                         "body_part": found.body_part})


async def case_image(request: Request) -> Response:
    found = _case_of(request)
    engine = state_of(request).engine
    if found is None:
        return JSONResponse({"error": "no such case"}, status_code=404)
    path = engine.image_path(found.image).resolve()
    if not path.is_relative_to(engine.directory.resolve()) or not path.is_file():
        return JSONResponse({"error": "no such case image"}, status_code=404)

    def render() -> bytes:
        from kgclip.imaging.io import read_image

        return png_bytes(read_image(path).frame(), max_side=512)

    return Response(await run_blocking(render), media_type="image/png")


def routes() -> list[Route]:
    return [
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/upload/{upload_id}/image.png", upload_image),
        Route("/api/ask", ask, methods=["POST"]),
        Route("/api/draft", draft, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/accept", accept, methods=["POST"]),
        Route("/api/search", search, methods=["POST"]),
        Route("/api/workspace", workspace_info),
        Route("/api/case/{case_id}", case),
        Route("/api/case/{case_id}/image.png", case_image),
    ]
