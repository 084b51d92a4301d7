"""Vector indexes: the :class:`VectorIndex` protocol, the FAISS backend, metadata filters, langchain adapters.

Names are imported lazily so that ``import kgclip.index`` does not load FAISS or langchain.
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


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
    "VectorIndex": "protocol", "SearchHit": "protocol", "create_index": "base", "load_index": "base",
    "FaissIndex": "faiss_index", "IndexConfig": "faiss_index", "MetadataStore": "metadata",
    "KgclipEmbeddings": "langchain", "KgclipVectorStore": "langchain", "KgclipRetriever": "langchain",
}

__getattr__, __dir__ = lazy_exports(__name__, {name: f"kgclip.index.{module}" for name, module in _WHERE.items()})
