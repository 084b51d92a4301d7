"""langchain-core adapters: kgclip text encoders as ``Embeddings``, a kgclip index as a ``VectorStore``, a retriever.

Plugs in only through langchain's template methods (``embed_documents`` / ``embed_query``, ``add_texts``,
``similarity_search*``, ``delete``, ``get_by_ids``, ``from_texts``, ``_get_relevant_documents``), so every
langchain chain or agent can use a kgclip index, and the standard ``langchain-tests`` suites run against it.

Langchain ids are strings; the index keeps 64-bit integer ids, so each string id maps to a stable 63-bit hash and
the string itself is stored with the item (``doc_id``). Document metadata round-trips unchanged; its keys that are
kgclip filter fields (``modality``, ``body_part``, ``concepts``...) are also indexed so ``filter=`` can use them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import ConfigError, IndexError_

try:  # an optional dependency since the [langchain] extra: say how to get it
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores import VectorStore
    from pydantic import ConfigDict
except ImportError as exc:  # pragma: no cover - exercised in an install without the extra
    raise ConfigError('the langchain adapters need langchain-core: pip install "kgclip[langchain]"') from exc
from kgclip.index.faiss_index import FaissIndex, IndexConfig
from kgclip.index.metadata import COLUMNS

__all__ = ["KgclipEmbeddings", "KgclipVectorStore", "KgclipRetriever", "string_id_to_int"]

_PROMOTED = tuple(c for c in COLUMNS if c not in ("text", "kind")) + ("concepts",)


def string_id_to_int(doc_id: str) -> int:
    """Stable non-negative 63-bit integer for a langchain string id."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little") >> 1


class KgclipEmbeddings(Embeddings):
    """A kgclip text encoder (``kgclip.text.encoders``) as langchain ``Embeddings``.

    Args:
        encoder: a ``TextEncoder`` or a name / path for :func:`kgclip.text.encoders.load_text_encoder`.
        batch_size: texts per forward pass.
    """

    def __init__(self, encoder: Any = "minilm", batch_size: int = 64) -> None:
        if isinstance(encoder, (str, os.PathLike)):
            from kgclip.text.encoders import load_text_encoder

            encoder = load_text_encoder(str(encoder))
        self.encoder = encoder
        self.batch_size = batch_size

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode(list(texts), batch_size=self.batch_size).numpy().tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _fingerprint_of(embedding: Embeddings) -> str | None:
    fingerprint = getattr(embedding, "fingerprint", None)
    return fingerprint if isinstance(fingerprint, str) else None


