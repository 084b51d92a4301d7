"""Write UMLS RRF files in the exact release format, for tests and benchmarks (UMLS itself is licensed).

RRF: one row per line, fields separated by ``|``, a trailing ``|``, UTF-8, columns as listed in ``MRFILES.RRF``
(``FIL|DES|FMT|CLS|RWS|BTS|``). :func:`write_release` writes a small release from explicit rows;
:func:`generate_release` writes a large synthetic one quickly (bulk string writes) for the streaming benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kgclip.ontology.sources.umls_rrf import DEFAULT_COLUMNS

__all__ = ["rrf_line", "write_rrf", "write_mrfiles", "write_release", "generate_release", "SAMPLE_RELEASE"]

_DESCRIPTIONS = {
    "MRCONSO.RRF": "Concept names and sources",
    "MRREL.RRF": "Related Concepts",
    "MRSTY.RRF": "Semantic Types",
    "MRDEF.RRF": "Definitions",
}


def rrf_line(values: Sequence[str]) -> str:
    """One RRF row: ``a|b|c|`` plus a newline. ``|`` and line breaks inside a value are not allowed."""
    for value in values:
        if "|" in value or "\n" in value:
            raise ValueError(f"RRF values cannot hold '|' or line breaks: {value!r}")
    return "|".join(values) + "|\n"


def write_rrf(path: str | os.PathLike[str], rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> int:
    """Write rows (dicts keyed by column name; missing columns are empty) as an RRF file. Returns the row count."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for row in rows:
            unknown = set(row) - set(columns)
            if unknown:
                raise ValueError(f"unknown RRF columns {sorted(unknown)}; columns are {list(columns)}")
            handle.write(rrf_line([str(row.get(c, "")) for c in columns]))
            count += 1
    return count


def write_mrfiles(directory: str | os.PathLike[str], counts: Mapping[str, int],
                  columns: Mapping[str, Sequence[str]] | None = None) -> None:
    """``MRFILES.RRF`` describing the files in ``counts`` (row counts) with their columns and byte sizes."""
    directory = Path(directory)
    columns = columns or DEFAULT_COLUMNS
    with open(directory / "MRFILES.RRF", "w", encoding="utf-8", newline="") as handle:
        for name in sorted(counts):
            size = (directory / name).stat().st_size if (directory / name).exists() else 0
            handle.write(rrf_line([name, _DESCRIPTIONS.get(name, name), ",".join(columns[name]),
                                   str(len(columns[name])), str(counts[name]), str(size)]))


