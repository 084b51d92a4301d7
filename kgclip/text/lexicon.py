"""The linker's lexicon: every name and synonym of a graph, normalised, compiled into flat lookup tables.

Normalisation (applied identically to lexicon terms and to text): Unicode letters/digits split on everything else,
lower-cased, then a light plural/morphology fold (``opacities`` -> ``opacity``, ``vertebrae`` -> ``vertebra``,
``masses`` -> ``mass``, ``effusions`` -> ``effusion``, ``granulomas`` -> ``granuloma``, ``pneumothoraces`` ->
``pneumothorax``; words ending in ``-is``/``-us``/``-ss``/``-os`` are left alone so ``atelectasis`` and
``exophthalmos`` stay themselves). Each name also yields two variants: the MeSH/UMLS inverted form reordered
(``Hernia, Hiatal`` -> ``hiatal hernia``) and the name without a trailing parenthetical (``effusion (finding)``).

Abbreviations are the short all-capital names and synonyms (``PTX``, ``COPD``, ``T12``): they are matched
case-sensitively on the raw text, so the English word "as" never links to ``AS``.

When several concepts share a surface form, their order is fixed at build time by the key
``(deprecated, not the preferred name, rank of the source in LinkerConfig.source_priority, concept id)``: a current
concept beats a deprecated one, a preferred name beats a synonym, then the configured source order, then the id in
code-point order, so the choice never depends on insertion order. The first is linked; the rest are reported as
``alternatives``.

The compiled tables are flat (one dict of trie nodes - every key and every token prefix of a key, with flags -, a
key -> row dict, candidate lists in CSR form) rather than a nested token trie, so that
:mod:`kgclip.text.lexicon_cache` can save them as safetensors and load them back with a few C-level calls instead
of rebuilding ~165k trie nodes in Python.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from kgclip.fingerprint import fingerprint_json
from kgclip.ontology.ids import SAME_AS
from kgclip.text.spelling import SpellIndex

if TYPE_CHECKING:
    from kgclip.ontology.records import GraphColumns

__all__ = ["Lexicon", "SpellIndex", "normalize_token", "tokenize", "normalisation_digest", "borrowed_synonyms",
           "XREF_SCHEMES", "STOP_WORDS",
           "BAG_SKIP", "NEGATING_PREFIXES", "LEXICON_FORMAT", "IS_TERM", "HAS_LONGER"]

# Bump whenever normalize_token / tokenize / _variants or the compiled tables change: cached lexicons of another
# format are rebuilt, never reused.
# 3: word-order bags only for terms whose every stop word is one a text window may skip (BAG_SKIP).
# 4: names borrowed from same_as partners / shared UMLS and MeSH cross-references, ranked below own synonyms.
# 5: plural folds of -as ("granulomas", "hernias"), -ys ("airways") and -thoraces ("pneumothoraces").
LEXICON_FORMAT = 5
IS_TERM, HAS_LONGER = 1, 2  # flags of Lexicon.nodes: the path is a surface key / a longer key continues it
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
# The stop words a word-order window may skip, in the text ("carcinoma of the lung") and so also in a term's bag. A
# term holding any other stop word gets no bag: the window stops at that word, so the bag could only ever match
# text that lacks it - "enhancing mass" for "non-enhancing mass", "tension pneumothorax" for "pneumothorax without
# tension".
BAG_SKIP = frozenset({"of", "the", "in", "a", "an", "on", "at", "to", "for"})
# Tokens that negate the word they are joined to when written apart ("non-enhancing", "non small cell", "un-united"):
# the linker never starts a match at the word after one, since "enhancing mass" is not what "non-enhancing mass"
# says. "a"/"an" are articles when written apart, so they are not listed.
NEGATING_PREFIXES = frozenset({"non", "un"})


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
    if t.endswith("thoraces"):  # "pneumothoraces", "hemithoraces": the Latin plural of -thorax
        return t[:-3] + "x"
    # -as/-ys are plurals of -a/-y ("granulomas", "hernias", "airways"); the few singular -as words ("pancreas",
    # "psoas") fold too, identically in terms and texts, and no such fold lands on another term's word.
    if t.endswith("s") and not t.endswith(("ss", "us", "is", "os")):
        return t[:-1]
    return t


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, raw)`` for every run of letters/digits."""
    return [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]


