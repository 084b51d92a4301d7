"""Retrieval-based report drafting (after CXR-RePaiR): findings sentences taken from the most similar cases,
scored, de-duplicated by linked concept, with contradictions removed using negation and the concept graph, and an
impression from the top diagnosis concepts. Every sentence cites the case it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgclip.ontology.model import IS_A, ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit

__all__ = ["ReportSentence", "DraftReport", "draft_from_cases", "split_sentences"]

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|\n+")


@dataclass(frozen=True)
class ReportSentence:
    """One sentence of a draft with its citation.

    Attributes:
        text: the sentence.
        case_id: the case it was taken from (its citation).
        score: why it ranked where it did (case similarity plus support from other similar cases).
        concepts: linked, non-negated concept ids; ``negated``: linked, negated ones.
    """

    text: str
    case_id: str
    score: float
    concepts: tuple[str, ...] = ()
    negated: tuple[str, ...] = ()


@dataclass
class DraftReport:
    """A drafted report: findings and impression sentences, each citing its source case.

    Attributes:
        findings: findings sentences, best first.
        impression: impression sentences (top diagnosis concepts), each citing the case(s) they come from.
        similar_cases: the retrieved cases the sentences came from.
        removed: sentences dropped as duplicates or contradictions, with the reason (for auditing).
        flags: how it was produced, e.g. ``{"llm_fallback": "citations dropped"}``.
    """

    findings: list[ReportSentence] = field(default_factory=list)
    impression: list[ReportSentence] = field(default_factory=list)
    similar_cases: list[CaseHit] = field(default_factory=list)
    removed: list[tuple[ReportSentence, str]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def findings_text(self) -> str:
        return " ".join(s.text for s in self.findings)

    def text(self, citations: bool = True) -> str:
        def line(s: ReportSentence) -> str:
            return f"{s.text} [{s.case_id}]" if citations else s.text

        findings = "\n".join(line(s) for s in self.findings) or "No findings could be drafted."
        impression = "\n".join(line(s) for s in self.impression) or "-"
        return f"FINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}"

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from kgclip.display import report_html

        return report_html(self)


def split_sentences(text: str) -> list[str]:
    parts = [p.strip(" \t-*•") for p in _SPLIT.split(text or "")]
    return [p if p.endswith((".", "!", "?")) else p + "." for p in parts if len(p) > 3]


def _related(graph: ConceptGraph | None, a: str, b: str, hops: int = 2) -> bool:
    """Same concept, or one an is-a ancestor of the other within ``hops`` ("effusion" vs "pleural effusion")."""
    if a == b:
        return True
    if graph is None or a not in graph or b not in graph:
        return False
    for x, y in ((a, b), (b, a)):
        frontier = {x}
        for _ in range(hops):
            frontier = {p for c in frontier for p in graph.parents(c, IS_A)}
            if y in frontier:
                return True
    return False


_FINDING_ROOTS = {"clinical finding", "pathophysiologic finding", "disease", "disorder"}


def _is_diagnosis(graph: ConceptGraph | None, cid: str) -> bool:
    """A disease (Disease Ontology) or a specific clinical finding: at least two is-a levels below a RadLex
    "clinical finding" / "pathophysiologic finding" root (so "effusion" qualifies, "growth disorder" does not)."""
    if graph is None or cid not in graph:
        return cid.startswith("DOID:")
    concept = graph.get(cid)
    if cid.startswith("DOID:") or (concept is not None and concept.source == "doid"):
        return cid != "DOID:4"  # the root "disease" says nothing
    depth, node = 0, cid
    for _ in range(15):
        parents = graph.parents(node, IS_A)
        if not parents:
            return False
        node, depth = parents[0], depth + 1
        if graph.name_of(node).lower() in _FINDING_ROOTS:
            return depth >= 2
    return False


def draft_from_cases(hits: Sequence[CaseHit], *, tagger: ConceptTagger | None, graph: ConceptGraph | None,
                     sentence_scorer: Callable[[list[str]], np.ndarray] | None = None,
                     max_findings: int = 6, max_impression: int = 2, use_kg: bool = True,
                     require_concept: bool = True) -> DraftReport:
    """Draft a report from retrieved cases (best first).

    Args:
        hits: similar cases with their text.
        tagger: concept linker (``None`` or ``use_kg=False``: dedupe by text only, no contradiction check).
        sentence_scorer: optional ``sentences -> [S]`` similarity of each sentence to the query image (a
            KG-CLIP model's image-text score); added to the case similarity.
        require_concept: with the KG, keep only sentences that mention at least one concept (a finding); drops
            sentences about the acquisition ("What is the modality: CT.") that carry no finding.
    """
    report = DraftReport(similar_cases=list(hits))
    candidates: list[ReportSentence] = []
    support: dict[str, float] = {}
    for rank, hit in enumerate(hits):
        for sent in split_sentences(hit.text):
            pos, neg = (), ()
            if tagger is not None and use_kg:
                mentions = tagger.link(sent)
                pos = tuple(dict.fromkeys(m.concept_id for m in mentions if not m.negated and not m.uncertain))
                neg = tuple(dict.fromkeys(m.concept_id for m in mentions if m.negated))
            candidates.append(ReportSentence(sent, hit.case_id, float(hit.score) - 0.01 * rank, pos, neg))
            for cid in set(pos):
                support[cid] = support.get(cid, 0.0) + max(float(hit.score), 0.0)
    if sentence_scorer is not None and candidates:
        extra = np.asarray(sentence_scorer([c.text for c in candidates]), dtype=np.float64)
        candidates = [ReportSentence(c.text, c.case_id, c.score + float(e), c.concepts, c.negated)
                      for c, e in zip(candidates, extra)]
    if use_kg:  # consensus: a finding several similar cases share ranks higher
        candidates = [ReportSentence(c.text, c.case_id, c.score + 0.1 * sum(support.get(x, 0.0) for x in c.concepts)
                                     / max(len(c.concepts), 1), c.concepts, c.negated) for c in candidates]
    candidates.sort(key=lambda c: -c.score)

    chosen_pos: list[str] = []
    chosen_neg: list[str] = []
    seen_text: set[str] = set()
    for cand in candidates:
        if len(report.findings) >= max_findings:
            break
        key = " ".join(re.findall(r"[a-z0-9]+", cand.text.lower()))
        if key in seen_text:
            report.removed.append((cand, "duplicate text"))
            continue
        if use_kg and tagger is not None and require_concept and not (cand.concepts or cand.negated):
            report.removed.append((cand, "no finding concept"))
            continue
        if use_kg and (cand.concepts or cand.negated):
            if all(c in chosen_pos for c in cand.concepts) and all(c in chosen_neg for c in cand.negated):
                report.removed.append((cand, "concepts already reported"))
                continue
            clash = [c for c in cand.concepts for n in chosen_neg if _related(graph, c, n)]
            clash += [n for n in cand.negated for c in chosen_pos if _related(graph, c, n)]
            if clash:
                report.removed.append((cand, f"contradicts an earlier sentence about {clash[0]}"))
                continue
        report.findings.append(cand)
        seen_text.add(key)
        chosen_pos.extend(cand.concepts)
        chosen_neg.extend(cand.negated)

    if use_kg and graph is not None:
        diagnoses: dict[str, tuple[float, str]] = {}
        for hit in hits:
            for cid in set(hit.metadata.get("concepts", [])) | {c for s in report.findings if s.case_id == hit.case_id
                                                                 for c in s.concepts}:
                if _is_diagnosis(graph, cid) and cid not in chosen_neg:
                    score, case = diagnoses.get(cid, (0.0, hit.case_id))
                    diagnoses[cid] = (score + max(float(hit.score), 0.0), case)
        top = sorted(diagnoses.items(), key=lambda kv: -kv[1][0])[:max_impression]
        for i, (cid, (score, case)) in enumerate(top):
            name = graph.name_of(cid)
            text = f"Findings most consistent with {name}." if i == 0 else f"Consider {name}."
            report.impression.append(ReportSentence(text, case, score, (cid,)))
    if not report.impression and report.findings:
        first = report.findings[0]
        report.impression.append(ReportSentence(first.text, first.case_id, first.score, first.concepts))
    return report
