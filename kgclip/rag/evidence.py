"""Evidence for an answer or a draft: similar cases, similar questions with their answers, linked concepts and
knowledge-graph facts about them. Plain dataclasses, each with a notebook rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgclip.ontology.model import SAME_AS, ConceptGraph
from kgclip.rag.concepts import LinkedConcept

__all__ = ["CaseHit", "QANeighbor", "KGFact", "Evidence", "kg_facts"]

# Relation types worth showing first (anatomy and clinical meaning before taxonomy bookkeeping).
_FACT_ORDER = {"located_in": 0, "has_finding_site": 0, "part_of": 1, "has_symptom": 1, "has_location": 0,
               "is_a": 2, "has_part": 3}


@dataclass(frozen=True)
class CaseHit:
    """A similar case from the workspace.

    Attributes:
        case_id: the case (for VQA-RAD, the image name).
        score: similarity to the query (cosine, higher is closer).
        text: the case's findings / description.
        image: path of the case image inside the workspace (for thumbnails), or ``""``.
        via: ``"image"`` (image->image), ``"text"`` (text->case), or ``"image->text"`` (cross-modal).
        metadata: modality, body part and other stored fields.
    """

    case_id: str
    score: float
    text: str = ""
    image: str = ""
    via: str = "image"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QANeighbor:
    """A training question similar to the asked one (on a similar image), with its answer."""

    question: str
    answer: str
    case_id: str
    score: float


@dataclass(frozen=True)
class KGFact:
    """One relation from the concept graph: ``source --relation--> target`` with both names."""

    source_id: str
    source_name: str
    relation: str
    target_id: str
    target_name: str

    def __str__(self) -> str:
        return f"{self.source_name} {self.relation.replace('_', ' ')} {self.target_name}"


@dataclass
class Evidence:
    """Everything an answer rests on."""

    question: str = ""
    concepts: list[LinkedConcept] = field(default_factory=list)
    similar_cases: list[CaseHit] = field(default_factory=list)
    similar_questions: list[QANeighbor] = field(default_factory=list)
    kg_facts: list[KGFact] = field(default_factory=list)

    def citations(self) -> list[str]:
        """Case ids this evidence cites."""
        ids = [c.case_id for c in self.similar_cases] + [q.case_id for q in self.similar_questions]
        return list(dict.fromkeys(ids))

    def _repr_html_(self) -> str:
        from kgclip.display import evidence_html

        return evidence_html(self)


def kg_facts(graph: ConceptGraph, concept_ids: list[str], limit: int = 12, per_concept: int = 4) -> list[KGFact]:
    """Relations leaving each concept (location, part-of, symptom, is-a...), most informative types first."""
    facts: list[KGFact] = []
    for cid in dict.fromkeys(concept_ids):
        if cid not in graph:
            continue
        rels = [r for r in graph.relations(cid, direction="out") if r.type != SAME_AS]
        rels.sort(key=lambda r: (_FACT_ORDER.get(r.type, 2), r.type, r.target))
        for r in rels[:per_concept]:
            facts.append(KGFact(r.source, graph.name_of(r.source), r.type, r.target, graph.name_of(r.target)))
        if len(facts) >= limit:
            break
    return facts[:limit]