# Cross-reference schemes whose ids name one concept: two concepts sharing such an id are the same concept (an
# obsolete DO term and the term that replaced it, a RadLex term and a DO disease sharing a UMLS CUI).
XREF_SCHEMES = ("UMLS", "MESH")
_MAX_XREF_GROUP = 3  # an id shared by more concepts is a broad mapping ("respiratory tract disease"), not an identity


def borrowed_synonyms(columns: "GraphColumns") -> list[tuple[str, ...]]:
    """Per concept (in graph order), the names and synonyms of its ``same_as`` partners (either direction; accepted
    alignments become such relations) and of the concepts sharing a :data:`XREF_SCHEMES` cross-reference with it,
    less its own. The lexicon ranks them below every concept's own names, so they only decide a surface form that
    no current concept holds as its own (an obsolete name now links to the concept that replaced it) and otherwise
    show up as alternatives."""
    partners: dict[int, set[int]] = {}

    def pair(a: int, b: int) -> None:
        if a != b:
            partners.setdefault(a, set()).add(b)
            partners.setdefault(b, set()).add(a)

    if SAME_AS in columns.relation_types:
        mask = columns.edge_type == columns.relation_types.index(SAME_AS)
        for a, b in zip(columns.edge_source[mask].tolist(), columns.edge_target[mask].tolist()):
            pair(a, b)
    groups: dict[str, list[int]] = {}
    for i, xrefs in enumerate(columns.xrefs):
        for xref in xrefs:
            if xref.split(":", 1)[0].upper() in XREF_SCHEMES:
                groups.setdefault(xref.upper(), []).append(i)
    for members in groups.values():
        if 1 < len(members) <= _MAX_XREF_GROUP:
            for a in members[1:]:
                pair(members[0], a)
                for b in members[1:]:
                    pair(a, b)
    out: list[tuple[str, ...]] = [()] * len(columns.ids)
    for i, others in partners.items():
        own = {columns.names[i], *columns.synonyms[i]}
        out[i] = tuple(dict.fromkeys(n for p in sorted(others) for n in (columns.names[p], *columns.synonyms[p])
                                     if n and n not in own))
    return out


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


class _Candidates(Mapping[str, list[int]]):
    """Read-only ``surface key -> concept indices, best first`` view over the lexicon's CSR tables."""

    def __init__(self, lexicon: "Lexicon") -> None:
        self._lexicon = lexicon

    def __getitem__(self, key: str) -> list[int]:
        return self._lexicon.candidates(key)

    def __contains__(self, key: object) -> bool:
        return key in self._lexicon.terms

    def __iter__(self) -> Iterator[str]:
        return iter(self._lexicon.keys)

    def __len__(self) -> int:
        return len(self._lexicon.keys)


