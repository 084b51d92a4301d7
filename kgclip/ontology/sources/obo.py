"""OBO flat-file format 1.2/1.4 (``.obo``), streamed stanza by stanza.

Reads ``[Term]`` stanzas: ``id``, ``name``, ``def``, ``synonym`` (EXACT and RELATED scopes by default),
``xref`` and ``property_value: skos:exactMatch`` (-> ``xrefs``), ``is_a``, ``relationship``, ``is_obsolete``.
``[Typedef]`` stanzas name relation types (``relationship: part_of X`` -> ``part_of``; ``BFO:0000050`` ->
``part_of``). The records agree with :mod:`.owl` on the OWL rendering of the same ontology.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from kgclip.ontology.model import IS_A, Concept, Relation, normalize_curie, normalize_relation_type
from kgclip.ontology.sources._common import Policy, iter_lines, normalize_xref
from kgclip.ontology.sources.owl import KNOWN_PROPERTIES

__all__ = ["read_obo"]

DEFAULT_SCOPES = ("EXACT", "RELATED")


def _quoted(value: str) -> tuple[str, str] | None:
    """Split ``"text with \\" escapes" rest`` into (text, rest); ``None`` if it does not start with a quote."""
    value = value.lstrip()
    if not value.startswith('"'):
        return None
    out = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), value[i + 1:].strip()
        out.append(ch)
        i += 1
    return None


def _strip_comment(value: str) -> str:
    """Drop a trailing ``! comment`` and ``{modifiers}`` from an unquoted value."""
    cut = value.find(" !")
    if cut >= 0:
        value = value[:cut]
    elif value.startswith("!"):
        return ""
    cut = value.find(" {")
    if cut >= 0:
        value = value[:cut]
    return value.strip()


def _relation_type(name: str, typedefs: dict[str, str]) -> str:
    if name in typedefs:
        return normalize_relation_type(typedefs[name])
    return KNOWN_PROPERTIES.get(name.replace(":", "_")) or normalize_relation_type(name)


Tags = dict[str, list[tuple[int, str]]]  # tag -> [(line number, value)] of one stanza


def _xrefs(tags: Tags, cid: str) -> list[str]:
    xrefs: list[str] = []
    for _number, value in tags.get("xref", []):
        x = normalize_xref(_strip_comment(value.split(' "', 1)[0]))
        if x and x != cid:
            xrefs.append(x)
    for _number, value in tags.get("property_value", []):
        parts = value.split(" ", 1)
        if len(parts) == 2 and parts[0] == "skos:exactMatch":
            parsed = _quoted(parts[1])
            x = normalize_xref(parsed[0] if parsed else parts[1].split(" ")[0])
            if x and x != cid:
                xrefs.append(x)
    return xrefs


def _term(tags: Tags, policy: Policy, source: str | None, synonym_scopes: tuple[str, ...]) -> Concept:
    """The concept of one ``[Term]`` stanza (which has an ``id``)."""
    cid = normalize_curie(tags["id"][0][1])
    name = tags.get("name", [(0, "")])[0][1]
    definition = ""
    for number, value in tags.get("def", []):
        parsed = _quoted(value)
        if parsed is None:
            policy.bad(f"def must be a quoted string: {value[:60]!r}", line=number)
            continue
        definition = definition or parsed[0]
    synonyms: list[str] = []
    for number, value in tags.get("synonym", []):
        parsed = _quoted(value)
        if parsed is None:
            policy.bad(f"synonym must start with a quoted string: {value[:60]!r}", line=number)
            continue
        text, rest = parsed
        scope = rest.split(" ", 1)[0] if rest else "RELATED"
        if scope in synonym_scopes and text and text != name:
            synonyms.append(text)
    obsolete = any(v.strip().lower() == "true" for _, v in tags.get("is_obsolete", []))
    return Concept(id=cid, name=name, synonyms=tuple(dict.fromkeys(synonyms)), definition=definition,
                   source=source if source is not None else cid.split(":", 1)[0].lower(), deprecated=obsolete,
                   xrefs=tuple(dict.fromkeys(_xrefs(tags, cid))))


def _term_relations(concept: Concept, tags: Tags, policy: Policy) -> Iterator[tuple[str, str, str, str]]:
    """``(source, raw type, target, origin)`` of a term's ``is_a`` and ``relationship`` lines."""
    for number, value in tags.get("is_a", []):
        target = _strip_comment(value)
        if not target:
            policy.bad("is_a has no target id", line=number)
            continue
        yield concept.id, IS_A, normalize_curie(target), concept.source
    for number, value in tags.get("relationship", []):
        parts = _strip_comment(value).split()
        if len(parts) < 2:
            policy.bad(f"relationship needs a type and a target: {value[:60]!r}", line=number)
            continue
        yield concept.id, parts[0], normalize_curie(parts[1]), concept.source


def read_obo(path: str | os.PathLike[str], *, on_error: str = "raise", source: str | None = None,
             synonym_scopes: tuple[str, ...] = DEFAULT_SCOPES) -> Iterator[Concept | Relation]:
    """Yield concepts and relations of an OBO file.

    Args:
        path: the ``.obo`` file.
        on_error: ``"raise"`` or ``"skip"`` (warn naming file and line) for malformed lines.
        source: the ``source`` of each concept (default: the id prefix, lower-cased, e.g. ``"doid"``).
        synonym_scopes: synonym scopes kept as synonyms (NARROW / BROAD synonyms are not the same concept).
    """
    path = Path(path)
    policy = Policy(on_error, path)
    typedefs: dict[str, str] = {}
    relations_pending: list[tuple[str, str, str, str]] = []  # (source, raw type, target, origin)
    stanza: str | None = None
    tags: Tags = {}
    saw_anything = False

    def flush() -> Iterator[Concept]:
        if stanza == "Typedef":
            if tags.get("id") and tags.get("name"):
                typedefs[tags["id"][0][1]] = tags["name"][0][1]
        elif stanza == "Term" and not tags.get("id"):
            line = next(iter(tags.values()))[0][0] if tags else None
            policy.bad("a [Term] stanza has no id; add an 'id:' line", line=line)
        elif stanza == "Term":
            concept = _term(tags, policy, source, synonym_scopes)
            yield concept
            relations_pending.extend(_term_relations(concept, tags, policy))

    for number, text in iter_lines(path, policy):
        line = text.strip()
        if not line or line.startswith("!"):
            continue
        saw_anything = True
        if line.startswith("[") and line.endswith("]"):
            yield from flush()
            stanza, tags = line[1:-1], {}
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            policy.bad(f"expected 'tag: value', found {line[:60]!r}; fix or remove the line", line=number)
            continue
        if stanza is None:
            continue  # header tags (format-version, ontology...)
        tags.setdefault(tag.strip(), []).append((number, value.strip()))
    yield from flush()
    if not saw_anything and path.exists() and path.stat().st_size > 0:
        policy.bad("the file holds no OBO content (only blank lines or comments)")
    # Relations last: their type names may be defined by a [Typedef] that follows the terms.
    for src, rel, dst, origin in relations_pending:
        yield Relation(src, rel if rel == IS_A else _relation_type(rel, typedefs), dst, origin)
