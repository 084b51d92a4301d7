"""Evidence for an answer or a draft: similar cases, similar questions with their answers, linked concepts and
knowledge-graph facts about them. Plain dataclasses, each with a notebook rendering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kgclip.ontology.model import IS_A, SAME_AS, ConceptGraph
from kgclip.ontology.suggestions import Suggestion
from kgclip.ontology.taxonomy import useful_ancestor
from kgclip.rag.concepts import LinkedConcept

__all__ = ["CaseHit", "QANeighbor", "KGFact", "Evidence", "kg_facts"]

# What a fact tells, by relation type; a question's words say which kinds come first.
_FACT_KIND = {"located_in": "location", "has_finding_site": "location", "has_location": "location",
              "part_of": "location", "has_symptom": "symptom", "has_finding": "finding", "has_manifestation": "finding",
              "is_a": "kind", "has_part": "part"}
_DEFAULT_ORDER = ("location", "kind", "symptom", "finding", "other", "part")
_CUES = (("location", re.compile(r"\b(where|location|located|which (organ|lobe|side|part|region)|site|part of)\b",
                                 re.I)),
         ("symptom", re.compile(r"\b(symptom|symptoms|present(s|ing)? with|complain|sign|signs)\b", re.I)),
         ("finding", re.compile(r"\b(finding|findings|appear|appearance|seen|shows?|look)\b", re.I)),
         ("kind", re.compile(r"\b(what (is|kind|type)|type of|kind of|diagnos\w*|category|class)\b", re.I)))
_NOT_SHOWN = {SAME_AS, "replaced_by", "nearest_in_embedding"}


def indefinite_article(noun: str) -> str:
    """``"an"`` before a vowel letter, else ``"a"`` (``"is an artery disease"``; good enough for ontology names)."""
    return "an" if noun[:1].lower() in ("a", "e", "i", "o", "u") else "a"


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

    def to_dict(self, preview: int = 400) -> dict[str, Any]:
        """Plain values for JSON (the CLI's ``--json`` and the web app): the text cut to ``preview`` characters and
        only the metadata fields a reader needs (modality, body part, how a search matched)."""
        meta = {k: v for k, v in (self.metadata or {}).items() if k in ("modality", "body_part", "matched_through")}
        return {"case_id": self.case_id, "score": round(float(self.score), 4), "via": self.via,
                "text": (self.text or "")[:preview], "metadata": meta}


@dataclass(frozen=True)
class QANeighbor:
    """A training question similar to the asked one (on a similar image), with its answer.

    ``score`` is the answerer's neighbour similarity (question, image and concepts together); ``image_score`` the
    cosine of the asked image to this question's image alone (``None`` when not known).
    """

    question: str
    answer: str
    case_id: str
    score: float
    image_score: float | None = None


@dataclass(frozen=True)
class KGFact:
    """One relation from the concept graph: ``source --relation--> target`` with both names."""

    source_id: str
    source_name: str
    relation: str
    target_id: str
    target_name: str
    curated: bool = True  # False: a pending suggestion (kgclip ontology suggest), not reviewed by a curator

    def __str__(self) -> str:
        relation = self.relation.replace("_", " ")
        if self.relation == "is_a":
            relation = f"is {indefinite_article(self.target_name)}"
        text = f"{self.source_name} {relation} {self.target_name}"
        return text if self.curated else f"{text} (suggested, not curated)"


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


def _order(question: str) -> tuple[str, ...]:
    """Fact kinds in the order the question asks for them (its cues first, then the default order)."""
    asked = [kind for kind, cue in _CUES if question and cue.search(question)]
    return tuple(dict.fromkeys([*asked, *_DEFAULT_ORDER]))


def _candidates(graph: ConceptGraph, cid: str, suggestions: list[Suggestion]) -> list[tuple[str, KGFact]]:
    """``(kind, fact)`` for one concept: its non-taxonomic relations, one is-a fact at a useful level, and pending
    suggestions about it (marked as not curated)."""
    name = graph.name_of(cid)
    out: list[tuple[str, KGFact]] = []
    for r in sorted(graph.relations(cid, direction="out"), key=lambda r: (r.type, r.target)):
        if r.type in _NOT_SHOWN or r.type == IS_A:
            continue
        out.append((_FACT_KIND.get(r.type, "other"), KGFact(cid, name, r.type, r.target, graph.name_of(r.target))))
    ancestor = useful_ancestor(graph, cid)
    if ancestor is not None:
        out.append(("kind", KGFact(cid, name, IS_A, ancestor, graph.name_of(ancestor))))
    for s in suggestions:
        if s.source == cid and s.status == "pending" and s.kind not in _NOT_SHOWN and s.target in graph:
            out.append((_FACT_KIND.get(s.kind, "other"),
                        KGFact(cid, name, s.kind, s.target, graph.name_of(s.target), curated=False)))
    return out


def kg_facts(graph: ConceptGraph, concept_ids: list[str], limit: int = 12, per_concept: int = 4, *,
             question: str = "", suggestions: Iterable[Suggestion] = ()) -> list[KGFact]:
    """Facts about each concept that inform a reader, chosen for the question.

    Per concept: where it is (``located_in``, ``part_of``...), its symptoms and findings, and what it is a kind of
    at a useful level (:func:`kgclip.ontology.taxonomy.useful_ancestor`: "pneumonia is a lung disease", never a
    bookkeeping class such as "organ with cavitated organ parts" nor a top-level one such as "disease"). The
    question's words ("where", "symptoms", "what type") put the kinds it asks for first. ``same_as`` links are
    identity, not facts, and are not shown.

    Args:
        graph: the concept graph.
        concept_ids: concepts linked in the question or the evidence, most relevant first.
        limit: at most this many facts.
        per_concept: at most this many facts per concept.
        question: the question (or ``""`` for the default order: location, kind, symptoms, findings).
        suggestions: pending suggested links (:mod:`kgclip.ontology.suggestions`); facts from them are returned
            with ``curated=False`` and are never shown as curated.
    """
    order = {kind: i for i, kind in enumerate(_order(question))}
    pending = [s for s in suggestions if s.status == "pending"]
    facts: list[KGFact] = []
    for cid in dict.fromkeys(concept_ids):
        if cid not in graph:
            continue
        found = _candidates(graph, cid, pending)
        found.sort(key=lambda kf: (order.get(kf[0], len(order)), not kf[1].curated))
        facts.extend(f for _, f in found[:per_concept])
        if len(facts) >= limit:
            break
    return facts[:limit]
