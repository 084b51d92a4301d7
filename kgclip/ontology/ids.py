"""Identifier and relation-name normalisation shared by every reader: namespaced concept ids and relation types."""

from __future__ import annotations

import re

__all__ = ["IS_A", "PART_OF", "HAS_PART", "SAME_AS", "normalize_curie", "normalize_relation_type"]

IS_A = "is_a"
PART_OF = "part_of"
HAS_PART = "has_part"
SAME_AS = "same_as"

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
    """``"Part_Of"``, ``"part of"``, ``"partOf"``, ``"BFO:0000050"`` -> ``"part_of"``; ``"subClassOf"`` -> ``"is_a"``."""
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
