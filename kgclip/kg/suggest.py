"""Missing links for curators: the trained link predictor, and alignment re-ranked by GNN embeddings.

:class:`LinkPredictor` scores ``(head, relation, ?)`` with the DistMult decoder trained beside the concept
embeddings (:mod:`kgclip.kg.train`), over the candidate tails (for ``is_a`` every live concept; for other kinds the
concepts already used as their targets: a symptom is something some disease has as a symptom). :func:`suggest_links`
combines it with the name-only rankings of :mod:`kgclip.ontology.align` by reciprocal-rank fusion, so a concept a
curator just added, with no relations, still gets parents (from its text through the inductive encoder, and from
its name). Everything returns :class:`~kgclip.ontology.suggestions.Suggestion` lists; nothing edits a graph.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> from kgclip.ontology.model import Concept
    >>> g = tiny_graph()
    >>> _ = g.add_concept(Concept("DOID:3907", "squamous cell lung cancer"))   # added without parents
    >>> [s.target for s in suggest_links(g, "is_a", concept="DOID:3907", limit=1)]   # names only: no embeddings
    ['DOID:1324']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import torch

from kgclip.errors import ConfigError, UnknownConceptError
from kgclip.kg.embeddings import ConceptEmbeddings
from kgclip.ontology.align import AlignConfig, TermIndex, align, name_parents, word_weights
from kgclip.ontology.ids import IS_A, SAME_AS
from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.suggestions import SUGGESTION_KINDS, Suggestion

__all__ = ["LinkPredictor", "suggest_links", "rank_links", "fuse_rankings", "default_heads"]

_RRF_K = 10  # reciprocal-rank fusion constant: small, because only the top few of each ranking matter
_EMBEDDING_WEIGHT = 0.25  # share of GNN cosine in a same_as score (the rest is lexical evidence)


class LinkPredictor:
    """Ranks tails of ``(head, relation, ?)`` with trained concept embeddings and their DistMult decoder.

    Args:
        embeddings: :class:`ConceptEmbeddings` with ``decoder_state`` (from ``kgclip kg train``), describing the
            graph the heads come from (refresh them after edits: a new concept needs a row).
    """

    def __init__(self, embeddings: ConceptEmbeddings) -> None:
        if not embeddings.decoder_state or "relations" not in embeddings.decoder_state:
            raise ConfigError("these concept embeddings carry no link decoder; retrain them with `kgclip kg train`")
        self.embeddings = embeddings
        self.relations = embeddings.decoder_state["relations"].float()
        self.vocabulary = {t: i for i, t in enumerate(embeddings.meta.get("relation_types", []))}

    def knows(self, relation: str) -> bool:
        return relation in self.vocabulary

    @torch.no_grad()
    def rank(self, heads: Sequence[str], relation: str, candidates: Sequence[str], k: int = 10,
             exclude: dict[str, set[str]] | None = None) -> dict[str, list[tuple[str, float]]]:
        """Top ``k`` of ``candidates`` as tails of ``(head, relation, ?)`` for each head, best first.

        ``exclude`` maps a head to tails never to return (its existing ones). Shapes: one ``[B, C]`` product per
        batch of 256 heads.
        """
        if relation not in self.vocabulary:
            raise ConfigError(f"the link predictor was not trained on relation {relation!r} (it knows "
                              f"{sorted(self.vocabulary)}); retrain with `kgclip kg train` on a graph that has it")
        emb = self.embeddings
        cand = [c for c in candidates if c in emb]
        if not cand:
            return {h: [] for h in heads}
        cand_rows = torch.tensor([emb.index_of(c) for c in cand], dtype=torch.long)
        tails = emb.vectors[cand_rows]
        w = self.relations[self.vocabulary[relation]]
        out: dict[str, list[tuple[str, float]]] = {}
        heads = [h for h in heads if h in emb]
        for start in range(0, len(heads), 256):
            batch = heads[start:start + 256]
            rows = torch.tensor([emb.index_of(h) for h in batch], dtype=torch.long)
            scores = (emb.vectors[rows] * w) @ tails.T
            top = torch.topk(scores, min(len(cand), k + 64), dim=1)
            for h, vals, idx in zip(batch, top.values.tolist(), top.indices.tolist()):
                skip = (exclude or {}).get(h, set()) | {h}
                out[h] = [(cand[i], v) for v, i in zip(vals, idx) if cand[i] not in skip][:k]
        return out


def fuse_rankings(rankings: Iterable[list[Suggestion]], k: int) -> list[Suggestion]:
    """Reciprocal-rank fusion of rankings of one head's tails: ``sum 1 / (10 + rank)``; the first method kept."""
    fused: dict[tuple[str, str, str], float] = {}
    first: dict[tuple[str, str, str], Suggestion] = {}
    methods: dict[tuple[str, str, str], list[str]] = {}
    for ranking in rankings:
        for rank, s in enumerate(ranking, start=1):
            key = (s.kind, s.source, s.target)
            fused[key] = fused.get(key, 0.0) + 1.0 / (_RRF_K + rank)
            first.setdefault(key, s)
            methods.setdefault(key, []).append(s.method)
    ranked = sorted(fused, key=lambda key: (-fused[key], key))[:k]
    return [dataclasses.replace(first[key], score=round(fused[key], 4), method="+".join(methods[key]))
            for key in ranked]


