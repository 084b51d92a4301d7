"""RadLex OWL as RSNA publishes it (RDF/XML), streamed.

Shapes handled (see ``kgclip/testing/fixtures/radlex_sample.owl``):

- class IRIs ``http://www.radlex.org/RID/RID3441`` and the older ``http://www.radlex.org/RID/#RID3441``
  (matched on the local name ``RID\\d+``), given by ``rdf:about`` or ``rdf:ID``;
- annotation properties in RadLex's own namespace, matched on their local name, case-insensitively:
  ``Preferred_name`` -> name (``Preferred_Name_for_Obsolete`` too, marking the class deprecated), ``Synonym`` ->
  synonyms, ``Definition`` -> definition, ``UMLS_ID`` -> ``UMLS:`` xref (also ``SNOMED_ID``, ``FMAID``);
  ``rdfs:label`` is the name only when there is no ``Preferred_name``;
- ``rdfs:subClassOf <RID>`` -> ``is_a``; relations such as ``Part_Of``, ``Has_Part``, ``Branch_Of`` either as
  direct assertions (``<Part_Of rdf:resource=".../RID1243"/>``) or as
  ``rdfs:subClassOf [owl:Restriction owl:onProperty Part_Of; owl:someValuesFrom RID1243]``;
- obsolete classes: ``owl:deprecated true``, an ``Obsolete``/``Is_Obsolete`` flag, or ``rdfs:subClassOf`` the
  obsolete-terms class (``RID15849`` or any class whose name contains "obsolete");
- the same RID in an ``owl:Class`` and a later ``rdf:Description`` block: both are yielded as records of one id,
  which :meth:`ConceptGraph.from_records` merges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from kgclip.ontology.model import IS_A, Concept, Relation, normalize_relation_type
from kgclip.ontology.sources._common import Policy, check_not_empty, local_name
from kgclip.ontology.sources._rdfxml import OWL, RDF, RDFS, iter_resources

__all__ = ["read_radlex_owl"]

_RID = re.compile(r"^RID\d+$", re.IGNORECASE)
_SPLIT = re.compile(r"[\s,;|]+")
_XREF_PROPS = {"umls_id": "UMLS", "umls_cui": "UMLS", "snomed_id": "SNOMEDCT", "fmaid": "FMA", "fma_id": "FMA"}
_NAME_PROPS = ("preferred_name", "preferred_name_for_obsolete")
_OBSOLETE_FLAGS = ("obsolete", "is_obsolete", "deprecated")
_NOT_RELATIONS = frozenset({RDF + "type", RDFS + "subClassOf", OWL + "equivalentClass", OWL + "disjointWith",
                            RDFS + "seeAlso", RDFS + "isDefinedBy"})


def _rid_of(iri: str) -> str | None:
    # Hot path (called for every link): plain string checks instead of a regex.
    local = iri[max(iri.rfind("#"), iri.rfind("/")) + 1:]
    if local[:3].upper() == "RID" and local[3:].isdigit():
        return local.upper()
    return None


class _Keys(dict):
    """Predicate IRI -> lower-cased local name, computed once per predicate."""

    def __missing__(self, iri: str) -> str:
        self[iri] = key = local_name(iri).lower()
        return key


class _RelTypes(dict):
    """Predicate IRI -> relation type, computed once per predicate."""

    def __missing__(self, iri: str) -> str:
        self[iri] = rel = normalize_relation_type(local_name(iri))
        return rel


def read_radlex_owl(path: str | os.PathLike[str], *, on_error: str = "raise",
                    source: str = "radlex") -> Iterator[Concept | Relation]:
    """Yield RadLex concepts and relations from RSNA's OWL (RDF/XML) release.

    Args:
        path: ``RadLex.owl``.
        on_error: ``"raise"`` or ``"skip"``: a malformed file raises naming file and line, or warns and stops there.
        source: the ``source`` recorded on each concept.
    """
    path = Path(path)
    policy = Policy(on_error, path)
    if not check_not_empty(path, policy):
        return
    keys, rel_types = _Keys(), _RelTypes()
    label_iri, subclass_iri = RDFS + "label", RDFS + "subClassOf"
    for res in iter_resources(path, policy):
        rid = _rid_of(res.iri)
        if rid is None:
            continue  # properties, the ontology header, non-RadLex helper classes
        cid = f"RADLEX:{rid}"
        name = label = definition = ""
        synonyms: list[str] = []
        xrefs: list[str] = []
        deprecated = False
        for p, text, _lang in res.literals:
            key = keys[p]
            if not text:
                continue
            if key in _NAME_PROPS:
                name = name or text
                deprecated = deprecated or key == "preferred_name_for_obsolete"
            elif key == "synonym":
                synonyms.append(text)
            elif key == "definition":
                definition = definition or text
            elif key in _XREF_PROPS:
                xrefs.extend(f"{_XREF_PROPS[key]}:{v}" for v in _SPLIT.split(text) if v)
            elif key in _OBSOLETE_FLAGS and text.lower() in ("true", "1", "yes"):
                deprecated = True
            elif p == label_iri and not _RID.match(text):
                label = label or text
        if not name:
            name = label
        elif label and label != name:
            synonyms.append(label)
        relations: list[Relation] = []
        for p, obj in res.links:
            target = _rid_of(obj)
            if p == subclass_iri:
                if target == "RID15849" or (target is None and "obsolete" in obj.lower()):
                    deprecated = True
                if target is not None:
                    relations.append(Relation(cid, IS_A, f"RADLEX:{target}", source))
            elif target is not None and p not in _NOT_RELATIONS:
                relations.append(Relation(cid, rel_types[p], "RADLEX:" + target, source))
        for via, prop, filler in res.restrictions:
            target = _rid_of(filler)
            if via == subclass_iri and target is not None:
                relations.append(Relation(cid, rel_types[prop], "RADLEX:" + target, source))
        yield Concept(id=cid, name=name, synonyms=tuple(dict.fromkeys(s for s in synonyms if s != name)),
                      definition=definition, source=source, deprecated=deprecated,
                      xrefs=tuple(dict.fromkeys(xrefs)))
        yield from relations
