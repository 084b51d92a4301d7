"""Identifiers and relation names: normalisation shared by every reader, and the checks curated edits must pass.

Readers map what a source wrote to kgclip's forms (:func:`normalize_curie`, :func:`normalize_relation_type`).
Curators' edits are checked strictly instead (:func:`id_problem`, :func:`relation_type_problem`,
:func:`text_problem`): a curated id, type or name is stored as given or refused, never silently renamed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["IS_A", "PART_OF", "HAS_PART", "SAME_AS", "REPLACED_BY", "BUILTIN_RELATION_TYPES", "normalize_curie",
           "normalize_relation_type", "id_problem", "relation_type_problem", "text_problem"]

IS_A = "is_a"
PART_OF = "part_of"
HAS_PART = "has_part"
SAME_AS = "same_as"
REPLACED_BY = "replaced_by"  # from a deprecated / merged-away concept to the one that replaces it
# Relation types every graph accepts without a declaration (the model's and curation's own).
BUILTIN_RELATION_TYPES = frozenset({IS_A, PART_OF, HAS_PART, SAME_AS, REPLACED_BY})

# Prefix spellings seen in the wild -> the namespace kgclip uses.
_PREFIX_ALIASES = {
    "UMLS_CUI": "UMLS",
    "UMLS": "UMLS",
    "UMLSCUI": "UMLS",
    "RADLEX": "RADLEX",
    "RID": "RADLEX",
    "DOID": "DOID",
    "MESH": "MESH",
    "MSH": "MESH",
    "SNOMEDCT_US_2023_09_01": "SNOMEDCT",
    "SNOMEDCT_US": "SNOMEDCT",
    "SNOMEDCT": "SNOMEDCT",
    "NCI": "NCIT",
    "NCIT": "NCIT",
    "ICD10CM": "ICD10CM",
    "ICD9CM": "ICD9CM",
    "OMIM": "OMIM",
    "MIM": "OMIM",
    "ORDO": "ORPHANET",
    "ORPHANET": "ORPHANET",
    "GARD": "GARD",
    "SYMP": "SYMP",
    "UBERON": "UBERON",
    "HP": "HP",
}
_RID = re.compile(r"^(?:RADLEX:)?(RID\d+)$", re.IGNORECASE)
_CUI = re.compile(r"^C\d{7}$")


def normalize_curie(text: str) -> str:
    """Map an identifier as written by a source to kgclip's namespaced form.

    ``"UMLS_CUI:C0014869"`` and ``"C0014869"`` -> ``"UMLS:C0014869"``; ``"RID3441"`` -> ``"RADLEX:RID3441"``;
    ``"DOID_1324"`` (an OBO IRI local name) -> ``"DOID:1324"``. Unknown prefixes are upper-cased and kept.
    """
    text = text.strip()
    match = _RID.match(text)
    if match:
        return "RADLEX:" + match.group(1).upper()
    if _CUI.match(text):
        return "UMLS:" + text
    if ":" not in text and "_" in text:
        prefix, _, local = text.partition("_")
        if prefix.isalpha() and local[:1].isdigit():  # OBO style DOID_1324, HP_0001945
            text = f"{prefix}:{local}"
    if ":" in text:
        prefix, _, local = text.partition(":")
        key = prefix.strip().upper()
        return f"{_PREFIX_ALIASES.get(key, key)}:{local.strip()}"
    return text


def normalize_relation_type(label: str) -> str:
    """``"Part_Of"``, ``"part of"``, ``"partOf"``, ``"BFO:0000050"`` -> ``"part_of"``;
    ``"subClassOf"`` -> ``"is_a"``."""
    label = label.strip()
    special = {
        "subclassof": IS_A,
        "isa": IS_A,
        "is_a": IS_A,
        "bfo:0000050": PART_OF,
        "bfo_0000050": PART_OF,
        "bfo:0000051": HAS_PART,
        "bfo_0000051": HAS_PART,
        "ro:0002452": "has_symptom",
        "ro_0002452": "has_symptom",
    }
    low = label.lower()
    if low in special:
        return special[low]
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", label)  # camelCase -> camel_Case
    out = re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()
    return out or "related_to"


_CURATED_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:[^\s/\\]+$")
_RELATION_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_ID_LENGTH = 200
MAX_TYPE_LENGTH = 64


def _bad_character(text: str, *, multiline: bool = False) -> str | None:
    for ch in text:
        category = unicodedata.category(ch)
        if multiline and ch in "\n\t":
            continue
        if category in ("Cc", "Cs", "Zl", "Zp") or ch in "\ufeff\ufffe\uffff":
            return f"U+{ord(ch):04X}"
    return None


def id_problem(concept_id: object) -> str | None:
    """Why ``concept_id`` cannot be a curated concept id, or ``None`` when it can.

    A curated id is ``PREFIX:LOCAL``: a prefix of letters, digits, ``_``, ``.`` or ``-`` starting with a letter, and
    a local part without spaces, slashes or control characters (``RADLEX:RID3441``, ``DOID:1324``).
    """
    if not isinstance(concept_id, str) or not concept_id:
        return "an id is non-empty text"
    if len(concept_id) > MAX_ID_LENGTH:
        return f"ids are at most {MAX_ID_LENGTH} characters"
    bad = _bad_character(concept_id)
    if bad:
        return f"it holds the control or line-separator character {bad}"
    if not _CURATED_ID.match(concept_id):
        return ("ids are namespaced like 'RADLEX:RID3441' or 'DOID:1324': PREFIX:LOCAL, without spaces or slashes "
                "(a concept id is never a path)")
    return None


def relation_type_problem(relation_type: object) -> str | None:
    """Why ``relation_type`` cannot be a relation type name, or ``None`` when it can (``located_in``, ``is_a``)."""
    if not isinstance(relation_type, str) or not relation_type:
        return "a relation type is a non-empty name such as 'located_in'"
    if len(relation_type) > MAX_TYPE_LENGTH or not _RELATION_TYPE.match(relation_type):
        suggestion = normalize_relation_type(relation_type)
        hint = f" (did you mean {suggestion!r}?)" if _RELATION_TYPE.match(suggestion) and suggestion != "related_to" \
            and _bad_character(relation_type) is None and "/" not in relation_type and "." not in relation_type \
            else ""
        return (f"relation types are lower-case letters, digits and '_', starting with a letter, at most "
                f"{MAX_TYPE_LENGTH} characters{hint}")
    return None


def text_problem(text: object, *, empty: bool = False, multiline: bool = False) -> str | None:
    """Why ``text`` cannot be a curated name (or synonym, type, definition), or ``None`` when it can.

    Args:
        empty: allow the empty string (a definition may be empty; a name may not).
        multiline: allow newlines and tabs (definitions); line and paragraph separators (U+2028, U+2029, U+0085)
            and other control characters are refused everywhere.
    """
    if not isinstance(text, str):
        return f"expected text, got {type(text).__name__}"
    if not empty and not text.strip():
        return "it is empty"
    if text != text.strip() and not multiline:
        return "it has spaces at either end"
    bad = _bad_character(text, multiline=multiline)
    if bad:
        return f"it holds the control or line-separator character {bad}; use a plain space"
    return None