def default_heads(graph: ConceptGraph, kind: str) -> list[str]:
    """Concepts that most need a ``kind`` link: for ``is_a``, live concepts without parents that are not roots of
    a tree (no children either, e.g. a concept a curator just added); for other kinds, live concepts of the sources
    that use ``kind`` which have none yet."""
    src = graph.relations(relation_type=kind)
    has = {r.source for r in src}
    if kind == IS_A:
        targets = {r.target for r in src}
        return [c.id for c in graph.concepts(include_deprecated=False) if c.id not in has and c.id not in targets]
    sources = {graph.concept(r.source).source for r in src}
    targets = {r.target for r in src}
    return [c.id for c in graph.concepts(include_deprecated=False)
            if c.source in sources and c.id not in has and c.id not in targets]


def _predicted(graph: ConceptGraph, predictor: LinkPredictor, heads: list[str], kind: str,
               candidates: list[str], k: int) -> dict[str, list[Suggestion]]:
    exclude = {h: set(graph.parents(h, kind)) for h in heads}
    ranked = predictor.rank(heads, kind, candidates, k=k, exclude=exclude)
    return {h: [Suggestion(kind, h, t, round(score, 4), "link_predictor", f"GNN score {score:.2f}",
                           graph.name_of(h), graph.name_of(t)) for t, score in tails] for h, tails in ranked.items()}


def rank_links(graph: ConceptGraph, kind: str, heads: Sequence[str], embeddings: ConceptEmbeddings | None,
               per_head: int, *, use_names: bool = True, use_predictor: bool = True) -> dict[str, list[Suggestion]]:
    """Per head, its best ``per_head`` missing ``kind`` links: for ``is_a`` the predictor's ranking fused with the
    name ranking (:func:`kgclip.ontology.align.name_parents`), for other kinds the predictor's alone.

    ``use_names`` / ``use_predictor`` switch either ranking off (to compare them).
    """
    heads = list(heads)
    # is_a: any live concept may be a parent (a leaf today may be the parent a new concept needs); other kinds:
    # the concepts already used as their targets (a symptom is something some disease has as a symptom).
    live = [c.id for c in graph.concepts(include_deprecated=False)]
    targets = {r.target for r in graph.relations(relation_type=kind)}
    candidates = live if kind == IS_A else [c for c in live if c in targets]
    predictor = LinkPredictor(embeddings) if embeddings is not None and use_predictor else None
    if predictor is not None and not predictor.knows(kind):
        predictor = None
    predicted = _predicted(graph, predictor, heads, kind, candidates, per_head * 2) if predictor else {}
    if kind != IS_A:
        if predictor is None:
            raise ConfigError(f"suggesting {kind!r} links needs the link predictor: pass concept embeddings "
                              "trained on this graph (`kgclip kg train`, then --embeddings DIR)")
        return {h: v[:per_head] for h, v in predicted.items()}
    if not use_names:
        return {h: predicted.get(h, [])[:per_head] for h in heads}
    index = TermIndex(graph)
    idf = word_weights([index])
    allowed = set(candidates)
    out = {}
    for h in heads:
        named = name_parents(graph, h, k=per_head * 2, candidates=allowed, index=index, idf=idf)
        out[h] = fuse_rankings([predicted.get(h, []), named], per_head) if predicted else named[:per_head]
    return out