class KgclipVectorStore(VectorStore):
    """A langchain ``VectorStore`` over a kgclip :class:`~kgclip.index.faiss_index.FaissIndex`.

    Args:
        embedding: the langchain ``Embeddings`` (a :class:`KgclipEmbeddings` for kgclip encoders).
        index: an existing index; by default an empty one is created on the first ``add_texts`` with
            ``factory`` and the embedding dimension.
        factory: FAISS factory string for a new index.
        index_kwargs: other :class:`~kgclip.index.faiss_index.IndexConfig` fields for a new index.
    """

    def __init__(self, embedding: Embeddings, index: FaissIndex | None = None, *, factory: str = "Flat",
                 **index_kwargs: Any) -> None:
        self.embedding = embedding
        self.index = index
        self._factory = factory
        self._index_kwargs = index_kwargs
        if index is not None:
            index.check_encoder(_fingerprint_of(embedding))

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    # ------------------------------------------------------------------ writes
    def _ensure_index(self, dim: int) -> FaissIndex:
        if self.index is None:
            config = IndexConfig(dim=dim, factory=self._factory, **self._index_kwargs)
            self.index = FaissIndex(config, encoder_fingerprint=_fingerprint_of(self.embedding))
        return self.index

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Embed and add texts; an id already present is replaced. Returns the (string) ids."""
        texts = list(texts)
        if not texts:
            return []
        if metadatas is not None and len(metadatas) != len(texts):
            raise IndexError_(f"got {len(texts)} texts but {len(metadatas)} metadatas")
        if ids is not None and len(ids) != len(texts):
            raise IndexError_(f"got {len(texts)} texts but {len(ids)} ids")
        str_ids = [str(i) if i is not None else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        # Last write wins when the same id appears twice in one call.
        last = {sid: n for n, sid in enumerate(str_ids)}
        keep = sorted(last.values())
        vectors = np.asarray(self.embedding.embed_documents([texts[n] for n in keep]), dtype=np.float32)
        index = self._ensure_index(vectors.shape[1])
        items = []
        for n in keep:
            lc_meta = dict(metadatas[n]) if metadatas is not None and metadatas[n] else {}
            item: dict[str, Any] = {"kind": "text", "text": texts[n], "doc_id": str_ids[n], "lc_metadata": lc_meta}
            for key in _PROMOTED:  # index the filterable fields too (the originals stay in lc_metadata)
                value = lc_meta.get(key)
                if isinstance(value, str) or (key == "concepts" and isinstance(value, (list, tuple))):
                    item[key] = value
            items.append(item)
        index.add([string_id_to_int(str_ids[n]) for n in keep], vectors, items)
        return str_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (missing ids are ignored); ``ids=None`` deletes everything."""
        if self.index is None:
            return True
        if ids is None:
            self.index.remove(self.index.ids())
        else:
            self.index.remove([string_id_to_int(str(i)) for i in ids])
        return True

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if self.index is None:
            return []
        found = self.index.get([string_id_to_int(str(i)) for i in ids])
        return [self._document(meta) for meta in found if meta is not None]

    @staticmethod
    def _document(meta: dict[str, Any]) -> Document:
        return Document(id=meta.get("doc_id"), page_content=meta.get("text", ""),
                        metadata=dict(meta.get("lc_metadata") or {}))

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: dict[str, Any] | None = None, **kwargs: Any
                                               ) -> list[tuple[Document, float]]:
        """Top-``k`` documents with cosine similarity (higher is closer); ``filter`` uses kgclip filter keys."""
        if self.index is None or len(self.index) == 0:
            return []
        hits = self.index.search(np.asarray([embedding], dtype=np.float32), k=k, filters=filter)[0]
        return [(self._document(h.metadata), float(h.score)) for h in hits]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(self.embedding.embed_query(query), k, filter, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: dict[str, Any] | None = None, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Scores are cosine similarities in [-1, 1]; langchain relevance is in [0, 1].
        return lambda score: (1.0 + score) / 2.0

    # ------------------------------------------------------------------ construction / persistence
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, **kwargs: Any) -> "KgclipVectorStore":
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def save_local(self, directory: str | os.PathLike[str]) -> Path:
        """Save the underlying index (atomically; see :meth:`FaissIndex.save`)."""
        if self.index is None:
            raise IndexError_("nothing to save: add texts first")
        return self.index.save(directory)

    @classmethod
    def load_local(cls, directory: str | os.PathLike[str], embedding: Embeddings) -> "KgclipVectorStore":
        """Load a saved index; refuses an embedding whose fingerprint differs from the one it was built with."""
        index = FaissIndex.load(directory, encoder_fingerprint=_fingerprint_of(embedding))
        return cls(embedding, index)


class KgclipRetriever(BaseRetriever):
    """Retriever over a :class:`KgclipVectorStore`: ``k`` and ``filters`` set here or per ``invoke`` call.

    Example:
        >>> retriever = KgclipRetriever(vectorstore=store, k=5, filters={"modality": "CT"})
        >>> retriever.invoke("pleural effusion", k=3)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: KgclipVectorStore
    k: int = 4
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, filters: dict[str, Any] | None = None) -> list[Document]:
        return self.vectorstore.similarity_search(query, k=k or self.k,
                                                  filter=filters if filters is not None else self.filters)
