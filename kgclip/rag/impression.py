"""The impression of a drafted report, reasoned through the concept graph.

Candidate diagnoses are disease concepts (Disease Ontology classes, or concepts under a "disease" / "disorder" root)
supported two ways:

* by the similar cases' own diagnoses (their diagnosis field or impression section, linked to concepts), each case
  voting with its similarity weight for its diagnoses and, with half a vote, for their is-a parents;
* by the drafted findings through the graph: a finding that *is* a disease or is-a one, a disease that
  ``has_symptom`` a drafted finding, a disease located (``located_in`` / ``has_location`` / ``has_finding_site``) in
  drafted anatomy. Each such link is a fact the impression line cites.

Symptoms and signs are never an impression ("Consider fever" is not a diagnosis), nor a disease the draft negates
(itself, or a class above it within :data:`NEGATION_HOPS` is-a levels: "no inflammatory bowel disease" rules out
Crohn's disease), nor a class too general to say anything (fewer than three is-a levels below its root, unless a
leaf); a differential is never an is-a parent or child of a line above it. Each line cites the cases and the facts
it rests on. Lines that rest on the drafted findings lead (:func:`supported_first`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kgclip.ontology.model import IS_A, ConceptGraph
from kgclip.rag.consensus import ConceptSupport, GraphExpander
from kgclip.rag.evidence import indefinite_article

__all__ = ["reason_impression", "supported_first", "is_disease", "root_path", "ImpressionLine"]


@dataclass(frozen=True)
class ImpressionLine:
    """One impression line: its text, the diagnosis concept, its score, the cases and graph facts it rests on."""

    text: str
    concept: str
    score: float
    cases: tuple[str, ...]
    facts: tuple[str, ...]

# How many is-a levels a negated finding reaches down: "no evidence of inflammatory bowel disease" in the findings and
# "Differential diagnosis includes Crohn's disease" (Crohn's disease is-a inflammatory bowel disease) in one draft.
NEGATION_HOPS = 3

_LOCATION_RELATIONS = ("located_in", "has_location", "has_finding_site")
_DISEASE_ROOTS = {"disease", "disorder"}
_SYMPTOM_ROOTS = {"symptom", "sign or symptom", "sign", "symptoms"}


def root_path(graph: ConceptGraph, cid: str, limit: int = 25) -> list[str]:
    """Names of the first-parent is-a chain above ``cid`` (nearest first)."""
    out, node = [], cid
    for _ in range(limit):
        parents = graph.parents(node, IS_A)
        if not parents:
            break
        node = parents[0]
        out.append(graph.name_of(node).lower())
    return out


def is_disease(graph: ConceptGraph | None, cid: str) -> bool:
    """A disease concept specific enough for an impression (see module docstring)."""
    if graph is None or cid not in graph:
        return False
    concept = graph.get(cid)
    if cid.startswith("SYMP:") or (concept is not None and concept.source == "symp"):
        return False
    path = root_path(graph, cid)
    if _SYMPTOM_ROOTS & set(path):
        return False
    from_do = cid.startswith("DOID:") or (concept is not None and concept.source == "doid")
    if not from_do and not _DISEASE_ROOTS & set(path):
        return False
    # Specific enough: three is-a levels below the root, or a leaf below it ("disease" itself never).
    return len(path) >= 3 or (len(path) >= 1 and not graph.children(cid, IS_A))


def _disease(expander: GraphExpander, cid: str) -> bool:
    return bool(expander.cached("disease", cid, lambda: is_disease(expander.graph, cid)))


def _ruled_out(expander: GraphExpander, cid: str, negated: set[str]) -> bool:
    """Whether the draft negates ``cid`` or a class above it (within :data:`NEGATION_HOPS` is-a levels)."""
    if not negated:
        return False
    return cid in negated or any(a in negated for a in expander.with_hops(NEGATION_HOPS).ancestors(cid))


# A drafted sentence calling an organ normal ("Normal appendix.", "The kidneys are unremarkable."): the tagger reads
# the organ as negated, which the is-a check above cannot connect to the organ's diseases.
_CALLED_NORMAL = re.compile(r"(?i)\b(?:normal|unremarkable)\b")


def _called_normal(findings: Sequence[Any], expander: GraphExpander) -> dict[str, re.Pattern[str]]:
    """``{organ: its name as a whole-word pattern}`` for what a drafted sentence calls normal without asserting a
    disease in it, unless another drafted sentence asserts that organ ("Normal liver." beside "A mass in the
    liver." calls nothing normal)."""
    asserted = {c for s in findings for c in s.concepts}
    out: dict[str, re.Pattern[str]] = {}
    for s in findings:
        if not s.negated or not _CALLED_NORMAL.search(s.text) or any(_disease(expander, c) for c in s.concepts):
            continue
        for organ in s.negated:
            name = expander.graph.name_of(organ).lower() if expander.graph is not None else ""
            if organ not in asserted and len(name) >= 3 and not _disease(expander, organ):
                out[organ] = re.compile(rf"\b{re.escape(name)}\b")
    return out


def _of_normal_organ(expander: GraphExpander, cid: str, normal: dict[str, re.Pattern[str]]) -> bool:
    """Whether disease ``cid`` is a disease of an organ the draft calls normal: the organ named in its own name or in
    an is-a ancestor's within :data:`NEGATION_HOPS` ("appendicitis" is-a "appendix disease"), or its location."""
    if not normal:
        return False
    graph = expander.graph
    names = [graph.name_of(cid).lower()] + [graph.name_of(a).lower()
                                            for a in expander.with_hops(NEGATION_HOPS).ancestors(cid)]
    if any(p.search(n) for p in normal.values() for n in names):
        return True
    return any(o in normal for rel in _LOCATION_RELATIONS for o in graph.parents(cid, rel))


def _finding_facts(findings: Sequence[Any], expander: GraphExpander) -> dict[str, list[tuple[str, str]]]:
    """``{disease: [(fact, citing case)]}`` from the drafted findings through the graph."""
    graph = expander.graph
    out: dict[str, list[tuple[str, str]]] = {}

    def add(d: str, fact: str, case: str) -> None:
        if _disease(expander, d):
            out.setdefault(d, []).append((fact, case))

    for s in findings:
        for f in s.concepts:
            name = graph.name_of(f)
            add(f, f"{name} is reported in the findings", s.case_id)
            for a in expander.ancestors(f):
                parent = graph.name_of(a)
                add(a, f"{name} is {indefinite_article(parent)} {parent}", s.case_id)
            for rel in ("has_symptom", *_LOCATION_RELATIONS):
                sources = expander.cached(rel, f, lambda f=f, rel=rel: graph.children(f, rel))
                for d in sources:  # type: ignore[union-attr]
                    add(d, f"{graph.name_of(d)} {rel.replace('_', ' ')} {name}", s.case_id)
    return out


def reason_impression(findings: Sequence[Any], case_ids: Sequence[str],
                      case_diagnoses: Sequence[Sequence[str]], weights: np.ndarray, support: ConceptSupport,
                      expander: GraphExpander, negated: set[str], n: int, *,
                      fact_weight: float = 0.5) -> list[ImpressionLine]:
    """Up to ``n`` impression lines (see module docstring).

    Args:
        findings: the drafted findings sentences (``.concepts``, ``.case_id``).
        case_diagnoses: per similar case, the concepts of its diagnosis / impression (may be empty lists; then
            the diseases its findings mention vote, through ``support``).
        weights: ``[K]`` the similar cases' votes.
        support: the concept consensus of the similar cases' findings.
    """
    graph = expander.graph
    if graph is None or n <= 0:
        return []
    total = float(np.sum(weights)) or 1.0
    dx_support: dict[str, float] = {}
    dx_cases: dict[str, list[tuple[float, str]]] = {}
    for cid, dxs, w in zip(case_ids, case_diagnoses, weights.tolist()):
        votes: dict[str, float] = {}
        for d in dxs:
            votes[d] = 1.0
            for a in expander.ancestors(d):
                votes.setdefault(a, 0.5)
        for d, v in votes.items():
            dx_support[d] = dx_support.get(d, 0.0) + w * v / total
            dx_cases.setdefault(d, []).append((w * v, cid))
    if not dx_support:  # no diagnoses stored: the diseases the similar cases' findings mention vote
        dx_support = {d: v for d, v in support.positive.items() if _disease(expander, d)}
        dx_cases = {d: [(1.0, support.best_case[d])] for d in dx_support if d in support.best_case}
    facts = _finding_facts(findings, expander)
    normal = _called_normal(findings, expander)
    scored = []
    for d in set(dx_support) | set(facts):
        if _ruled_out(expander, d, negated) or not _disease(expander, d) or _of_normal_organ(expander, d, normal):
            continue
        fact_list = list(dict.fromkeys(f for f, _ in facts.get(d, [])))
        score = dx_support.get(d, 0.0) + fact_weight * min(1.0, 0.5 * len(fact_list))
        if score > 0:
            scored.append((score, d, fact_list))
    scored.sort(key=lambda t: (-t[0], t[1]))
    out: list[ImpressionLine] = []
    for score, d, fact_list in scored:
        if len(out) >= n:
            break
        # A differential is another disease, not the lead's is-a parent or child ("pulmonary artery disease" under
        # "pulmonary embolism" says nothing new).
        if any(d in expander.ancestors(x.concept) or x.concept in expander.ancestors(d) for x in out):
            continue
        cases = [c for _, c in sorted(dx_cases.get(d, []), key=lambda t: -t[0])]
        cases += [c for f, c in facts.get(d, [])]
        cases = list(dict.fromkeys(cases))[:3]
        if not cases:
            continue
        name = graph.name_of(d)
        text = _line_text(name, not out)
        out.append(ImpressionLine(text, d, round(score, 4), tuple(cases), tuple(fact_list[:3])))
    return out


def _line_text(name: str, lead: bool) -> str:
    # Hedged, like a diagnosis answer: the leading line names the case's own diagnosis (or an is-a relative) in about
    # 3 % of MedPix val drafts (``impression_dx_lead`` in ``kgclip eval report``), so "most consistent with" would
    # overstate what similar cases can tell.
    return f"Possible {name}, as in the cited similar cases." if lead else f"Differential diagnosis includes {name}."


def supported_first(lines: Sequence[ImpressionLine], findings: Sequence[Any], anchored: str | None,
                    graph: ConceptGraph) -> list[ImpressionLine]:
    """``lines`` with those that rest on the drafted findings first (otherwise in their order), reworded so the first
    reads "Possible ..., as in the cited similar cases.".

    A line rests on the findings when it has a graph fact from a drafted finding, cites a case a drafted finding
    comes from, or names the diagnosis the draft was anchored on (``anchored``). Appendicitis led drafts that said
    nothing of the appendix when the similar cases' appendix sentences were contradicted away. MedPix val, carve
    seeds 0/1/2 (312 drafts; with the anchor trying 3 diagnoses): leading impressions resting on a drafted finding
    0.76 -> 0.92; concept F1 (findings) +0.0009 [-0.0014, 0.0034]; the lead names the case's own diagnosis (or an
    is-a relative within 3 levels) in 3.6 % -> 3.3 % of drafts (11 -> 10 of 302, as poor either way).
    """
    drafted = {f.case_id for f in findings}
    rests = [bool(x.facts) or bool(drafted & set(x.cases)) or x.concept == anchored for x in lines]
    order = sorted(range(len(lines)), key=lambda i: (not rests[i], i))
    return [replace(lines[i], text=_line_text(graph.name_of(lines[i].concept), rank == 0))
            for rank, i in enumerate(order)]