def write_release(directory: str | os.PathLike[str], *, conso: Iterable[Mapping[str, str]] = (),
                  rel: Iterable[Mapping[str, str]] = (), sty: Iterable[Mapping[str, str]] = (),
                  defs: Iterable[Mapping[str, str]] = (), mrfiles: bool = True) -> Path:
    """A small release (MRCONSO, MRREL, MRSTY, MRDEF and optionally MRFILES) in ``directory``. Returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in (("MRCONSO.RRF", conso), ("MRREL.RRF", rel), ("MRSTY.RRF", sty), ("MRDEF.RRF", defs)):
        counts[name] = write_rrf(directory / name, rows, DEFAULT_COLUMNS[name])
    if mrfiles:
        write_mrfiles(directory, counts)
    return directory


def _conso(cui: str, n: int, s: str, *, ts: str = "S", stt: str = "VO", ispref: str = "N", sab: str = "MSH",
           tty: str = "SY", lat: str = "ENG", suppress: str = "N") -> dict[str, str]:
    return {"CUI": cui, "LAT": lat, "TS": ts, "LUI": f"L{n:07d}", "STT": stt, "SUI": f"S{n:07d}", "ISPREF": ispref,
            "AUI": f"A{n:07d}", "SAB": sab, "TTY": tty, "CODE": f"D{n:06d}", "STR": s, "SRL": "0",
            "SUPPRESS": suppress, "CVF": ""}


# A tiny release: pneumonia / lung disease / lung / pleural effusion, with a French name, a suppressed name,
# PAR+CHD both ways, RELA isa and has_finding_site (lung diseases has_finding_site lung), a sibling row (skipped)
# and a relation to a filtered-out CUI.
SAMPLE_RELEASE = {
    "conso": [
        _conso("C0024115", 1, "Lung diseases", ts="P", stt="PF", ispref="Y", tty="MH"),
        _conso("C0024115", 2, "Pulmonary disease", sab="SNOMEDCT_US", tty="PT"),
        _conso("C0024109", 3, "Lung", ts="P", stt="PF", ispref="Y", tty="MH"),
        _conso("C0024109", 4, "Poumon", lat="FRE", sab="MSHFRE", tty="MH"),
        _conso("C0032285", 5, "Pneumonitis", sab="SNOMEDCT_US", tty="SY"),
        _conso("C0032285", 6, "Pneumonia", ts="P", stt="PF", ispref="Y", tty="MH"),
        _conso("C0032285", 7, "Pneumonia NOS", suppress="E", tty="PT"),
        _conso("C0032227", 8, "Pleural effusion", ts="P", stt="PF", ispref="Y", tty="MH"),
        _conso("C0032227", 9, "Hydrothorax", stt="VO", sab="SNOMEDCT_US"),
        _conso("C9999999", 10, "Poumon droit", lat="FRE", ts="P", stt="PF", ispref="Y", sab="MSHFRE"),
    ],
    "rel": [
        {"CUI1": "C0032285", "AUI1": "A0000006", "STYPE1": "SCUI", "REL": "PAR", "CUI2": "C0024115",
         "AUI2": "A0000001", "STYPE2": "SCUI", "RELA": "", "RUI": "R01", "SAB": "MSH", "SUPPRESS": "N"},
        {"CUI1": "C0024115", "AUI1": "A0000001", "STYPE1": "SCUI", "REL": "CHD", "CUI2": "C0032285",
         "AUI2": "A0000006", "STYPE2": "SCUI", "RELA": "", "RUI": "R02", "SAB": "MSH", "SUPPRESS": "N"},
        {"CUI1": "C0024115", "AUI1": "A0000001", "STYPE1": "SCUI", "REL": "CHD", "CUI2": "C0032227",
         "AUI2": "A0000008", "STYPE2": "SCUI", "RELA": "isa", "RUI": "R03", "SAB": "SNOMEDCT_US",
         "SUPPRESS": "N"},
        {"CUI1": "C0024109", "AUI1": "A0000003", "STYPE1": "SCUI", "REL": "RO", "CUI2": "C0024115",
         "AUI2": "A0000001", "STYPE2": "SCUI", "RELA": "has_finding_site", "RUI": "R04", "SAB": "SNOMEDCT_US",
         "SUPPRESS": "N"},
        {"CUI1": "C0032285", "AUI1": "A0000006", "STYPE1": "SCUI", "REL": "SIB", "CUI2": "C0032227",
         "AUI2": "A0000008", "STYPE2": "SCUI", "RELA": "", "RUI": "R05", "SAB": "MSH", "SUPPRESS": "N"},
        {"CUI1": "C0024109", "AUI1": "A0000003", "STYPE1": "SCUI", "REL": "RN", "CUI2": "C9999999",
         "AUI2": "A0000010", "STYPE2": "SCUI", "RELA": "", "RUI": "R06", "SAB": "MSH", "SUPPRESS": "N"},
        {"CUI1": "C0032227", "AUI1": "A0000008", "STYPE1": "SCUI", "REL": "RB", "CUI2": "C0024115",
         "AUI2": "A0000001", "STYPE2": "SCUI", "RELA": "", "RUI": "R07", "SAB": "MSH", "SUPPRESS": "N"},
    ],
    "sty": [
        {"CUI": "C0024109", "TUI": "T023", "STN": "A1.2.3.1", "STY": "Body Part, Organ, or Organ Component",
         "ATUI": "AT01"},
        {"CUI": "C0024115", "TUI": "T047", "STN": "B2.2.1.2.1", "STY": "Disease or Syndrome", "ATUI": "AT02"},
        {"CUI": "C0032227", "TUI": "T047", "STN": "B2.2.1.2.1", "STY": "Disease or Syndrome", "ATUI": "AT03"},
        {"CUI": "C0032285", "TUI": "T047", "STN": "B2.2.1.2.1", "STY": "Disease or Syndrome", "ATUI": "AT04"},
        {"CUI": "C9999999", "TUI": "T023", "STN": "A1.2.3.1", "STY": "Body Part, Organ, or Organ Component",
         "ATUI": "AT05"},
    ],
    "defs": [
        {"CUI": "C0032285", "AUI": "A0000006", "ATUI": "AT10", "SAB": "MSH",
         "DEF": "Inflammation of any part of the lung.", "SUPPRESS": "N"},
        {"CUI": "C0032285", "AUI": "A0000005", "ATUI": "AT11", "SAB": "NCI",
         "DEF": "An acute, acute and chronic, or chronic inflammation of the lung.", "SUPPRESS": "N"},
    ],
}


def generate_release(directory: str | os.PathLike[str], *, concepts: int = 500_000, names_per_concept: int = 4,
                     relations_per_concept: int = 12, seed: int = 0, mrfiles: bool = True) -> dict[str, int]:
    """A synthetic release of ``concepts * names_per_concept`` MRCONSO rows and ``concepts *
    relations_per_concept`` MRREL rows (plus one MRSTY row per concept and a definition for every tenth), written
    in blocks of preformatted strings. Returns the row count per file.

    Relations are PAR/CHD pairs (both directions, as in a real release) to lower-numbered concepts, RO rows with
    RELA ``has_finding_site`` and SIB rows; names follow the MRCONSO ranking columns (one TS=P/STT=PF/ISPREF=Y row
    per concept). Deterministic for a given ``seed``.
    """
    import numpy as np

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    block = 20_000
    counts = {"MRCONSO.RRF": 0, "MRREL.RRF": 0, "MRSTY.RRF": 0, "MRDEF.RRF": 0}
    kinds = ("SNOMEDCT_US|PT", "MSH|EN", "NCI|SY", "MEDCINE|SY", "LNC|LN")
    with open(directory / "MRCONSO.RRF", "w", encoding="utf-8", newline="") as conso, \
            open(directory / "MRSTY.RRF", "w", encoding="utf-8", newline="") as sty, \
            open(directory / "MRDEF.RRF", "w", encoding="utf-8", newline="") as mrdef:
        for start in range(1, concepts + 1, block):
            stop = min(start + block, concepts + 1)
            lines, sty_lines, def_lines = [], [], []
            for c in range(start, stop):
                cui = f"C{c:07d}"
                for k in range(names_per_concept):
                    a = c * names_per_concept + k
                    pref = k == 0
                    sab_tty = "MSH|MH" if pref else kinds[k % len(kinds)]
                    lines.append(f"{cui}|ENG|{'P' if pref else 'S'}|L{a:08d}|{'PF' if pref else 'VO'}|S{a:08d}|"
                                 f"{'Y' if pref else 'N'}|A{a:08d}||{a}||{sab_tty}|{a}|concept {c} name {k}|0|N||\n")
                sty_lines.append(f"{cui}|T047|B2.2.1.2.1|Disease or Syndrome|AT{c:08d}||\n")
                if c % 10 == 0:
                    aui = c * names_per_concept
                    def_lines.append(f"{cui}|A{aui:08d}|AT{c:08d}||MSH|Definition of concept {c}.|N||\n")
            conso.write("".join(lines))
            sty.write("".join(sty_lines))
            mrdef.write("".join(def_lines))
            counts["MRCONSO.RRF"] += len(lines)
            counts["MRSTY.RRF"] += len(sty_lines)
            counts["MRDEF.RRF"] += len(def_lines)
    pairs = max(1, relations_per_concept // 2)
    with open(directory / "MRREL.RRF", "w", encoding="utf-8", newline="") as rel:
        for start in range(2, concepts + 1, block):
            stop = min(start + block, concepts + 1)
            ids = np.arange(start, stop)
            targets = (rng.random((len(ids), pairs)) * (ids[:, None] - 1)).astype(np.int64) + 1
            lines = []
            r = start * relations_per_concept
            for c, row in zip(ids.tolist(), targets.tolist()):
                a, cui = f"C{c:07d}", c
                for j, t in enumerate(row):
                    b = f"C{t:07d}"
                    kind = j % 3
                    if kind == 0:  # b is a parent of a, stated both ways
                        lines.append(f"{a}|A{cui:08d}|SCUI|PAR|{b}|A{t:08d}|SCUI||R{r:09d}||MSH|MSH|||N||\n")
                        lines.append(f"{b}|A{t:08d}|SCUI|CHD|{a}|A{cui:08d}|SCUI||R{r + 1:09d}||MSH|MSH|||N||\n")
                    elif kind == 1:
                        lines.append(f"{a}|A{cui:08d}|SCUI|RO|{b}|A{t:08d}|SCUI|has_finding_site|R{r:09d}||"
                                     f"SNOMEDCT_US|SNOMEDCT_US|0|Y|N||\n")
                        lines.append(f"{b}|A{t:08d}|SCUI|RO|{a}|A{cui:08d}|SCUI|finding_site_of|R{r + 1:09d}||"
                                     f"SNOMEDCT_US|SNOMEDCT_US|0||N||\n")
                    else:
                        lines.append(f"{a}|A{cui:08d}|SCUI|SIB|{b}|A{t:08d}|SCUI||R{r:09d}||MSH|MSH|||N||\n")
                        lines.append(f"{b}|A{t:08d}|SCUI|SIB|{a}|A{cui:08d}|SCUI||R{r + 1:09d}||MSH|MSH|||N||\n")
                    r += 2
            rel.write("".join(lines))
            counts["MRREL.RRF"] += len(lines)
    if mrfiles:
        write_mrfiles(directory, counts)
    return counts
