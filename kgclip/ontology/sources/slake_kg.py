"""The SLAKE medical knowledge graph: ``#``-separated ``head#attribute#value`` triples.

Files (``en_disease.csv``, ``en_disease_rel.csv``, ``en_organ_rel.csv``) start with a header
(``disease#attribute#value``). Every head and every value becomes a concept in the ``SLAKE:`` namespace
(``SLAKE:lung_cancer``), named by its text, so an organ named as a disease's location and as the head of an organ
triple is one concept. ``description`` -> definition (``chunk``, a longer prose description, only when there is no
``description``); ``alias`` -> synonym; every other attribute -> a relation to the value's concept
(``location`` / ``locate in`` -> ``located_in``, ``symptom`` -> ``has_symptom``, ``belong to`` -> ``part_of``...).
Symptom and location lists (``cough, fever``) are split into one concept each. A value holding ``#`` or a line break
inside double quotes is kept whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from kgclip.errors import InputFormatError
from kgclip.ontology.model import Concept, Relation, normalize_relation_type
from kgclip.ontology.sources._common import Policy, iter_lines

__all__ = ["read_slake_kg", "slake_id", "DIRECTORY_FILES"]

DIRECTORY_FILES = ("en_disease.csv", "en_disease_rel.csv", "en_organ_rel.csv")
_RELATIONS = {
    "location": "located_in",
    "locate in": "located_in",
    "symptom": "has_symptom",
    "cause": "has_cause",
    "treatment": "has_treatment",
    "prevention": "has_prevention",
    "belong to": "part_of",
    "infectivity": "has_infectivity",
}
_LISTS = frozenset({"symptom", "location"})
_VALUE_TYPES = {"location": "anatomy", "locate in": "anatomy", "belong to": "anatomy", "symptom": "symptom",
                "cause": "cause", "treatment": "treatment", "prevention": "prevention"}


def slake_id(text: str) -> str:
    """``"Lung Cancer"`` -> ``"SLAKE:lung_cancer"``."""
    slug = re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")
    return f"SLAKE:{slug}"


def _triples(path: Path, policy: Policy) -> Iterator[tuple[int, str, str, str, str]]:
    """``(line, head kind, head, attribute, value)``; joins quoted values that span lines."""
    head_kind = "entity"
    pending: tuple[int, str] | None = None
    for number, text in iter_lines(path, policy):
        if pending is not None:
            start, so_far = pending
            text = so_far + "\n" + text
            number = start
            if not text.rstrip().endswith('"'):
                pending = (start, text)
                continue
            pending = None
        if not text.strip():
            continue
        parts = text.split("#", 2)
        if len(parts) != 3:
            policy.bad(f"expected head#attribute#value, found {text[:80]!r}", line=number)
            continue
        head, attribute, value = (p.strip() for p in parts)
        if value.startswith('"') and not (len(value) > 1 and value.endswith('"')):
            pending = (number, text)
            continue
        if number == 1 and attribute.lower() == "attribute":
            head_kind = head.lower() or head_kind
            continue
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1].replace('""', '"').strip()
        if not head or not attribute or not value:
            policy.bad(f"empty head, attribute or value in {text[:80]!r}", line=number)
            continue
        yield number, head_kind, head, attribute, value
    if pending is not None:
        policy.bad("a quoted value is never closed; add the closing double quote", line=pending[0])


def read_slake_kg(path: str | os.PathLike[str], *, on_error: str = "raise",
                  source: str = "slake") -> Iterator[Concept | Relation]:
    """Yield SLAKE concepts and relations.

    Args:
        path: one ``#``-separated triples file, or the directory holding ``en_disease.csv`` and friends.
        on_error: ``"raise"`` or ``"skip"`` (warn naming file and line) for bad rows.
        source: the ``source`` recorded on each concept.
    """
    path = Path(path)
    if path.is_dir():
        files = [path / name for name in DIRECTORY_FILES if (path / name).exists()]
        if not files:
            raise InputFormatError(f"no SLAKE triples here; expected one of {', '.join(DIRECTORY_FILES)}",
                                   path=str(path))
    else:
        files = [path]
    for file in files:
        policy = Policy(on_error, file)
        chunks: dict[str, str] = {}
        described: set[str] = set()
        for _number, head_kind, head, attribute, value in _triples(file, policy):
            hid = slake_id(head)
            key = attribute.lower()
            if key == "description":
                described.add(hid)
                yield Concept(id=hid, name=head, definition=value, source=source, semantic_types=(head_kind,))
            elif key == "chunk":
                chunks.setdefault(hid, value)
            elif key == "alias":
                yield Concept(id=hid, name=head, synonyms=(value,), source=source, semantic_types=(head_kind,))
            else:
                yield Concept(id=hid, name=head, source=source, semantic_types=(head_kind,))
                rel = _RELATIONS.get(key) or normalize_relation_type(key)
                values = [v.strip() for v in value.split(",")] if key in _LISTS else [value]
                kind = _VALUE_TYPES.get(key, key)
                for v in values:
                    if not v:
                        continue
                    vid = slake_id(v)
                    if vid == "SLAKE:":
                        continue
                    yield Concept(id=vid, name=v, source=source, semantic_types=(kind,))
                    yield Relation(hid, rel, vid, source)
        for hid, text in chunks.items():
            if hid not in described:
                yield Concept(id=hid, definition=text, source=source)
