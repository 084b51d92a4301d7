"""Export a :class:`~kgclip.ontology.model.ConceptGraph` as OWL (Turtle or RDF/XML) through rdflib.

The vocabulary is the one kgclip's ``owl`` reader reads back: labels, oboInOwl synonyms and xrefs, IAO definitions,
``owl:deprecated``, ``rdfs:subClassOf`` for ``is_a`` and ``owl:Restriction`` / ``someValuesFrom`` for every other
relation type, plus ``kgclip:conceptId`` so that ids survive exactly. rdflib is imported only when exporting.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from kgclip.atomic import atomic_path
from kgclip.ontology.model import ConceptGraph

__all__ = ["export_rdf", "concept_iri", "KGCLIP_NS"]

KGCLIP_NS = "https://kgclip.dev/schema#"  # kgclip's own annotations (exact id, semantic types, source)
_IRI_BASES = {"RADLEX": "http://www.radlex.org/RID/", "UMLS": "http://purl.bioontology.org/ontology/UMLS/"}
_PROPERTY_IRIS = {"part_of": "http://purl.obolibrary.org/obo/BFO_0000050",
                  "has_part": "http://purl.obolibrary.org/obo/BFO_0000051",
                  "has_symptom": "http://purl.obolibrary.org/obo/RO_0002452",
                  "located_in": "http://purl.obolibrary.org/obo/RO_0001025"}


def concept_iri(concept_id: str) -> str:
    """The IRI a concept is exported under: RadLex and UMLS IRIs as their publishers write them, OBO PURLs for
    ``PREFIX:digits`` ids, and ``https://kgclip.dev/id/<id>`` (percent-encoded) otherwise."""
    prefix, _, local = concept_id.partition(":")
    if (prefix == "RADLEX" and re.fullmatch(r"RID\d+", local)) or (prefix == "UMLS" and re.fullmatch(r"C\d{7}", local)):
        return _IRI_BASES[prefix] + local
    if prefix.isalpha() and local[:1].isdigit() and quote(local, safe="") == local:
        return f"http://purl.obolibrary.org/obo/{prefix}_{local}"
    return "https://kgclip.dev/id/" + quote(concept_id, safe=":")


def export_rdf(graph: ConceptGraph, path: str | os.PathLike[str], fmt: str = "turtle") -> Path:
    """Write ``graph`` as an OWL ontology (``fmt``: ``"turtle"`` or ``"xml"``), atomically.

    Every concept is an ``owl:Class`` carrying its exact kgclip id (``kgclip:conceptId``), label, synonyms
    (``oboInOwl:hasExactSynonym``), definition (``IAO:0000115``), xrefs (``oboInOwl:hasDbXref``), semantic types and
    source (``kgclip:semanticType`` / ``kgclip:source``) and ``owl:deprecated``. Each relation type is an
    ``owl:ObjectProperty`` labelled with its kgclip name, so re-importing with the ``owl`` reader gives the same ids,
    names, synonyms, definitions, xrefs and relations.
    """
    from rdflib import BNode, Graph, Literal, Namespace, URIRef
    from rdflib.namespace import OWL, RDF, RDFS, XSD

    formats = {"turtle": "turtle", "ttl": "turtle", "xml": "pretty-xml", "rdfxml": "pretty-xml", "owl": "pretty-xml"}
    if fmt not in formats:
        raise ValueError(f"unknown RDF format {fmt!r}; choose one of {sorted(formats)}")
    oio = Namespace("http://www.geneontology.org/formats/oboInOwl#")
    kg = Namespace(KGCLIP_NS)
    definition = URIRef("http://purl.obolibrary.org/obo/IAO_0000115")
    rdf = Graph()
    for prefix, ns in (("owl", OWL), ("oboInOwl", oio), ("kgclip", kg), ("obo", "http://purl.obolibrary.org/obo/")):
        rdf.bind(prefix, ns)
    rdf.add((URIRef(f"https://kgclip.dev/ontology/{graph.name}"), RDF.type, OWL.Ontology))
    iris: dict[str, URIRef] = {}

    def iri(cid: str) -> URIRef:
        out = iris.get(cid)
        if out is None:
            out = iris[cid] = URIRef(concept_iri(cid))
        return out

    from tqdm.auto import tqdm

    for c in tqdm(graph.concepts(), total=len(graph), desc="export concepts", unit="concept",
                  disable=len(graph) < 20_000):
        node = iri(c.id)
        rdf.add((node, RDF.type, OWL.Class))
        rdf.add((node, kg.conceptId, Literal(c.id)))
        if c.name:
            rdf.add((node, RDFS.label, Literal(c.name)))
        for syn in c.synonyms:
            rdf.add((node, oio.hasExactSynonym, Literal(syn)))
        if c.definition:
            rdf.add((node, definition, Literal(c.definition)))
        for xref in c.xrefs:
            rdf.add((node, oio.hasDbXref, Literal(xref)))
        for stype in c.semantic_types:
            rdf.add((node, kg.semanticType, Literal(stype)))
        if c.source:
            rdf.add((node, kg.source, Literal(c.source)))
        if c.deprecated:
            rdf.add((node, OWL.deprecated, Literal(True, datatype=XSD.boolean)))
    properties: dict[str, URIRef] = {}
    for r in [*graph.relations(), *graph.dangling]:
        if r.type == "is_a":
            rdf.add((iri(r.source), RDFS.subClassOf, iri(r.target)))
            continue
        prop = properties.get(r.type)
        if prop is None:
            prop = properties[r.type] = URIRef(_PROPERTY_IRIS.get(r.type) or "https://kgclip.dev/relation/"
                                               + quote(r.type, safe=""))
            rdf.add((prop, RDF.type, OWL.ObjectProperty))
            rdf.add((prop, RDFS.label, Literal(r.type)))
        restriction = BNode()
        rdf.add((restriction, RDF.type, OWL.Restriction))
        rdf.add((restriction, OWL.onProperty, prop))
        rdf.add((restriction, OWL.someValuesFrom, iri(r.target)))
        rdf.add((iri(r.source), RDFS.subClassOf, restriction))
    path = Path(path)
    with atomic_path(path) as tmp:
        rdf.serialize(destination=str(tmp), format=formats[fmt], encoding="utf-8")
    return path
