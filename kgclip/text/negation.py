"""Negated, uncertain and historical mentions, NegEx / ConText style, tuned for radiology reports.

A *cue* is a trigger phrase with a category (negated / uncertain / historical), a direction (``forward``: it
governs the words after it, as in "no pleural effusion"; ``backward``: the words before it, as in "pneumothorax is
not seen"; ``both``) and a scope limit in tokens. A cue's scope also ends at the end of its sentence and at a
*terminator* ("but", "however", "which", "there is"...). *Pseudo-cues* ("no increase in", "not only", "no
change") are matched first and hide the shorter cues inside them, so "no change in the cardiomegaly" leaves
cardiomegaly affirmed.

Radiology adds one family the original NegEx lacks: *normal descriptors* ("normal heart size", "the lungs are
clear", "mediastinal contours are within normal limits"). They state that the anatomy is free of disease, so the
anatomical mention is marked negated (its ``negation_cue`` says which descriptor) with a short scope; a report
that reads "clear lungs" should not list the lung among its abnormalities.

Cues are found in one pass over the tokens through a trie of cue phrases, longest first (so "cannot be excluded"
wins over "not"); every mention is then checked against the nearby cues of its own sentence only.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Sequence
from typing import Literal

from kgclip.config import Config
from kgclip.errors import ConfigError

__all__ = ["NegationConfig", "CUE_WORDS", "Cue", "ContextAnnotator", "Flags", "find_cues", "annotate", "flags"]

Category = Literal["negated", "uncertain", "historical", "pseudo", "terminator"]
Direction = Literal["forward", "backward", "both"]

# (phrase, category, direction, scope in tokens or 0 for the config default)
_CUES: tuple[tuple[str, str, str, int], ...] = (
    # negation, forward
    *((p, "negated", "forward", 0) for p in (
        "no", "not", "without", "no evidence of", "no evidence for", "no signs of", "no sign of", "no findings of",
        "no finding of", "negative for", "free of", "absence of", "absent", "denies", "denied", "neither", "nor",
        "no definite", "no definitive", "no suspicious", "no acute", "no focal", "no large", "no visible",
        "no radiographic evidence of", "resolution of", "resolved", "interval resolution of", "rather than",
        "never", "none", "fails to reveal", "not demonstrate", "no longer", "removal of",
    )),
    *((p, "negated", "both", 0) for p in ("is not", "are not", "was not", "were not")),
    # negation, backward
    *((p, "negated", "backward", 0) for p in (
        "is absent", "are absent", "not seen", "not identified", "not visualized", "not present", "not noted",
        "not demonstrated", "not evident", "not appreciated", "is negative", "are negative", "has resolved",
        "have resolved", "resolved", "was ruled out", "is ruled out", "are ruled out", "ruled out", "free",
        "no longer seen", "no longer present", "unlikely", "has been removed", "have been removed", "removed",
    )),
    # radiology normal descriptors: short scope, both sides ("normal heart", "heart is normal")
    *((p, "negated", "forward", 3) for p in (
        "normal", "clear", "unremarkable", "intact", "well expanded", "well-expanded", "well aerated",
        "well-aerated", "stable normal", "grossly normal", "grossly clear", "within normal limits",
    )),
    *((p, "negated", "backward", 6) for p in (
        "normal", "is normal", "are normal", "are clear", "is clear", "clear", "unremarkable", "is unremarkable",
        "are unremarkable", "within normal limits", "are within normal limits", "is within normal limits",
        "normal in size", "is normal in size", "are normal in size", "within normal limits in size", "intact",
        "are intact", "is intact", "well expanded", "are well expanded", "well-expanded", "is stable and normal",
        "are stable and normal", "negative",
    )),
    # uncertainty
    *((p, "uncertain", "forward", 0) for p in (
        "may represent", "may be", "might be", "could be", "could represent", "possible", "possibly", "probable",
        "probably", "likely", "suspect", "suspected", "suspicious for", "suggestive of", "suggests", "suggesting",
        "concern for", "concerning for", "questionable", "question of", "cannot exclude", "can not exclude",
        "cannot rule out", "can not rule out", "cannot be excluded", "rule out", "r/o", "differential diagnosis",
        "differential includes", "consider", "considered", "versus", "vs", "equivocal", "indeterminate",
        "worrisome for", "may reflect", "may indicate", "presumably", "presumed", "favor", "favored",
    )),
    *((p, "uncertain", "backward", 0) for p in (
        "not excluded", "is not excluded", "cannot be excluded", "can not be excluded", "could not be excluded",
        "not ruled out", "cannot be ruled out", "is possible", "are possible", "is suspected", "is likely",
        "not entirely excluded", "versus", "vs", "is questioned", "?",
    )),
    # history
    *((p, "historical", "forward", 0) for p in (
        "history of", "h/o", "hx of", "prior", "previous", "previously", "status post", "s/p", "old", "remote",
        "healed", "sequela of", "sequelae of",
    )),
    *((p, "historical", "backward", 3) for p in ("old", "healed", "in the past", "previously")),
    # pseudo-triggers: look like cues but are not
    *((p, "pseudo", "both", 0) for p in (
        "no increase", "no increase in", "no change", "no change in", "no significant change", "no interval change",
        "no significant interval change", "not only", "not necessarily", "without change", "without interval change",
        "not certain whether", "not certain if", "gram negative", "no further", "not well seen",
        "not well visualized", "not well evaluated", "not well assessed", "no definite change",
        "not increased", "no decrease", "no decrease in", "unchanged", "not changed", "no other", "not excluding",
        "cannot assess", "compared to prior", "compared with prior", "prior study",
        "prior studies", "prior exam", "prior examination", "prior radiograph", "prior radiographs", "prior film",
        "prior films", "previous study", "previous exam", "previous examination", "previous radiograph",
        "previous radiographs", "previous film", "previous films", "since prior", "from prior",
        "since the prior", "from the prior", "compared to the prior", "compared with the prior",
    )),
    # terminators
    *((p, "terminator", "both", 0) for p in (
        "but", "however", "although", "though", "yet", "which", "except", "aside from", "apart from", "other than",
        "otherwise", "there is", "there are", "there has been", "there have been", "still", "persistent",
        "persists", "remains", "whereas", "while", "with", "secondary to", "due to", "cause of", "causes of",
        "source of", "etiology of", "reason for", "as well as", "again",
    )),
)

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|\?", re.UNICODE)
# Sentence ends: . ! ? ; : or newline, but not a decimal point ("2.5 cm").
_SENTENCE_END = re.compile(r"(?<!\d)[.!;:]|[.!;:](?!\d)|\?|\n\s*\n|\n(?=\s*[-*\d]+[.)]?\s)")


# Single-word cues ("possible", "without", "normal"): the linker never spell-corrects these into concept names.
CUE_WORDS = frozenset(p for p, *_ in _CUES if _TOKEN.fullmatch(p))


@dataclasses.dataclass(frozen=True)
class NegationConfig(Config):
    """Settings of :class:`ContextAnnotator`."""

    # Default scope of a cue, in tokens, when the cue does not set its own (NegEx uses 5; radiology lists such
    # as "no pleural effusion, pneumothorax, or focal airspace consolidation" need more).
    max_scope: int = 12
    # Extra phrases, each "category:direction:phrase" (category negated/uncertain/historical/pseudo/terminator,
    # direction forward/backward/both), added to the built-in list.
    extra_cues: tuple[str, ...] = ()
    # Whether a normal descriptor ("clear lungs", "normal heart size") negates the anatomy it describes.
    normal_descriptors_negate: bool = True

    def __post_init__(self) -> None:
        if self.max_scope < 1:
            raise ConfigError(f"max_scope must be >= 1 token, got {self.max_scope}")
        for item in self.extra_cues:
            parts = item.split(":", 2)
            if len(parts) != 3 or parts[0] not in {"negated", "uncertain", "historical", "pseudo", "terminator"} \
                    or parts[1] not in {"forward", "backward", "both"} or not parts[2].strip():
                raise ConfigError(f"extra cue {item!r} must read 'category:direction:phrase', e.g. "
                                  "'negated:forward:no radiographic signs of'")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One matched trigger. ``start``/``end`` are character offsets; ``token_start``/``token_end`` token offsets."""

    phrase: str
    category: str
    direction: str
    start: int
    end: int
    token_start: int
    token_end: int
    scope: int
    sentence: int


