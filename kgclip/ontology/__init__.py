"""The ontology layer: one concept graph from RadLex, UMLS, Disease Ontology and any OWL/OBO, with curation.

Public API (imported lazily, so ``import kgclip.ontology`` stays light and pulls in neither rdflib nor networkx):

- model: :class:`Concept`, :class:`Relation`, :class:`ConceptGraph`, :class:`ValidationReport`;
- readers: :func:`read_records`, :func:`load_graph`, :func:`detect_format` (:mod:`kgclip.ontology.sources`);
- storage: :func:`save_graph`, :func:`load_graph_dir`, :func:`load_ontologies`, :func:`shipped_ontology_dirs`
  (:mod:`kgclip.ontology.store`), :func:`save_cache`, :func:`load_cache` (:mod:`kgclip.ontology.cache`),
  :func:`export_rdf` (:mod:`kgclip.ontology.rdf`), :func:`graph_dir_lock` (:mod:`kgclip.ontology.locking`);
- curation: :class:`Curator` (:mod:`kgclip.ontology.curation`), :class:`Changelog`, :class:`ChangeEntry`
  (:mod:`kgclip.ontology.changelog`), :func:`find_concepts` (:mod:`kgclip.ontology.query`);
- diff: :func:`diff_graphs`, :class:`GraphDiff` (:mod:`kgclip.ontology.diff`);
- import into a graph directory: :func:`import_source` (:mod:`kgclip.ontology.importing`);
- the shipped RadLex + Disease Ontology graph, built by one recipe: :func:`shipped_graph`
  (:mod:`kgclip.ontology.shipped`).

Example:
    >>> from kgclip.ontology import load_ontologies, Curator
    >>> graph = load_ontologies()            # the shipped RadLex + Disease Ontology       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgclip._lazy import lazy_exports

_EXPORTS = {
    "Concept": "model", "Relation": "model", "ConceptGraph": "model", "ValidationReport": "model",
    "normalize_curie": "model", "normalize_relation_type": "model",
    "read_records": "sources", "load_graph": "sources", "detect_format": "sources",
    "save_graph": "store", "load_graph_dir": "store", "load_ontologies": "store", "shipped_ontology_dirs": "store",
    "save_cache": "cache", "load_cache": "cache", "export_rdf": "rdf", "graph_dir_lock": "locking",
    "Curator": "curation", "Changelog": "changelog", "ChangeEntry": "changelog", "find_concepts": "query",
    "diff_graphs": "diff", "GraphDiff": "diff", "shipped_graph": "shipped", "import_source": "importing",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from kgclip.ontology.cache import load_cache, save_cache
    from kgclip.ontology.changelog import ChangeEntry, Changelog
    from kgclip.ontology.curation import Curator
    from kgclip.ontology.diff import GraphDiff, diff_graphs
    from kgclip.ontology.locking import graph_dir_lock
    from kgclip.ontology.model import (Concept, ConceptGraph, Relation, ValidationReport, normalize_curie,
                                       normalize_relation_type)
    from kgclip.ontology.query import find_concepts
    from kgclip.ontology.importing import import_source
    from kgclip.ontology.rdf import export_rdf
    from kgclip.ontology.shipped import shipped_graph
    from kgclip.ontology.sources import detect_format, load_graph, read_records
    from kgclip.ontology.store import load_graph_dir, load_ontologies, save_graph, shipped_ontology_dirs

__getattr__, __dir__ = lazy_exports(__name__, {name: f"kgclip.ontology.{module}" for name, module in _EXPORTS.items()})
