"""Concept search for :meth:`Engine.search <kgclip.engine.engine.Engine.search>`: expand, filter, say why.

``Engine.search(concept="DOID:552")`` finds the cases linked to pneumonia *or any of its descendants or same_as
partners* (:func:`kgclip.ontology.expand.expand_concept`); ``Engine.search(text="pneumonia", expand=True)`` links
the text first and expands every concept it names (:func:`kgclip.text.concept_query.expand_query`), ranking cases
that match the expansion first. Each hit says which concept it matched through (``metadata["matched_through"]``,
e.g. ``"lobar pneumonia ⊂ pneumonia"``) and the results carry the expansion (``results.expansion``), which the
notebook rendering and ``kgclip search`` show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kgclip.errors import InputFormatError
from kgclip.ontology.expand import ConceptExpansion, ConceptMatch, expand_concept
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.evidence import CaseHit
from kgclip.rag.report_scope import link_sentence
from kgclip.text.concept_query import QueryExpansion, expand_query
from kgclip.text.linker import ConceptLinker

__all__ = ["concept_filters", "annotate", "concept_search", "text_expansion", "negation_order"]

Expansion = ConceptExpansion | QueryExpansion


def concept_filters(filters: Mapping[str, Any] | None, ids: Sequence[str]) -> dict[str, Any]:
    """``filters`` restricted to cases linked to one of ``ids`` (intersected with a ``concept`` filter given)."""
    out = dict(filters or {})
    given = out.pop("concept", None) or out.pop("concepts", None)
    if given is not None:
        wanted = {given} if isinstance(given, str) else set(given)
        ids = [c for c in ids if c in wanted]
    out["concept"] = list(ids)
    return out


def annotate(hits: Sequence[CaseHit], expansion: Expansion) -> list[CaseHit]:
    """Each hit with ``metadata["matched_through"]``: the path of the first of its concepts in the expansion."""
    out = []
    for hit in hits:
        match: ConceptMatch | None = None
        for cid in hit.metadata.get("concepts") or ():
            match = expansion.match(cid)
            if match is not None:
                break
        meta = dict(hit.metadata)
        if match is not None:
            meta["matched_through"] = match.path_text
            meta["matched_concept"] = match.concept_id
        out.append(dataclasses.replace(hit, metadata=meta))
    return out


def concept_search(graph: ConceptGraph, concept: str, search: Callable[[Mapping[str, Any]], list[CaseHit]], *,
                   descendants: bool = True, filters: Mapping[str, Any] | None = None
                   ) -> tuple[list[CaseHit], ConceptExpansion]:
    """Hits of ``search(filters)`` restricted to cases linked to the expansion of ``concept``, annotated.

    Raises:
        UnknownConceptError: ``concept`` is not in the graph.
    """
    expansion = expand_concept(graph, concept, descendants=descendants)
    restricted = concept_filters(filters, expansion.ids())
    return (annotate(search(restricted), expansion) if restricted["concept"] else []), expansion


def text_expansion(graph: ConceptGraph, linker: ConceptLinker | None, text: str,
                   search: Callable[[Mapping[str, Any] | None], list[CaseHit]], k: int, *, descendants: bool = True,
                   filters: Mapping[str, Any] | None = None) -> tuple[list[CaseHit], QueryExpansion]:
    """Cases matching the text's expanded concepts first (by similarity), then the other nearest cases."""
    if linker is None:
        raise InputFormatError("expanding a text query needs the workspace's concept linker; build the workspace "
                               "with EngineConfig(use_kg=True)")
    query = expand_query(text, graph, linker, descendants=descendants)
    matched = search(concept_filters(filters, query.ids())) if query.ids() else []
    seen = {h.case_id for h in matched}
    rest = [h for h in search(filters) if h.case_id not in seen]
    return annotate([*matched, *rest][:k], query), query


def negation_order(hits: Sequence[CaseHit], text: str, tagger: Any, k: int) -> list[CaseHit]:
    """The ``k`` best of ``hits`` with those that say the opposite of the query after the others, each marked.

    Text embeddings barely see negation: "pleural effusion" was nearest to cases saying "No pleural effusion" (the
    demo's search page: its 5 nearest all did). A hit opposes the query when its text negates a concept the query
    asserts (and never asserts it), or asserts one the query negates ("no pneumothorax" against "There is
    pneumothorax"); ``metadata["opposes_query"]`` names those concepts ("no pleural effusion"). Order is kept
    otherwise, so a query naming no concept, or no hit opposing it, changes nothing.
    """
    asked, denied = _stances(tagger, text)
    if not asked and not denied:
        return list(hits)[:k]
    agree: list[CaseHit] = []
    oppose: list[CaseHit] = []
    for hit in hits:
        asserted, negated = _stances(tagger, hit.text)
        against = [f"no {tagger.graph.name_of(c)}" for c in sorted(asked & negated)]
        against += [tagger.graph.name_of(c) for c in sorted(denied & asserted)]
        if against:
            oppose.append(dataclasses.replace(hit, metadata={**hit.metadata, "opposes_query": "; ".join(against)}))
        else:
            agree.append(hit)
    return [*agree, *oppose][:k]


def _stances(tagger: Any, text: str) -> tuple[set[str], set[str]]:
    """The concepts ``text`` asserts, and those it only negates (a text asserting one somewhere does not negate
    it)."""
    asserted, negated = link_sentence(tagger, text)
    return set(asserted), set(negated) - set(asserted)
