"""Reading the JSON header every kgclip artifact directory carries (manifest, meta, model header).

One rule set: a missing header says what the directory is not and how to make one; an unreadable one is an
:class:`~kgclip.errors.ArtifactCorruptError` saying how to recover; the header must be a JSON object.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kgclip.errors import ArtifactCorruptError

__all__ = ["read_json_header", "kgclip_version"]


def read_json_header(path: str | os.PathLike[str], *, missing: str, recover: str,
                     missing_error: type[Exception] = ArtifactCorruptError) -> dict[str, Any]:
    """Parse the JSON object at ``path``.

    Args:
        path: the header file (``manifest.json``, ``meta.json``...).
        missing: the whole message when the file does not exist (say how to create the artifact).
        recover: what to do when it is unreadable, appended to ``"<path> is unreadable (<why>); "``.
        missing_error: the error class for a missing file (e.g. ``ModelNotFoundError``).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise missing_error(missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is unreadable ({exc}); {recover}") from exc
    if not isinstance(data, dict):
        raise ArtifactCorruptError(f"{path} holds no JSON object; {recover}")
    return data


def kgclip_version() -> str:
    """The installed kgclip version, stamped into artifact headers (``"0+unknown"`` in a never-installed checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kgclip")
    except PackageNotFoundError:
        return "0+unknown"
