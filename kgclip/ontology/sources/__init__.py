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

import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from kgclip.errors import ConfigError, InputFormatError
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.sources._common import Policy, SourceWarning
from kgclip.ontology.sources.doid_tsv import read_doid_tsv
from kgclip.ontology.sources.obo import read_obo
from kgclip.ontology.sources.owl import read_owl
from kgclip.ontology.sources.radlex_csv import read_radlex_csv
from kgclip.ontology.sources.radlex_owl import read_radlex_owl
from kgclip.ontology.sources.slake_kg import read_slake_kg
from kgclip.ontology.sources.umls_rrf import read_umls_rrf
from kgclip.resolver import Registry

__all__ = ["READERS", "FORMATS", "read_records", "parse_options", "load_graph", "detect_format", "SourceWarning",
           "Reader"]

Reader = Callable[..., Iterator[Concept | Relation]]

READERS: Registry[Reader] = Registry("ontology format")
# The one table of reader names and their aliases (``kgclip ontology import`` and ``read_records`` resolve here).
for _name, _reader, _aliases in (
        ("radlex-csv", read_radlex_csv, ()),
        ("radlex-owl", read_radlex_owl, ()),
        ("owl", read_owl, ("rdf-xml", "turtle", "ttl")),
        ("obo", read_obo, ()),
        ("doid-tsv", read_doid_tsv, ("doid", "do-tsv")),
        ("umls-rrf", read_umls_rrf, ("umls", "rrf")),
        ("slake-kg", read_slake_kg, ("slake",))):
    READERS.register(_name, aliases=_aliases)(_reader)

FORMATS = tuple(READERS)  # the registered names, sorted


def read_records(fmt: str, path: str | os.PathLike[str], *, on_error: str = "raise",
                 **options: Any) -> Iterator[Concept | Relation]:
    """Stream the records of one ontology file (or release directory) in format ``fmt``.

    Args:
        fmt: one of :data:`FORMATS` or an alias of one (``"auto"`` sniffs it with :func:`detect_format`).
        path: the file or directory.
        on_error: ``"raise"`` or ``"skip"`` for bad rows.
        **options: reader-specific options (e.g. ``sabs=`` for ``umls-rrf``, ``namespace=`` for ``owl``).
    """
    fmt = detect_format(path) if fmt == "auto" else READERS.canonical(fmt)
    reader = READERS.resolve(fmt)
    policy = Policy(on_error, path)
    try:
        records = reader(path, on_error=on_error, **options)
    except TypeError as exc:  # an option this reader does not take
        raise InputFormatError(f"reader {fmt!r} does not accept these options: {exc}") from None
    return _with_valid_ids(records, policy)


def _with_valid_ids(records: Iterator[Concept | Relation], policy: Policy) -> Iterator[Concept | Relation]:
    """Every reader's records, less concepts whose id no graph can hold (empty, or with spaces at either end: a
    source's blank ``id:`` line or ``rdf:about=" "``), reported through the bad-row policy."""
    for record in records:
        if isinstance(record, Concept) and (not record.id or record.id != record.id.strip()):
            policy.bad(f"a concept has the invalid id {record.id!r} (named {record.name[:60]!r}); give it an id")
            continue
        yield record


def parse_options(fmt: str, items: Iterable[str]) -> dict[str, Any]:
    """Reader options from ``KEY=VALUE`` text (``kgclip ontology import --option``), typed by the reader's signature.

    Collections split on commas, booleans from true/false/yes/no/1/0, ``none`` is ``None`` where the option takes
    it; an unknown key is a :class:`~kgclip.errors.ConfigError` listing the reader's options.
    """
    params = inspect.signature(READERS.resolve(fmt)).parameters
    valid = sorted(k for k in params if k not in ("path", "on_error"))
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} is not KEY=VALUE")
        if key not in valid:
            raise ConfigError(f"reader {fmt!r} has no option {key!r}; its options are {valid}")
        hint = str(params[key].annotation)
        if value.lower() == "none" and "None" in hint:
            options[key] = None
        elif "bool" in hint:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"--option {key} takes true or false, not {value!r}")
            options[key] = value.lower() in ("true", "1", "yes")
        elif any(word in hint for word in ("Collection", "Sequence", "Iterable", "set[", "tuple[", "list[")):
            options[key] = tuple(v.strip() for v in value.split(",") if v.strip())
        else:
            options[key] = value
    return options


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
