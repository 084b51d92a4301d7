"""What the dataset readers share: the bad-row policy, root resolution, JSON loading with clear errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal

from kgclip.config import shared_data_dir
from kgclip.errors import DataNotFoundError, InputFormatError

__all__ = ["OnError", "handle_bad_row", "resolve_root", "load_json"]

# What a reader does with a malformed row: raise InputFormatError, warn and skip it, or skip it silently.
OnError = Literal["raise", "warn", "skip"]


def handle_bad_row(on_error: OnError, message: str, path: Path, line: int | None) -> None:
    """Apply the policy; ``line`` is a 1-based line (CSV/JSONL) or element index + 1 (JSON arrays)."""
    if on_error not in ("raise", "warn", "skip"):
        raise ValueError(f"on_error must be 'raise', 'warn' or 'skip', got {on_error!r}")
    if on_error == "raise":
        raise InputFormatError(message + " (pass on_error='warn' or 'skip' to drop such rows)", path=str(path),
                               line=line)
    if on_error == "warn":
        warnings.warn(f"{path}:{line}: {message}; row skipped", stacklevel=3)


def resolve_root(root: str | Path | None, folder: str, what: str) -> Path:
    """``root`` as given, or ``<shared data>/<folder>`` when ``None``; a clear error when it is missing."""
    if root is None:
        shared = shared_data_dir()
        if shared is None:
            raise DataNotFoundError(
                f"no path given for {what} and no development data folder found; pass the dataset's directory"
            )
        root = shared / folder
    path = Path(root).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"{what} not found at {path}; pass the dataset's directory")
    return path


def load_json(path: Path) -> Any:
    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing; is this the right dataset directory?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from exc
