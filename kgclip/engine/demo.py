"""``kgclip demo``: build a workspace from what kgclip ships (the RadLex + Disease Ontology graphs and a CC0
VQA-RAD sample), answer held-out questions, draft a report, and write one self-contained HTML page.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.errors import ConfigError

__all__ = ["DemoResult", "run_demo", "pick_demo_questions"]


@dataclass
class DemoResult:
    """What the demo produced: the workspace, the HTML page, and the answers and draft it shows."""

    workspace: Path
    page: Path
    answers: list[Any] = field(default_factory=list)
    gold: list[str] = field(default_factory=list)
    report: Any = None
    report_image: str = ""
    seconds: float = 0.0


def pick_demo_questions(items: list[Any], n: int = 6) -> list[Any]:
    """Held-out (test-split) questions when the data has them, mixing closed and open, one per image first."""
    pool = [it for it in items if it.split == "test"] or items
    closed = [it for it in pool if it.is_closed]
    opened = [it for it in pool if not it.is_closed]
    picked: list[Any] = []
    seen_images: set[str] = set()
    for group in (closed, opened, closed, opened):
        for it in group:
            if len(picked) >= n:
                break
            if it.image_name not in seen_images and it not in picked:
                picked.append(it)
                seen_images.add(it.image_name)
                break
    for it in pool:  # fill up when there are few images
        if len(picked) >= n:
            break
        if it not in picked:
            picked.append(it)
    return picked[:n]


def run_demo(out: str | Path = "indexes/demo", data: str | Path | None = None, *, n_questions: int = 6,
             show_progress: bool = True, config: Any = None) -> DemoResult:
    """Build the demo workspace in ``out`` and write ``out/demo.html``."""
    from kgclip.engine.build import read_vqa_rad_items, shipped_demo_dir
    from kgclip.engine.config import EngineConfig
    from kgclip.engine.engine import Engine

    start = time.perf_counter()
    data = data or shipped_demo_dir()
    if data is None:
        raise ConfigError("the shipped VQA-RAD sample (kgclip/demo_data/vqa-rad) is missing from this install; "
                          "reinstall kgclip or pass --data PATH to a VQA-RAD folder")
    items = read_vqa_rad_items(data)
    engine = Engine.build(config or EngineConfig(), out, vqa_rad=data, show_progress=show_progress)
    picked = pick_demo_questions(items, n_questions)
    result = DemoResult(workspace=Path(out), page=Path(out) / "demo.html")
    for item in picked:
        result.answers.append(engine.ask(item.image_path, item.question))
        result.gold.append(item.answer)
    report_image = (picked[0] if picked else items[0]).image_path
    result.report = engine.draft_report(report_image)
    result.report_image = str(report_image)
    result.seconds = time.perf_counter() - start
    atomic_write_text(result.page, _page(engine, result, picked, out))
    return result


def _page(engine: Any, result: DemoResult, picked: list[Any], out: str | Path) -> str:
    """The self-contained HTML page of a demo run (every value escaped)."""
    from kgclip.display import answer_html, report_html, thumbnail_data_uri
    from kgclip.rag.answerer import normalize_answer

    report_image = Path(result.report_image)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>kgclip demo</title></head><body "
             "style='font-family:sans-serif;max-width:1100px;margin:auto'>",
             "<h1>kgclip demo</h1>",
             f"<p>Workspace <code>{html.escape(str(out))}</code>: {len(engine.cases)} cases, {len(engine.graph)} "
             f"concepts, answerer trained on {len(engine.answerer.examples)} questions. Questions below are from the "
             "held-out test split of the shipped VQA-RAD sample (CC0); the gold answer is shown beside each answer. "
             "Evidence lists similar questions on similar images, similar cases and knowledge-graph facts.</p>"]
    correct = 0
    for ans, gold, item in zip(result.answers, result.gold, picked):
        ok = normalize_answer(ans.text) == normalize_answer(gold)
        correct += ok
        parts.append("<hr/><div style='display:flex;gap:16px'>"
                     f"<div><img src='{thumbnail_data_uri(item.image_path, 256)}' width='256'/>"
                     f"<div style='font-size:11px;color:#777'>{html.escape(item.image_name)}</div></div>"
                     f"<div>{answer_html(ans)}<p>gold answer: <b>{html.escape(gold)}</b> "
                     f"{'&#10003;' if ok else '&#10007;'}</p></div></div>")
    parts.append(f"<hr/><h2>Draft report for {html.escape(report_image.name)}</h2><div style='display:flex;gap:16px'>"
                 f"<div><img src='{thumbnail_data_uri(report_image, 256)}' width='256'/></div>"
                 f"<div>{report_html(result.report)}</div></div>")
    parts.append(f"<hr/><p style='color:#777'>{correct}/{len(result.answers)} demo answers match the gold answer. "
                 f"Built and run in {result.seconds:.0f} s. Manifest: <pre>"
                 f"{html.escape(json.dumps(engine.manifest['fingerprints'], indent=1))}</pre></p></body></html>")
    return "".join(parts)
