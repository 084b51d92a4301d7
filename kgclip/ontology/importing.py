"""Importing a source file into a curated graph directory: read, merge (or replace), diff, log, save, under the lock.

:func:`import_source` is what ``kgclip ontology import`` runs. Everything is read and merged in memory first, so a
bad source raises before the directory is touched; the directory's writers' lock
(:func:`~kgclip.ontology.locking.graph_dir_lock`) is held from reading what is there to writing the result, so a
concurrent edit is never overwritten. The import becomes one changelog entry (with the ids it changed, or
``full_refresh`` when there are more than :data:`~kgclip.ontology.changelog.IMPORT_ID_LIMIT`) and its source (format,
file name, fingerprint) is recorded in ``meta.json``.

Example:
    >>> result = import_source("obo", "DO_cancer_slim.obo", "ontologies/doid", author="ann")   # doctest: +SKIP
    >>> print(result.changes.summary())                                                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgclip.fingerprint import fingerprint_file, fingerprint_json
from kgclip.ontology.changelog import CHANGELOG_FILE, IMPORT_ID_LIMIT, ChangeEntry, Changelog
from kgclip.ontology.diff import GraphDiff, diff_graphs
from kgclip.ontology.locking import LOCK_TIMEOUT, graph_dir_lock
from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.sources import READERS, detect_format, read_records
from kgclip.ontology.store import is_graph_dir, load_graph_dir, read_meta, save_graph

__all__ = ["ImportResult", "import_source", "merge_into", "source_fingerprint"]


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What :func:`import_source` did.

    Attributes:
        graph: the directory's graph after the import.
        changes: the structural diff from the graph that was there before (empty graph for a new directory).
        source: the provenance record added to ``meta.json`` (format, file name, fingerprint, on_error).
        entry: the ``import`` changelog entry.
    """

    graph: ConceptGraph
    changes: GraphDiff
    source: dict[str, Any]
    entry: ChangeEntry


def source_fingerprint(path: str | os.PathLike[str]) -> str:
    """Content fingerprint of a source file, or of every file directly inside a source directory (UMLS, DO)."""
    path = Path(path)
    if path.is_dir():
        return fingerprint_json([[p.name, fingerprint_file(p)] for p in sorted(path.iterdir()) if p.is_file()])
    return fingerprint_file(path)


def import_source(fmt: str, path: str | os.PathLike[str], into: str | os.PathLike[str], *, on_error: str = "raise",
                  options: Mapping[str, Any] | None = None, name: str | None = None, replace: bool = False,
                  author: str | None = None, wait: float = LOCK_TIMEOUT) -> ImportResult:
    """Read ``path`` in format ``fmt`` and merge it into the graph directory ``into`` (created if missing).

    Args:
        fmt: a reader name or alias (:data:`~kgclip.ontology.sources.READERS`), or ``"auto"``.
        path: the source file or release directory.
        into: the graph directory.
        on_error: ``"raise"`` or ``"skip"`` bad rows (the reader's policy).
        options: reader options (e.g. ``{"sabs": ("MSH",)}`` for ``umls-rrf``).
        name: the graph's name (default: the one recorded in the directory, else the directory's name).
        replace: replace the directory's graph instead of merging into it.
        author: recorded in the changelog.
        wait: seconds to wait for another writer of the directory before :class:`~kgclip.errors.LockedError`.
    """
    path, into = Path(path), Path(into)
    fmt = detect_format(path) if fmt == "auto" else READERS.canonical(fmt)
    name = name or (read_meta(into).get("name") if is_graph_dir(into) else None) or into.name
    new = ConceptGraph.from_records(read_records(fmt, path, on_error=on_error, **dict(options or {})), name=name)
    source = {"format": fmt, "path": path.name, "fingerprint": source_fingerprint(path), "on_error": on_error}
    with graph_dir_lock(into, wait):
        return merge_into(new, into, source, replace=replace, author=author)


def merge_into(new: ConceptGraph, into: str | os.PathLike[str], source: dict[str, Any], *, replace: bool = False,
               author: str | None = None) -> ImportResult:
    """Merge ``new`` into the graph stored in ``into`` (or replace it), log the import and save.

    The caller holds the directory's writers' lock. ``source`` is the provenance record for ``meta.json``; a record
    equal to one already there replaces it (re-importing the same file does not list it twice).
    """
    into = Path(into)
    existing = load_graph_dir(into) if is_graph_dir(into) else ConceptGraph(name=new.name)
    graph = new if replace or not len(existing) else ConceptGraph.union([existing, new], name=new.name)
    changes = diff_graphs(existing, graph)
    changelog = Changelog.load(into / CHANGELOG_FILE)
    ids = sorted(changes.changed_ids)
    full = len(ids) > IMPORT_ID_LIMIT
    entry = changelog.append("import", {**source, "replace": bool(replace), "full_refresh": full,
                                        "added": len(changes.added_concepts), "changed": len(changes.changed_concepts),
                                        "removed": len(changes.removed_concepts)},
                             [] if full else ids, author=author)
    old_sources = [] if replace else [s for s in read_meta(into).get("sources", []) if s != source]
    save_graph(graph, into, changelog=changelog, sources=[*old_sources, source])
    return ImportResult(graph=graph, changes=changes, source=source, entry=entry)
