"""kgclip: knowledge-graph-augmented image-text retrieval and visual question answering for medical imaging.

The public API is small and loads lazily: ``import kgclip`` imports no torch, faiss or transformers until a name
that needs them is used.

Example:
    >>> import kgclip
    >>> engine = kgclip.Engine.load("indexes/demo")          # doctest: +SKIP
    >>> engine.ask("scan.dcm", "Is there a pleural effusion?")  # doctest: +SKIP
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562), so no import-time side effects.
_EXPORTS = {
    "Concept": "kgclip.ontology.model",
    "Relation": "kgclip.ontology.model",
    "ConceptGraph": "kgclip.ontology.model",
    "Curator": "kgclip.ontology.curation",
    "load_ontologies": "kgclip.ontology.store",
    "ConceptEmbeddings": "kgclip.kg.embeddings",
    "ConceptLinker": "kgclip.text.linker",
    "load_text_encoder": "kgclip.text.encoders",
    "read_image": "kgclip.imaging.io",
    "KGClipModel": "kgclip.models.kgclip",
    "create_index": "kgclip.index.base",
    "load_index": "kgclip.index.base",
    "Engine": "kgclip.engine",
    "EngineConfig": "kgclip.engine",
    "Answer": "kgclip.rag.vqa",
    "DraftReport": "kgclip.rag.report",
    "KgclipError": "kgclip.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
