"""RadLex as a CSV tree: ``term,RID,parentRID`` per line, no header (RadLex's ``Radlex.csv``, 45,468 rows).

Each row yields the concept ``RADLEX:<RID>`` and an ``is_a`` relation to its parent. ``RID0`` is the parent of the
roots and yields no relation. Children of ``RID15849`` ("Obsolete Radlex Term") are marked deprecated.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

from kgclip.ontology.model import IS_A, Concept, Relation
from kgclip.ontology.sources._common import Policy, iter_lines

__all__ = ["read_radlex_csv"]

_RID = re.compile(r"^RID\d+$", re.IGNORECASE)
OBSOLETE_PARENT = "RID15849"
NO_PARENT = "RID0"
ROOT = ("RID1", "RadLex entity")


def read_radlex_csv(path: str | os.PathLike[str], *, on_error: str = "raise", add_root: bool = True,
                    source: str = "radlex") -> Iterator[Concept | Relation]:
    """Yield RadLex concepts and their ``is_a`` relations from ``term,RID,parentRID`` rows.

    Args:
        path: the CSV file.
        on_error: ``"raise"`` or ``"skip"`` (warn naming file and line) for rows that are not ``term,RID,RID``.
        add_root: also yield ``RADLEX:RID1`` ("RadLex entity") when rows point to it but no row defines it.
        source: the ``source`` recorded on each concept.
    """
    path = Path(path)
    policy = Policy(on_error, path)
    defined: set[str] = set()
    root_used = False
    for number, text in iter_lines(path, policy):
        if not text.strip():
            continue
        # csv only where needed: a few terms are quoted because they hold commas.
        try:
            fields = next(csv.reader([text])) if '"' in text else text.split(",")
        except csv.Error as exc:  # e.g. a carriage return or NUL inside an unquoted term
            policy.bad(f"not a CSV row ({exc}): {text[:80]!r}; quote the term or remove the stray character",
                       line=number)
            continue
        if len(fields) != 3:
            policy.bad(f"expected 3 fields (term,RID,parentRID), found {len(fields)}: {text[:80]!r}; "
                       "quote terms that contain commas", line=number)
            continue
        term, rid, parent = (f.strip() for f in fields)
        if number == 1 and rid.upper() == "RID" and not _RID.match(rid):
            continue  # a header line, tolerated although Radlex.csv has none
        if not _RID.match(rid) or not (_RID.match(parent) or parent == ""):
            policy.bad(f"expected RadLex ids like RID3441 in columns 2 and 3, found {rid!r} and {parent!r}",
                       line=number)
            continue
        if not term:
            policy.bad(f"{rid} has an empty term; give every RID its preferred name", line=number)
            continue
        rid, parent = rid.upper(), parent.upper()
        defined.add(rid)
        yield Concept(id=f"RADLEX:{rid}", name=term, source=source, deprecated=parent == OBSOLETE_PARENT)
        if parent and parent != NO_PARENT:
            root_used = root_used or parent == ROOT[0]
            yield Relation(f"RADLEX:{rid}", IS_A, f"RADLEX:{parent}", origin=source)
    if add_root and root_used and ROOT[0] not in defined:
        yield Concept(id=f"RADLEX:{ROOT[0]}", name=ROOT[1], source=source)
