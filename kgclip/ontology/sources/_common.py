"""Shared pieces of the readers: the bad-row policy, line iteration with UTF-8 checks, id helpers.

Nothing here builds graphs; it only turns bytes into text lines and problems into errors or warnings.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from kgclip.errors import ConfigError, InputFormatError
from kgclip.ontology.model import normalize_curie

__all__ = ["OnError", "Policy", "iter_lines", "local_name", "normalize_xref", "check_not_empty", "SourceWarning"]

OnError = Literal["raise", "skip"]


class SourceWarning(UserWarning):
    """A bad row or element was skipped under ``on_error="skip"``; the message names file and line."""


class Policy:
    """What a reader does with a bad row: ``"raise"`` an :class:`InputFormatError`, or ``"skip"`` it with a warning.

    Both name the file and (when known) the line, and say what to do.
    """

    def __init__(self, on_error: str, path: str | os.PathLike[str]) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip' (--on-error raise|skip), not {on_error!r}")
        self.on_error = on_error
        self.path = str(path)
        self.skipped = 0

    def bad(self, message: str, line: int | None = None, path: str | os.PathLike[str] | None = None) -> None:
        """Report a bad row: raise, or warn and return (the caller then skips the row)."""
        where = str(path) if path is not None else self.path
        if self.on_error == "raise":
            raise InputFormatError(message + " (or skip bad rows with a warning: `--on-error skip` on the command "
                                   "line, on_error=\"skip\" in Python)",
                                   path=where, line=line)
        self.skipped += 1
        loc = f"{where}:{line}" if line is not None else where
        warnings.warn(f"{loc}: skipped: {message}", SourceWarning, stacklevel=3)


def check_not_empty(path: Path, policy: Policy) -> bool:
    """False (after raising or warning) when ``path`` is missing or holds no bytes."""
    if not path.exists():
        raise InputFormatError("file not found; check the path", path=str(path))
    if path.is_file() and path.stat().st_size == 0:
        policy.bad("the file is empty; was the download or export interrupted? Re-create it", path=path)
        return False
    return True


def iter_lines(path: Path, policy: Policy, *, skip: int = 0,
               fix: str = "re-save the file as UTF-8") -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of each line, decoded as UTF-8, without the line ending.

    Streams the file (never reads it whole). A line that is not valid UTF-8 is reported through ``policy`` (the
    message ends with ``fix``) and skipped. A leading byte-order mark is dropped. The first ``skip`` lines are not
    decoded or yielded (a faster reader already handled them).
    """
    if not check_not_empty(path, policy):
        return
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number <= skip:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                policy.bad(f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not valid UTF-8; {fix}",
                           line=number)
                continue
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


def local_name(iri: str) -> str:
    """The part of an IRI after its last ``#`` or ``/``: ``.../RID/#RID3441`` and ``.../RID/RID3441`` -> ``RID3441``."""
    cut = max(iri.rfind("#"), iri.rfind("/"))
    return iri[cut + 1:] if cut >= 0 else iri


_SNOMED_VERSIONED = re.compile(r"^SNOMEDCT(?:_US)?(?:_\d{4}_\d{2}_\d{2})?:", re.IGNORECASE)


def normalize_xref(text: str) -> str | None:
    """A cross-reference as a namespaced id, or ``None`` for things that are not ids (URLs, free text).

    ``UMLS_CUI:C0018923`` -> ``UMLS:C0018923``; ``SNOMEDCT_US_2025_09_01:39000009`` -> ``SNOMEDCT:39000009``.
    """
    text = text.strip()
    if not text or " " in text or text.lower().startswith(("url:", "http:", "https:")):
        return None
    text = _SNOMED_VERSIONED.sub("SNOMEDCT:", text)
    out = normalize_curie(text)
    return out if ":" in out else None


def unquote(field: str) -> str:
    """Strip the double quotes some TSV exports put around every field; ``""`` inside becomes ``"``."""
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field