Flags = tuple[bool, bool, bool, str]  # (negated, uncertain, historical, negation cue)
_NO_FLAGS: Flags = (False, False, False, "")
_CATEGORY_SLOT = {"negated": 0, "uncertain": 1, "historical": 2}


class ContextAnnotator:
    """Finds cues in a text and sets ``negated`` / ``uncertain`` / ``historical`` on mentions.

    Cue phrases sit in a token trie (lower-cased tokens), walked once per token with longest match first, so the
    cost does not grow with the number of cues.
    """

    def __init__(self, config: NegationConfig | None = None) -> None:
        self.config = config or NegationConfig()
        table: dict[tuple[str, str, str], int] = {}
        extra = [(p.split(":", 2)[2].strip().lower(), p.split(":", 2)[0], p.split(":", 2)[1], 0)
                 for p in self.config.extra_cues]
        for phrase, category, direction, scope in list(_CUES) + extra:
            if not self.config.normal_descriptors_negate and scope and category == "negated":
                continue
            table[(phrase, category, direction)] = scope
        self._trie: dict = {}
        for (phrase, category, direction), scope in table.items():
            node = self._trie
            for tok in _TOKEN.findall(phrase.lower()):
                node = node.setdefault(tok, {})
            node.setdefault("", []).append((phrase, category, direction, scope or self.config.max_scope))

    def _scan(self, text: str) -> tuple[list[tuple[int, int]], list[int], list[Cue]]:
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        sentence_ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        lower = [text[a:b].lower() for a, b in tokens]
        cues: list[Cue] = []
        i, n = 0, len(tokens)
        while i < n:
            node, j, found = self._trie, i, None
            while j < n:
                node = node.get(lower[j])
                if node is None:
                    break
                j += 1
                if "" in node:
                    found = (j, node[""])
                # a cue never spans punctuation other than a hyphen or slash ("well-expanded", "s/p")
                if j < n and text[tokens[j - 1][1]:tokens[j][0]].strip(" \t-/"):
                    break
            if found is None:
                i += 1
                continue
            end, entries = found
            a, b = tokens[i][0], tokens[end - 1][1]
            sentence = bisect.bisect_right(sentence_ends, a)
            for phrase, category, direction, scope in entries:
                cues.append(Cue(phrase, category, direction, a, b, i, end, scope, sentence))
            i = end
        return tokens, sentence_ends, cues

    def find_cues(self, text: str) -> list[Cue]:
        """All cues of ``text`` (pseudo-cues and terminators included), in text order."""
        return self._scan(text)[2]

    def flags(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Flags]:
        """``(negated, uncertain, historical, negation_cue)`` for each ``(start, end)`` character span of ``text``.

        Cost is O((tokens + spans) log cues): each span looks only at the cues within the largest scope of it, so
        a 100k-character text without any sentence break stays fast.
        """
        if not spans:
            return []
        tokens, sentence_ends, cues = self._scan(text)
        if not cues:
            return [_NO_FLAGS] * len(spans)
        starts = [s for s, _ in tokens]
        # The trie never matches overlapping phrases, so a pseudo-cue already hides the shorter cues inside it.
        live = [c for c in cues if c.category not in ("pseudo", "terminator")]
        live_starts = [c.token_start for c in live]
        terms = [c for c in cues if c.category == "terminator"]
        term_starts = [c.start for c in terms]
        reach = max([self.config.max_scope] + [c.scope for c in live]) + 8
        out: list[Flags] = []
        for start, end in spans:
            lo = bisect.bisect_left(live_starts, bisect.bisect_left(starts, start) - reach)
            hi = bisect.bisect_right(live_starts, bisect.bisect_left(starts, end) + reach)
            if lo == hi:
                out.append(_NO_FLAGS)
                continue
            sentence = bisect.bisect_right(sentence_ends, start)
            m0 = bisect.bisect_left(starts, start)
            m1 = bisect.bisect_left(starts, end)
            flags = [False, False, False, ""]
            for cue in live[lo:hi]:
                if cue.sentence != sentence or (cue.start < end and start < cue.end):
                    continue  # another sentence, or the cue is part of the term itself
                if cue.direction in ("forward", "both") and cue.end <= start:
                    gap, a, b = m0 - cue.token_end, cue.end, start
                elif cue.direction in ("backward", "both") and cue.start >= end:
                    gap, a, b = cue.token_start - m1, end, cue.start
                else:
                    continue
                slot = _CATEGORY_SLOT[cue.category]
                if gap > cue.scope or flags[slot]:
                    continue
                k = bisect.bisect_left(term_starts, a)
                if k < len(terms) and terms[k].end <= b:
                    continue  # a terminator ends the cue's scope before the mention
                flags[slot] = True
                if slot == 0:
                    flags[3] = cue.phrase
            out.append((flags[0], flags[1], flags[2], flags[3]))
        return out

    def annotate(self, text: str, mentions: Sequence) -> list:
        """Copies of ``mentions`` (objects with ``start``/``end`` and the four flag fields, such as the linker's
        ``Mention``) with their context flags set."""
        flags = self.flags(text, [(m.start, m.end) for m in mentions])
        return [dataclasses.replace(m, negated=f[0], uncertain=f[1], historical=f[2], negation_cue=f[3])
                for m, f in zip(mentions, flags)]


_DEFAULT: ContextAnnotator | None = None


def _default() -> ContextAnnotator:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ContextAnnotator()
    return _DEFAULT


def find_cues(text: str) -> list[Cue]:
    """Cues of ``text`` with the default settings."""
    return _default().find_cues(text)


def annotate(text: str, mentions: Sequence) -> list:
    """Set context flags on ``mentions`` of ``text`` with the default settings."""
    return _default().annotate(text, mentions)


def flags(text: str, spans: Sequence[tuple[int, int]]) -> list[Flags]:
    """``(negated, uncertain, historical, negation_cue)`` of each ``(start, end)`` span of ``text``, default settings.

    For spans found by something other than :class:`~kgclip.text.linker.ConceptLinker` (which sets these flags on
    its mentions itself).

    Example:
        >>> flags("No pleural effusion. Possible pneumonia.", [(3, 19), (30, 39)])
        [(True, False, False, 'no'), (False, True, False, '')]
    """
    return _default().flags(text, spans)
