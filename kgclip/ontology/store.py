"""On-disk forms of a :class:`ConceptGraph`: reviewable text for curated graphs (here), plus re-exports of the
binary cache (:mod:`kgclip.ontology.cache`) and the RDF export (:mod:`kgclip.ontology.rdf`).

**Text directory** (:func:`save_graph` / :func:`load_graph_dir`), e.g. ``ontologies/radlex/``::

    concepts.tsv     one concept per line, sorted by id: id, name, deprecated, source, semantic_types,
                     synonyms, xrefs, definition (lists joined by ``|``; ``\\``, tab, newline, ``|`` escaped)
    relations.tsv    one relation per line, sorted: source, type, target, origin (dangling ones included)
    changelog.jsonl  one curation edit per line (see :mod:`kgclip.ontology.changelog`)
    meta.json        name, sources with fingerprints, graph fingerprint, counts, file fingerprints, kgclip version
    .lock            the writers' lock (:func:`graph_dir_lock`); empty or a pid, never committed

so that a curator's edit reads as a one-line git diff. Each file is written to a temporary file first; all are
renamed into place only after every one was written, ``meta.json`` last, so a failed save changes nothing and a
crash leaves whole files whose mismatch with ``meta.json`` is reported on load.

Writers that read, modify and write a directory (:class:`~kgclip.ontology.curation.Curator`, ``kgclip ontology
import``) hold :func:`~kgclip.ontology.locking.graph_dir_lock` across the whole cycle, so two simultaneous edits
never lose one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.artifacts import kgclip_version
from kgclip.atomic import atomic_path
from kgclip.config import shipped_ontologies_dir
from kgclip.errors import ArtifactCorruptError, InputFormatError
from kgclip.fingerprint import fingerprint_bytes, fingerprint_file
from kgclip.ontology.adjacency import first_occurrences
from kgclip.ontology.cache import load_cache, read_cache_meta, save_cache
from kgclip.ontology.changelog import CHANGELOG_FILE
from kgclip.ontology.locking import LOCK_FILE, LOCK_TIMEOUT, graph_dir_lock
from kgclip.ontology.model import Concept, ConceptGraph, GraphColumns, Relation
from kgclip.ontology.rdf import KGCLIP_NS, concept_iri, export_rdf

__all__ = [
    "save_graph",
    "load_graph_dir",
    "open_graph",
    "read_meta",
    "save_cache",
    "load_cache",
    "read_cache_meta",
    "load_ontologies",
    "shipped_ontology_dirs",
    "export_rdf",
    "concept_iri",
    "is_graph_dir",
    "graph_dir_lock",
    "kgclip_version",
    "CONCEPT_COLUMNS",
    "CHANGELOG_FILE",
    "KGCLIP_NS",
    "LOCK_FILE",
    "LOCK_TIMEOUT",
]

FORMAT_VERSION = 1
CONCEPTS_FILE = "concepts.tsv"
RELATIONS_FILE = "relations.tsv"
META_FILE = "meta.json"
CONCEPT_COLUMNS = ("id", "name", "deprecated", "source", "semantic_types", "synonyms", "xrefs", "definition")
RELATION_COLUMNS = ("source", "type", "target", "origin")
_LIST_FIELDS = {"semantic_types", "synonyms", "xrefs"}

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "|": "\\|"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "|": "|"}
_ESCAPE_RE = re.compile(r"[\\\t\n\r|]")
_UNESCAPE_RE = re.compile(r"\\(.)")
_SPLIT_RE = re.compile(r"(?<!\\)((?:\\\\)*)\|")


# ---------------------------------------------------------------------------------------------- text format
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


def _relation_type_counts(graph: ConceptGraph) -> dict[str, int]:
    _, rel, _ = graph.edge_arrays()
    counts = np.bincount(rel, minlength=len(graph.relation_types)) if len(rel) else np.zeros(0, np.int64)
    return {t: int(n) for t, n in sorted(zip(graph.relation_types, counts.tolist())) if n}


def is_graph_dir(directory: str | os.PathLike[str]) -> bool:
    """True when ``directory`` holds a saved graph (its ``concepts.tsv`` exists)."""
    return (Path(directory) / CONCEPTS_FILE).is_file()


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The directory's ``meta.json`` (``{}`` when absent)."""
    path = Path(directory) / META_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is not valid JSON ({exc}); restore it from git or re-save the "
                                   "graph") from exc


