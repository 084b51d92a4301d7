"""Vector indexes: the :class:`VectorIndex` protocol, the FAISS backend, metadata filters, langchain adapters.

Names are imported lazily so that ``import kgclip.index`` does not load FAISS or langchain.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "VectorIndex",
    "SearchHit",
    "create_index",
    "load_index",
    "FaissIndex",
    "IndexConfig",
    "MetadataStore",
    "KgclipEmbeddings",
    "KgclipVectorStore",
    "KgclipRetriever",
]

_WHERE = {
    "VectorIndex": "base", "SearchHit": "base", "create_index": "base", "load_index": "base",
    "FaissIndex": "faiss_index", "IndexConfig": "faiss_index", "MetadataStore": "metadata",
    "KgclipEmbeddings": "langchain", "KgclipVectorStore": "langchain", "KgclipRetriever": "langchain",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"kgclip.index.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kgclip.index' has no attribute {name!r}")
