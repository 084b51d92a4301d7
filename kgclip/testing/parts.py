"""Tiny trained parts for tests: a random KG-CLIP model directory and concept-embedding directories.

They are real artifacts (``save_pretrained`` / ``ConceptEmbeddings.save``), only small and untrained, so code that
loads, fingerprints and checks them runs exactly as with trained ones.
"""

from __future__ import annotations

from pathlib import Path

from kgclip.ontology.model import ConceptGraph

__all__ = ["save_tiny_model", "save_tiny_embeddings"]


def save_tiny_model(directory: str | Path, seed: int = 0, ensemble: int = 1) -> None:
    """A randomly initialised KG-CLIP model (hashing text tower, 32 px images, 16-d space per head, ``ensemble``
    heads) in ``directory``."""
    import torch

    from kgclip.models.kgclip import KGClipConfig, KGClipModel

    torch.manual_seed(seed)
    cfg = KGClipConfig(text_tower="hashing-64", image_size=32, image_widths=(4, 8, 8, 16), embed_dim=16,
                       text_hidden=16, max_concepts=4, ensemble=ensemble)
    KGClipModel(cfg).save_pretrained(directory)


def save_tiny_embeddings(directory: str | Path, graph: ConceptGraph, seed: int = 0, *, dim: int = 8,
                         full_meta: bool = True) -> None:
    """Random concept embeddings of ``graph`` (``dim`` wide) in ``directory``.

    With ``full_meta`` the metadata names a text encoder and an encoder fingerprint that depends on ``seed``; on
    :func:`kgclip.testing.tiny_graph`, pleural effusion and pleura are made near neighbours so nearest-concept facts
    are predictable.
    """
    import torch

    from kgclip.kg.embeddings import ConceptEmbeddings

    vectors = torch.randn(len(graph), dim, generator=torch.Generator().manual_seed(seed))
    ids = list(graph.ids)
    if "RADLEX:RID1362" in graph and "RADLEX:RID4872" in graph:
        vectors[ids.index("RADLEX:RID1362")] = vectors[ids.index("RADLEX:RID4872")] + 0.01
    meta = {"graph_fingerprint": graph.fingerprint(), "config": {}}
    if full_meta:
        meta |= {"text_encoder": "hashing-64", "text_encoder_fingerprint": "t", "encoder_fingerprint": f"e{seed}",
                 "config": {"encoder": "test"}, "relation_types": []}
    ConceptEmbeddings(vectors=vectors, ids=ids, meta=meta).save(directory)
