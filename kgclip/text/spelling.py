"""Spelling correction for the linker: the closest lexicon token within a small edit distance.

Candidates come from symmetric deletes (as in SymSpell): every vocabulary token is indexed under itself and each
string one deletion away (two for long tokens), and a query looks up itself and its own deletions, so every token
within the edit bound is found without comparing against the whole vocabulary. Each candidate is then checked with
the optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions): one edit for tokens of 5+
characters, two from 12 characters on (dense medical vocabularies sit two substitutions apart: hypovolemia /
hypokalemia). The similarity ``1 - edits / length`` must also reach the configured threshold, and a word of under 8
letters keeps its first letter (typos there are rare, and "worse" -> "horse" is a real word mis-corrected). Among
candidates the fewest edits win, then the most shared character trigrams, then the token itself (deterministic).

A correction never swaps one English ending for another (:func:`differ_by_inflection`: "imaged" is not a typo of
"image", nor "possible" of "possibly"): report words are often another form of a vocabulary word. A correction
never adds or removes a negating prefix ("atypical" is not a typo of "typical", nor "symmetric" of
"asymmetric"): one or two edits can do that, and it reverses the meaning. Built lazily by the linker: many texts
never need it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["SpellIndex", "NEGATING_AFFIXES", "INFLECTIONS", "differ_by_negation", "differ_by_inflection", "edit_limit"]

# Prefixes that negate the word they are fused to. "a"/"an" also begin words they do not negate ("around", "aortic"),
# so a dropped leading "a" ("ortic") is not corrected either: a missed typo is cheaper than a reversed finding.
NEGATING_AFFIXES = ("non", "un", "in", "im", "il", "ir", "dis", "an", "a")


def differ_by_negation(a: str, b: str) -> bool:
    """Whether one token is the other with a negating prefix in front (``atypical`` / ``typical``)."""
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return any(longer == p + shorter for p in NEGATING_AFFIXES)


# Pairs of English endings (the word's, the vocabulary word's) that make another form of the same word: "imaged" /
# "image", "plateaus" / "plateau", "streaky" / "streak", "denser" / "dense", "significantly" / "significant",
# "possible" / "possibly", "consolidating" / "consolidation", "inhalational" / "inhalation", "hyperlucency" /
# "hyperlucent". A word written so is not a typo of the vocabulary word. Only whole endings count: a typo inside one
# ("reducd", "heale", "rouns") pairs endings that are not listed, so it is still corrected.
INFLECTIONS = frozenset({("d", ""), ("s", ""), ("y", ""), ("r", ""), ("ly", ""), ("le", "ly"), ("ly", "le"),
                         ("al", ""), ("ing", "ion"), ("ion", "ing"), ("ive", "ion"), ("ion", "ive"),
                         ("ing", "ive"), ("ive", "ing"), ("cy", "t"), ("t", "cy"), ("ic", "y"), ("y", "ic"),
                         ("ed", "er")})


def differ_by_inflection(token: str, other: str) -> bool:
    """Whether ``token`` is ``other`` with one of its :data:`INFLECTIONS` endings swapped (``streaky`` / ``streak``,
    ``complicating`` / ``complication``), on a shared stem of at least 4 letters."""
    k = 0
    for a, b in zip(token, other):
        if a != b:
            break
        k += 1
    # the stem may end before the first differing letter ("possib|le" / "possib|ly")
    return any((token[cut:], other[cut:]) in INFLECTIONS for cut in range(k, max(3, k - 3), -1))


def _trigrams(token: str) -> set[str]:
    padded = f"#{token}#"
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment (Damerau-Levenshtein with adjacent transpositions) distance, capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(token: str, depth: int) -> set[str]:
    """Every string reachable from ``token`` by 1..``depth`` single-character deletions."""
    out: set[str] = set()
    frontier = {token}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def edit_limit(token: str, max_edits: int) -> int:
    """Edits a correction of ``token`` may make: one below 12 characters, two from 12 on, capped by max_edits."""
    return min(max_edits, 1 if len(token) < 12 else 2)


class SpellIndex:
    """Closest vocabulary token within :func:`edit_limit` edits, found through a symmetric-delete index.

    Args:
        vocabulary: the tokens corrections may produce.
        threshold: minimum similarity ``1 - edits / max(len)`` (0.6 accepts one edit in a 5-letter word).
        min_chars: tokens shorter than this are never corrected.
        max_edits: cap on the edit distance (see :func:`edit_limit`).
    """

    _FIRST_LETTER_FROM = 8  # below this length a correction keeps the first letter (unless it swaps the first two)
    _LONG = 11  # vocabulary tokens from this length are also indexed two deletions deep (a 12-char query's peers)

    def __init__(self, vocabulary: Iterable[str], threshold: float, min_chars: int, max_edits: int) -> None:
        self.threshold, self.min_chars, self.max_edits = threshold, min_chars, max_edits
        self.tokens = sorted(t for t in vocabulary if len(t) >= min_chars - 1 and t.isalpha())
        self.postings: dict[str, list[int]] = {}
        for i, token in enumerate(self.tokens):
            depth = 2 if len(token) >= self._LONG and max_edits >= 2 else 1
            for key in {token} | _deletes(token, min(depth, max_edits)):
                self.postings.setdefault(key, []).append(i)
        self._cache: OrderedDict[str, tuple[str, float] | None] = OrderedDict()

    def correct(self, token: str) -> tuple[str, float] | None:
        """``(vocabulary token, similarity)`` of the best correction of ``token``, or None."""
        if token in self._cache:
            return self._cache[token]
        result = self._search(token) if len(token) >= self.min_chars else None
        self._cache[token] = result
        if len(self._cache) > 100_000:
            self._cache.popitem(last=False)
        return result

    def _search(self, token: str) -> tuple[str, float] | None:
        limit = edit_limit(token, self.max_edits)
        if limit < 1:
            return None
        candidates: set[int] = set()
        for key in {token} | _deletes(token, limit):
            candidates.update(self.postings.get(key, ()))
        grams = _trigrams(token)
        best: tuple[int, float, str] | None = None  # (edits, -shared trigram share, token): smallest wins
        for i in candidates:
            other = self.tokens[i]
            if other == token or differ_by_negation(token, other) or differ_by_inflection(token, other):
                continue
            if other[0] != token[0] and len(token) < self._FIRST_LETTER_FROM and (
                    len(other) != len(token) or other[:2] != token[1::-1]):
                continue  # short words are rarely mistyped in their first letter ("worse" is not "horse"); a swap
                # of the first two letters is a typo, a dropped first letter ("ovoid" -> "void") is not
            edits = _osa_distance(token, other, limit)
            if edits > limit or 1 - edits / max(len(token), len(other)) < self.threshold:
                continue
            other_grams = _trigrams(other)
            key = (edits, -2 * len(grams & other_grams) / (len(grams) + len(other_grams)), other)
            if best is None or key < best:
                best = key
        if best is None:
            return None
        edits, _, other = best
        return other, round(1 - edits / max(len(token), len(other)), 4)