class Lexicon:
    """Normalised names of a graph's concepts. Build with :meth:`build`.

    A term of ``n`` tokens is found by walking its token prefixes through :attr:`nodes`: ``"pleural"`` is a node
    flagged ``HAS_LONGER`` (a longer key continues it), ``"pleural effusion"`` one flagged ``IS_TERM`` (it is a key).

    Attributes:
        concept_ids: concept ids, indexed by the integers the tables hold.
        names: preferred names, indexed like ``concept_ids``.
        deprecated: indices of deprecated concepts.
        keys: surface keys (normalised tokens joined by a space), in build order.
        terms: surface key -> its position in ``keys``.
        entries: surface key -> concept indices, best first (a read-only mapping over the CSR tables).
        nodes: every key and every proper token prefix of a key -> its ``IS_TERM`` / ``HAS_LONGER`` flags: the nodes
            of an implicit token trie, one dict lookup per step of a walk.
        abbreviations: case-sensitive abbreviation -> concept indices, best first.
        key_text: surface key -> one original spelling, for display; only keys spelled otherwise are listed.
        bags: sorted content tokens of multi-word terms -> entry key (for word-order variants).
        bag_tokens: content words of multi-word terms (a word-order window needs them).
        vocabulary: every normalised token of every term (for spelling correction).
    """

    def __init__(self, *, concept_ids: list[str], names: list[str], deprecated: list[int], keys: list[str],
                 offsets: list[int], indices: list[int], nodes: dict[str, int], abbreviations: dict[str, list[int]],
                 key_text: dict[str, str], bags: dict[str, str], bag_tokens: set[str], vocabulary: set[str]) -> None:
        self.concept_ids = concept_ids
        self.names = names
        self.deprecated = deprecated
        self.keys = keys
        self.terms = dict(zip(keys, range(len(keys))))
        self.offsets = offsets  # candidates of keys[r] are indices[offsets[r]:offsets[r + 1]]
        self.indices = indices
        self.nodes = nodes
        self.abbreviations = abbreviations
        self.key_text = key_text
        self.bags = bags
        self.bag_tokens = bag_tokens
        self.vocabulary = vocabulary
        self.entries: Mapping[str, list[int]] = _Candidates(self)

    @classmethod
    def build(cls, concepts: Iterable[tuple[str, str, Sequence[str], str, bool]], *, min_term_chars: int = 3,
              abbreviation_max_chars: int = 6, source_priority: Sequence[str] = (),
              stop_terms: Sequence[str] = (), borrowed: Sequence[Sequence[str]] | None = None) -> "Lexicon":
        """Build from ``(id, preferred name, synonyms, source, deprecated)`` tuples; ``borrowed[i]`` are extra
        names of the i-th concept ranked below every own name and synonym (see :func:`borrowed_synonyms`)."""
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
            extra = borrowed[idx] if borrowed is not None else ()
            for tier, term in [(0, name)] + [(1, s) for s in synonyms] + [(2, s) for s in extra]:
                if not term or not term.strip():
                    continue
                sort_key = (bool(deprecated), tier, rank.get(source, len(rank)), cid)
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

        return cls.compile(concept_ids, names, ordered(raw), ordered(raw_abbr), key_text, deprecated_idx)

    @classmethod
    def compile(cls, concept_ids: list[str], names: list[str], entries: dict[str, list[int]],
                abbreviations: dict[str, list[int]], key_text: dict[str, str],
                deprecated: list[int] | None = None) -> "Lexicon":
        """The lookup tables of ``entries`` (surface key -> concept indices, best first)."""
        keys = list(entries)
        offsets, indices = [0], []
        prefixes: set[str] = set()
        vocabulary: set[str] = set()
        bags: dict[str, str] = {}
        bag_tokens: set[str] = set()
        for key in keys:
            indices.extend(entries[key])
            offsets.append(len(indices))
            tokens = key.split(" ")
            vocabulary.update(tokens)
            if len(tokens) == 1:
                continue
            cut = key.find(" ")
            while cut != -1:
                prefixes.add(key[:cut])
                cut = key.find(" ", cut + 1)
            content = [t for t in tokens if t not in STOP_WORDS]
            if len(content) >= 2 and all(t in BAG_SKIP for t in tokens if t in STOP_WORDS):
                bags.setdefault(" ".join(sorted(content)), key)
                bag_tokens.update(content)
        nodes = dict.fromkeys(prefixes, HAS_LONGER)
        for key in keys:
            nodes[key] = nodes.get(key, 0) | IS_TERM
        return cls(concept_ids=concept_ids, names=names, deprecated=list(deprecated or []), keys=keys,
                   offsets=offsets, indices=indices, nodes=nodes, abbreviations=abbreviations,
                   key_text={k: v for k, v in key_text.items() if v != k}, bags=bags, bag_tokens=bag_tokens,
                   vocabulary=vocabulary)

    @functools.cached_property
    def max_term_tokens(self) -> int:
        """The most tokens in one key (derived from :attr:`keys`, so neither built nor cached)."""
        return max((key.count(" ") for key in self.keys), default=0) + 1

    # ------------------------------------------------------------------ lookups
    def candidates(self, key: str) -> list[int]:
        """Concept indices of a surface key, best first (``KeyError`` if it is not a term)."""
        row = self.terms[key]
        return self.indices[self.offsets[row]:self.offsets[row + 1]]

    def starts_term(self, token: str) -> bool:
        """Whether some term begins with (or is) this normalised token."""
        return token in self.nodes

    def display(self, key: str) -> str:
        """One original spelling of a surface key."""
        return self.key_text.get(key, key)

    def __len__(self) -> int:
        return len(self.keys) + len(self.abbreviations)


@functools.lru_cache(maxsize=1)
def normalisation_digest() -> str:
    """Fingerprint of the normalisation tables and the lexicon format (part of every lexicon cache key)."""
    return fingerprint_json({"format": LEXICON_FORMAT, "stop_words": sorted(STOP_WORDS),
                             "bag_skip": sorted(BAG_SKIP), "irregular": _IRREGULAR,
                             "token": _TOKEN.pattern, "paren": _PAREN.pattern})
