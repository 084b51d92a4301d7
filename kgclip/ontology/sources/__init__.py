"""Ontology readers, one per format, chosen by name. Each yields :class:`Concept` / :class:`Relation` records.

======================  ================================================================================
format                  reads
======================  ================================================================================
``radlex-csv``          RadLex ``term,RID,parentRID`` tree (``Radlex.csv``)
``radlex-owl``          RadLex OWL as RSNA publishes it (RDF/XML), streamed
``owl``                 any OWL in RDF/XML (streamed, no rdflib) or Turtle (through rdflib)
``obo``                 OBO 1.2 / 1.4 flat files
``doid-tsv``            Disease Ontology report TSVs (``HumanDO.tsv``, ``allXREFinDO.tsv``, ``disease-symptom.tsv``)
``umls-rrf``            UMLS Metathesaurus RRF release directory (MRCONSO, MRSTY, MRDEF, MRREL), streamed
``slake-kg``            SLAKE knowledge-graph ``#``-separated triples
======================  ================================================================================

Example:
    >>> from kgclip.ontology.sources import load_graph
    >>> graph = load_graph("obo", "DO_cancer_slim.obo")                      # doctest: +SKIP
    >>> records = read_records("umls-rrf", "META/", sabs={"MSH"}, on_error="skip")  # doctest: +SKIP

Every reader takes ``on_error``: ``"raise"`` (default) raises :class:`~kgclip.errors.InputFormatError` naming file
and line and what to do; ``"skip"`` warns (:class:`SourceWarning`, naming file and line) and continues. Readers only
read: building, caching and hashing live in :mod:`kgclip.ontology.model` and :mod:`kgclip.ontology.store`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kgclip.errors import InputFormatError
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.sources._common import SourceWarning
from kgclip.ontology.sources.doid_tsv import read_doid_tsv
from kgclip.ontology.sources.obo import read_obo
from kgclip.ontology.sources.owl import read_owl
from kgclip.ontology.sources.radlex_csv import read_radlex_csv
from kgclip.ontology.sources.radlex_owl import read_radlex_owl
from kgclip.ontology.sources.slake_kg import read_slake_kg
from kgclip.ontology.sources.umls_rrf import read_umls_rrf
from kgclip.resolver import Registry

__all__ = ["READERS", "FORMATS", "read_records", "load_graph", "detect_format", "SourceWarning", "Reader"]

Reader = Callable[..., Iterator[Concept | Relation]]

READERS: Registry[Reader] = Registry("ontology format")
for _name, _reader in (("radlex-csv", read_radlex_csv), ("radlex-owl", read_radlex_owl), ("owl", read_owl),
                       ("obo", read_obo), ("doid-tsv", read_doid_tsv), ("umls-rrf", read_umls_rrf),
                       ("slake-kg", read_slake_kg)):
    READERS.register(_name)(_reader)

FORMATS = ("radlex-csv", "radlex-owl", "owl", "obo", "doid-tsv", "umls-rrf", "slake-kg")


def read_records(fmt: str, path: str | os.PathLike[str], *, on_error: str = "raise",
                 **options: Any) -> Iterator[Concept | Relation]:
    """Stream the records of one ontology file (or release directory) in format ``fmt``.

    Args:
        fmt: one of :data:`FORMATS` (``"auto"`` sniffs it with :func:`detect_format`).
        path: the file or directory.
        on_error: ``"raise"`` or ``"skip"`` for bad rows.
        **options: reader-specific options (e.g. ``sabs=`` for ``umls-rrf``, ``namespace=`` for ``owl``).
    """
    if fmt == "auto":
        fmt = detect_format(path)
    reader = READERS.resolve(fmt)
    try:
        return reader(path, on_error=on_error, **options)
    except TypeError as exc:  # an option this reader does not take
        raise InputFormatError(f"reader {fmt!r} does not accept these options: {exc}") from None


def load_graph(fmt: str, path: str | os.PathLike[str], *, on_error: str = "raise", name: str | None = None,
               **options: Any) -> ConceptGraph:
    """Read a source into a :class:`ConceptGraph` (``ConceptGraph.from_records(read_records(...))``)."""
    graph_name = name or Path(path).stem or "graph"
    return ConceptGraph.from_records(read_records(fmt, path, on_error=on_error, **options), name=graph_name)


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of a file or directory from its name and first bytes; raises if it cannot tell."""
    path = Path(path)
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if "MRCONSO.RRF" in names:
            return "umls-rrf"
        if names & {"en_disease.csv", "en_disease_rel.csv", "en_organ_rel.csv"}:
            return "slake-kg"
        if names & {"HumanDO.tsv", "allXREFinDO.tsv", "disease-symptom.tsv"}:
            return "doid-tsv"
        raise InputFormatError("cannot tell the ontology format of this directory; pass the format explicitly "
                               f"(one of {', '.join(FORMATS)})", path=str(path))
    if not path.exists():
        raise InputFormatError("file not found; check the path", path=str(path))
    suffix = path.suffix.lower()
    with open(path, "rb") as handle:
        head = handle.read(65536)
    text = head.decode("utf-8", errors="replace")
    if path.name.upper().endswith(".RRF"):
        return "umls-rrf"
    if suffix == ".obo" or text.lstrip().startswith(("format-version:", "[Term]")):
        return "obo"
    if suffix in (".owl", ".rdf", ".xml", ".ttl", ".n3"):
        return "radlex-owl" if "radlex.org" in text.lower() else "owl"
    if suffix == ".tsv":
        return "doid-tsv"
    if suffix == ".csv" or suffix == "":
        first = text.splitlines()[0] if text else ""
        if first.count("#") >= 2:
            return "slake-kg"
        if "RID" in first and first.count(",") >= 2:
            return "radlex-csv"
    raise InputFormatError(f"cannot tell the ontology format of {path.name}; pass the format explicitly "
                           f"(one of {', '.join(FORMATS)})", path=str(path))
