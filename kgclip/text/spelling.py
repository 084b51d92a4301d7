"""Spelling correction for the linker: the closest lexicon token by character-trigram Dice similarity.

Candidates come from a trigram inverted index probed with prefix filtering (only the rarest trigrams of the query are
looked up), and a correction must also be within a small optimal-string-alignment edit distance, so dense medical
vocabularies (hypovolemia / hypokalemia) are not confused. A correction never adds or removes a negating prefix
("atypical" is not a typo of "typical", nor "symmetric" of "asymmetric"): one or two edits can do that, and it
reverses the meaning. Built lazily by the linker: many texts never need it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["SpellIndex", "NEGATING_AFFIXES", "differ_by_negation"]

# Prefixes that negate the word they are fused to. "a"/"an" also begin words they do not negate ("around", "aortic"),
# so a dropped leading "a" ("ortic") is not corrected either: a missed typo is cheaper than a reversed finding.
NEGATING_AFFIXES = ("non", "un", "in", "im", "il", "ir", "dis", "an", "a")


def differ_by_negation(a: str, b: str) -> bool:
    """Whether one token is the other with a negating prefix in front (``atypical`` / ``typical``)."""
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return any(longer == p + shorter for p in NEGATING_AFFIXES)


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


class SpellIndex:
    """Closest vocabulary token by trigram Dice, via an inverted index probed with prefix filtering."""

    def __init__(self, vocabulary: Iterable[str], threshold: float, min_chars: int, max_edits: int) -> None:
        self.threshold, self.min_chars, self.max_edits = threshold, min_chars, max_edits
        self.tokens = sorted(t for t in vocabulary if len(t) >= min_chars - 1 and t.isalpha())
        self.grams = [_trigrams(t) for t in self.tokens]
        self.postings: dict[str, list[int]] = {}
        for i, grams in enumerate(self.grams):
            for g in grams:
                self.postings.setdefault(g, []).append(i)
        self._cache: OrderedDict[str, tuple[str, float] | None] = OrderedDict()

    def correct(self, token: str) -> tuple[str, float] | None:
        if token in self._cache:
            return self._cache[token]
        result = self._search(token)
        self._cache[token] = result
        if len(self._cache) > 100_000:
            self._cache.popitem(last=False)
        return result

    def _search(self, token: str) -> tuple[str, float] | None:
        grams = _trigrams(token)
        n, t = len(grams), self.threshold
        # Dice >= t needs overlap >= t * (n + m) / 2 >= t * n / (2 - t) for the smallest admissible m; a candidate
        # with that overlap must share one of the (n - overlap + 1) rarest trigrams (prefix filtering).
        min_overlap = max(1, int(t * n / (2 - t)))
        probe = sorted(grams, key=lambda g: len(self.postings.get(g, ())))[: n - min_overlap + 1]
        candidates: set[int] = set()
        for g in probe:
            candidates.update(self.postings.get(g, ()))
        # Typo-like edits only: one for ordinary words, two from 12 characters on (hypovolemia must not become
        # hypokalemia: dense medical vocabularies sit two substitutions apart).
        limit = min(self.max_edits, 1 if len(token) < 12 else 2)
        best: tuple[float, str] | None = None
        for i in candidates:
            other = self.grams[i]
            dice = 2 * len(grams & other) / (n + len(other))
            if dice >= t and (best is None or (dice, self.tokens[i]) > best) \
                    and not differ_by_negation(token, self.tokens[i]):
                if _osa_distance(token, self.tokens[i], limit) <= limit:
                    best = (dice, self.tokens[i])
        return None if best is None else (best[1], best[0])
