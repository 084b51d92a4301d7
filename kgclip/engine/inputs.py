"""Checks on what a user hands the engine, cheap enough to run before any model is imported.

The CLI runs them first, so a bad question, a missing or unreadable image, or a folder that is no workspace fails in
well under a second with a message saying what to do, instead of after torch and the text tower have loaded. The
engine runs the same checks, so library callers get the same messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kgclip.errors import ConfigError, ImageReadError, InputFormatError

__all__ = ["MAX_QUESTION_CHARS", "check_question", "check_workspace_dir", "read_query_image"]

# Longer than any clinical question; a cap keeps a pasted document (or a 1 MB argument) out of the text tower.
MAX_QUESTION_CHARS = 2000


def check_question(question: object) -> str:
    """The question, stripped.

    Raises:
        InputFormatError: not a string, empty, over :data:`MAX_QUESTION_CHARS` characters, or carrying bytes that
            are not UTF-8 (a shell passes those through as lone surrogates).
    """
    if not isinstance(question, str) or not question.strip():
        raise InputFormatError("the question is empty; ask something like 'Is there a pleural effusion?'")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InputFormatError(f"the question is {len(question)} characters long; ask one question of at most "
                               f"{MAX_QUESTION_CHARS} characters")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        raise InputFormatError("the question contains bytes that are not UTF-8 text; retype it or set the "
                               "terminal's encoding to UTF-8") from None
    return question


def check_workspace_dir(directory: str | os.PathLike[str]) -> Path:
    """``directory`` if it holds an engine workspace.

    Raises:
        ConfigError: it does not exist or is not a workspace.
    """
    path = Path(directory)
    if not (path / "engine_config.json").is_file():
        what = "does not exist" if not path.exists() else "is not an engine workspace (no engine_config.json)"
        raise ConfigError(f"{path} {what}; build one with `kgclip demo --out {path}` or pass --workspace DIR")
    return path


def read_query_image(image: Any) -> Any:
    """Decode a path (or bytes) with :func:`kgclip.imaging.io.read_image`; other inputs pass through unchanged.

    Raises:
        ImageReadError: a missing, empty, unreadable or oversized image (the message names the file and the fix).
    """
    if not isinstance(image, str | os.PathLike | bytes | bytearray | memoryview):
        return image
    if isinstance(image, str | os.PathLike):
        try:
            os.fspath(image).encode("utf-8")
        except UnicodeEncodeError:
            raise ImageReadError("the image path contains bytes that are not UTF-8; rename the file") from None
    from kgclip.imaging.io import read_image

    return read_image(image)
