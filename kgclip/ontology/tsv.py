"""The reviewable text format of a curated graph: ``concepts.tsv`` and ``relations.tsv``.

One concept or relation per line, sorted, tab-separated, so a curator's edit reads as a one-line git diff::

    concepts.tsv     id, name, deprecated, source, semantic_types, synonyms, xrefs, definition
                     (lists joined by ``|``; ``\\``, tab, newline, carriage return and ``|`` escaped)
    relations.tsv    source, type, target, origin (dangling relations included)

:func:`concepts_text` / :func:`relations_text` write a graph; :func:`parse_graph_text` turns the two files' bytes
back into the graph's columns without per-record work. Files are split on ``\\n`` only, so any other Unicode line
separator inside a name stays part of the name. Where the files live and how they are saved together is
:mod:`kgclip.ontology.store`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from kgclip.errors import InputFormatError
from kgclip.ontology.adjacency import first_occurrences
from kgclip.ontology.model import Concept, ConceptGraph, GraphColumns, Relation

__all__ = ["CONCEPT_COLUMNS", "RELATION_COLUMNS", "concepts_text", "relations_text", "parse_graph_text"]

CONCEPT_COLUMNS = ("id", "name", "deprecated", "source", "semantic_types", "synonyms", "xrefs", "definition")
RELATION_COLUMNS = ("source", "type", "target", "origin")

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "|": "\\|"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "|": "|"}
_ESCAPE_RE = re.compile(r"[\\\t\n\r|]")
_UNESCAPE_RE = re.compile(r"\\(.)")
_SPLIT_RE = re.compile(r"(?<!\\)((?:\\\\)*)\|")


def _esc(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text) if _ESCAPE_RE.search(text) else text


def _unesc(text: str) -> str:
    if "\\" not in text:
        return text
    # Unknown escapes keep their character, so a hand-typed backslash does not break the file.
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def _esc_list(items: Sequence[str]) -> str:
    # An empty item is written as "\e" so that ("",) and () stay distinct.
    return "|".join(_esc(i) if i else "\\e" for i in items)


def _unesc_list(field: str) -> tuple[str, ...]:
    if not field:
        return ()
    if "\\" not in field:
        return tuple(field.split("|"))
    parts = _SPLIT_RE.split(field)
    # re.split with a group returns the captured backslash runs between items; glue them back.
    items, current = [], parts[0]
    for k in range(1, len(parts), 2):
        items.append(current + parts[k])
        current = parts[k + 1]
    items.append(current)
    return tuple("" if i == "\\e" else _unesc(i) for i in items)


def _concept_line(c: Concept) -> str:
    return "\t".join((
        _esc(c.id), _esc(c.name), "1" if c.deprecated else "0", _esc(c.source), _esc_list(c.semantic_types),
        _esc_list(c.synonyms), _esc_list(c.xrefs), _esc(c.definition),
    ))


def _relation_line(r: Relation) -> str:
    return "\t".join((_esc(r.source), _esc(r.type), _esc(r.target), _esc(r.origin)))


def concepts_text(graph: ConceptGraph) -> str:
    """``concepts.tsv`` content: a header, then one line per concept sorted by id."""
    lines = sorted(_concept_line(c) for c in graph.concepts())
    return "\t".join(CONCEPT_COLUMNS) + "\n" + "".join(line + "\n" for line in lines)


def relations_text(graph: ConceptGraph) -> str:
    """``relations.tsv`` content: a header, then one line per relation (dangling included), sorted."""
    lines = sorted(_relation_line(r) for r in [*graph.relations(), *graph.dangling])
    return "\t".join(RELATION_COLUMNS) + "\n" + "".join(line + "\n" for line in lines)


def _lines(data: bytes, path: str, columns: Sequence[str]) -> Iterable[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFormatError(f"byte {exc.start} is not UTF-8; re-save the file as UTF-8", path=path,
                               line=line) from exc
    lines = text.split("\n")
    if lines[0].rstrip("\r").split("\t") != list(columns):
        raise InputFormatError(f"expected the header {' <tab> '.join(columns)}; is this a kgclip graph directory?",
                               path=path, line=1)
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(columns):
            raise InputFormatError(f"expected {len(columns)} tab-separated fields, found {len(fields)}; fix the line "
                                   "(tabs inside a field are written as \\t)", path=path, line=number)
        yield number, fields


def parse_graph_text(concepts: bytes, relations: bytes | None, *, concepts_path: str = "concepts.tsv",
                     relations_path: str = "relations.tsv", duplicate_ids: Sequence[str] = ()) -> GraphColumns:
    """The graph columns held by ``concepts.tsv`` and ``relations.tsv`` (``None``: no relations file).

    Relation types and origins are interned in order of first appearance, as :class:`ConceptGraph` does when it
    builds; relations to unknown ids come back dangling; a repeated relation line (a hand merge) is kept once.

    Raises:
        InputFormatError: naming file and line (not UTF-8, a wrong header or field count, a bad or repeated id).
    """
    ids: list[str] = []
    index: dict[str, int] = {}
    names: list[str] = []
    deprecated = bytearray()
    sources: list[str] = []
    types: list[tuple[str, ...]] = []
    synonyms: list[tuple[str, ...]] = []
    xrefs: list[tuple[str, ...]] = []
    definitions: list[str] = []
    for number, f in _lines(concepts, concepts_path, CONCEPT_COLUMNS):
        cid = _unesc(f[0])
        if cid in index:
            raise InputFormatError(f"concept {cid!r} appears twice; merge the two lines", path=concepts_path,
                                   line=number)
        if not cid or cid != cid.strip():
            raise InputFormatError(f"invalid concept id {cid!r}", path=concepts_path, line=number)
        index[cid] = len(ids)
        ids.append(cid)
        names.append(_unesc(f[1]))
        deprecated.append(f[2] == "1")
        sources.append(_unesc(f[3]))
        types.append(_unesc_list(f[4]))
        synonyms.append(_unesc_list(f[5]))
        xrefs.append(_unesc_list(f[6]))
        definitions.append(_unesc(f[7]))
    src, rel, dst, org = [], [], [], []
    rel_types: dict[str, int] = {}
    origins: dict[str, int] = {"": 0}
    dangling: list[Relation] = []
    for _, f in _lines(relations, relations_path, RELATION_COLUMNS) if relations is not None else ():
        s, t, d = _unesc(f[0]), _unesc(f[1]), _unesc(f[2])
        i, j = index.get(s), index.get(d)
        if i is None or j is None:
            dangling.append(Relation(s, t, d, _unesc(f[3])))
            continue
        src.append(i)
        rel.append(rel_types.setdefault(t, len(rel_types)))
        dst.append(j)
        org.append(origins.setdefault(_unesc(f[3]), len(origins)))
    edges = [np.asarray(x, dtype=np.int32) for x in (src, rel, dst, org)]
    keep = first_occurrences(*edges[:3], len(rel_types), len(ids))
    if keep is not None:
        edges = [e[keep] for e in edges]
    return GraphColumns(
        ids=ids, names=names, synonyms=synonyms, semantic_types=types, definitions=definitions, sources=sources,
        deprecated=bytes(deprecated), xrefs=xrefs, edge_source=edges[0], edge_type=edges[1], edge_target=edges[2],
        edge_origin=edges[3], relation_types=list(rel_types), origins=list(origins), dangling=dangling,
        duplicate_ids=list(duplicate_ids))
