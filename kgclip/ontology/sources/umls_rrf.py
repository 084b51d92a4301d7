"""UMLS Metathesaurus RRF files (MRCONSO, MRSTY, MRDEF, MRREL), streamed line by line.

RRF is pipe-separated with a trailing pipe. Column names come from ``MRFILES.RRF`` when the release has one, else
from the documented defaults below. Nothing is loaded whole: rows are read one at a time, concepts are emitted per
run of equal CUIs (MRCONSO is sorted by CUI in every release); only the set of kept CUIs is remembered (to filter
MRSTY, MRDEF and MRREL), so memory grows with the number of concepts, never with the number of rows.

Records: one :class:`Concept` per kept CUI (``UMLS:C0014869``) from MRCONSO; then partial concept records adding
semantic types (MRSTY, TUIs such as ``T047``) and a definition (MRDEF, the first kept one), merged by
:meth:`ConceptGraph.from_records`; then relations from MRREL.

Preferred name: the CUI's row ranked best by ``TS=P``, then ``STT=PF``, then ``ISPREF=Y`` (the concept's preferred
term when it survives the filters; otherwise the best of what survived).

MRREL semantics: ``REL`` (and ``RELA``) is the relation that CUI2 has *to* CUI1. So ``A|..|PAR|B`` (B is a parent of
A) and ``B|..|CHD|A`` both yield ``A is_a B``; ``RB`` (CUI2 broader) yields ``CUI1 is_a CUI2``, ``RN`` the reverse.
With ``use_rela`` (default) a non-empty ``RELA`` wins: ``Relation(CUI2, RELA, CUI1)``, with ``isa`` read as
``is_a`` and ``inverse_isa`` as the reversed ``is_a``. Rows of other ``REL`` s without ``RELA`` (``RO``, ``RQ``)
become ``related_to``; sibling, qualifier and synonymy rows (``SIB``, ``AQ``, ``QB``, ``SY``, ``RL``, ``XR``, ``RU``)
are skipped, with or without ``RELA``. Relations touching a CUI that was filtered out of MRCONSO are skipped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Iterator
from pathlib import Path

from kgclip.errors import InputFormatError
from kgclip.ontology.model import IS_A, Concept, Relation, normalize_relation_type
from kgclip.ontology.sources._common import Policy, iter_lines

__all__ = ["read_umls_rrf", "DEFAULT_COLUMNS", "read_mrfiles"]

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "MRCONSO.RRF": ("CUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "AUI", "SAUI", "SCUI", "SDUI", "SAB", "TTY",
                    "CODE", "STR", "SRL", "SUPPRESS", "CVF"),
    "MRREL.RRF": ("CUI1", "AUI1", "STYPE1", "REL", "CUI2", "AUI2", "STYPE2", "RELA", "RUI", "SRUI", "SAB", "SL",
                  "RG", "DIR", "SUPPRESS", "CVF"),
    "MRSTY.RRF": ("CUI", "TUI", "STN", "STY", "ATUI", "CVF"),
    "MRDEF.RRF": ("CUI", "AUI", "ATUI", "SATUI", "SAB", "DEF", "SUPPRESS", "CVF"),
}
_SKIP_RELS = frozenset({"SIB", "AQ", "QB", "SY", "RL", "XR", "RU", ""})
_SUPPRESSED = frozenset({"O", "E", "Y"})


def read_mrfiles(directory: Path) -> dict[str, tuple[str, ...]]:
    """Column names per file from ``MRFILES.RRF`` (``FIL|DES|FMT|CLS|RWS|BTS|``), or the defaults without it."""
    columns = dict(DEFAULT_COLUMNS)
    mrfiles = directory / "MRFILES.RRF"
    if mrfiles.exists():
        with open(mrfiles, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                fields = line.rstrip("\r\n").split("|")
                if len(fields) < 3 or not fields[2]:
                    raise InputFormatError("expected FIL|DES|FMT|... with comma-separated column names in FMT",
                                           path=str(mrfiles), line=number)
                columns[fields[0].rsplit("/", 1)[-1]] = tuple(fields[2].split(","))
    return columns


def _rows(path: Path, columns: tuple[str, ...], policy: Policy) -> Iterator[list[str]]:
    """The fields of each row, checked to have exactly the expected number of fields.

    Fast path: the file is decoded by the text layer in large chunks. Only if it holds a byte that is not UTF-8
    does reading restart, line by line in binary, after the rows already yielded, to name the bad line.
    """
    want = len(columns) + 1  # the trailing pipe leaves an empty last field
    if path.stat().st_size == 0:
        policy.bad(f"the file is empty; expected rows of {len(columns)} fields ({','.join(columns[:4])},...)")
        return
    done = 0
    try:
        with open(path, encoding="utf-8", newline="\n") as handle:
            for line in handle:
                done += 1
                fields = line.rstrip("\r\n").split("|")
                if len(fields) != want:
                    _bad_count(policy, columns, fields, done)
                    continue
                yield fields
        return
    except UnicodeDecodeError:
        pass
    # The rows the fast path yielded before it met the bad byte are skipped.
    for number, text in iter_lines(path, policy, skip=done,
                                   fix="UMLS RRF files are UTF-8: re-extract them with MetamorphoSys"):
        fields = text.split("|")
        if len(fields) != want:
            _bad_count(policy, columns, fields, number)
            continue
        yield fields


def _bad_count(policy: Policy, columns: tuple[str, ...], fields: list[str], line: int) -> None:
    policy.bad(f"expected {len(columns)} fields ({','.join(columns)}) and a trailing '|', found {len(fields) - 1}; "
               "the file may be truncated or from another release: check MRFILES.RRF", line=line)


def _rank(ts: str, stt: str, ispref: str) -> int:
    return (ts == "P") * 4 + (stt == "PF") * 2 + (ispref == "Y")


@dataclasses.dataclass(frozen=True)
class _Filters:
    """Which MRCONSO / MRDEF / MRREL rows :func:`read_umls_rrf` keeps (``None``: any value)."""

    languages: frozenset[str] | None
    sabs: frozenset[str] | None
    ttys: frozenset[str] | None
    exclude_suppressed: bool

    def keeps(self, sab: str, suppress: str) -> bool:
        return not ((self.exclude_suppressed and suppress in _SUPPRESSED)
                    or (self.sabs is not None and sab not in self.sabs))


def _indices(columns: dict[str, tuple[str, ...]], name: str, wanted: tuple[str, ...], path: Path) -> list[int]:
    """Positions of the ``wanted`` columns of ``name`` (from MRFILES.RRF or the defaults)."""
    cols = {c: i for i, c in enumerate(columns.get(name, ()))}
    missing = [c for c in wanted if c not in cols]
    if missing:
        raise InputFormatError(f"{name} has no column(s) {', '.join(missing)}; check MRFILES.RRF", path=str(path))
    return [cols[c] for c in wanted]


def _concepts(conso: Path, columns: dict[str, tuple[str, ...]], keep: _Filters, policy: Policy, kept: set[str],
              source: str) -> Iterator[Concept]:
    """MRCONSO: one concept per run of equal CUIs, named by its best-ranked row; adds every CUI yielded to ``kept``."""
    i_cui, i_lat, i_ts, i_stt, i_pref, i_sab, i_tty, i_str, i_sup = _indices(
        columns, "MRCONSO.RRF", ("CUI", "LAT", "TS", "STT", "ISPREF", "SAB", "TTY", "STR", "SUPPRESS"), conso)
    current = ""
    names: list[str] = []
    best_rank, best = -1, ""

    def emit() -> Concept:
        kept.add(current)
        synonyms = tuple(dict.fromkeys(n for n in names if n != best))
        return Concept(id="UMLS:" + current, name=best, synonyms=synonyms, source=source)

    for f in _rows(conso, columns["MRCONSO.RRF"], policy):
        if keep.languages is not None and f[i_lat] not in keep.languages:
            continue
        if not keep.keeps(f[i_sab], f[i_sup]) or (keep.ttys is not None and f[i_tty] not in keep.ttys):
            continue
        cui = f[i_cui]
        if cui != current:
            if current:
                yield emit()
            current, names, best_rank, best = cui, [], -1, ""
        text = f[i_str]
        names.append(text)
        rank = _rank(f[i_ts], f[i_stt], f[i_pref])
        if rank > best_rank:
            best_rank, best = rank, text
    if current:
        yield emit()


def _semantic_types(sty: Path, columns: dict[str, tuple[str, ...]], policy: Policy, kept: set[str],
                    source: str) -> Iterator[Concept]:
    """MRSTY: the semantic types (TUIs) of kept CUIs, one partial concept record per run of equal CUIs."""
    i_cui, i_tui = _indices(columns, "MRSTY.RRF", ("CUI", "TUI"), sty)
    current, tuis = "", []
    for f in _rows(sty, columns["MRSTY.RRF"], policy):
        cui = f[i_cui]
        if cui != current:
            if tuis:
                yield Concept(id="UMLS:" + current, semantic_types=tuple(tuis), source=source)
            current, tuis = cui, []
        if cui in kept:
            tuis.append(f[i_tui])
    if tuis:
        yield Concept(id="UMLS:" + current, semantic_types=tuple(tuis), source=source)


def _definitions(mrdef: Path, columns: dict[str, tuple[str, ...]], keep: _Filters, policy: Policy, kept: set[str],
                 source: str) -> Iterator[Concept]:
    """MRDEF: the first kept definition of each kept CUI."""
    i_cui, i_sab, i_def, i_sup = _indices(columns, "MRDEF.RRF", ("CUI", "SAB", "DEF", "SUPPRESS"), mrdef)
    defined: set[str] = set()
    for f in _rows(mrdef, columns["MRDEF.RRF"], policy):
        cui = f[i_cui]
        if cui in kept and cui not in defined and f[i_def] and keep.keeps(f[i_sab], f[i_sup]):
            defined.add(cui)
            yield Concept(id="UMLS:" + cui, definition=f[i_def], source=source)


def _relations(mrrel: Path, columns: dict[str, tuple[str, ...]], keep: _Filters, policy: Policy, kept: set[str],
               use_rela: bool, source: str) -> Iterator[Relation]:
    """MRREL: typed relations between kept CUIs (see the module docstring for the direction rules)."""
    i_c1, i_rel, i_c2, i_rela, i_sab, i_sup = _indices(
        columns, "MRREL.RRF", ("CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"), mrrel)
    rela_types: dict[str, str] = {}
    for f in _rows(mrrel, columns["MRREL.RRF"], policy):
        c1, c2 = f[i_c1], f[i_c2]
        rel, rela = f[i_rel], f[i_rela] if use_rela else ""
        if c1 == c2 or rel in _SKIP_RELS or not keep.keeps(f[i_sab], f[i_sup]):
            continue
        if rela:
            if rela == "inverse_isa":
                src, typ, dst = c1, IS_A, c2
            else:
                typ = rela_types.get(rela)
                if typ is None:
                    typ = rela_types[rela] = normalize_relation_type(rela)
                src, dst = c2, c1
        elif rel == "PAR" or rel == "RB":
            src, typ, dst = c1, IS_A, c2
        elif rel == "CHD" or rel == "RN":
            src, typ, dst = c2, IS_A, c1
        else:
            src, typ, dst = c2, "related_to", c1
        if src in kept and dst in kept:
            yield Relation("UMLS:" + src, typ, "UMLS:" + dst, source)


def read_umls_rrf(path: str | os.PathLike[str], *, on_error: str = "raise",
                  languages: Collection[str] | None = ("ENG",), sabs: Collection[str] | None = None,
                  ttys: Collection[str] | None = None, exclude_suppressed: bool = True,
                  use_rela: bool = True, relations: bool = True, source: str = "umls") -> Iterator[Concept | Relation]:
    """Stream concepts and relations from a UMLS release's RRF files.

    Args:
        path: the ``META`` directory (holding ``MRCONSO.RRF``...) or ``MRCONSO.RRF`` itself.
        on_error: ``"raise"`` or ``"skip"`` (warn naming file and line) for rows with the wrong field count or bad
            bytes.
        languages: keep names whose ``LAT`` is one of these (``None``: all).
        sabs: keep names (and relations) from these source vocabularies (``None``: all).
        ttys: keep names of these term types (``None``: all).
        exclude_suppressed: drop rows whose ``SUPPRESS`` is ``O``, ``E`` or ``Y``.
        use_rela: type relations by ``RELA`` when present (else ``PAR``/``CHD``/``RB``/``RN`` -> ``is_a`` and
            ``RO``/``RQ`` -> ``related_to``).
        relations: read MRREL at all.
        source: the ``source`` recorded on each concept and relation.
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    conso = directory / "MRCONSO.RRF"
    if not conso.exists():
        raise InputFormatError("no MRCONSO.RRF here; point at the release's META directory", path=str(directory))
    columns = read_mrfiles(directory)
    keep = _Filters(frozenset(languages) if languages is not None else None,
                    frozenset(sabs) if sabs is not None else None,
                    frozenset(ttys) if ttys is not None else None, exclude_suppressed)
    # CUIs kept by the MRCONSO filters: a plain set (about 90 bytes a CUI: ~400 MB for a full English release),
    # chosen over a bitmap because membership is tested twice for every MRREL row.
    kept: set[str] = set()
    yield from _concepts(conso, columns, keep, Policy(on_error, conso), kept, source)
    sty, mrdef, mrrel = (directory / name for name in ("MRSTY.RRF", "MRDEF.RRF", "MRREL.RRF"))
    if sty.exists():
        yield from _semantic_types(sty, columns, Policy(on_error, sty), kept, source)
    if mrdef.exists():
        yield from _definitions(mrdef, columns, keep, Policy(on_error, mrdef), kept, source)
    if relations and mrrel.exists():
        yield from _relations(mrrel, columns, keep, Policy(on_error, mrrel), kept, use_rela, source)
