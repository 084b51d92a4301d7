"""``kgclip demo``: build a workspace from what kgclip ships (the RadLex + Disease Ontology graphs and a CC0
VQA-RAD sample), answer held-out questions, draft a report, and write one self-contained HTML page.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.data.vqa_rad import VQARadItem
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


def pick_demo_questions(items: list[VQARadItem], n: int = 6) -> list[VQARadItem]:
    """Held-out (test-split) questions when the data has them, mixing closed and open, one per image first."""
    test = [r for r in items if r.split == "test"]
    pool = test or items
    closed = [r for r in pool if r.is_closed]
    opened = [r for r in pool if not r.is_closed]
    picked: list[VQARadItem] = []
    seen_images: set[str] = set()
    for group in (closed, opened, closed, opened):
        for r in group:
            if len(picked) >= n:
                break
            if r.image_key not in seen_images and r not in picked:
                picked.append(r)
                seen_images.add(r.image_key)
                break
    for r in pool:  # fill up when there are few images
        if len(picked) >= n:
            break
        if r not in picked:
            picked.append(r)
    return picked[:n]


def run_demo(out: str | Path = "indexes/demo", data: str | Path | None = None, *, n_questions: int = 6,
             show_progress: bool = True, config: Any = None) -> DemoResult:
    """Build the demo workspace in ``out`` and write ``out/demo.html``."""
    from kgclip.display import answer_html, report_html, thumbnail_data_uri
    from kgclip.engine.build import shipped_demo_dir
    from kgclip.engine.config import EngineConfig
    from kgclip.engine.engine import Engine
    from kgclip.data.demo import read_demo_metadata
    from kgclip.data.vqa_rad import read_vqa_rad

    start = time.perf_counter()
    data = data or shipped_demo_dir()
    if data is None:
        raise ConfigError("the shipped VQA-RAD sample (kgclip/demo_data/vqa-rad) is missing from this install; "
                          "reinstall kgclip or pass --data PATH to a VQA-RAD folder")
    items = read_vqa_rad(data)
    picked = pick_demo_questions(items, n_questions)
    # The asked images stay out of the case base and the answerer's training: answers and the draft come from
    # other patients' images, as they would for a new scan, not from the same image's other questions.
    config = config or EngineConfig()
    held_out = tuple(sorted(set(config.exclude_images) | {r.image_name for r in picked}))
    engine = Engine.build(replace(config, exclude_images=held_out), out, vqa_rad=data, show_progress=show_progress)
    result = DemoResult(workspace=Path(out), page=Path(out) / "demo.html")
    for r in picked:
        result.answers.append(engine.ask(r.image_path, r.question))
        result.gold.append(r.answer)
    report_image = picked[0].image_path if picked else items[0].image_path
    # The sample's region and modality per image (derived from its training questions, kgclip.data.demo): a JPEG has
    # no header to say them, and the similar cases' vote is unreliable on 39 images.
    meta = read_demo_metadata(data).get(Path(report_image).name, {})
    result.report = engine.draft_report(report_image, region=meta.get("region") or None,
                                        modality=meta.get("modality") or None)
    result.report_image = str(report_image)
    result.seconds = time.perf_counter() - start

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>kgclip demo</title></head><body "
             "style='font-family:sans-serif;max-width:1100px;margin:auto'>",
             "<h1>kgclip demo</h1>",
             f"<p>Workspace <code>{html.escape(str(out))}</code>: {len(engine.cases)} cases, {len(engine.graph)} "
             f"concepts, answerer trained on {len(engine.answerer.examples)} questions. Questions below are from the "
             "held-out test split of the shipped VQA-RAD sample (CC0), about images kept out of the case base and of "
             "the answerer's training; the gold answer is shown beside each answer. "
             "Evidence lists similar questions on similar images, similar cases and knowledge-graph facts.</p>"]
    correct = 0
    for ans, gold, r in zip(result.answers, result.gold, picked):
        from kgclip.rag.answerer import normalize_answer

        ok = normalize_answer(ans.text) == normalize_answer(gold)
        correct += ok
        parts.append("<hr/><div style='display:flex;gap:16px'>"
                     f"<div><img src='{thumbnail_data_uri(r.image_path, 256)}' width='256'/>"
                     f"<div style='font-size:11px;color:#777'>{html.escape(r.image_name)}</div></div>"
                     f"<div>{answer_html(ans)}<p>gold answer: <b>{html.escape(gold)}</b> "
                     f"{'&#10003;' if ok else '&#10007;'}</p></div></div>")
    parts.append(f"<hr/><h2>Draft report for {html.escape(report_image.name)}</h2><div style='display:flex;gap:16px'>"
                 f"<div><img src='{thumbnail_data_uri(report_image, 256)}' width='256'/></div>"
                 f"<div>{report_html(result.report)}</div></div>")
    parts.append(f"<hr/><p style='color:#777'>{correct}/{len(result.answers)} demo answers match the gold answer. "
                 f"Built and run in {result.seconds:.0f} s. Manifest: <pre>"
                 f"{html.escape(json.dumps(engine.manifest['fingerprints'], indent=1))}</pre></p></body></html>")
    atomic_write_text(result.page, "".join(parts))
    return result
