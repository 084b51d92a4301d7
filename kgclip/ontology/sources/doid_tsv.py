"""The Disease Ontology's report TSVs, recognised by their header line.

- ``HumanDO.tsv`` (``id, label, subClassOf``; every field double-quoted): diseases and ``is_a`` relations. The
  parent is given by *label*; labels are resolved to ids after the whole file is read ("disease" is ``DOID:4``).
- ``allXREFinDO.tsv`` / ``MESHinDO.tsv`` (``id, label, xref(s)``): cross-references -> ``Concept.xrefs``.
- ``disease-symptom.tsv`` (``disease_id, disease_label, symptom_id, symptom_label``): ``has_symptom`` relations to
  ``SYMP:`` concepts, which are yielded with their names.
- ``DO-ICDO-anatomy.tsv`` (``id, label, xrefs, anatomy_id, anatomy_label``): ``located_in`` relations to UBERON.

A directory reads ``HumanDO.tsv``, ``allXREFinDO.tsv``, ``disease-symptom.tsv`` and ``DO-ICDO-anatomy.tsv`` where
present.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from kgclip.errors import InputFormatError
from kgclip.ontology.model import IS_A, Concept, Relation, normalize_curie
from kgclip.ontology.sources._common import Policy, iter_lines, normalize_xref, unquote

__all__ = ["read_doid_tsv", "DIRECTORY_FILES"]

DIRECTORY_FILES = ("HumanDO.tsv", "allXREFinDO.tsv", "disease-symptom.tsv", "DO-ICDO-anatomy.tsv")
_KINDS = {
    ("id", "label", "subclassof"): "tree",
    ("id", "label", "xref"): "xref",
    ("id", "label", "xrefs"): "xref",
    ("disease_id", "disease_label", "symptom_id", "symptom_label"): "symptom",
    ("id", "label", "xrefs", "anatomy_id", "anatomy_label"): "anatomy",
}
_ROOTS = {"disease": "DOID:4"}


def _read_file(path: Path, policy: Policy, source: str, named: dict[str, str]) -> Iterator[Concept | Relation]:
    """One TSV. ``named`` (shared across the files of a directory) maps ids to the label already given to them,
    so an older label in a later file becomes a synonym instead of a conflicting second name."""

    def disease(cid: str, label: str, xrefs: tuple[str, ...] = ()) -> Concept:
        first = named.setdefault(cid, label)
        if first == label:
            return Concept(id=cid, name=label, source=source, xrefs=xrefs)
        return Concept(id=cid, synonyms=(label,), source=source, xrefs=xrefs)

    xref_run: tuple[str, str, list[str]] | None = None  # consecutive xref rows of one id, yielded as one record
    lines = iter_lines(path, policy)
    kind = None
    width = 0
    parents: list[tuple[str, str, int]] = []  # (child id, parent label, line) of HumanDO.tsv
    label_ids: dict[str, str] = {}
    for number, text in lines:
        if not text.strip():
            continue
        fields = [unquote(f.strip()) for f in text.split("\t")]
        if kind is None:
            kind = _KINDS.get(tuple(f.lower() for f in fields))
            if kind is None:
                raise InputFormatError(
                    f"unrecognised header {fields!r}; the doid-tsv reader knows HumanDO.tsv, allXREFinDO.tsv, "
                    "MESHinDO.tsv, disease-symptom.tsv and DO-ICDO-anatomy.tsv", path=str(path), line=number)
            width = len(fields)
            continue
        if len(fields) != width:
            policy.bad(f"expected {width} tab-separated fields, found {len(fields)}", line=number)
            continue
        first = normalize_curie(fields[0]) if fields[0] else ""
        if ":" not in first:
            policy.bad(f"expected a DOID id in column 1, found {fields[0]!r}", line=number)
            continue
        if kind == "tree":
            cid, label, parent = first, fields[1], fields[2]
            yield disease(cid, label)
            label_ids.setdefault(label, cid)
            if parent:
                parents.append((cid, parent, number))
        elif kind == "xref":
            if xref_run is not None and xref_run[0] != first:
                yield disease(xref_run[0], xref_run[1], tuple(dict.fromkeys(xref_run[2])))
                xref_run = None
            if xref_run is None:
                xref_run = (first, fields[1], [])
            xref_run[2].extend(x for v in fields[2].split("|") for x in (normalize_xref(v),) if x)
        elif kind == "symptom":
            symptom = normalize_curie(fields[2])
            if ":" not in symptom:
                policy.bad(f"expected a SYMP id in column 3, found {fields[2]!r}", line=number)
                continue
            yield disease(first, fields[1])
            yield Concept(id=symptom, name=fields[3], source="symp")
            yield Relation(first, "has_symptom", symptom, source)
        else:  # anatomy
            xrefs = tuple(x for v in fields[2].split("|") for x in (normalize_xref(v),) if x)
            yield disease(first, fields[1], xrefs)
            if fields[3]:
                anatomy = normalize_curie(fields[3])
                yield Concept(id=anatomy, name=fields[4], source=anatomy.split(":", 1)[0].lower())
                yield Relation(first, "located_in", anatomy, source)
    if xref_run is not None:
        yield disease(xref_run[0], xref_run[1], tuple(dict.fromkeys(xref_run[2])))
    if kind is None:
        if path.stat().st_size:
            policy.bad("no header line found; expected a Disease Ontology report TSV")
        return
    roots_used: set[str] = set()
    for cid, parent, number in parents:
        target = normalize_curie(parent) if parent.upper().startswith("DOID:") else label_ids.get(parent)
        if target is None and parent in _ROOTS:
            target = _ROOTS[parent]
            roots_used.add(parent)
        if target is None:
            policy.bad(f"parent {parent!r} of {cid} is not a label in this file; add its row", line=number)
            continue
        yield Relation(cid, IS_A, target, source)
    for label in sorted(roots_used):
        if label not in label_ids:
            yield Concept(id=_ROOTS[label], name=label, source=source)


def read_doid_tsv(path: str | os.PathLike[str], *, on_error: str = "raise",
                  source: str = "doid") -> Iterator[Concept | Relation]:
    """Yield Disease Ontology concepts, ``is_a``, ``has_symptom``, ``located_in`` relations and xrefs from TSVs.

    Args:
        path: one report TSV, or a directory holding them.
        on_error: ``"raise"`` or ``"skip"`` (warn naming file and line) for bad rows.
        source: the ``source`` recorded on disease concepts.
    """
    path = Path(path)
    if path.is_dir():
        files = [path / name for name in DIRECTORY_FILES if (path / name).exists()]
        if not files:
            raise InputFormatError(f"no Disease Ontology TSV here; expected one of {', '.join(DIRECTORY_FILES)}",
                                   path=str(path))
    else:
        files = [path]
    named: dict[str, str] = {}
    for file in files:
        yield from _read_file(file, Policy(on_error, file), source, named)
