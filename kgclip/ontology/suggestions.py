"""Suggested links for curators, stored beside a graph as ``suggestions.jsonl``; never applied by themselves.

A suggestion is a relation that is *not* in the graph yet (``same_as`` from the aligner, ``is_a`` / ``has_symptom``
from the link predictor), with a score, the method that proposed it and a human-readable reason. Suggestions reach
the graph only when a curator accepts them (:func:`kgclip.cli.suggest_cmd` ``kgclip ontology review``), which makes a
normal, logged, undoable :class:`~kgclip.ontology.curation.Curator` edit.

File format (JSON Lines, one object per line)::

    {"type": "header", "format_version": 1, "graphs": {"<dir>": "<graph fingerprint>", ...}, "created": "...", ...}
    {"type": "suggestion", "n": 1, "kind": "same_as", "source": "DOID:9675", "target": "RADLEX:RID4799", ...}

The header records the fingerprint of every graph the suggestions were computed against (the curated directory and
any graph aligned with it). :func:`check_fresh` refuses suggestions whose graphs changed since (a suggestion for a
graph that moved on may no longer make sense); reviewing updates the curated graph's fingerprint after each edit it
makes itself, so accepting one suggestion does not invalidate the others.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.errors import InputFormatError, StaleArtifactError
from kgclip.ontology.changelog import json_line, jsonl_lines

__all__ = ["Suggestion", "SuggestionFile", "SUGGESTIONS_FILE", "write_suggestions", "read_suggestions",
           "check_fresh", "SUGGESTION_KINDS", "SELF", "current_fingerprints", "review"]

SUGGESTIONS_FILE = "suggestions.jsonl"
FORMAT_VERSION = 1
SUGGESTION_KINDS = ("same_as", "is_a", "has_symptom")
_STATUSES = ("pending", "accepted", "rejected")


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """One suggested relation ``source --kind--> target``.

    Attributes:
        kind: the relation type (``same_as``, ``is_a``, ``has_symptom``...).
        source: the concept the relation leaves.
        target: the concept it points to.
        score: higher is more confident; comparable within one method only.
        method: what proposed it: ``name``, ``synonym``, ``xref``, ``embedding``, ``link_predictor``, ``head_noun``.
        why: a human-readable reason (``"name 'emphysema' = synonym 'pulmonary emphysema'"``).
        source_name / target_name: the concepts' names when suggested (for reading the file).
        n: position in its file (1-based; 0 before it is written).
        status: ``pending``, ``accepted`` or ``rejected``.
        reviewed_by / review_reason / changelog_seq: the review, once there is one.
    """

    kind: str
    source: str
    target: str
    score: float
    method: str
    why: str = ""
    source_name: str = ""
    target_name: str = ""
    n: int = 0
    status: str = "pending"
    reviewed_by: str | None = None
    review_reason: str | None = None
    changelog_seq: int | None = None

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"suggestion status must be one of {_STATUSES}, got {self.status!r}")

    def describe(self) -> str:
        names = f" ({self.source_name} -> {self.target_name})" if self.source_name or self.target_name else ""
        state = "" if self.status == "pending" else f" [{self.status}]"
        return (f"#{self.n} {self.source} -{self.kind}-> {self.target}{names} score {self.score:.3f} "
                f"via {self.method}{': ' + self.why if self.why else ''}{state}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "suggestion", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Suggestion":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclasses.dataclass
class SuggestionFile:
    """A suggestions file: its header (``graphs``: directory -> fingerprint, plus provenance) and its suggestions."""

    header: dict[str, Any]
    suggestions: list[Suggestion]
    path: Path | None = None

    @property
    def graphs(self) -> dict[str, str]:
        return dict(self.header.get("graphs", {}))

    def pending(self) -> list[Suggestion]:
        return [s for s in self.suggestions if s.status == "pending"]

    def get(self, n: int) -> Suggestion:
        for s in self.suggestions:
            if s.n == n:
                return s
        raise InputFormatError(f"there is no suggestion #{n} in {self.path or SUGGESTIONS_FILE} (it holds "
                               f"#1..#{len(self.suggestions)}); list them with `kgclip ontology review DIR`")

    def replace(self, suggestion: Suggestion) -> None:
        self.suggestions = [suggestion if s.n == suggestion.n else s for s in self.suggestions]

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{s.n}</td><td>{html.escape(s.kind)}</td><td>{html.escape(s.source_name or s.source)}"
                       f"</td><td>{html.escape(s.target_name or s.target)}</td><td>{s.score:.3f}</td>"
                       f"<td>{html.escape(s.method)}</td><td>{html.escape(s.status)}</td></tr>"
                       for s in self.suggestions[:200])
        return ("<table><caption>suggested links (not applied)</caption><tr><th>#</th><th>kind</th><th>source</th>"
                f"<th>target</th><th>score</th><th>method</th><th>status</th></tr>{rows}</table>")


def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch) if epoch else time.time()))


def write_suggestions(path: str | os.PathLike[str], suggestions: Iterable[Suggestion], graphs: Mapping[str, str],
                      **provenance: Any) -> SuggestionFile:
    """Write suggestions (numbered 1..n in the given order) with the graph fingerprints they were computed against.

    Args:
        path: the file, or a graph directory (the file is then ``<dir>/suggestions.jsonl``).
        suggestions: best first.
        graphs: ``{directory or name: graph fingerprint}`` for every graph the suggestions depend on.
        provenance: extra header fields (kind, embeddings fingerprint, settings).
    """
    target = _file(path)
    items = [dataclasses.replace(s, n=i) for i, s in enumerate(suggestions, start=1)]
    header = {"type": "header", "format_version": FORMAT_VERSION, "graphs": dict(graphs), "created": _now(),
              **provenance}
    out = SuggestionFile(header, items, target)
    save(out)
    return out


def save(file: SuggestionFile) -> None:
    """Rewrite a suggestions file atomically (a crash leaves the old file or the new one)."""
    if file.path is None:
        raise InputFormatError("this suggestions file has no path; write it with write_suggestions")
    # One JSON Lines rule for the ontology layer (kgclip.ontology.changelog): a name holding U+2028 stays one line.
    lines = [json_line(file.header)] + [json_line(s.to_dict()) for s in file.suggestions]
    atomic_write_text(file.path, "\n".join(lines) + "\n")


def _file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / SUGGESTIONS_FILE if p.is_dir() else p


def read_suggestions(path: str | os.PathLike[str]) -> SuggestionFile:
    """Read a suggestions file (or ``<dir>/suggestions.jsonl``).

    Raises:
        InputFormatError: no file (run ``kgclip ontology suggest DIR`` first), or a line that is not a suggestion.
    """
    target = _file(path)
    if not target.is_file():
        raise InputFormatError(f"no suggestions at {target}; compute them with `kgclip ontology suggest "
                               f"{target.parent}`")
    header: dict[str, Any] | None = None
    items: list[Suggestion] = []
    try:
        text = target.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"byte {exc.start} is not UTF-8; recompute the file with `kgclip ontology suggest`",
                               path=str(target)) from exc
    for number, line in jsonl_lines(text):
        try:
            d = json.loads(line)
            if d.get("type") == "header" and header is None:
                header = d
            elif d.get("type") == "suggestion":
                items.append(Suggestion.from_dict(d))
            else:
                raise ValueError(f"unexpected record type {d.get('type')!r}")
        except (ValueError, TypeError, AttributeError) as exc:
            raise InputFormatError(f"not a suggestions record ({exc}); recompute the file with `kgclip ontology "
                                   "suggest`", path=str(target), line=number) from exc
    if header is None:
        raise InputFormatError("the suggestions file has no header line; recompute it with `kgclip ontology suggest`",
                               path=str(target))
    return SuggestionFile(header, items, target)


def check_fresh(file: SuggestionFile, fingerprints: Mapping[str, str]) -> None:
    """Raise :class:`StaleArtifactError` if a graph the suggestions depend on changed since they were computed.

    Args:
        file: the suggestions.
        fingerprints: ``{directory or name: current fingerprint}``, for the same keys as the header's ``graphs``.
    """
    for key, recorded in file.graphs.items():
        current = fingerprints.get(key)
        if current != recorded:
            what = "is not loaded" if current is None else "changed since they were computed"
            raise StaleArtifactError(
                f"suggestions in {file.path} were computed against graph {key!r}, which {what}; nothing was "
                f"written. Recompute them with `kgclip ontology suggest` (same --with options) and review again.")


# ---------------------------------------------------------------------------------------------- review
SELF = "self"  # the header key of the reviewed directory's own graph fingerprint


def current_fingerprints(file: SuggestionFile, graph: Any) -> dict[str, str]:
    """The fingerprints, now, of every graph ``file`` was computed against (``graph``: the reviewed one)."""
    from kgclip.ontology.store import load_graph_dir

    out = {SELF: graph.fingerprint()}
    for key in file.graphs:
        if key != SELF:
            out[key] = load_graph_dir(key).fingerprint() if Path(key).is_dir() else ""
    return out


def _apply(curator: Any, s: Suggestion, author: str | None, reason: str) -> Any:
    """The curated edit that accepts ``s`` (a ``same_as`` into another graph becomes an xref)."""
    if s.kind == "same_as" and s.target not in curator.graph:
        return curator.update_concept(s.source, add_xrefs=[s.target], reason=reason, author=author)
    return curator.add_relation(s.source, s.kind, s.target, origin="suggestion", reason=reason, author=author)


def _decide(curator: Any, file: SuggestionFile, n: int, accept: bool, author: str | None,
            reason: str | None) -> Any:
    s = file.get(n)
    what = f"suggestion #{n} ({s.method}{': ' + s.why if s.why else ''})"
    reason = reason or f"{'accepted' if accept else 'rejected'} {what}"
    if accept:
        entry = _apply(curator, s, author, reason)
    else:
        entry = curator.changelog.append(
            "review", {"decision": "reject", "suggestion": n, "kind": s.kind, "source": s.source,
                       "target": s.target, "method": s.method}, [], author=author or curator.author,
            reason=reason, revert={})
        curator.save()
    file.header["graphs"][SELF] = curator.graph.fingerprint()  # our own edit does not make the others stale
    file.replace(dataclasses.replace(s, status="accepted" if accept else "rejected", reviewed_by=author,
                                     review_reason=reason, changelog_seq=entry.seq))
    save(file)
    return entry


def review(directory: str | os.PathLike[str], *, accept: Iterable[int] = (), reject: Iterable[int] = (),
           author: str | None = None, reason: str | None = None, timeout: float | None = None) -> list[Any]:
    """Accept and reject suggestions of ``directory`` by number, under the directory's writers' lock.

    An accepted suggestion is a normal curated, logged, undoable edit; a rejection is logged too. The web app and
    ``kgclip ontology review`` both come here.

    Returns:
        The changelog entries written, accepted ones first.

    Raises:
        StaleArtifactError: a graph the suggestions were computed against changed since (nothing is written).
        InputFormatError: a number is unknown, both accepted and rejected, or already reviewed.
    """
    from kgclip.ontology.curation import Curator

    accept, reject = list(accept), list(reject)
    if set(accept) & set(reject):
        raise InputFormatError(f"suggestion(s) {sorted(set(accept) & set(reject))} are both accepted and rejected")
    file = read_suggestions(directory)
    with Curator.locked(directory, author=author, timeout=timeout) as curator:
        check_fresh(file, current_fingerprints(file, curator.graph))  # before anything is written
        for n in [*accept, *reject]:  # every number is checked before the first edit
            if file.get(n).status != "pending":
                raise InputFormatError(f"suggestion #{n} was already {file.get(n).status}; nothing was written")
        return [_decide(curator, file, n, n in accept, author, reason) for n in [*accept, *reject]]
