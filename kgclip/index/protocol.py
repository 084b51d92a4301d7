"""What every index backend implements and returns: the :class:`VectorIndex` protocol, :class:`SearchHit`, and the
registry of backends by name.

Backend modules (``faiss_index``, ``milvus_index``...) import this module and register their class with
``@INDEX_BACKENDS.register("name")``; :mod:`kgclip.index.base` imports the backends to create and load indexes by
name. Keeping the protocol here, below both, is what keeps the package free of import cycles.

A backend stores unit vectors under explicit 64-bit integer ids together with item metadata, searches them by inner
product (cosine similarity), supports remove / update (``add`` with an existing id replaces it), filtered search,
and saves to / loads from a directory. ``tests/index/conformance.py`` is the behaviour every registered backend must
pass.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kgclip.resolver import Registry

__all__ = ["SearchHit", "SearchResults", "VectorIndex", "INDEX_BACKENDS", "Filters"]

#: Filters accepted by ``search``: a column name (``kind``, ``source``, ``modality``, ``body_part``, ``view``,
#: ``case_id``) or ``concept`` mapped to one value or a list of accepted values (OR within a key, AND across keys).
Filters = Mapping[str, Any]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is several times slower, and searches build many
class SearchHit:
    """One search result.

    Attributes:
        id: the item's 64-bit integer id, as given to ``add``.
        score: inner product of the (unit) query and item vectors, i.e. cosine similarity; higher is closer.
        metadata: the item's stored metadata (``kind``, ``modality``, ``text``, ``concepts``... and extra keys).
    """

    id: int
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return _hits_html([self])


class SearchResults(list):
    """The hits of one query (a ``list[SearchHit]``, best first) with a notebook rendering."""

    def _repr_html_(self) -> str:
        return _hits_html(list(self))


def _hits_html(hits: Sequence[SearchHit]) -> str:
    rows = []
    for rank, hit in enumerate(hits, 1):
        meta = dict(hit.metadata)
        text = str(meta.pop("text", "") or "")
        if len(text) > 160:
            text = text[:157] + "..."
        rest = ", ".join(f"{k}={v}" for k, v in meta.items() if v not in (None, "", [], {}))
        rows.append(
            f"<tr><td>{rank}</td><td>{hit.id}</td><td>{hit.score:.4f}</td>"
            f"<td>{html.escape(text)}</td><td>{html.escape(rest)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>#</th><th>id</th><th>score</th><th>text</th><th>metadata</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


@runtime_checkable
class VectorIndex(Protocol):
    """What every index backend provides.

    Vectors are L2-normalised on the way in (both items and queries), so scores are cosine similarities.
    """

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    @property
    def encoder_fingerprint(self) -> str | None:
        """Fingerprint of the encoder that produced the item vectors (checked again at load time)."""
        ...

    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add items; an id already present is replaced (vector and metadata).

        Shapes: ``ids`` ``[N]`` int64, ``vectors`` ``[N, dim]`` float32, ``metadata`` length N.
        """
        ...

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items by id; unknown ids are ignored. Returns how many were removed."""
        ...

    def search(
        self, query: np.ndarray, k: int = 10, filters: Filters | None = None
    ) -> list[list[SearchHit]]:
        """Top-``k`` items per query among those matching ``filters``, best first.

        Shapes: ``query`` ``[Q, dim]`` (or ``[dim]``) -> Q lists of at most ``k`` hits.
        """
        ...

    def get(self, ids: Sequence[int] | np.ndarray) -> list[dict[str, Any] | None]:
        """Stored metadata for each id (``None`` where unknown)."""
        ...

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index atomically into ``directory`` (replacing an earlier save)."""
        ...

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, **kwargs: Any
    ) -> "VectorIndex":
        """Load a saved index; refuses a different ``encoder_fingerprint`` with ``EncoderMismatchError``."""
        ...

    def __len__(self) -> int: ...


#: Index backends by name; each value is a class implementing :class:`VectorIndex`.
INDEX_BACKENDS: Registry[type] = Registry("index backend")
