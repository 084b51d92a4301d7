"""On-disk forms of a :class:`ConceptGraph`: reviewable text for curated graphs (here), plus re-exports of the
binary cache (:mod:`kgclip.ontology.cache`) and the RDF export (:mod:`kgclip.ontology.rdf`).

**Text directory** (:func:`save_graph` / :func:`load_graph_dir`), e.g. ``ontologies/radlex/``::

    concepts.tsv     one concept per line, sorted by id: id, name, deprecated, source, semantic_types,
                     synonyms, xrefs, definition (lists joined by ``|``; ``\\``, tab, newline, ``|`` escaped)
    relations.tsv    one relation per line, sorted: source, type, target, origin (dangling ones included)
    changelog.jsonl  one curation edit per line (see :mod:`kgclip.ontology.changelog`)
    meta.json        name, sources with fingerprints, graph fingerprint, counts, file fingerprints, kgclip version
    .lock            the writers' lock (:func:`graph_dir_lock`); empty or a pid, never committed

so that a curator's edit reads as a one-line git diff. A save is one atomic commit of the files that changed
(:mod:`kgclip.ontology.commit`): each is staged beside its target, a journal of the renames is written (the commit
point), then the renames run, ``meta.json`` last. A failed save changes nothing; a crash before the commit point
leaves the old files, one after it leaves a journal that the next load or save rolls forward, so the changelog and
relations are never ahead of ``concepts.tsv``.

Writers that read, modify and write a directory (:class:`~kgclip.ontology.curation.Curator`, ``kgclip ontology
import``) hold :func:`~kgclip.ontology.locking.graph_dir_lock` across the whole cycle, so two simultaneous edits
never lose one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.artifacts import kgclip_version
from kgclip.config import shipped_ontologies_dir
from kgclip.errors import ArtifactCorruptError, InputFormatError, LockedError
from kgclip.fingerprint import fingerprint_bytes
from kgclip.ontology.cache import load_cache, read_cache_meta, save_cache
from kgclip.ontology.changelog import CHANGELOG_FILE
from kgclip.ontology.commit import commit_files, pending_journals, recover
from kgclip.ontology.locking import LOCK_FILE, LOCK_TIMEOUT, graph_dir_lock
from kgclip.ontology.model import BUILTIN_RELATION_TYPES, ConceptGraph
from kgclip.ontology.rdf import KGCLIP_NS, concept_iri, export_rdf
from kgclip.ontology.tsv import CONCEPT_COLUMNS, concepts_text, parse_graph_text, relations_text

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


def _relation_type_counts(graph: ConceptGraph) -> dict[str, int]:
    _, rel, _ = graph.edge_arrays()
    counts = np.bincount(rel, minlength=len(graph.relation_types)) if len(rel) else np.zeros(0, np.int64)
    return {t: int(n) for t, n in sorted(zip(graph.relation_types, counts.tolist())) if n}


def is_graph_dir(directory: str | os.PathLike[str]) -> bool:
    """True when ``directory`` holds a saved graph (its ``concepts.tsv`` exists)."""
    return (Path(directory) / CONCEPTS_FILE).is_file()


def _parse_meta(data: bytes | None, path: Path) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactCorruptError(f"{path} is not valid JSON ({exc}); restore it from git or re-save the "
                                   "graph") from exc
    if not isinstance(meta, dict):
        raise ArtifactCorruptError(f"{path} holds no JSON object; restore it from git or re-save the graph")
    return meta


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The directory's ``meta.json`` (``{}`` when absent)."""
    path = Path(directory) / META_FILE
    return _parse_meta(_read_or_none(path), path)


def _snapshot(directory: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``meta.json`` and the files it vouches for, all as of one commit.

    An interrupted save is rolled forward first (safe without the lock, see :mod:`kgclip.ontology.commit`); a save
    that runs while the files are read shows up as a journal or a changed ``meta.json``, and the files are re-read.
    """
    for _ in range(50):
        if pending_journals(directory):
            try:
                recover(directory)
            except OSError as exc:  # e.g. a read-only copy
                warnings.warn(f"{directory} holds an unfinished save that cannot be completed here ({exc}); "
                              "reading the files as they are", stacklevel=3)
        before = _read_or_none(directory / META_FILE)
        data = {name: b for name in (CONCEPTS_FILE, RELATIONS_FILE, CHANGELOG_FILE)
                if (b := _read_or_none(directory / name)) is not None}
        if _read_or_none(directory / META_FILE) == before and not pending_journals(directory):
            return _parse_meta(before, directory / META_FILE), data
        time.sleep(0.02)
    raise LockedError(f"{directory} was rewritten by other writers every time it was read; retry when they finish")


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
    if directory.is_dir():
        recover(directory, clean=True)  # finish (or discard) an interrupted save before reading what is there
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
    counts = _relation_type_counts(graph)
    unused = sorted(set(graph.declared_relation_types) - set(counts) - BUILTIN_RELATION_TYPES)  # declared only
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
            "relation_types": counts,
        },
        "sources": list(sources) if sources is not None else old_meta.get("sources", []),
        "duplicate_ids": sorted(columns.duplicate_ids),
        "files": {name: fingerprint_bytes(data) for name, data in sorted(payloads.items())},
    }
    if unused:  # declared (or once used) relation types without relations: kept so curators can still use them
        meta["declared_relation_types"] = unused
    payloads[META_FILE] = (json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    commit_files(directory, payloads, order=[META_FILE])  # meta.json, which vouches for the rest, last
    return directory


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
    meta, data = _snapshot(directory)
    if CONCEPTS_FILE not in data:
        raise InputFormatError(f"{CONCEPTS_FILE} disappeared while it was read; retry", path=str(directory))
    for name, expected in meta.get("files", {}).items():
        if name in data and fingerprint_bytes(data[name]) != expected:
            message = (f"{directory / name} differs from the fingerprint in {META_FILE} (edited by hand or merged "
                       "since the last save); check it with `kgclip ontology validate` and re-save")
            if strict:
                raise ArtifactCorruptError(message)
            warnings.warn(message, stacklevel=2)
    columns = parse_graph_text(data[CONCEPTS_FILE], data.get(RELATIONS_FILE), concepts_path=str(concepts_path),
                               relations_path=str(directory / RELATIONS_FILE),
                               duplicate_ids=meta.get("duplicate_ids", []))
    declared = meta.get("declared_relation_types", [])
    if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared):
        raise ArtifactCorruptError(f"{directory / META_FILE}: declared_relation_types is not a list of names; "
                                   "restore it from git or re-save the graph")
    columns = dataclasses.replace(columns, declared_relation_types=declared)
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
