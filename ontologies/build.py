"""Rebuild the shipped ontologies (``ontologies/radlex`` and ``ontologies/doid``) from the public source files.

Usage::

    python ontologies/build.py [--data ../shared/data] [--only radlex|doid]

The output is reproducible: the same inputs give byte-identical files (sorted lines, no timestamps; the
changelog starts empty, provenance is in ``meta.json``). What goes into each graph is listed in its README.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from kgclip.config import shared_data_dir
from kgclip.fingerprint import fingerprint_file
from kgclip.ontology.changelog import Changelog
from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation
from kgclip.ontology.sources import read_records
from kgclip.ontology.store import save_graph

HERE = Path(__file__).resolve().parent

# The Disease Ontology report TSVs read (as one directory, so that an older label in one file becomes a synonym).
DO_TSVS = ("HumanDO.tsv", "allXREFinDO.tsv", "disease-symptom.tsv", "DO-ICDO-anatomy.tsv")


def _source(fmt: str, path: Path, root: Path, note: str) -> dict[str, str]:
    return {"format": fmt, "path": path.relative_to(root).as_posix(), "fingerprint": fingerprint_file(path),
            "used_for": note}


def build_radlex(data: Path, out: Path) -> ConceptGraph:
    """RadLex from ``ontologies/radlex/Radlex.csv`` (``term,RID,parentRID``): names and the is_a tree."""
    csv = data / "ontologies" / "radlex" / "Radlex.csv"
    graph = ConceptGraph.from_records(read_records("radlex-csv", csv), name="radlex")
    save_graph(graph, out, changelog=Changelog(),
               sources=[_source("radlex-csv", csv, data, "concepts (RID, preferred name) and is_a relations")])
    return graph


def _doid_records(data: Path, sources: list[dict[str, str]]) -> Iterator[Concept | Relation]:
    doid = data / "ontologies" / "doid"
    notes = {"HumanDO.tsv": "diseases, names and is_a relations",
             "allXREFinDO.tsv": "cross-references (UMLS, MeSH, NCIt, ICD, OMIM, ...)",
             "disease-symptom.tsv": "has_symptom relations and symptom names",
             "DO-ICDO-anatomy.tsv": "read with the others, but its located_in relations to UBERON are dropped"}
    sources.extend(_source("doid-tsv", doid / name, data, notes[name]) for name in DO_TSVS)
    for record in read_records("doid-tsv", doid):
        # UBERON and CL (anatomy and cell types, CC BY) are not shipped: relations into them would only dangle.
        if isinstance(record, Relation) and not record.target.startswith(("DOID:", "SYMP:")):
            continue
        if isinstance(record, Concept) and not record.id.startswith(("DOID:", "SYMP:")):
            continue
        yield record
    # The release subsets repeat DO terms with their synonyms and definitions. Their is_a lines are not used:
    # HumanDO.tsv is the one authoritative tree, and a slim may shortcut it.
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
    # The Symptom Ontology (CC0, maintained with DO): names and the is_a tree of the has_symptom targets.
    symp = doid / "imports" / "symp_import.owl"
    sources.append(_source("owl", symp, data, "SYMP concepts and their is_a relations"))
    for record in read_records("owl", symp):
        if isinstance(record, Concept) and record.id.startswith("SYMP:"):
            yield record
        elif isinstance(record, Relation) and record.type == IS_A and record.source.startswith("SYMP:"):
            yield record


def build_doid(data: Path, out: Path) -> ConceptGraph:
    """Human Disease Ontology (+ Symptom Ontology) from the DO release files under ``ontologies/doid``."""
    sources: list[dict[str, str]] = []
    graph = ConceptGraph.from_records(_doid_records(data, sources), name="doid")
    save_graph(graph, out, changelog=Changelog(), sources=sources)
    return graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--only", choices=("radlex", "doid"))
    parser.add_argument("--out", type=Path, default=HERE, help="where radlex/ and doid/ are written")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("no data folder found; pass --data PATH (the folder holding ontologies/radlex and ontologies/doid)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped row would make the build depend on reader leniency: fail instead
        for name, build in (("radlex", build_radlex), ("doid", build_doid)):
            if args.only in (None, name):
                graph = build(args.data, args.out / name)
                report = graph.validate()
                print(f"{name}: {graph!r}; {report.summary()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
