"""Create and load indexes by backend name: the entry points of :mod:`kgclip.index`.

``create_index("faiss", dim=384, factory="HNSW32")`` and ``load_index(directory)`` resolve the backend through
:data:`~kgclip.index.protocol.INDEX_BACKENDS`, whose error lists the registered names. The protocol and result
types are defined in :mod:`kgclip.index.protocol` (which backends import) and re-exported here.

Adding a backend is one module that decorates its class with ``@INDEX_BACKENDS.register("name")`` and one import
line in :func:`_import_backends`.
"""

from __future__ import annotations

import os
from typing import Any

from kgclip.index.persistence import MANIFEST_NAME, read_manifest
from kgclip.index.protocol import INDEX_BACKENDS, Filters, SearchHit, SearchResults, VectorIndex

__all__ = [
    "SearchHit",
    "SearchResults",
    "VectorIndex",
    "Filters",
    "INDEX_BACKENDS",
    "create_index",
    "load_index",
    "read_manifest",
    "MANIFEST_NAME",
]


def _import_backends() -> None:
    """Import the backend modules, which register themselves (on first use, so ``import kgclip.index`` stays light;
    pymilvus itself is imported only when a Milvus index is made)."""
    import kgclip.index.faiss_index  # noqa: F401
    import kgclip.index.milvus_index  # noqa: F401


def create_index(backend: str = "faiss", /, **kwargs: Any) -> VectorIndex:
    """Create an empty index of the named backend, e.g. ``create_index("faiss", dim=384, factory="HNSW32")``."""
    _import_backends()
    return INDEX_BACKENDS.resolve(backend)(**kwargs)


def backend_class(directory: str | os.PathLike[str]) -> Any:
    """The class of the backend a saved index's manifest names (``FaissIndex``, ``MilvusIndex``...)."""
    _import_backends()
    return INDEX_BACKENDS.resolve(read_manifest(directory)["backend"])


def load_index(
    directory: str | os.PathLike[str], encoder_fingerprint: str | None = None, **kwargs: Any
) -> VectorIndex:
    """Load a saved index with the backend its manifest names."""
    return backend_class(directory).load(directory, encoder_fingerprint=encoder_fingerprint, **kwargs)
