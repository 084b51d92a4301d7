"""Fakes and tiny fixtures shipped with the package, for kgclip's tests and for users' own tests.

``tiny_graph()`` is a 20-concept chest/neuro ontology in kgclip's model, with is_a, part_of, has_part,
has_symptom and same_as relations, synonyms, an abbreviation and one deprecated concept.
"""

from __future__ import annotations

from kgclip.ontology.model import Concept, ConceptGraph, Relation

__all__ = ["tiny_graph", "tiny_records"]

_CONCEPTS = [
    ("RADLEX:RID1", "RadLex entity", (), ""),
    ("RADLEX:RID3", "anatomical entity", (), ""),
    ("RADLEX:RID1243", "thorax", ("chest",), "The part of the body between the neck and the abdomen."),
    ("RADLEX:RID1301", "lung", ("lungs",), "Organ of respiration."),
    ("RADLEX:RID1362", "pleura", ("pleural membrane",), ""),
    ("RADLEX:RID6434", "brain", ("encephalon",), ""),
    ("RADLEX:RID5", "clinical finding", (), ""),
    ("RADLEX:RID4872", "pleural effusion", ("hydrothorax", "fluid in the pleural space"),
     "Fluid in the pleural cavity."),
    ("RADLEX:RID5352", "pneumothorax", ("PTX",), "Air in the pleural space."),
    ("RADLEX:RID28530", "consolidation", ("airspace consolidation",), ""),
    ("RADLEX:RID1385", "atelectasis", ("collapse of lung",), ""),
    ("RADLEX:RID1392", "cardiomegaly", ("enlarged heart", "cardiac enlargement"), ""),
    ("RADLEX:RID1385X", "old atelectasis term", (), ""),
    ("DOID:4", "disease", (), "A disposition to undergo pathological processes."),
    ("DOID:552", "pneumonia", ("lung inflammation",), "A lung disease that involves inflammation of the lung."),
    ("DOID:1324", "lung cancer", ("lung neoplasm", "lung carcinoma"), ""),
    ("DOID:3910", "lung adenocarcinoma", (), ""),
    ("DOID:1826", "epilepsy", ("seizure disorder",), ""),
    ("SYMP:0000614", "cough", (), ""),
    ("UMLS:C0032285", "Pneumonia", ("Pneumonitis",), ""),
]

_RELATIONS = [
    ("RADLEX:RID3", "is_a", "RADLEX:RID1"),
    ("RADLEX:RID5", "is_a", "RADLEX:RID1"),
    ("RADLEX:RID1243", "is_a", "RADLEX:RID3"),
    ("RADLEX:RID1301", "is_a", "RADLEX:RID3"),
    ("RADLEX:RID1362", "is_a", "RADLEX:RID3"),
    ("RADLEX:RID6434", "is_a", "RADLEX:RID3"),
    ("RADLEX:RID1301", "part_of", "RADLEX:RID1243"),
    ("RADLEX:RID1243", "has_part", "RADLEX:RID1301"),
    ("RADLEX:RID1362", "part_of", "RADLEX:RID1243"),
    ("RADLEX:RID4872", "is_a", "RADLEX:RID5"),
    ("RADLEX:RID5352", "is_a", "RADLEX:RID5"),
    ("RADLEX:RID28530", "is_a", "RADLEX:RID5"),
    ("RADLEX:RID1385", "is_a", "RADLEX:RID5"),
    ("RADLEX:RID1392", "is_a", "RADLEX:RID5"),
    ("RADLEX:RID4872", "located_in", "RADLEX:RID1362"),
    ("RADLEX:RID5352", "located_in", "RADLEX:RID1362"),
    ("RADLEX:RID28530", "located_in", "RADLEX:RID1301"),
    ("RADLEX:RID1385", "located_in", "RADLEX:RID1301"),
    ("DOID:552", "is_a", "DOID:4"),
    ("DOID:1324", "is_a", "DOID:4"),
    ("DOID:3910", "is_a", "DOID:1324"),
    ("DOID:1826", "is_a", "DOID:4"),
    ("DOID:552", "has_symptom", "SYMP:0000614"),
    ("DOID:552", "located_in", "RADLEX:RID1301"),
    ("DOID:1324", "located_in", "RADLEX:RID1301"),
    ("DOID:1826", "located_in", "RADLEX:RID6434"),
]


def tiny_records() -> list[Concept | Relation]:
    """The records of :func:`tiny_graph`, as a reader would yield them."""
    records: list[Concept | Relation] = []
    for cid, name, synonyms, definition in _CONCEPTS:
        prefix = cid.split(":")[0].lower()
        records.append(Concept(
            id=cid, name=name, synonyms=synonyms, definition=definition,
            source={"radlex": "radlex", "doid": "doid", "symp": "doid", "umls": "umls"}[prefix],
            deprecated=cid == "RADLEX:RID1385X",
            xrefs=("UMLS:C0032285",) if cid == "DOID:552" else (),
        ))
    records.extend(Relation(s, t, d, origin="tiny") for s, t, d in _RELATIONS)
    return records


def tiny_graph() -> ConceptGraph:
    """A fresh 20-concept graph (each call returns a new, independent graph)."""
    return ConceptGraph.from_records(tiny_records(), name="tiny")
