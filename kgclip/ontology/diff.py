"""Structural diff between two versions of a concept graph.

:func:`diff_graphs` compares concepts by id (added, removed, and changed with field-level old/new values) and
relations as ``(source, type, target)`` triples (origins are provenance, not content, as in
:meth:`ConceptGraph.fingerprint`). Dangling relations count as relations. The result renders as text
(:meth:`GraphDiff.text`) and as HTML in a notebook.

Example:
    >>> from kgclip.testing import tiny_graph
    >>> from kgclip.ontology.curation import Curator
    >>> old = tiny_graph(); cur = Curator(old.copy())
    >>> _ = cur.update_concept("DOID:552", add_synonyms=["lung infection"])
    >>> print(diff_graphs(old, cur.graph).text())
    ~ DOID:552 pneumonia
        synonyms: ['lung inflammation'] -> ['lung inflammation', 'lung infection']
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from kgclip.ontology.model import Concept, ConceptGraph, Relation

__all__ = ["GraphDiff", "ConceptChange", "diff_graphs"]

_FIELDS = ("name", "synonyms", "semantic_types", "definition", "source", "deprecated", "xrefs")


@dataclasses.dataclass(frozen=True)
class ConceptChange:
    """A concept present in both versions whose fields differ.

    Attributes:
        id: the concept id.
        changes: ``{field: (old value, new value)}`` for every field that differs.
    """

    id: str
    changes: dict[str, tuple[Any, Any]]
    name: str = ""  # the name in the new version, for display


@dataclasses.dataclass
class GraphDiff:
    """What changed from ``old`` to ``new``; all lists sorted by id / triple.

    Attributes:
        old_name, new_name: the two graphs' names.
        added_concepts, removed_concepts: concepts only in ``new`` / only in ``old``.
        changed_concepts: concepts in both with different fields.
        added_relations, removed_relations: relation triples only in ``new`` / only in ``old``.
    """

    old_name: str
    new_name: str
    added_concepts: list[Concept] = dataclasses.field(default_factory=list)
    removed_concepts: list[Concept] = dataclasses.field(default_factory=list)
    changed_concepts: list[ConceptChange] = dataclasses.field(default_factory=list)
    added_relations: list[Relation] = dataclasses.field(default_factory=list)
    removed_relations: list[Relation] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.is_empty

    @property
    def is_empty(self) -> bool:
        return not (self.added_concepts or self.removed_concepts or self.changed_concepts or self.added_relations
                    or self.removed_relations)

    @property
    def changed_ids(self) -> set[str]:
        """Every concept id whose record or relations differ (for an incremental refresh)."""
        ids = {c.id for c in self.added_concepts} | {c.id for c in self.removed_concepts}
        ids |= {c.id for c in self.changed_concepts}
        for r in (*self.added_relations, *self.removed_relations):
            ids.update((r.source, r.target))
        return ids

    def summary(self) -> str:
        if self.is_empty:
            return f"no differences between {self.old_name!r} and {self.new_name!r}"
        return (f"{self.old_name!r} -> {self.new_name!r}: concepts +{len(self.added_concepts)} "
                f"-{len(self.removed_concepts)} ~{len(self.changed_concepts)}; relations +{len(self.added_relations)} "
                f"-{len(self.removed_relations)}")

    def lines(self, limit: int | None = None) -> list[str]:
        """The diff as text lines: ``+``/``-`` concepts and relations, ``~`` changed concepts with their fields."""
        out: list[str] = []
        for c in self.added_concepts:
            out.append(f"+ {c.id} {c.name}")
        for c in self.removed_concepts:
            out.append(f"- {c.id} {c.name}")
        for change in self.changed_concepts:
            out.append(f"~ {change.id}{' ' + change.name if change.name else ''}")
            for field, (old, new) in change.changes.items():
                out.append(f"    {field}: {_show(old)} -> {_show(new)}")
        for r in self.added_relations:
            out.append(f"+ {r.source} -{r.type}-> {r.target}")
        for r in self.removed_relations:
            out.append(f"- {r.source} -{r.type}-> {r.target}")
        if limit is not None and len(out) > limit:
            out = out[:limit] + [f"... {len(out) - limit} more line(s)"]
        return out

    def text(self, limit: int | None = None) -> str:
        return "\n".join(self.lines(limit))

    def __str__(self) -> str:
        return self.summary() + ("" if self.is_empty else "\n" + self.text(limit=200))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "old": self.old_name, "new": self.new_name,
            "added_concepts": [c.id for c in self.added_concepts],
            "removed_concepts": [c.id for c in self.removed_concepts],
            "changed_concepts": {c.id: {f: [_jsonable(o), _jsonable(n)] for f, (o, n) in c.changes.items()}
                                 for c in self.changed_concepts},
            "added_relations": [[r.source, r.type, r.target] for r in self.added_relations],
            "removed_relations": [[r.source, r.type, r.target] for r in self.removed_relations],
        }

    def _repr_html_(self) -> str:
        def row(mark: str, colour: str, text: str) -> str:
            return (f'<tr style="background:{colour}"><td style="font-family:monospace">{mark}</td>'
                    f"<td>{html.escape(text)}</td></tr>")

        rows = []
        for line in self.lines(limit=500):
            mark, rest = line[:1], line[2:]
            colour = {"+": "#e6ffec", "-": "#ffebe9", "~": "#fff8c5"}.get(mark, "transparent")
            rows.append(row(mark if mark in "+-~" else "", colour, rest if mark in "+-~" else line.strip()))
        return (f"<div><b>{html.escape(self.summary())}</b>"
                f"<table style=\"border-collapse:collapse\">{''.join(rows)}</table></div>")


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _triples(graph: ConceptGraph) -> dict[tuple[str, str, str], Relation]:
    out = {(r.source, r.type, r.target): r for r in graph.dangling}
    src, rel, dst = graph.edge_arrays()
    ids, types = graph.ids, graph.relation_types
    for s, r, d in zip(src.tolist(), rel.tolist(), dst.tolist()):
        key = (ids[s], types[r], ids[d])
        out[key] = Relation(*key)
    return out


def diff_graphs(old: ConceptGraph, new: ConceptGraph) -> GraphDiff:
    """The structural difference from ``old`` to ``new`` (both left unchanged)."""
    result = GraphDiff(old.name, new.name)
    old_ids, new_ids = set(old.ids), set(new.ids)
    result.added_concepts = [new.concept(i) for i in sorted(new_ids - old_ids)]
    result.removed_concepts = [old.concept(i) for i in sorted(old_ids - new_ids)]
    for cid in sorted(old_ids & new_ids):
        a, b = old.concept(cid), new.concept(cid)
        if a != b:
            changes = {f: (getattr(a, f), getattr(b, f)) for f in _FIELDS if getattr(a, f) != getattr(b, f)}
            result.changed_concepts.append(ConceptChange(cid, changes, b.name))
    old_rel, new_rel = _triples(old), _triples(new)
    result.added_relations = [new_rel[k] for k in sorted(new_rel.keys() - old_rel.keys())]
    result.removed_relations = [old_rel[k] for k in sorted(old_rel.keys() - new_rel.keys())]
    return result
