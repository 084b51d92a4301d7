"""Text queries expanded through the graph: link the text, then expand each concept it names.

``"pneumonia in the left lung"`` links to *pneumonia* and *lung*; each affirmed mention is expanded through
``is_a`` descendants and ``same_as`` partners (:func:`kgclip.ontology.expand.expand_concept`), and the result shows
the expansion (which concept each expanded one came from, and the path). Negated mentions ("no effusion") are
not expanded: a search for them should not return cases that have them.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> from kgclip.text.linker import ConceptLinker
    >>> g = tiny_graph()
    >>> q = expand_query("lung cancer, no effusion", g, ConceptLinker.from_graph(g))
    >>> q.ids()
    ['DOID:1324', 'DOID:3910']
    >>> q.describe()
    "'lung cancer' -> lung cancer (DOID:1324) + 1 descendant(s), 0 via same_as: lung adenocarcinoma ⊂ lung cancer"
"""

from __future__ import annotations

import dataclasses
import html

from kgclip.ontology.expand import ConceptExpansion, ConceptMatch, expand_concept
from kgclip.ontology.model import ConceptGraph
from kgclip.text.linker import ConceptLinker, Mention

__all__ = ["QueryExpansion", "expand_query"]


@dataclasses.dataclass
class QueryExpansion:
    """A linked text query and the expansion of each affirmed concept it names.

    Attributes:
        text: the query.
        mentions: every mention the linker found (negated ones included, for display).
        expansions: one per distinct affirmed concept, in text order.
    """

    text: str
    mentions: list[Mention]
    expansions: list[ConceptExpansion]

    def ids(self) -> list[str]:
        """Every concept of every expansion, without repeats."""
        return list(dict.fromkeys(cid for e in self.expansions for cid in e.ids()))

    def match(self, concept_id: str) -> ConceptMatch | None:
        """How ``concept_id`` entered the expansion (the first expansion that has it), or ``None``."""
        for e in self.expansions:
            found = e.match(concept_id)
            if found is not None:
                return found
        return None

    def describe(self) -> str:
        spans = {m.concept_id: m.text for m in self.mentions}
        return "; ".join(f"{spans.get(e.query, e.name)!r} -> {e.describe()}" for e in self.expansions) or (
            f"{self.text!r} names no concept of the graph")

    def _repr_html_(self) -> str:
        return "".join(f"<p><b>{html.escape(e.name)}</b></p>{e._repr_html_()}" for e in self.expansions) or (
            f"<p>{html.escape(self.text)}: no concept linked</p>")


def expand_query(text: str, graph: ConceptGraph, linker: ConceptLinker, *, descendants: bool = True,
                 same_as: bool = True, max_concepts: int = 20000) -> QueryExpansion:
    """Link ``text`` and expand every affirmed concept it names (see :func:`kgclip.ontology.expand.expand_concept`)."""
    mentions = linker.link(text)
    seeds = list(dict.fromkeys(m.concept_id for m in mentions if not m.negated and m.concept_id in graph))
    expansions = [expand_concept(graph, cid, descendants=descendants, same_as=same_as, max_concepts=max_concepts)
                  for cid in seeds]
    return QueryExpansion(text, mentions, expansions)
