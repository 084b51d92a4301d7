"""The changelog of a curated graph: one :class:`ChangeEntry` per edit, stored as ``changelog.jsonl``.

Each entry records what was done (``op`` and its ``args``), when, by whom and why, which concept ids it touched,
and the data that reverts it (used by :meth:`kgclip.ontology.curation.Curator.undo`).

Incremental refresh: ``Changelog.changed_ids(since=seq)`` returns every id touched by entries after sequence number
``seq`` (``Changelog.last_seq`` is the number to remember), and ``Changelog.full_refresh_needed(since=seq)`` says
whether an import since then was too large to list its ids (more than :data:`IMPORT_ID_LIMIT`).

Revert patches (``ChangeEntry.revert``) are JSON: ``remove_touching`` (ids whose relations all go),
``remove_relations`` (``[source, type, target]``), ``restore_concepts`` (concept records), ``remove_concepts``
(ids), ``add_relations`` (``[source, type, target, origin]``) and ``undeclare_relation_types`` (names), applied in
that order by :func:`apply_revert`.

Example:
    >>> log = Changelog()
    >>> _ = log.append("add_concept", {"id": "X:1"}, ["X:1", "X:0"], revert={"remove_concepts": ["X:1"]})
    >>> sorted(log.changed_ids(since=0)), log.last_seq
    (['X:0', 'X:1'], 1)
    >>> Changelog.from_jsonl(log.to_jsonl()).entries == log.entries
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kgclip.errors import CurationError, InputFormatError
from kgclip.ontology.model import Concept, ConceptGraph, Relation

__all__ = ["ChangeEntry", "Changelog", "CHANGELOG_FILE", "IMPORT_ID_LIMIT", "apply_revert", "json_line", "jsonl_lines"]

CHANGELOG_FILE = "changelog.jsonl"  # its name inside a graph directory
IMPORT_ID_LIMIT = 10_000  # an import touching more ids than this records "full refresh" instead of the list


# Line breaks for str.splitlines() (and editors) that JSON leaves unescaped; written as \u escapes.
_LINE_BREAK_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON Lines (no trailing newline): keys sorted, non-ASCII text kept readable, and every
    character that a tool may take for a line break (U+0085, U+2028, U+2029; JSON escapes the C0 controls) escaped.
    Read such files back with :func:`jsonl_lines`."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).translate(_LINE_BREAK_ESCAPES)


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of each non-blank line of a JSON Lines text, split on ``\\n`` only.

    ``str.splitlines()`` would also split inside a JSON string holding U+2028 / U+2029 / U+0085 (which older writers
    left unescaped), breaking that entry in two.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line


def _now() -> str:
    # SOURCE_DATE_EPOCH (the reproducible-builds convention) pins timestamps so rebuilt files are byte-identical.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = float(epoch) if epoch else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclasses.dataclass(frozen=True)
class ChangeEntry:
    """One changelog line.

    Attributes:
        seq: 1-based sequence number, increasing through the log.
        op: ``add_concept``, ``update_concept``, ``deprecate``, ``merge``, ``add_relation``, ``remove_relation``,
            ``declare_relation_type``, ``import`` or ``undo``.
        args: the edit's arguments, as given.
        concept_ids: ids whose concept or relations changed (what an incremental refresh must re-encode).
        timestamp: UTC, ISO 8601.
        author: who made the edit, if known.
        reason: why, if given.
        revert: the data that undoes the edit (``None``: cannot be undone, e.g. an import).
    """

    seq: int
    op: str
    args: dict[str, Any]
    concept_ids: tuple[str, ...]
    timestamp: str
    author: str | None = None
    reason: str | None = None
    revert: dict[str, Any] | None = None

    def to_json(self) -> str:
        """One line of JSON: non-ASCII text stays readable, but every character that some tool treats as a line
        break (U+0085, U+2028, U+2029; the C0 controls are escaped by JSON itself) is written as a ``\\u`` escape,
        so the file has exactly one entry per ``\\n``."""
        d = dataclasses.asdict(self)
        d["concept_ids"] = list(self.concept_ids)
        return json_line(d)

    @classmethod
    def from_json(cls, line: str) -> "ChangeEntry":
        """Parse one line; ``ValueError`` (or ``TypeError``) when it is not a well-formed entry."""
        d = json.loads(line)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        entry = cls(**{**d, "concept_ids": tuple(d.get("concept_ids") or ())})
        if not (isinstance(entry.seq, int) and isinstance(entry.op, str) and isinstance(entry.args, dict)
                and (entry.revert is None or isinstance(entry.revert, dict))
                and all(isinstance(c, str) for c in entry.concept_ids)
                and all(isinstance(x, (str, type(None))) for x in (entry.author, entry.reason, entry.timestamp))):
            raise ValueError("a field has the wrong type")
        undone = entry.args.get("undone", [])
        if not isinstance(undone, list) or not all(isinstance(s, int) for s in undone):
            raise ValueError("'undone' is not a list of sequence numbers")
        return entry

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items() if v not in (None, (), [], ""))
        who = f" by {self.author}" if self.author else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"#{self.seq} {self.timestamp}{who}: {self.op}({args}){why}"


class Changelog:
    """The ordered list of edits made to a graph; stored as ``changelog.jsonl`` (one JSON entry per line)."""

    def __init__(self, entries: Iterable[ChangeEntry] = ()) -> None:
        self.entries: list[ChangeEntry] = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ChangeEntry]:
        return iter(self.entries)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry (0 for an empty log): remember it, pass it to :meth:`changed_ids`."""
        return self.entries[-1].seq if self.entries else 0

    def append(self, op: str, args: dict[str, Any], concept_ids: Iterable[str], *, author: str | None = None,
               reason: str | None = None, revert: dict[str, Any] | None = None) -> ChangeEntry:
        entry = ChangeEntry(self.last_seq + 1, op, args, tuple(dict.fromkeys(concept_ids)), _now(), author, reason,
                            revert)
        self.entries.append(entry)
        return entry

    def since(self, since: int = 0) -> list[ChangeEntry]:
        """Entries with ``seq > since``."""
        return [e for e in self.entries if e.seq > since]

    def changed_ids(self, since: int = 0) -> set[str]:
        """Ids touched by every entry after ``since`` (undos included: an undone edit changed its ids back).

        Check :meth:`full_refresh_needed` too: a large import records no id list.
        """
        return {cid for e in self.since(since) for cid in e.concept_ids}

    def full_refresh_needed(self, since: int = 0) -> bool:
        """True when an entry after ``since`` changed too much to list (a large import): rebuild everything."""
        return any(e.args.get("full_refresh") for e in self.since(since))

    def undoable(self) -> list[ChangeEntry]:
        """Edits not yet undone, oldest first, up to the last entry that cannot be undone (an import)."""
        undone = {s for e in self.entries if e.op == "undo" for s in e.args.get("undone", ())}
        out: list[ChangeEntry] = []
        for e in self.entries:
            if e.op == "undo" or e.seq in undone:
                continue
            if e.revert is None:
                out = []  # cannot undo past this entry
            else:
                out.append(e)
        return out

    def to_jsonl(self) -> str:
        return "".join(e.to_json() + "\n" for e in self.entries)

    @classmethod
    def from_jsonl(cls, text: str, *, path: str = "<changelog>") -> "Changelog":
        entries = []
        for number, line in jsonl_lines(text):
            try:
                entries.append(ChangeEntry.from_json(line))
            except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
                raise InputFormatError(f"not a changelog entry ({exc}); restore the file from git", path=path,
                                       line=number) from exc
        return cls(entries)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Changelog":
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputFormatError(f"byte {exc.start} is not UTF-8; restore the changelog from git",
                                   path=str(path)) from exc
        return cls.from_jsonl(text, path=str(path))

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{e.seq}</td><td>{e.timestamp}</td><td>{html.escape(e.op)}</td>"
                       f"<td>{html.escape(', '.join(e.concept_ids[:5]))}</td><td>{html.escape(e.author or '')}</td>"
                       f"<td>{html.escape(e.reason or '')}</td></tr>" for e in self.entries[-50:])
        return ("<table><tr><th>#</th><th>when</th><th>op</th><th>ids</th><th>author</th><th>reason</th></tr>"
                f"{rows}</table>")


