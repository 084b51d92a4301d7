"""Content fingerprints that tie an artifact to the inputs it was built from.

A fingerprint is a short hex digest (blake2b, 16 bytes). Artifacts store the fingerprints of their inputs; a later
stage recomputes them and refuses (or refreshes) a stale artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["fingerprint_bytes", "fingerprint_json", "fingerprint_file", "fingerprint_strings", "features_fingerprint",
           "Hasher"]

_DIGEST_SIZE = 16


class Hasher:
    """Incremental hasher with typed updates, so ``("ab", "c")`` and ``("a", "bc")`` differ."""

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=_DIGEST_SIZE)

    def update_str(self, text: str) -> "Hasher":
        data = text.encode("utf-8")
        self._h.update(len(data).to_bytes(8, "little"))
        self._h.update(data)
        return self

    def update_bytes(self, data: bytes) -> "Hasher":
        self._h.update(len(data).to_bytes(8, "little"))
        self._h.update(data)
        return self

    def update_array(self, array: np.ndarray) -> "Hasher":
        array = np.ascontiguousarray(array)
        self.update_str(f"{array.dtype.str}{array.shape}")
        self._h.update(array.tobytes())
        return self

    def update_json(self, obj: Any) -> "Hasher":
        return self.update_str(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def features_fingerprint(featurizer: Any) -> str:
    """What an artifact trained on an image-feature extractor's vectors records and checks (metadata heads, concept
    prior): the extractor's ``fingerprint``, else its name."""
    return str(getattr(featurizer, "fingerprint", featurizer.name))


def fingerprint_bytes(data: bytes) -> str:
    """Fingerprint of raw bytes."""
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def fingerprint_json(obj: Any) -> str:
    """Fingerprint of a JSON-serialisable object (key order does not matter)."""
    return Hasher().update_json(obj).hexdigest()


def fingerprint_strings(items: Iterable[str]) -> str:
    """Fingerprint of an ordered sequence of strings."""
    h = Hasher()
    for item in items:
        h.update_str(item)
    return h.hexdigest()


def fingerprint_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Fingerprint of a file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()
