"""Notebook renderings (``_repr_html_``) for answers, evidence, draft reports, search results and subgraphs.

Everything is self-contained HTML: thumbnails are inlined as base64 PNG, subgraphs as inline SVG, and all text is
escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["thumbnail_data_uri", "answer_html", "evidence_html", "report_html", "search_results_html",
           "subgraph_html", "SearchResults", "Subgraph"]

_CSS = ("<style>.kgc{font-family:sans-serif;font-size:13px}.kgc table{border-collapse:collapse}"
        ".kgc td,.kgc th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}.kgc .cite{color:#777;"
        "font-size:11px}.kgc .neg{color:#a33}.kgc img{border:1px solid #ccc}</style>")


def _e(value: object) -> str:
    return html.escape(str(value))


def thumbnail_data_uri(image: Any, size: int = 128) -> str:
    """A ``data:image/png;base64,...`` URI of the image (path, bytes or array), or ``""`` if it cannot be read."""
    from PIL import Image

    from kgclip.errors import ImageReadError
    from kgclip.models.image_input import load_image

    if image is None or (isinstance(image, str) and not image):
        return ""
    try:
        pixels = load_image(image).pixels
    except ImageReadError:
        return ""
    img = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(image: Any, size: int = 128) -> str:
    uri = thumbnail_data_uri(image, size)
    return f'<img src="{uri}" width="{size}"/>' if uri else "<i>(no image)</i>"


def _concepts_html(concepts: Sequence[Any]) -> str:
    if not concepts:
        return "<i>none linked</i>"
    parts = []
    for c in concepts:
        cls = ' class="neg"' if getattr(c, "negated", False) else ""
        flag = " (negated)" if getattr(c, "negated", False) else ""
        parts.append(f'<span{cls}>{_e(c.name)} <span class="cite">{_e(c.concept_id)}</span>{flag}</span>')
    return ", ".join(parts)


def evidence_html(ev: Any, resolve_image: Any = None) -> str:
    """Evidence: linked concepts, KG facts, similar questions and similar cases (with thumbnails)."""
    resolve = resolve_image or (lambda p: p)
    out = [_CSS, '<div class="kgc">', f"<b>Linked concepts:</b> {_concepts_html(ev.concepts)}<br/>"]
    if ev.kg_facts:
        out.append("<b>Knowledge-graph facts:</b><ul>" + "".join(
            f"<li>{_e(f.source_name)} <i>{_e(f.relation.replace('_', ' '))}</i> {_e(f.target_name)} "
            f"{'' if getattr(f, 'curated', True) else '<b>(suggested, not curated)</b> '}"
            f'<span class="cite">{_e(f.source_id)} &rarr; {_e(f.target_id)}</span></li>' for f in ev.kg_facts)
            + "</ul>")
    if ev.similar_questions:
        out.append("<b>Similar questions on similar images:</b><table><tr><th>question</th><th>answer</th>"
                   "<th>case</th><th>score</th></tr>" + "".join(
                       f"<tr><td>{_e(q.question)}</td><td>{_e(q.answer)}</td><td>{_e(q.case_id)}</td>"
                       f"<td>{q.score:.3f}</td></tr>" for q in ev.similar_questions) + "</table>")
    if ev.similar_cases:
        out.append("<b>Similar cases:</b>" + search_results_html(ev.similar_cases, resolve_image=resolve,
                                                                   with_css=False))
    out.append("</div>")
    return "".join(out)


def answer_html(answer: Any, resolve_image: Any = None) -> str:
    flags = "".join(f' <span class="cite">[{_e(k)}: {_e(v)}]</span>' for k, v in answer.flags.items())
    cands = ", ".join(f"{_e(t)} ({p:.2f})" for t, p in answer.candidates[:5])
    if getattr(answer, "abstained", False):
        said = f'<div style="font-size:16px"><b>cannot answer:</b> {_e(answer.abstain_reason)}</div>'
    else:
        said = (f'<div style="font-size:16px"><b>A: {_e(answer.text)}</b> <span class="cite">{_e(answer.kind)}, '
                f"confidence {answer.confidence:.2f}</span>{flags}</div>")
    head = (f'{_CSS}<div class="kgc"><div><b>Q:</b> {_e(answer.question)}</div>{said}'
            f'<div class="cite">candidates: {cands}</div></div>')
    if answer.evidence is None:
        return head
    return head + evidence_html(answer.evidence, resolve_image)


def report_html(report: Any, resolve_image: Any = None) -> str:
    def sentences(items: Sequence[Any]) -> str:
        def one(s: Any) -> str:
            cites = " ".join(f"[{_e(c)}]" for c in getattr(s, "citations", (s.case_id,)))
            facts = "".join(f'<br/><span class="cite">{_e(f)}</span>' for f in getattr(s, "facts", ()))
            return f'<li>{_e(s.text)} <span class="cite">{cites}</span>{facts}</li>'

        return "".join(one(s) for s in items)

    flags = "".join(f' <span class="cite">[{_e(k)}: {_e(v)}]</span>' for k, v in report.flags.items())
    notice = getattr(report, "notice", "")
    if notice and not report.findings:  # why nothing was drafted, not a finding under the FINDINGS heading
        out = [_CSS, '<div class="kgc">', f"<p><b>Not drafted</b>{flags}: <i>{_e(notice[:1].upper() + notice[1:])}."
               "</i></p>"]
    else:
        out = [_CSS, '<div class="kgc">', f"<b>FINDINGS</b>{flags}<ol>{sentences(report.findings)}</ol>",
               f"<b>IMPRESSION</b><ol>{sentences(report.impression)}</ol>"]
    confidence = getattr(report, "confidence", None)
    declined = getattr(report, "abstained", False)
    if confidence is not None and (report.findings or report.impression or declined):
        out.append(f"<p><b>Confidence</b> {float(confidence):.2f}"
                   + (" <i>(declined: the similar cases disagree)</i>" if declined else "") + "</p>")
    if report.similar_cases:
        # A declined draft shows its similar cases at once: they are what the reader has instead of a draft.
        out.append(f"<details{' open' if declined else ''}><summary>Source cases</summary>" + search_results_html(
            report.similar_cases, resolve_image=resolve_image, with_css=False) + "</details>")
    out.append("</div>")
    return "".join(out)


def search_results_html(hits: Sequence[Any], resolve_image: Any = None, with_css: bool = True) -> str:
    """A table of hits (:class:`kgclip.rag.evidence.CaseHit`) with thumbnails."""
    resolve = resolve_image or (lambda p: p)
    rows = []
    for rank, hit in enumerate(hits, 1):
        text = str(getattr(hit, "text", "") or "")
        text = text if len(text) <= 300 else text[:297] + "..."
        meta = getattr(hit, "metadata", {}) or {}
        info = ", ".join(f"{k}={v}" for k, v in meta.items() if k in ("modality", "body_part", "split") and v)
        rows.append(f"<tr><td>{rank}</td><td>{_img(resolve(getattr(hit, 'image', '')), 96)}</td>"
                    f"<td><b>{_e(hit.case_id)}</b><br/>{hit.score:.3f} <span class='cite'>{_e(hit.via)}</span>"
                    f"<br/><span class='cite'>{_e(info)}</span></td><td>{_e(text)}</td></tr>")
    table = ("<table><tr><th>#</th><th>image</th><th>case</th><th>text</th></tr>" + "".join(rows) + "</table>")
    return (_CSS + f'<div class="kgc">{table}</div>') if with_css else table


class SearchResults(list):
    """Hits of one search, best first, rendered as a table with thumbnails in a notebook."""

    resolve_image: Any = None
    expansion: Any = None  # a concept search's expansion (kgclip.ontology.expand / kgclip.text.concept_query)

    def _repr_html_(self) -> str:
        shown = f"<p>searched: {_e(self.expansion.describe())}</p>" if self.expansion is not None else ""
        return shown + search_results_html(list(self), resolve_image=self.resolve_image)


def subgraph_html(graph: Any, highlight: Sequence[str] = (), width: int = 640, height: int = 420) -> str:
    """An inline SVG of a (small) networkx concept subgraph: nodes labelled by name, edges by relation type."""
    import networkx as nx

    nodes = list(graph.nodes)[:60]
    sub = graph.subgraph(nodes)
    if not nodes:
        return "<i>empty subgraph</i>"
    pos = nx.spring_layout(nx.Graph(sub), seed=0) if len(nodes) > 1 else {nodes[0]: np.zeros(2)}
    xs = np.array([pos[n] for n in nodes])
    lo, hi = xs.min(0), xs.max(0)
    span = np.where(hi - lo < 1e-9, 1.0, hi - lo)

    def xy(n: str) -> tuple[float, float]:
        p = (pos[n] - lo) / span
        return 60 + p[0] * (width - 120), 30 + p[1] * (height - 60)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'style="font-family:sans-serif;font-size:10px">']
    for a, b, data in sub.edges(data=True):
        (x1, y1), (x2, y2) = xy(a), xy(b)
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#999"/>')
        ang = math.atan2(y2 - y1, x2 - x1)
        hx, hy = x2 - 8 * math.cos(ang), y2 - 8 * math.sin(ang)
        parts.append(f'<circle cx="{hx:.1f}" cy="{hy:.1f}" r="2" fill="#666"/>')
        parts.append(f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2:.1f}" fill="#777">'
                     f'{_e(data.get("type", ""))}</text>')
    for n in nodes:
        x, y = xy(n)
        colour = "#e67e22" if n in highlight else "#3498db"
        label = sub.nodes[n].get("name") or n
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"><title>{_e(n)}</title></circle>')
        parts.append(f'<text x="{x + 8:.1f}" y="{y + 4:.1f}">{_e(label[:40])}</text>')
    parts.append("</svg>")
    return _CSS + '<div class="kgc">' + "".join(parts) + "</div>"


@dataclass
class Subgraph:
    """A concept's neighbourhood (what :meth:`kgclip.engine.Engine.explain` returns)."""

    concept_id: str
    name: str
    graph: Any  # networkx.MultiDiGraph
    facts: list[Any] = field(default_factory=list)

    def _repr_html_(self) -> str:
        facts = "".join(f"<li>{_e(f)}</li>" for f in self.facts[:20])
        return (f'{_CSS}<div class="kgc"><b>{_e(self.name)}</b> <span class="cite">{_e(self.concept_id)}</span>'
                f"<ul>{facts}</ul></div>" + subgraph_html(self.graph, highlight=[self.concept_id]))
