"""kgclip-specific behaviour of the langchain adapters (the standard suites are in test_langchain_suites.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from kgclip.errors import EncoderMismatchError
from kgclip.index.langchain import KgclipEmbeddings, KgclipRetriever, KgclipVectorStore, string_id_to_int

TEXTS = ["left pleural effusion", "acute subdural hematoma", "no acute intracranial abnormality",
         "right pneumothorax", "cardiomegaly"]
META = [{"modality": "XR", "concepts": ["RADLEX:RID4872"]}, {"modality": "CT"}, {"modality": "CT"},
        {"modality": "XR", "concepts": ["RADLEX:RID5352"]}, {"modality": "XR", "n": 1}]


def test_embeddings_wrap_kgclip_encoders() -> None:
    emb = KgclipEmbeddings("hashing-64")
    docs = emb.embed_documents(TEXTS[:2])
    assert len(docs) == 2 and len(docs[0]) == 64 == emb.dim
    assert emb.embed_query(TEXTS[0]) == pytest.approx(docs[0])
    assert emb.fingerprint == emb.encoder.fingerprint


def test_store_search_filters_and_scores() -> None:
    store = KgclipVectorStore.from_texts(TEXTS, KgclipEmbeddings("hashing-64"), metadatas=META,
                                         ids=[f"doc{i}" for i in range(5)])
    top = store.similarity_search("pleural effusion", k=1)[0]
    assert top == Document(id="doc0", page_content=TEXTS[0], metadata=META[0])
    ct = store.similarity_search_with_score("acute", k=5, filter={"modality": "CT"})
    assert {d.id for d, _ in ct} == {"doc1", "doc2"} and all(-1 <= s <= 1 for _, s in ct)
    by_concept = store.similarity_search("x", k=5, filter={"concept": "RADLEX:RID5352"})
    assert [d.id for d in by_concept] == ["doc3"]
    relevance = store.similarity_search_with_relevance_scores("pleural effusion", k=2)
    assert all(0 <= s <= 1 for _, s in relevance)
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"modality": "XR"}})
    assert all(d.metadata["modality"] == "XR" for d in retriever.invoke("effusion"))
    ours = KgclipRetriever(vectorstore=store, k=3, filters={"modality": "CT"})
    assert len(ours.invoke("hematoma")) == 2 and len(ours.invoke("hematoma", k=1)) == 1


def test_string_ids_are_stable() -> None:
    assert string_id_to_int("a") == string_id_to_int("a") != string_id_to_int("b")
    assert 0 <= string_id_to_int("x" * 1000) < 2**63


def test_save_load_and_encoder_refusal(tmp_path: Path) -> None:
    store = KgclipVectorStore.from_texts(TEXTS, KgclipEmbeddings("hashing-64"), metadatas=META, factory="HNSW8")
    store.save_local(tmp_path / "store")
    loaded = KgclipVectorStore.load_local(tmp_path / "store", KgclipEmbeddings("hashing-64"))
    assert loaded.similarity_search("right pneumothorax", k=1)[0].page_content == "right pneumothorax"
    with pytest.raises(EncoderMismatchError):
        KgclipVectorStore.load_local(tmp_path / "store", KgclipEmbeddings("hashing-32"))
    with pytest.raises(EncoderMismatchError):
        KgclipVectorStore(KgclipEmbeddings("hashing-32"), loaded.index)
