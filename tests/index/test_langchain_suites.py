"""The langchain-tests standard suites against KgclipVectorStore and KgclipRetriever."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from kgclip.index.langchain import KgclipRetriever, KgclipVectorStore

# The suites mix sync and async tests; pytest-asyncio runs the async ones and warns about the mark on the others.
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function .*> is marked with '@pytest.mark.asyncio'"),
]



class TestKgclipVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Generator[VectorStore, None, None]:  # type: ignore[override]
        store = KgclipVectorStore(embedding=self.get_embeddings())
        try:
            yield store
        finally:
            store.delete()


class TestKgclipVectorStoreHNSWStandard(VectorStoreIntegrationTests):
    """The same suite over an HNSW index, whose deletes are tombstones."""

    @pytest.fixture()
    def vectorstore(self) -> Generator[VectorStore, None, None]:  # type: ignore[override]
        store = KgclipVectorStore(embedding=self.get_embeddings(), factory="HNSW8")
        try:
            yield store
        finally:
            store.delete()


_TEXTS = ["pleural effusion on the left", "no pneumothorax", "cardiomegaly with edema", "normal chest radiograph",
          "right lower lobe consolidation"]


class TestKgclipRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[KgclipRetriever]:
        return KgclipRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        store = KgclipVectorStore.from_texts(_TEXTS, VectorStoreIntegrationTests.get_embeddings())
        return {"vectorstore": store, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "pleural effusion"
