"""The workspace's case collection and its vector tables.

A case is one image with its text (findings, caption, or statements derived from its question/answer pairs). Each
vector table (image vectors, text vectors) is a :class:`kgclip.index` index of the backend the engine names
(``"faiss"`` or ``"milvus"``; a chosen backend that fails raises), or by default FAISS when installed and a small
exact in-memory table otherwise; all are saved with the encoder fingerprint and refuse another encoder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.errors import ArtifactCorruptError, EncoderMismatchError

__all__ = ["Case", "VectorTable", "save_cases", "load_cases"]


@dataclass
class Case:
    """One case. ``image`` is a path relative to the workspace (or absolute)."""

    case_id: str
    image: str
    text: str = ""
    modality: str = ""
    body_part: str = ""
    qa: list[tuple[str, str]] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)  # linked, non-negated concept ids of ``text``
    split: str = "train"


def save_cases(path: Path, cases: Sequence[Case]) -> None:
    atomic_write_json(path, [asdict(c) for c in cases])


def load_cases(path: Path) -> list[Case]:
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is missing or unreadable ({exc}); rebuild the workspace") from exc
    return [Case(**{**r, "qa": [tuple(x) for x in r.get("qa", [])]}) for r in rows]


def _faiss_backend() -> bool:
    try:
        import kgclip.index.faiss_index  # noqa: F401
    except Exception:  # noqa: BLE001 - backend not installed (yet): use the exact in-memory table
        return False
    return True


class VectorTable:
    """Unit vectors under integer ids with metadata; exact inner-product search with metadata filters.

    Shapes:
        ``add(ids [N], vectors [N, dim])``; ``search(query [dim], k)`` -> hits ``(id, score, metadata)``.
    """

    def __init__(self, dim: int, encoder_fingerprint: str, *, prefer_faiss: bool = True,
                 backend: str | None = None, **index_kwargs: Any) -> None:
        """``backend``: an index backend by name (``"faiss"``, ``"milvus"``) with its ``index_kwargs`` (e.g.
        ``uri=``, ``collection=``); it must work, there is no fallback. ``None``: FAISS when installed, else the
        exact in-memory table."""
        self.dim = dim
        self.encoder_fingerprint = encoder_fingerprint
        self._index = None
        self._backend = "exact"
        self._ids = np.zeros(0, np.int64)
        self._vectors = np.zeros((0, dim), np.float32)
        self._meta: dict[int, dict[str, Any]] = {}
        if backend is not None:
            self._index = _create_explicit(backend, dim, encoder_fingerprint, index_kwargs)
            self._backend = backend
            return
        if prefer_faiss and _faiss_backend():
            try:
                from kgclip.index.base import create_index

                self._index = create_index("faiss", dim=dim, encoder_fingerprint=encoder_fingerprint)
                self._backend = "faiss"
            except Exception:  # noqa: BLE001 - a constructor we do not know yet: fall back, stay correct
                self._index = None

    @property
    def backend(self) -> str:
        return self._backend

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else len(self._ids)

    def add(self, ids: Sequence[int], vectors: np.ndarray, metadata: Sequence[Mapping[str, Any]]) -> None:
        vectors = np.asarray(vectors, np.float32).reshape(len(ids), self.dim)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if self._index is not None:
            self._index.add(np.asarray(ids, np.int64), vectors, [dict(m) for m in metadata])
            return
        ids = np.asarray(ids, np.int64)
        keep = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[keep], ids])
        self._vectors = np.concatenate([self._vectors[keep], vectors])
        for i, m in zip(ids.tolist(), metadata):
            self._meta[i] = dict(m)

    def remove(self, ids: Sequence[int]) -> int:
        if self._index is not None:
            return int(self._index.remove(np.asarray(ids, np.int64)))
        keep = ~np.isin(self._ids, np.asarray(ids, np.int64))
        removed = int((~keep).sum())
        for i in self._ids[~keep].tolist():
            self._meta.pop(i, None)
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        return removed

    def search(self, query: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None
               ) -> list[tuple[int, float, dict[str, Any]]]:
        query = np.asarray(query, np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise EncoderMismatchError(f"query has dimension {query.shape[0]} but the table holds {self.dim}-d "
                                       "vectors; use the encoder the workspace was built with")
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        if self._index is not None:
            hits = self._index.search(query[None, :], k=k, filters=dict(filters) if filters else None)[0]
            return [(int(h.id), float(h.score), dict(h.metadata)) for h in hits]
        scores = self._vectors @ query
        order = np.argsort(-scores)
        out = []
        for j in order.tolist():
            meta = self._meta[int(self._ids[j])]
            if filters and not _matches(meta, filters):
                continue
            out.append((int(self._ids[j]), float(scores[j]), dict(meta)))
            if len(out) >= k:
                break
        return out

    def save(self, directory: Path) -> None:
        if self._index is not None:
            self._index.save(directory)
            return
        from safetensors.numpy import save_file

        with atomic_directory(directory) as tmp:
            save_file({"ids": self._ids, "vectors": self._vectors}, str(tmp / "vectors.safetensors"))
            atomic_write_json(tmp / "table.json", {"backend": "exact", "dim": self.dim,
                                                   "encoder_fingerprint": self.encoder_fingerprint,
                                                   "meta": {str(k): v for k, v in self._meta.items()}})

    @classmethod
    def load(cls, directory: Path, encoder_fingerprint: str) -> "VectorTable":
        directory = Path(directory)
        if (directory / "table.json").is_file():
            from safetensors.numpy import load_file

            try:
                info = json.loads((directory / "table.json").read_text(encoding="utf-8"))
                arrays = load_file(str(directory / "vectors.safetensors"))
            except (OSError, ValueError) as exc:
                raise ArtifactCorruptError(f"vector table {directory} is corrupt ({exc}); rebuild the "
                                           "workspace") from exc
            if info["encoder_fingerprint"] != encoder_fingerprint:
                raise EncoderMismatchError(f"{directory} was built with another encoder; rebuild the workspace "
                                           "or load it with the encoder it was built with")
            table = cls(int(info["dim"]), encoder_fingerprint, prefer_faiss=False)
            table._ids, table._vectors = arrays["ids"].astype(np.int64), arrays["vectors"].astype(np.float32)
            table._meta = {int(k): v for k, v in info["meta"].items()}
            return table
        from kgclip.index.base import load_index, read_manifest

        index = load_index(directory, encoder_fingerprint=encoder_fingerprint)
        table = cls.__new__(cls)
        table.dim, table.encoder_fingerprint, table._index = index.dim, encoder_fingerprint, index
        table._backend = str(read_manifest(directory)["backend"])
        table._ids, table._vectors, table._meta = np.zeros(0, np.int64), np.zeros((0, index.dim), np.float32), {}
        return table


def _create_explicit(backend: str, dim: int, encoder_fingerprint: str, kwargs: dict[str, Any]) -> Any:
    """An empty index of the chosen backend; a failure is raised (naming the backend), never hidden by a fallback."""
    from kgclip.errors import IndexError_, KgclipError
    from kgclip.index.base import create_index

    try:
        index = create_index(backend, dim=dim, encoder_fingerprint=encoder_fingerprint, **kwargs)
        if len(index) and hasattr(index, "drop"):  # a named collection left by an earlier build: start over
            index.drop()
            index.close()
            index = create_index(backend, dim=dim, encoder_fingerprint=encoder_fingerprint, **kwargs)
    except KgclipError:
        raise  # already says what failed and what to do (e.g. Milvus unreachable, naming the uri)
    except Exception as exc:  # noqa: BLE001 - e.g. a missing optional dependency
        raise IndexError_(f"cannot create the {backend!r} vector index ({type(exc).__name__}: {exc}); install "
                          f"the backend (pip install 'kgclip[{backend}]') or choose index_backend='faiss'") from exc
    return index


def _matches(meta: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    for key, wanted in filters.items():
        accepted = set(wanted) if isinstance(wanted, (list, tuple, set)) else {wanted}
        if key == "concept":
            if not accepted & set(meta.get("concepts", [])):
                return False
        elif meta.get(key) not in accepted:
            return False
    return True
