"""The linker's lexicon: every name and synonym of a graph, normalised, in a token trie plus side tables.

Normalisation (applied identically to lexicon terms and to text): Unicode letters/digits split on everything else,
lower-cased, then a light plural/morphology fold (``opacities`` -> ``opacity``, ``vertebrae`` -> ``vertebra``,
``masses`` -> ``mass``, ``effusions`` -> ``effusion``; words ending in ``-is``/``-us``/``-ss`` are left alone so
``atelectasis`` stays itself). Each name also yields two variants: the MeSH/UMLS inverted form reordered
(``Hernia, Hiatal`` -> ``hiatal hernia``) and the name without a trailing parenthetical (``effusion (finding)``).

Abbreviations are the short all-capital names and synonyms (``PTX``, ``COPD``, ``T12``): they are matched
case-sensitively on the raw text, so the English word "as" never links to ``AS``.

When several concepts share a surface form, their order is fixed at build time by the key
``(deprecated, not the preferred name, rank of the source in LinkerConfig.source_priority, concept id)``: a current
concept beats a deprecated one, a preferred name beats a synonym, then the configured source order, then the id in
code-point order, so the choice never depends on insertion order. The first is linked; the rest are reported as
``alternatives``.

The lexicon is saved as JSON under ``kgclip_home()/cache/linker/`` keyed by the graph's fingerprint and the
lexicon-relevant settings, never with pickle.
"""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.fingerprint import fingerprint_json

__all__ = ["Lexicon", "SpellIndex", "normalize_token", "tokenize", "STOP_WORDS"]

LEXICON_FORMAT = 1
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_PAREN = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]\s*$")
_IRREGULAR = {"vertebrae": "vertebra", "bullae": "bulla", "pleurae": "pleura", "diverticula": "diverticulum",
              "bronchi": "bronchus", "emboli": "embolus", "thrombi": "thrombus", "calculi": "calculus",
              "foci": "focus", "nuclei": "nucleus", "metastases": "metastasis", "stenoses": "stenosis",
              "diagnoses": "diagnosis", "apices": "apex", "indices": "index", "cervices": "cervix",
              "lymphomata": "lymphoma", "data": "datum", "teeth": "tooth", "feet": "foot", "women": "woman",
              "men": "man", "children": "child", "ribs": "rib"}

# Words that are never linked on their own (RadLex has concepts named "no", "all", "new"...); terms made only of
# them are dropped from the lexicon.
STOP_WORDS = frozenset("""
a an and are as at be been but by for from had has have he her his i if in into is it its may might no nor not of
on or our she so such than that the their them then there these they this those to was we were what when where which
while who will with without yes you all few new old low any some each other both either neither more most less
very can could should would shall must do does did done also per via vs versus non none one two three
""".split())


