"""Generic OWL ontologies (Disease Ontology, OBO-library imports, any Protégé export) in RDF/XML or Turtle.

RDF/XML is streamed by :mod:`kgclip.ontology.sources._rdfxml` (no rdflib: 10-20x faster, bounded memory).
Turtle goes through ``rdflib`` (parsed whole: Turtle files of OWL ontologies are rarely large, and Turtle has no
element structure to stream on); both feed the same interpretation, so they yield the same records.

What is read from each named class:

- ``rdfs:label`` (else ``skos:prefLabel``) -> name; ``oboInOwl:hasExactSynonym`` / ``hasRelatedSynonym`` and
  ``skos:altLabel`` -> synonyms; ``IAO:0000115`` / ``skos:definition`` -> definition;
- ``oboInOwl:hasDbXref`` and ``skos:exactMatch`` -> ``xrefs`` (``UMLS_CUI:C...`` -> ``UMLS:C...``);
- ``owl:deprecated true`` -> deprecated;
- ``rdfs:subClassOf <IRI>`` -> ``is_a``; ``rdfs:subClassOf [owl:Restriction onProperty P someValuesFrom C]`` ->
  a relation typed by P's ``rdfs:label`` when the file declares one, else by P's IRI (``BFO_0000050`` ->
  ``part_of``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from kgclip.errors import InputFormatError
from kgclip.ontology.model import IS_A, Concept, Relation, normalize_curie, normalize_relation_type
from kgclip.ontology.sources._common import Policy, check_not_empty, local_name, normalize_xref
from kgclip.ontology.sources._rdfxml import OWL, RDF, RDFS, Resource, iter_resources

__all__ = ["read_owl", "iri_to_id", "resources_from_rdflib", "is_turtle"]

OBOINOWL = "http://www.geneontology.org/formats/oboInOwl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
OBO = "http://purl.obolibrary.org/obo/"

LABELS = (RDFS + "label",)
PREF_LABELS = (SKOS + "prefLabel",)
SYNONYMS = (OBOINOWL + "hasExactSynonym", OBOINOWL + "hasRelatedSynonym", SKOS + "altLabel")
DEFINITIONS = (OBO + "IAO_0000115", SKOS + "definition")
XREFS = (OBOINOWL + "hasDbXref", SKOS + "exactMatch")
DEPRECATED = OWL + "deprecated"
SUBCLASS = RDFS + "subClassOf"
CLASS_KINDS = frozenset({OWL + "Class", RDFS + "Class"})
PROPERTY_KINDS = frozenset({OWL + "ObjectProperty", OWL + "AnnotationProperty", OWL + "DatatypeProperty",
                            OWL + "TransitiveProperty", RDF + "Property"})
DESCRIPTION = RDF + "Description"
THING = OWL + "Thing"

# Relation ids of the OBO Relation Ontology whose files often come without the property's label.
KNOWN_PROPERTIES = {
    "RO_0001025": "located_in",
    "RO_0004026": "disease_has_location",
    "RO_0002452": "has_symptom",
    "RO_0002200": "has_phenotype",
    "RO_0002573": "has_modifier",
    "RO_0002202": "develops_from",
    "RO_0002162": "in_taxon",
    "IDO_0000664": "has_material_basis_in",
}

_TRUE = frozenset({"true", "1"})


def iri_to_id(iri: str, namespace: str) -> str:
    """A class IRI as a namespaced id: OBO ``.../DOID_1324`` -> ``DOID:1324``; others ``<namespace>:<local name>``."""
    local = local_name(iri)
    out = normalize_curie(local) if local else ""
    if ":" not in out:
        out = f"{namespace}:{local or iri}"
    return out


def property_type(iri: str, labels: dict[str, str]) -> str:
    """The relation type of an object property: its label if known, else its IRI's local name, normalised."""
    label = labels.get(iri)
    if label:
        return normalize_relation_type(label)
    local = local_name(iri)
    return KNOWN_PROPERTIES.get(local) or normalize_relation_type(local or iri)


def _first(literals: list[tuple[str, str, str]], preds: tuple[str, ...]) -> str:
    best = ""
    for p, text, lang in literals:
        if p in preds and text:
            if lang in ("", "en") or lang.lower().startswith("en"):
                return text
            best = best or text
    return best


def concept_from_resource(res: Resource, namespace: str, source: str | None) -> Concept:
    """Interpret one class resource as a :class:`Concept` (generic OBO/OWL annotation vocabulary)."""
    cid = iri_to_id(res.iri, namespace)
    lits = res.literals
    name = _first(lits, LABELS) or _first(lits, PREF_LABELS)
    synonyms = tuple(dict.fromkeys(t for p, t, _ in lits if p in SYNONYMS and t and t != name))
    xrefs = tuple(dict.fromkeys(x for p, t, _ in lits if p in XREFS for x in (normalize_xref(t),) if x and x != cid))
    deprecated = any(p == DEPRECATED and t.lower() in _TRUE for p, t, _ in lits)
    return Concept(id=cid, name=name, synonyms=synonyms, definition=_first(lits, DEFINITIONS),
                   source=source if source is not None else cid.split(":", 1)[0].lower(),
                   deprecated=deprecated, xrefs=xrefs)


