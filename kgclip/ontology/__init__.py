"""The ontology layer: one concept graph from RadLex, UMLS, Disease Ontology and any OWL/OBO, with curation.

Public API (imported lazily, so ``import kgclip.ontology`` stays light and pulls in neither rdflib nor networkx):

- model: :class:`Concept`, :class:`Relation`, :class:`ConceptGraph`, :class:`ValidationReport`;
- readers: :func:`read_records`, :func:`load_graph`, :func:`detect_format` (:mod:`kgclip.ontology.sources`);
- storage: :func:`save_graph`, :func:`load_graph_dir`, :func:`save_cache`, :func:`load_cache`,
  :func:`load_ontologies`, :func:`shipped_ontology_dirs`, :func:`export_rdf` (:mod:`kgclip.ontology.store`);
- curation: :class:`Curator`, :class:`Changelog`, :class:`ChangeEntry`, :func:`find_concepts`
  (:mod:`kgclip.ontology.curation`);
- diff: :func:`diff_graphs`, :class:`GraphDiff` (:mod:`kgclip.ontology.diff`).

Example:
    >>> from kgclip.ontology import load_ontologies, Curator
    >>> graph = load_ontologies()            # the shipped RadLex + Disease Ontology       # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Concept": "model", "Relation": "model", "ConceptGraph": "model", "ValidationReport": "model",
    "normalize_curie": "model", "normalize_relation_type": "model",
    "read_records": "sources", "load_graph": "sources", "detect_format": "sources",
    "save_graph": "store", "load_graph_dir": "store", "save_cache": "store", "load_cache": "store",
    "load_ontologies": "store", "shipped_ontology_dirs": "store", "export_rdf": "store",
    "Curator": "curation", "Changelog": "curation", "ChangeEntry": "curation", "find_concepts": "curation",
    "diff_graphs": "diff", "GraphDiff": "diff",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from kgclip.ontology.curation import ChangeEntry, Changelog, Curator, find_concepts
    from kgclip.ontology.diff import GraphDiff, diff_graphs
    from kgclip.ontology.model import (Concept, ConceptGraph, Relation, ValidationReport, normalize_curie,
                                       normalize_relation_type)
    from kgclip.ontology.sources import detect_format, load_graph, read_records
    from kgclip.ontology.store import (export_rdf, load_cache, load_graph_dir, load_ontologies, save_cache,
                                       save_graph, shipped_ontology_dirs)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kgclip.ontology' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kgclip.ontology.{module}"), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