@functools.lru_cache(maxsize=200_000)
def normalize_token(token: str) -> str:
    """Lower-case and fold plurals: ``"Opacities"`` -> ``"opacity"``, ``"ribs"`` -> ``"rib"``."""
    t = token.lower()
    if len(t) <= 3 or not t.isalpha():
        return t
    if t in _IRREGULAR:
        return _IRREGULAR[t]
    if t.endswith("ies") and len(t) > 4:
        return t[:-3] + "y"
    if t.endswith("ae") and len(t) > 4:
        return t[:-1]
    if t.endswith(("sses", "xes", "ches", "shes", "zes")):
        return t[:-2]
    if t.endswith("s") and not t.endswith(("ss", "us", "is", "ys", "as", "os")):
        return t[:-1]
    return t


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, raw)`` for every run of letters/digits."""
    return [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]


def _is_abbreviation(name: str, max_chars: int) -> bool:
    stripped = name.strip()
    return (2 <= len(stripped) <= max_chars and " " not in stripped and stripped == stripped.upper()
            and sum(ch.isupper() for ch in stripped) >= 1 and stripped.replace("-", "").isalnum())


def _variants(name: str) -> list[str]:
    out = [name]
    no_paren = _PAREN.sub("", name)
    if no_paren and no_paren != name:
        out.append(no_paren)
    for base in list(out):
        if base.count(",") == 1:  # MeSH/UMLS inversion: "Hernia, Hiatal" -> "Hiatal Hernia"
            head, tail = (part.strip() for part in base.split(","))
            if head and tail and len(tail.split()) <= 3:
                out.append(f"{tail} {head}")
    return out


class Lexicon:
    """Normalised names of a graph's concepts.

    Attributes:
        concept_ids: concept ids, indexed by the integers the tables hold.
        entries: surface key (normalised tokens joined by a space) -> concept indices, best first.
        abbreviations: case-sensitive abbreviation -> concept indices, best first.
        deprecated: indices of deprecated concepts.
        bags: sorted content tokens of multi-word terms -> entry key (for word-order variants).
        vocabulary: every normalised token of every term (for spelling correction).
    """

    def __init__(self, concept_ids: list[str], names: list[str], entries: dict[str, list[int]],
                 abbreviations: dict[str, list[int]], key_text: dict[str, str],
                 deprecated: list[int] | None = None) -> None:
        self.concept_ids = concept_ids
        self.deprecated = deprecated or []  # indices of deprecated concepts
        self.names = names
        self.entries = entries
        self.abbreviations = abbreviations
        self.key_text = key_text  # surface key -> one original spelling, for display
        self.trie: dict[str, Any] = {}
        self.vocabulary: set[str] = set()
        self.bags: dict[str, str] = {}
        self.bag_tokens: set[str] = set()  # content words of multi-word terms (a word-order window needs them)
        self.max_term_tokens = 1
        for key in entries:
            tokens = key.split(" ")
            node = self.trie
            for tok in tokens:
                node = node.setdefault(tok, {})
            node[""] = key  # "" is never a token, so it marks a term's end
            self.vocabulary.update(tokens)
            self.max_term_tokens = max(self.max_term_tokens, len(tokens))
            content = [t for t in tokens if t not in STOP_WORDS]
            if len(content) >= 2:
                self.bags.setdefault(" ".join(sorted(content)), key)
                self.bag_tokens.update(content)

    @classmethod
    def build(cls, concepts: Iterable[tuple[str, str, Sequence[str], str, bool]], *, min_term_chars: int = 3,
              abbreviation_max_chars: int = 6, source_priority: Sequence[str] = (),
              stop_terms: Sequence[str] = ()) -> "Lexicon":
        """Build from ``(id, preferred name, synonyms, source, deprecated)`` tuples."""
        rank = {s: i for i, s in enumerate(source_priority)}
        stop = STOP_WORDS | {s.lower() for s in stop_terms}
        concept_ids: list[str] = []
        names: list[str] = []
        raw: dict[str, dict[int, tuple]] = {}
        raw_abbr: dict[str, dict[int, tuple]] = {}
        key_text: dict[str, str] = {}
        deprecated_idx: list[int] = []
        for cid, name, synonyms, source, deprecated in concepts:
            idx = len(concept_ids)
            if deprecated:
                deprecated_idx.append(idx)
            concept_ids.append(cid)
            names.append(name)
            for is_pref, term in [(True, name)] + [(False, s) for s in synonyms]:
                if not term or not term.strip():
                    continue
                sort_key = (bool(deprecated), not is_pref, rank.get(source, len(rank)), cid)
                if _is_abbreviation(term, abbreviation_max_chars) and term.strip().lower() not in stop:
                    table = raw_abbr.setdefault(term.strip(), {})
                    table[idx] = min(table.get(idx, sort_key), sort_key)
                    continue
                for variant in _variants(term):
                    tokens = [normalize_token(t) for _, _, t in tokenize(variant)]
                    if not tokens or all(t in stop for t in tokens):
                        continue
                    if len(tokens) == 1 and (len(tokens[0]) < min_term_chars or tokens[0].isdigit()):
                        continue
                    key = " ".join(tokens)
                    table = raw.setdefault(key, {})
                    table[idx] = min(table.get(idx, sort_key), sort_key)
                    key_text.setdefault(key, variant)

        def ordered(table: dict[str, dict[int, tuple]]) -> dict[str, list[int]]:
            return {k: sorted(v, key=v.__getitem__) for k, v in table.items()}

        return cls(concept_ids, names, ordered(raw), ordered(raw_abbr), key_text, deprecated_idx)

    # ------------------------------------------------------------------ persistence (JSON, never pickle)
    def to_json(self) -> dict[str, Any]:
        return {"format": LEXICON_FORMAT, "concept_ids": self.concept_ids, "names": self.names,
                "entries": self.entries, "abbreviations": self.abbreviations, "key_text": self.key_text,
                "deprecated": self.deprecated}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Lexicon":
        if data.get("format") != LEXICON_FORMAT:
            raise ValueError(f"lexicon format {data.get('format')!r} is not {LEXICON_FORMAT}")
        return cls(data["concept_ids"], data["names"], data["entries"], data["abbreviations"], data["key_text"],
                   data["deprecated"])

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        # Compact, not the indented atomic_write_json: a RadLex-scale lexicon is tens of MB indented.
        atomic_write_text(path, json.dumps({"meta": meta, "lexicon": self.to_json()}, ensure_ascii=False,
                                           separators=(",", ":")))

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> "Lexicon | None":
        """The cached lexicon at ``path`` if it was built for ``meta``; ``None`` if absent, stale or unreadable."""
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("meta") != meta:
                return None
            return cls.from_json(payload["lexicon"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged cache is rebuilt, never trusted

    @staticmethod
    def cache_key(graph_fingerprint: str, settings: dict[str, Any]) -> str:
        return fingerprint_json({"graph": graph_fingerprint, "settings": settings, "format": LEXICON_FORMAT})

    def __len__(self) -> int:
        return len(self.entries) + len(self.abbreviations)


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
            if dice >= t and (best is None or (dice, self.tokens[i]) > best):
                if _osa_distance(token, self.tokens[i], limit) <= limit:
                    best = (dice, self.tokens[i])
        return None if best is None else (best[1], best[0])