def _same_as(graph: ConceptGraph, other: ConceptGraph | None, embeddings: ConceptEmbeddings | None,
             concept: str | None, config: AlignConfig, limit: int) -> list[Suggestion]:
    b = other if other is not None else graph
    if concept is not None:
        config = dataclasses.replace(config, mutual_best=False)
    found = align(graph, b, config, ids_a=[concept] if concept else None)
    if embeddings is None:
        return found[:limit]
    unit = torch.nn.functional.normalize(embeddings.vectors, dim=-1)

    def cosine(s: Suggestion) -> float | None:
        if s.source in embeddings and s.target in embeddings:
            return float(unit[embeddings.index_of(s.source)] @ unit[embeddings.index_of(s.target)])
        return None

    rescored = []
    for s in found:
        cos = cosine(s)
        if cos is None:
            rescored.append(s)
            continue
        score = (1 - _EMBEDDING_WEIGHT) * s.score + _EMBEDDING_WEIGHT * max(cos, 0.0)
        rescored.append(dataclasses.replace(s, score=round(score, 4), method=f"{s.method}+embedding",
                                            why=f"{s.why}; GNN cosine {cos:.2f}"))
    if concept is not None and concept in embeddings:  # nearest concepts by embedding on the other side, too
        seen = {s.target for s in rescored}
        for cid, cos in embeddings.nearest(concept, 50):
            linked = any(g.has_relation(x, SAME_AS, y) for g in (graph, b) for x, y in ((concept, cid), (cid, concept))
                         if x in g and y in g)
            if cid in b and cid not in seen and cid != concept and cos > 0.5 and not linked:
                rescored.append(Suggestion(SAME_AS, concept, cid, round(_EMBEDDING_WEIGHT * cos, 4), "embedding",
                                           f"GNN cosine {cos:.2f}", graph.name_of(concept), b.name_of(cid)))
    rescored.sort(key=lambda s: (-s.score, s.source, s.target))
    return rescored[:limit]


def suggest_links(graph: ConceptGraph, kind: str, *, embeddings: ConceptEmbeddings | None = None,
                  other: ConceptGraph | None = None, concept: str | None = None, limit: int = 50,
                  per_head: int = 5, align_config: AlignConfig | None = None) -> list[Suggestion]:
    """Suggested ``kind`` links missing from ``graph``, best first.

    Args:
        graph: the graph to complete (for ``is_a`` / ``has_symptom``, embeddings must describe it).
        kind: ``same_as``, ``is_a`` or ``has_symptom``.
        embeddings: concept embeddings with their trained decoder (``None``: names and synonyms only; required
            for kinds other than ``same_as`` and ``is_a``).
        other: for ``same_as``, the graph to align with (default: duplicates within ``graph``).
        concept: only links of this concept (e.g. one a curator just added).
        limit: at most this many suggestions.
        per_head: at most this many per concept.
        align_config: the aligner's settings.

    Raises:
        UnknownConceptError: ``concept`` is not in ``graph``.
        ConfigError: an unknown kind, or a kind the predictor needs that it cannot give.
    """
    if kind not in SUGGESTION_KINDS:
        raise ConfigError(f"cannot suggest {kind!r} links; choose one of {list(SUGGESTION_KINDS)}")
    if concept is not None and concept not in graph:
        raise UnknownConceptError(graph._unknown_message(concept))
    if kind == SAME_AS:
        return _same_as(graph, other, embeddings, concept, align_config or AlignConfig(), limit)
    heads = [concept] if concept is not None else default_heads(graph, kind)
    per = rank_links(graph, kind, heads, embeddings, per_head)
    flat = [s for h in heads for s in per.get(h, [])]
    if concept is not None:
        return flat[:limit]
    # Across heads: each head's best first (round-robin by rank), so one concept cannot fill the list.
    by_rank = sorted(flat, key=lambda s: ([x.target for x in per[s.source]].index(s.target), -s.score, s.source))
    return by_rank[:limit]
