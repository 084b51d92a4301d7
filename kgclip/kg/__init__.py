"""Concept-graph encoders: ConceptGraph -> PyG data -> GNN trained by link prediction -> ConceptEmbeddings.

From a fresh clone (shipped ``ontologies/radlex`` + ``ontologies/doid``, MiniLM text tower)::

    kgclip kg train                      # -> indexes/kg/  (--quick: at most 10 epochs)
    kgclip kg neighbors DOID:552 -k 10   # sanity-check a concept
    kgclip kg refresh --ontology ontologies/doid --ontology ontologies/radlex   # after curation edits

In Python::

    from kgclip.kg import ConceptEmbeddings, train_embeddings
    emb = train_embeddings(graph)                       # or ConceptEmbeddings.load("indexes/kg", graph=graph)
    emb.get(["DOID:552"]), emb.nearest("DOID:552", 5)
    emb = emb.refresh(graph, curator.changelog.changed_ids(since))   # after edits: no retraining

Heavy imports (torch, torch_geometric) happen when a name is first used, so ``import kgclip.kg`` stays cheap.
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


__all__ = ["ConceptEmbeddings", "KGTrainConfig", "train_embeddings", "to_pyg", "concept_features", "ENCODERS"]

_WHERE = {
    "ConceptEmbeddings": "kgclip.kg.embeddings",
    "KGTrainConfig": "kgclip.kg.train",
    "train_embeddings": "kgclip.kg.build",
    "to_pyg": "kgclip.kg.convert",
    "concept_features": "kgclip.kg.convert",
    "ENCODERS": "kgclip.kg.encoders",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