# ---------------------------------------------------------------------------------------------- revert patches
def concept_to_json(c: Concept) -> dict[str, Any]:
    """A concept as the JSON object changelog entries store (tuples as lists)."""
    return {f.name: list(v) if isinstance(v := getattr(c, f.name), tuple) else v for f in dataclasses.fields(c)}


def concept_from_json(d: dict[str, Any]) -> Concept:
    """The inverse of :func:`concept_to_json`."""
    return Concept(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def relation_to_json(r: Relation) -> list[str]:
    return [r.source, r.type, r.target, r.origin]


def apply_revert(graph: ConceptGraph, patch: dict[str, Any]) -> None:
    """Apply an entry's revert patch to ``graph`` in place (see the module docstring for its keys)."""
    touching = {(r.source, r.type, r.target) for c in patch.get("remove_touching", ()) if c in graph
                for r in graph.relations(c, direction="both")}
    for s, t, d in sorted(touching):
        graph.remove_relation(s, t, d)
    for s, t, d in patch.get("remove_relations", ()):
        graph.remove_relation(s, t, d)
    for c in patch.get("restore_concepts", ()):
        graph.replace_concept(concept_from_json(c))
    for cid in patch.get("remove_concepts", ()):
        if graph.relations(cid, direction="both"):  # the patch removed them first; anything left was added since
            raise CurationError(f"{cid!r} still has relations; remove them first")
        graph.remove_concept(cid)
    for s, t, d, o in patch.get("add_relations", ()):
        graph.add_relation(Relation(s, t, d, o))
    for relation_type in patch.get("undeclare_relation_types", ()):
        graph.undeclare_relation_type(relation_type)
