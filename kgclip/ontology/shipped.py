"""The one recipe for kgclip's shipped ontologies (RadLex and the Disease Ontology) from their public source files.

``python ontologies/build.py`` writes the shipped graph directories with :func:`build_shipped`; training, the demo
and anything else that needs "the shipped graph" calls :func:`shipped_graph`, which loads those directories and,
only where they are not built (a bare checkout with the source data), builds the *same* graph in memory from the
sources. One recipe means the graph a model was trained on is the graph the demo and the index link against.

Sources (under ``<data>/ontologies``):

- ``radlex/Radlex.csv``: RadLex terms (RID, preferred name) and the is_a tree;
- ``doid/*.tsv``: Disease Ontology diseases, names, is_a, xrefs, has_symptom (anatomy targets in UBERON and CL are
  not shipped: relations into them would only dangle);
- ``doid/subsets/*.obo``: synonyms, definitions, xrefs, obsolete flags of DO terms (their is_a lines are not used:
  ``HumanDO.tsv`` is the one authoritative tree, and a slim may shortcut it);
- ``doid/imports/symp_import.owl``: Symptom Ontology names and is_a tree of the has_symptom targets.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from kgclip.config import shared_data_dir
from kgclip.errors import InputFormatError
from kgclip.fingerprint import fingerprint_file
from kgclip.ontology.changelog import Changelog
from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation
from kgclip.ontology.sources import read_records
from kgclip.ontology.store import load_ontologies, save_graph, shipped_ontology_dirs

__all__ = ["SHIPPED", "DO_TSVS", "shipped_records", "build_shipped", "shipped_graph"]

SHIPPED = ("radlex", "doid")  # the shipped graph directories, in the order they are unioned
# The Disease Ontology report TSVs read (as one directory, so that an older label in one file becomes a synonym).
DO_TSVS = ("HumanDO.tsv", "allXREFinDO.tsv", "disease-symptom.tsv", "DO-ICDO-anatomy.tsv")
_DO_NOTES = {"HumanDO.tsv": "diseases, names and is_a relations",
             "allXREFinDO.tsv": "cross-references (UMLS, MeSH, NCIt, ICD, OMIM, ...)",
             "disease-symptom.tsv": "has_symptom relations and symptom names",
             "DO-ICDO-anatomy.tsv": "read with the others, but its located_in relations to UBERON are dropped"}
_DO_PREFIXES = ("DOID:", "SYMP:")


def _source(fmt: str, path: Path, root: Path, note: str) -> dict[str, str]:
    return {"format": fmt, "path": path.relative_to(root).as_posix(), "fingerprint": fingerprint_file(path),
            "used_for": note}


def _radlex(data: Path, sources: list[dict[str, str]]) -> Iterator[Concept | Relation]:
    csv = data / "ontologies" / "radlex" / "Radlex.csv"
    sources.append(_source("radlex-csv", csv, data, "concepts (RID, preferred name) and is_a relations"))
    yield from read_records("radlex-csv", csv)


def _doid(data: Path, sources: list[dict[str, str]]) -> Iterator[Concept | Relation]:
    doid = data / "ontologies" / "doid"
    sources.extend(_source("doid-tsv", doid / name, data, _DO_NOTES[name]) for name in DO_TSVS)
    for record in read_records("doid-tsv", doid):
        if isinstance(record, Relation) and not record.target.startswith(_DO_PREFIXES):
            continue
        if isinstance(record, Concept) and not record.id.startswith(_DO_PREFIXES):
            continue
        yield record
    for path in sorted((doid / "subsets").glob("*.obo")):
        sources.append(_source("obo", path, data, "synonyms, definitions, xrefs, obsolete flags of DO terms"))
        for record in read_records("obo", path):
            if isinstance(record, Concept) and record.id.startswith("DOID:"):
                if record.deprecated and record.name.startswith("obsolete "):
                    # DO prefixes the label of an obsolete term with "obsolete "; the TSVs give the bare label.
                    name = record.name[len("obsolete "):]
                    record = dataclasses.replace(record, name=name,
                                                 synonyms=tuple(x for x in record.synonyms if x != name))
                yield record
    symp = doid / "imports" / "symp_import.owl"
    sources.append(_source("owl", symp, data, "SYMP concepts and their is_a relations"))
    for record in read_records("owl", symp):
        if isinstance(record, Concept) and record.id.startswith("SYMP:"):
            yield record
        elif isinstance(record, Relation) and record.type == IS_A and record.source.startswith("SYMP:"):
            yield record


def shipped_records(name: str, data: str | os.PathLike[str],
                    sources: list[dict[str, str]] | None = None) -> Iterator[Concept | Relation]:
    """The records of one shipped graph (``"radlex"`` or ``"doid"``) read from the source folder ``data``.

    ``sources`` (when given) receives one provenance record per source file read, for ``meta.json``.
    """
    recipes = {"radlex": _radlex, "doid": _doid}
    if name not in recipes:
        raise InputFormatError(f"no shipped ontology {name!r}; the shipped ones are {', '.join(SHIPPED)}")
    return recipes[name](Path(data), sources if sources is not None else [])


def build_shipped(data: str | os.PathLike[str], out: str | os.PathLike[str],
                  only: str | None = None) -> dict[str, ConceptGraph]:
    """Write the shipped graph directories (``out/radlex``, ``out/doid``) from the source folder ``data``.

    Reproducible: the same inputs give byte-identical files (sorted lines, an empty changelog, provenance in
    ``meta.json``). Returns the graphs written, by name.
    """
    built = {}
    for name in SHIPPED:
        if only in (None, name):
            sources: list[dict[str, str]] = []
            graph = ConceptGraph.from_records(shipped_records(name, data, sources), name=name)
            save_graph(graph, Path(out) / name, changelog=Changelog(), sources=sources)
            built[name] = graph
    return built


def shipped_graph(data: str | os.PathLike[str] | None = None, *, name: str = "merged") -> ConceptGraph:
    """The shipped ontologies as one graph (RadLex + Disease Ontology joined through ``same_as`` xrefs).

    Loads the shipped graph directories (:func:`~kgclip.ontology.store.shipped_ontology_dirs`); where they are not
    built, builds the same graphs in memory from ``<data>/ontologies`` (default: the shared data folder).

    Raises:
        InputFormatError: neither the shipped directories nor the source folder are there.
    """
    if shipped_ontology_dirs():
        return load_ontologies(name=name)
    root = Path(data) if data is not None else shared_data_dir()
    if root is None or not (root / "ontologies").is_dir():
        raise InputFormatError("no shipped ontologies in this install and no source folder to build them from; "
                               "run `python ontologies/build.py --data DIR` in a checkout, or pass data=DIR (the "
                               "folder holding ontologies/radlex and ontologies/doid)")
    graphs = [ConceptGraph.from_records(shipped_records(n, root), name=n) for n in SHIPPED]
    return ConceptGraph.union(graphs, name=name)