def save_graph(
    graph: ConceptGraph,
    directory: str | os.PathLike[str],
    changelog: Any = None,
    *,
    sources: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Write ``graph`` under ``directory`` in the reviewable text format (see module docstring).

    Args:
        graph: the graph to write.
        directory: created if missing. Other files in it (a README) are left alone.
        changelog: a :class:`~kgclip.ontology.curation.Changelog` (or anything with ``to_jsonl()``) to write as
            ``changelog.jsonl``; ``None`` keeps the file that is there.
        sources: provenance records (``{"format", "path", "fingerprint"}``) for ``meta.json``; ``None`` keeps the
            ones already recorded.

    Returns:
        The directory. Files whose content did not change are not rewritten.
    """
    directory = Path(directory)
    try:
        old_meta = read_meta(directory) if directory.exists() else {}
    except ArtifactCorruptError:  # re-saving is how a damaged meta.json is repaired
        old_meta = {}
    payloads: dict[str, bytes] = {
        CONCEPTS_FILE: concepts_text(graph).encode("utf-8"),
        RELATIONS_FILE: relations_text(graph).encode("utf-8"),
    }
    if changelog is not None:
        payloads[CHANGELOG_FILE] = changelog.to_jsonl().encode("utf-8")
    elif (directory / CHANGELOG_FILE).exists():
        payloads[CHANGELOG_FILE] = (directory / CHANGELOG_FILE).read_bytes()
    else:
        payloads[CHANGELOG_FILE] = b""
    columns = graph.columns()
    meta = {
        "format": "kgclip-ontology",
        "format_version": FORMAT_VERSION,
        "name": graph.name,
        "kgclip_version": kgclip_version(),
        "graph_fingerprint": graph.fingerprint(),
        "counts": {
            "concepts": len(graph),
            "deprecated": columns.deprecated.count(1),
            "relations": graph.num_relations,
            "dangling": len(graph.dangling),
            "relation_types": _relation_type_counts(graph),
        },
        "sources": list(sources) if sources is not None else old_meta.get("sources", []),
        "duplicate_ids": sorted(columns.duplicate_ids),
        "files": {name: fingerprint_bytes(data) for name, data in sorted(payloads.items())},
    }
    payloads[META_FILE] = (json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # atomic_path renames on exit; ExitStack exits in reverse order, so every temporary file is complete before
        # the first rename, and meta.json (entered first) is renamed last.
        for name in (META_FILE, CONCEPTS_FILE, RELATIONS_FILE, CHANGELOG_FILE):
            target = directory / name
            if target.exists() and target.read_bytes() == payloads[name]:
                continue
            tmp = stack.enter_context(atomic_path(target))
            tmp.write_bytes(payloads[name])
            tmp.chmod(0o644)  # mkstemp creates 0600; these are shared, reviewable files
    return directory


def _read_tsv(path: Path, columns: Sequence[str]) -> Iterable[tuple[int, list[str]]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputFormatError(f"byte {exc.start} is not UTF-8; re-save the file as UTF-8", path=str(path),
                               line=line) from exc
    lines = text.split("\n")
    if not lines or lines[0].rstrip("\r").split("\t") != list(columns):
        raise InputFormatError(f"expected the header {' <tab> '.join(columns)}; is this a kgclip graph directory?",
                               path=str(path), line=1)
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(columns):
            raise InputFormatError(f"expected {len(columns)} tab-separated fields, found {len(fields)}; fix the line "
                                   "(tabs inside a field are written as \\t)", path=str(path), line=number)
        yield number, fields


def load_graph_dir(directory: str | os.PathLike[str], *, strict: bool = False) -> ConceptGraph:
    """Read a graph written by :func:`save_graph`.

    Dangling relations come back dangling; ``same_as`` relations come back exactly as stored (xrefs are not
    re-linked, so a curator's removal of one sticks).

    Args:
        strict: raise :class:`ArtifactCorruptError` (instead of warning) when a file differs from the fingerprint
            in ``meta.json``, i.e. it was edited by hand or merged by git since the last save.
    """
    directory = Path(directory)
    concepts_path = directory / CONCEPTS_FILE
    if not concepts_path.is_file():
        raise InputFormatError(f"no {CONCEPTS_FILE} here; create the graph with `kgclip ontology import FORMAT PATH "
                               f"--into {directory}`", path=str(directory))
    meta = read_meta(directory)
    for name, expected in meta.get("files", {}).items():
        path = directory / name
        if path.exists() and fingerprint_file(path) != expected:
            message = (f"{path} differs from the fingerprint in {META_FILE} (edited by hand, merged, or a save was "
                       "interrupted); check it with `kgclip ontology validate` and re-save")
            if strict:
                raise ArtifactCorruptError(message)
            warnings.warn(message, stacklevel=2)
    # Columns are filled directly and handed to from_columns (not concept by concept through add_concept): about
    # 3x faster on RadLex.
    ids: list[str] = []
    index: dict[str, int] = {}
    names: list[str] = []
    deprecated = bytearray()
    sources: list[str] = []
    types: list[tuple[str, ...]] = []
    synonyms: list[tuple[str, ...]] = []
    xrefs: list[tuple[str, ...]] = []
    definitions: list[str] = []
    for number, f in _read_tsv(concepts_path, CONCEPT_COLUMNS):
        cid = _unesc(f[0])
        if cid in index:
            raise InputFormatError(f"concept {cid!r} appears twice; merge the two lines", path=str(concepts_path),
                                   line=number)
        if not cid or cid != cid.strip():
            raise InputFormatError(f"invalid concept id {cid!r}", path=str(concepts_path), line=number)
        index[cid] = len(ids)
        ids.append(cid)
        names.append(_unesc(f[1]))
        deprecated.append(f[2] == "1")
        sources.append(_unesc(f[3]))
        types.append(_unesc_list(f[4]))
        synonyms.append(_unesc_list(f[5]))
        xrefs.append(_unesc_list(f[6]))
        definitions.append(_unesc(f[7]))
    # Relation types and origins are interned in order of first appearance, as ConceptGraph does when it builds.
    src, rel, dst, org = [], [], [], []
    rel_types: dict[str, int] = {}
    origins: dict[str, int] = {"": 0}
    dangling: list[Relation] = []
    relations_path = directory / RELATIONS_FILE
    if relations_path.exists():
        for _, f in _read_tsv(relations_path, RELATION_COLUMNS):
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
    keep = first_occurrences(*edges[:3], len(rel_types), len(ids))  # a hand-merged file may repeat a line
    if keep is not None:
        edges = [e[keep] for e in edges]
    columns = GraphColumns(
        ids=ids, names=names, synonyms=synonyms, semantic_types=types, definitions=definitions, sources=sources,
        deprecated=bytes(deprecated), xrefs=xrefs, edge_source=edges[0], edge_type=edges[1], edge_target=edges[2],
        edge_origin=edges[3], relation_types=list(rel_types), origins=list(origins), dangling=dangling,
        duplicate_ids=list(meta.get("duplicate_ids", [])))
    return ConceptGraph.from_columns(columns, name=meta.get("name") or directory.name)


# ---------------------------------------------------------------------------------------------- several graphs
def shipped_ontology_dirs() -> list[Path]:
    """The ontologies kgclip ships (package data, or ``ontologies/`` in a checkout): RadLex and DO, those present."""
    root = shipped_ontologies_dir()
    return [] if root is None else [d for d in (root / "radlex", root / "doid") if is_graph_dir(d)]


def open_graph(path: str | os.PathLike[str]) -> ConceptGraph:
    """A graph from a graph directory (:func:`load_graph_dir`) or a binary cache (a ``.safetensors`` file)."""
    return load_cache(path) if str(path).endswith(".safetensors") else load_graph_dir(path)


def load_ontologies(dirs: Iterable[str | os.PathLike[str]] | None = None, *, name: str = "merged") -> ConceptGraph:
    """Load several graph directories (default: :func:`shipped_ontology_dirs`) into one graph joined by ``same_as``."""
    paths = list(dirs) if dirs is not None else shipped_ontology_dirs()
    if not paths:
        raise InputFormatError("no ontology directories to load: this install ships none (was the wheel built "
                               "without its package data?); pass graph directories, or build the shipped ones in a "
                               "checkout with `python ontologies/build.py`")
    graphs = [load_graph_dir(p) for p in paths]
    return graphs[0] if len(graphs) == 1 else ConceptGraph.union(graphs, name=name)