def records_from_resources(resources: Iterable[Resource], *, namespace: str, source: str | None,
                           policy: Policy) -> Iterator[Concept | Relation]:
    """The generic OWL interpretation shared by the RDF/XML and Turtle paths."""
    prop_labels: dict[str, str] = {}
    classes: set[str] = set()
    deferred: list[tuple[str, str, str, str]] = []  # restrictions whose property label may come later
    for res in resources:
        kind = res.kind
        types = {o for p, o in res.links if p == RDF + "type"}
        if kind in PROPERTY_KINDS or types & PROPERTY_KINDS:
            label = _first(res.literals, LABELS)
            if label:
                prop_labels[res.iri] = label
            continue
        if not (kind in CLASS_KINDS or types & CLASS_KINDS or (kind == DESCRIPTION and res.iri in classes)):
            continue
        classes.add(res.iri)
        concept = concept_from_resource(res, namespace, source)
        yield concept
        origin = concept.source
        for p, obj in res.links:
            if p == SUBCLASS and obj != THING:
                yield Relation(concept.id, IS_A, iri_to_id(obj, namespace), origin)
        for via, prop, filler in res.restrictions:
            if via != SUBCLASS or filler == THING:
                continue
            if prop in prop_labels or local_name(prop) in KNOWN_PROPERTIES:
                yield Relation(concept.id, property_type(prop, prop_labels), iri_to_id(filler, namespace), origin)
            else:
                deferred.append((concept.id, prop, filler, origin))
    for cid, prop, filler, origin in deferred:
        yield Relation(cid, property_type(prop, prop_labels), iri_to_id(filler, namespace), origin)


def is_turtle(path: Path) -> bool:
    """Sniff: RDF/XML starts with ``<``; Turtle with ``@prefix``, ``PREFIX``, a comment or an IRI in ``<...>``."""
    if path.suffix.lower() in (".ttl", ".n3"):
        return True
    if path.suffix.lower() in (".owl", ".rdf", ".xml"):
        with open(path, "rb") as handle:
            head = handle.read(2048).lstrip()
        return head[:1] not in (b"<", b"") or head.startswith(b"<http")
    return False


def resources_from_rdflib(graph) -> Iterator[Resource]:  # noqa: ANN001 - rdflib is an optional import
    """Turn an ``rdflib.Graph`` into the :class:`Resource` records the RDF/XML streamer yields."""
    from rdflib import BNode, Literal, URIRef

    on_prop, fillers = URIRef(OWL + "onProperty"), [URIRef(OWL + x) for x in ("someValuesFrom", "allValuesFrom",
                                                                                "hasValue")]
    rdf_type = URIRef(RDF + "type")
    for subject in sorted({s for s in graph.subjects() if isinstance(s, URIRef)}):
        literals, links, restrictions = [], [], []
        kind = DESCRIPTION
        for p, o in graph.predicate_objects(subject):
            if isinstance(o, Literal):
                literals.append((str(p), str(o).strip(), o.language or ""))
            elif isinstance(o, URIRef):
                if p == rdf_type and str(o) in CLASS_KINDS | PROPERTY_KINDS:
                    kind = str(o)
                links.append((str(p), str(o)))
            elif isinstance(o, BNode):
                prop = graph.value(o, on_prop)
                filler = next((graph.value(o, f) for f in fillers if graph.value(o, f) is not None), None)
                if isinstance(prop, URIRef) and isinstance(filler, URIRef):
                    restrictions.append((str(p), str(prop), str(filler)))
        yield Resource(kind, str(subject), literals, links, restrictions)


def _turtle_resources(path: Path, policy: Policy) -> Iterator[Resource]:
    try:
        import rdflib
    except ImportError as exc:  # pragma: no cover - rdflib is a core dependency
        raise InputFormatError("reading Turtle needs rdflib: pip install rdflib", path=str(path)) from exc
    graph = rdflib.Graph()
    try:
        graph.parse(str(path), format="turtle")
    except Exception as exc:  # noqa: BLE001 - rdflib raises many parser-specific types
        match = re.search(r"line (\d+)", str(exc))
        policy.bad(f"malformed Turtle ({str(exc).strip().splitlines()[0][:200]}); fix the file or re-export it",
                   line=int(match.group(1)) if match else None)
        return
    yield from resources_from_rdflib(graph)


def read_owl(path: str | os.PathLike[str], *, on_error: str = "raise", namespace: str | None = None,
             source: str | None = None, syntax: str | None = None) -> Iterator[Concept | Relation]:
    """Yield concepts and relations of an OWL ontology in RDF/XML (streamed) or Turtle (via rdflib).

    Args:
        path: the ontology file.
        on_error: ``"raise"`` or ``"skip"``: a malformed file raises naming file and line, or warns and stops there.
        namespace: prefix for classes whose IRIs are not OBO-style (default: the file name, upper-cased).
        source: the ``source`` recorded on each concept (default: the id's prefix, lower-cased, e.g. ``"doid"``).
        syntax: ``"xml"`` or ``"turtle"``; sniffed from the file when omitted.
    """
    path = Path(path)
    policy = Policy(on_error, path)
    if not check_not_empty(path, policy):
        return
    namespace = namespace or re.sub(r"[^0-9A-Za-z]+", "_", path.stem).upper()
    turtle = syntax in ("turtle", "ttl") if syntax else is_turtle(path)
    resources = _turtle_resources(path, policy) if turtle else iter_resources(path, policy)
    yield from records_from_resources(resources, namespace=namespace, source=source, policy=policy)
