"""The user's own question-answer pairs: read them, and refit a workspace's answerer on them.

A QA file is JSON Lines, one pair per line::

    {"image": "scans/p1.dcm", "question": "Is there a pleural effusion?", "answer": "no"}
    {"image": "scans/p2.png", "question": "Which side is the opacity?", "answer": "left", "group": "p2-side"}

``image`` is relative to the file's folder (or absolute); ``closed`` (bool) is optional and defaults to whether the
question is yes/no or names its options; ``group`` keeps paraphrases of one question together in validation.
Every line is checked (and every image read) before anything is fitted, and errors name the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import ConfigError, InputFormatError
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.abstain import check_input, check_question
from kgclip.rag.answerer import QAExample, normalize_answer
from kgclip.rag.router import question_form
from kgclip.rag.vqa import VQAAnswerer

__all__ = ["UserQA", "read_qa_pairs", "refit_answerer"]


@dataclass(frozen=True)
class UserQA:
    """One of the user's pairs: the image file, and the example the answerer learns (keyed ``user:<path>``)."""

    image: Path
    example: QAExample


def read_qa_pairs(path: str | Path) -> list[UserQA]:
    """Read and check a QA JSON Lines file (module docstring).

    Raises:
        InputFormatError: a missing file, a line that is not a JSON object with image/question/answer, an empty
            question or answer (file and line named).
        ImageReadError: an image is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"QA file {path} does not exist; pass a JSON Lines file of "
                               '{"image", "question", "answer"} objects', path=str(path))
    out: list[UserQA] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"invalid JSON ({exc.msg})", path=str(path), line=line_no) from exc
        if not isinstance(row, dict) or not all(k in row for k in ("image", "question", "answer")):
            raise InputFormatError('each line needs "image", "question" and "answer"', path=str(path), line=line_no)
        try:
            question = check_question(row["question"])
        except InputFormatError as exc:
            raise InputFormatError(str(exc), path=str(path), line=line_no) from exc
        answer = str(row["answer"]).strip()
        if not normalize_answer(answer):
            raise InputFormatError(f"answer {answer!r} is empty after normalisation", path=str(path), line=line_no)
        image = Path(row["image"]).expanduser()
        image = image if image.is_absolute() else (path.parent / image)
        verdict = check_input(image)
        if not verdict.ok:
            raise InputFormatError(f"image {image} is out of range: {verdict.reason}", path=str(path), line=line_no)
        closed = bool(row["closed"]) if "closed" in row else question_form(question) != "open"
        key = f"user:{image.resolve()}"
        out.append(UserQA(image, QAExample(key, question, answer, closed, str(row.get("group") or ""))))
    if not out:
        raise InputFormatError("the QA file has no pairs", path=str(path))
    return out


def refit_answerer(answerer: VQAAnswerer, pairs: Sequence[UserQA], featurizer: Any, *,
                   graph: ConceptGraph | None, replace: bool = False, show_progress: bool = True
                   ) -> tuple[VQAAnswerer, dict[str, Any]]:
    """A new answerer fitted on the old one's examples plus ``pairs`` (or on ``pairs`` alone with ``replace``), with
    the same text encoder, configuration and image features (the old examples' vectors are reused).

    Blend selection, calibration and the image threshold are redone by cross-validation over all examples.
    """
    vectors: dict[str, np.ndarray] = {}
    examples: list[QAExample] = []
    if not replace:
        for i, e in enumerate(answerer.examples):
            vectors.setdefault(e.image_key, answerer.core.train_img[i])
            examples.append(e)
    paths = list(dict.fromkeys(p.image for p in pairs))
    new = featurizer.embed(paths, show_progress=show_progress)
    vectors.update({f"user:{p.resolve()}": v for p, v in zip(paths, new)})
    examples += [p.example for p in pairs]
    if len(examples) < 10:
        raise ConfigError(f"refitting needs at least 10 question-answer pairs, got {len(examples)}; add pairs or "
                          "drop --replace to keep the workspace's own")
    return VQAAnswerer.fit(examples, vectors, graph=graph if answerer.config.use_kg else None,
                           text_encoder=answerer.text_encoder, config=answerer.config,
                           image_featurizer=answerer.meta.get("image_featurizer", ""), show_progress=show_progress)
