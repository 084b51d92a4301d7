"""Checks and limits on everything a caller hands the engine's queries, so that a bad or oversized input is a clear
:class:`~kgclip.errors.InputFormatError` before any work (and never an out-of-memory kill or a raw traceback).

Limits (documented; raise them here if a real use needs more):

- ``k``: a whole number >= 1; capped at the number of cases and at :data:`MAX_K`;
- a question at most :data:`MAX_QUESTION_CHARS` characters, a search text at most :data:`MAX_TEXT_CHARS`; both
  valid Unicode (no lone surrogates, which is how undecodable command-line bytes arrive);
- the CLI runs :func:`check_workspace_dir` (and :func:`kgclip.rag.abstain.check_question` / ``check_input``) before
  anything heavy is imported, so a bad input fails in well under a second;
- filters: keys are names, values are strings / numbers (or a list of them), at most :data:`MAX_FILTER_VALUES`
  values in all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgclip.errors import ConfigError, InputFormatError
from kgclip.rag.abstain import MAX_QUESTION_CHARS  # the one question limit (rag checks questions)

__all__ = ["MAX_K", "MAX_QUESTION_CHARS", "MAX_TEXT_CHARS", "MAX_FILTER_VALUES", "MAX_CASES_PER_ADD",
           "check_text", "check_k", "check_filters", "check_workspace_dir"]

MAX_K = 10_000
MAX_TEXT_CHARS = 20_000
MAX_FILTER_VALUES = 1_000
MAX_CASES_PER_ADD = 100_000


def check_text(value: object, what: str, limit: int, example: str) -> str:
    """``value`` stripped, or ``InputFormatError`` for a non-string, empty, over-long or non-Unicode text."""
    if isinstance(value, bytes):
        raise InputFormatError(f"the {what} is bytes; pass text (str), e.g. {example!r}")
    if not isinstance(value, str) or not value.strip():
        raise InputFormatError(f"the {what} is empty; pass something like {example!r}")
    if len(value) > limit:
        raise InputFormatError(f"the {what} has {len(value):,} characters, above the limit of {limit:,}; shorten it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputFormatError(f"the {what} is not valid text (undecodable bytes, e.g. a file or terminal that is "
                               "not UTF-8); pass it as UTF-8") from None
    return value.strip()


def check_k(k: object, n_items: int, what: str = "k") -> int:
    """``k`` capped at ``n_items`` (at least 1) and :data:`MAX_K`; ``InputFormatError`` unless a whole number >= 1."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputFormatError(f"{what} must be a whole number >= 1, got {k!r}")
    return max(1, min(k, n_items, MAX_K))


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``filters`` as a plain dict, or ``InputFormatError`` for a bad key, a bad value or too many values."""
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        raise InputFormatError(f"filters must be a mapping like {{'modality': 'CT'}}, got {type(filters).__name__}")
    out: dict[str, Any] = {}
    total = 0
    for key, value in filters.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise InputFormatError(f"filter key {key!r} is not a metadata name such as 'modality' or 'body_part'")
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise InputFormatError(f"filter {key!r}: values must be text or numbers (or a list of them), got "
                                       f"{type(v).__name__}")
            if isinstance(v, str) and v:
                check_text(v, f"value of filter {key!r}", MAX_TEXT_CHARS, "CT")
        total += len(values)
        if total > MAX_FILTER_VALUES:
            raise InputFormatError(f"filters hold more than {MAX_FILTER_VALUES:,} values; narrow them (e.g. filter "
                                   "by a broader field) or search without filters and select afterwards")
        out[key] = value if len(values) == 1 and not isinstance(value, (list, tuple, set, frozenset)) else values
    return out or None


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
