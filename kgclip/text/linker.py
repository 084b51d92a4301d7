"""Text -> concept mentions over the names and synonyms of any :class:`~kgclip.ontology.model.ConceptGraph`.

Matching, in one left-to-right pass over the tokens (never a loop over concepts):

1. **exact**: a walk over the token prefixes of normalised names and synonyms (see :mod:`kgclip.text.lexicon`:
   case, punctuation and plural folding), longest match first; a match never spans a sentence break or a comma;
2. **abbreviations**: short all-capital names/synonyms (``PTX``) matched case-sensitively on the raw token;
3. **word order**: the sorted content words of a window of up to ``max_bag_tokens`` tokens
   (``"effusion pleural"``, ``"carcinoma of the lung"``) looked up among the multi-word terms (score 0.95);
4. **morphology**: an adjective or participle whose noun starts a term ("atherosclerotic" -> atherosclerosis,
   "emphysematous" -> emphysema, "kyphotic" -> kyphosis) stands in for it when the word itself matches nothing
   (score 0.9);
5. **approximate**: a token absent from the lexicon's vocabulary (``"pnuemothorax"``) is corrected to the closest
   vocabulary token within one edit (two from 12 characters on; Damerau-Levenshtein with adjacent transpositions),
   found through a symmetric-delete index (:mod:`kgclip.text.spelling`); the corrected token then takes part in
   the prefix walk. Score = the lowest similarity ``1 - edits / length`` used.

At each position the longest candidate wins (ties: exact, then abbreviation, then word order), and none starts right
after a detached negating prefix, nor drops one from a term ("non-enhancing mass" is never "enhancing mass"). Then
:mod:`kgclip.text.negation` marks each mention negated / uncertain / historical.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.ontology.model import ConceptGraph
from kgclip.text.lexicon import (BAG_SKIP, HAS_LONGER, IS_TERM, NEGATING_PREFIXES, STOP_WORDS, Lexicon,
                                 borrowed_synonyms, normalize_token, tokenize)
from kgclip.text.lexicon_cache import cached_lexicon, lexicon_cache_key, lexicon_inputs_fingerprint
from kgclip.text.negation import CUE_WORDS, ContextAnnotator, NegationConfig
from kgclip.text.spelling import SpellIndex

__all__ = ["LinkerConfig", "Mention", "ConceptLinker", "QUESTION_DROP_TERMS"]

# Words that are RadLex / DO terms but say nothing about a case when they stand alone in a question or a report
# ("image", "left", "normal", "mass"...): a higher layer passes them as ``LinkerConfig(drop_terms=...)``.
QUESTION_DROP_TERMS: tuple[str, ...] = tuple(sorted("""
a an the is are of in on this that there image images left right normal abnormal present seen side what which
where how does do type view or and to be it patient finding findings structure organ part size shape small large
body area region location level mass
""".split()))

_MAX_ALTERNATIVES = 8
# Derivational morphology, tried in order on any token: adjective or participle -> the noun a lexicon names.
_DERIVATIONS = (("otic", "osis"), ("atic", "asis"), ("etic", "esis"), ("itic", "itis"), ("omatous", "oma"),
                ("atous", "a"), ("ified", "ification"), ("ectatic", "ectasis"), ("ied", "y"), ("ed", "e"),
                ("ed", ""), ("ing", "e"), ("ing", ""), ("al", ""))
_DERIVED_SCORE = 0.9
_GAP_OK = re.compile(r"[ \t\-/'’]*")  # what may separate two tokens of one term


@dataclasses.dataclass(frozen=True)
class LinkerConfig(Config):
    """Settings of :class:`ConceptLinker`."""

    # Approximate matching of out-of-vocabulary tokens (spelling variants).
    fuzzy: bool = True
    # Minimum similarity 1 - edits / length between a text token and its correction (0.6: one edit in 5 letters).
    fuzzy_threshold: float = 0.6
    # Tokens shorter than this are never corrected (short words are too ambiguous).
    fuzzy_min_chars: int = 5
    # A correction makes at most 1 edit (with transpositions), or 2 for tokens of 12+ characters, capped by this.
    fuzzy_max_edits: int = 2
    # Word-order variants over windows of up to this many tokens (0 disables).
    max_bag_tokens: int = 5
    # Names/synonyms of at most this many characters, written in capitals, are case-sensitive abbreviations.
    abbreviation_max_chars: int = 6
    # Single-word terms shorter than this are not linked (abbreviations excepted).
    min_term_chars: int = 3
    # Extra words that never form a term on their own (besides the built-in English stop words).
    stop_terms: tuple[str, ...] = ()
    # Mentions whose matched term is one of these (case and punctuation ignored) are dropped after matching. Unlike
    # stop_terms the lexicon is unchanged: "left" still takes its place in the longest match, so "left lung" links
    # to the left lung while a lone "left" links to nothing. See QUESTION_DROP_TERMS.
    drop_terms: tuple[str, ...] = ()
    # Tie-break among concepts sharing a surface form, after "current before deprecated" and "preferred name
    # before synonym": sources earlier in this list win (e.g. ("radlex", "doid")), then the concept id.
    source_priority: tuple[str, ...] = ()
    # Link deprecated concepts when no current concept has the surface form.
    link_deprecated: bool = True
    # Run negation / uncertainty / history detection.
    negation: bool = True
    negation_config: NegationConfig = dataclasses.field(default_factory=NegationConfig)
    # Texts longer than this are linked on their first max_text_chars characters only (bounded time).
    max_text_chars: int = 1_000_000
    # Cache the built lexicon on disk under kgclip_home()/cache/linker.
    disk_cache: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.fuzzy_threshold <= 1.0:
            raise ConfigError(f"fuzzy_threshold must be in (0, 1], got {self.fuzzy_threshold}")
        if self.fuzzy_min_chars < 3:
            raise ConfigError(f"fuzzy_min_chars must be >= 3, got {self.fuzzy_min_chars}")
        if self.max_bag_tokens < 0 or self.fuzzy_max_edits < 0 or self.min_term_chars < 1:
            raise ConfigError("max_bag_tokens and fuzzy_max_edits must be >= 0 and min_term_chars >= 1")
        if self.max_text_chars < 1:
            raise ConfigError(f"max_text_chars must be >= 1, got {self.max_text_chars}")

    def lexicon_settings(self) -> dict[str, Any]:
        """The fields that change the lexicon (part of its cache key)."""
        return {"min_term_chars": self.min_term_chars, "abbreviation_max_chars": self.abbreviation_max_chars,
                "source_priority": list(self.source_priority), "stop_terms": list(self.stop_terms)}


@dataclasses.dataclass(frozen=True)
class Mention:
    """One linked span of a text.

    Attributes:
        start: character offset of the span in the text.
        end: character offset just past the span.
        text: the span as written in the text.
        concept_id: the linked concept (best of the candidates, see :mod:`kgclip.text.lexicon` for the rule).
        name: the concept's preferred name.
        matched: the lexicon term (name or synonym) that matched.
        score: 1.0 for exact and abbreviation matches, 0.95 for word order, ``1 - edits / length`` when fuzzy.
        kind: ``"exact"``, ``"abbreviation"``, ``"word_order"``, ``"morphology"`` (an adjective or participle
            read as its noun: "atherosclerotic" -> atherosclerosis, score 0.9) or ``"fuzzy"``.
        alternatives: other concepts with the same surface form, best first.
        negated / uncertain / historical: context flags from :mod:`kgclip.text.negation`.
        negation_cue: the phrase that negated it, or ``""``.
    """

    start: int
    end: int
    text: str
    concept_id: str
    name: str
    matched: str
    score: float
    kind: str
    alternatives: tuple[str, ...] = ()
    negated: bool = False
    uncertain: bool = False
    historical: bool = False
    negation_cue: str = ""

    @property
    def affirmed(self) -> bool:
        """Neither negated, uncertain nor historical."""
        return not (self.negated or self.uncertain or self.historical)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["alternatives"] = list(self.alternatives)
        return out

    def _repr_html_(self) -> str:
        import html

        flags = [f for f in ("negated", "uncertain", "historical") if getattr(self, f)]
        return (f"<span title='{html.escape(self.concept_id)}'><b>{html.escape(self.text)}</b> &rarr; "
                f"{html.escape(self.name)} <code>{html.escape(self.concept_id)}</code> {self.score:.2f} "
                f"{' '.join(flags)}</span>")


_LEXICONS: "OrderedDict[str, Lexicon]" = OrderedDict()  # in-process LRU: lexicon cache key -> lexicon
_MAX_LEXICONS = 4  # a RadLex + DO lexicon holds tens of MB of Python objects
# graph -> (graph.version, lexicon inputs fingerprint); weak, so a freed graph can never alias a new graph's entry.
_FINGERPRINTS: "weakref.WeakKeyDictionary[ConceptGraph, tuple[int, str]]" = weakref.WeakKeyDictionary()


def _fold(term: str) -> str:
    """A term compared case- and punctuation-insensitively: ``"Left-Lung"`` -> ``"left lung"``."""
    return " ".join(t.lower() for _, _, t in tokenize(term))


@functools.lru_cache(maxsize=8)
def _annotator(config: NegationConfig) -> ContextAnnotator:
    """One annotator per negation config: it is read-only after construction, and building its cue trie costs
    ~10 ms that a linker load should not pay again."""
    return ContextAnnotator(config)


class ConceptLinker:
    """Links text to the concepts of a graph. Build with :meth:`from_graph`.

    Example:
        >>> from kgclip.testing import tiny_graph
        >>> linker = ConceptLinker.from_graph(tiny_graph())
        >>> [(m.concept_id, m.negated) for m in linker.link("No pleural effusions. Cardiomegaly.")]
        [('RADLEX:RID4872', True), ('RADLEX:RID1392', False)]
    """

    def __init__(self, lexicon: Lexicon, config: LinkerConfig | None = None, deprecated: set[int] | None = None,
                 build_seconds: float = 0.0) -> None:
        self.config = config or LinkerConfig()
        self.lexicon = lexicon
        self.build_seconds = build_seconds
        self._deprecated = deprecated or set()
        self._negation = _annotator(self.config.negation_config) if self.config.negation else None
        self._spell: SpellIndex | None = None
        self._derived: dict[str, str | None] = {}
        self._drop = frozenset(_fold(t) for t in self.config.drop_terms)
        # Where from_graph found the lexicon: "memory", "disk" or "built" ("given" when passed in directly).
        self.lexicon_source = "given"

    @classmethod
    def from_graph(cls, graph: ConceptGraph, config: LinkerConfig | None = None) -> "ConceptLinker":
        """A linker over every name and synonym of ``graph``.

        The compiled lexicon is shared in-process and cached on disk (:mod:`kgclip.text.lexicon_cache`) under a key
        of the graph's names and synonyms, the lexicon settings and the format; :attr:`lexicon_source` says where
        it came from (``"memory"``, ``"disk"`` or ``"built"``).
        """
        config = config or LinkerConfig()
        t0 = time.perf_counter()
        known = _FINGERPRINTS.get(graph)
        if known is not None and known[0] == graph.version:
            inputs = known[1]
        else:
            inputs = lexicon_inputs_fingerprint(graph)
            _FINGERPRINTS[graph] = (graph.version, inputs)
        settings = config.lexicon_settings()
        key = lexicon_cache_key(inputs, settings)
        lexicon, source = _LEXICONS.get(key), "memory"

        def build() -> Lexicon:
            columns = graph.columns()  # plain columns: no Concept object per concept
            return Lexicon.build(zip(columns.ids, columns.names, columns.synonyms, columns.sources,
                                     columns.deprecated), borrowed=borrowed_synonyms(columns),
                                 min_term_chars=config.min_term_chars,
                                 abbreviation_max_chars=config.abbreviation_max_chars,
                                 source_priority=config.source_priority, stop_terms=config.stop_terms)

        if lexicon is None:
            lexicon, source = cached_lexicon(inputs, settings, build, disk_cache=config.disk_cache)
        _LEXICONS[key] = lexicon
        _LEXICONS.move_to_end(key)
        while len(_LEXICONS) > _MAX_LEXICONS:
            _LEXICONS.popitem(last=False)
        linker = cls(lexicon, config, set(lexicon.deprecated), time.perf_counter() - t0)
        linker.lexicon_source = source
        return linker

    # ------------------------------------------------------------------ linking
    def link(self, text: str) -> list[Mention]:
        """Mentions of ``text``, in text order, non-overlapping, with context flags."""
        if not isinstance(text, str) or not text.strip():
            return []
        text = text[: self.config.max_text_chars]
        found = self._match(text)
        if found and self._drop:
            found = [f for f in found if _fold(self.lexicon.display(f[3])) not in self._drop]
        if not found:
            return []
        flags = self._negation.flags(text, [(f[0], f[1]) for f in found]) if self._negation is not None else None
        lex = self.lexicon
        out = []
        for k, (a, b, idx, key, score, kind, alternatives) in enumerate(found):
            neg, unc, hist, cue = flags[k] if flags is not None else (False, False, False, "")
            out.append(Mention(start=a, end=b, text=text[a:b], concept_id=lex.concept_ids[idx], name=lex.names[idx],
                               matched=lex.display(key), score=score, kind=kind,
                               alternatives=alternatives, negated=neg, uncertain=unc, historical=hist,
                               negation_cue=cue))
        return out

    def link_batch(self, texts: Sequence[str], show_progress: bool = False) -> list[list[Mention]]:
        """:meth:`link` over many texts."""
        from tqdm.auto import tqdm

        return [self.link(t) for t in tqdm(texts, desc="linking", disable=not show_progress, leave=False)]

    def __call__(self, text: str) -> list[Mention]:
        return self.link(text)

    def _pick(self, candidates: list[int]) -> tuple[int, tuple[str, ...]] | None:
        if not self.config.link_deprecated and self._deprecated:
            candidates = [c for c in candidates if c not in self._deprecated]
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0], ()
        ids = self.lexicon.concept_ids
        return candidates[0], tuple(ids[c] for c in candidates[1:_MAX_ALTERNATIVES + 1])

    def _derive(self, token: str) -> str | None:
        """A noun form of an adjective/participle that the lexicon knows, or None (cached per token)."""
        hit = self._derived.get(token, False)
        if hit is not False:
            return hit
        found = None
        for suffix, replacement in _DERIVATIONS:
            if token.endswith(suffix) and len(token) - len(suffix) >= 3:
                candidate = token[: len(token) - len(suffix)] + replacement
                if self.lexicon.starts_term(candidate):  # it must start a term on its own
                    found = candidate
                    break
        if len(self._derived) < 200_000:
            self._derived[token] = found
        return found

    def _spell_index(self) -> SpellIndex:
        if self._spell is None:  # built lazily: plenty of texts never need it
            cfg = self.config
            self._spell = SpellIndex(self.lexicon.vocabulary, cfg.fuzzy_threshold, cfg.fuzzy_min_chars,
                                      cfg.fuzzy_max_edits)
        return self._spell

    def _match(self, text: str) -> list[tuple[int, int, int, str, float, str, tuple[str, ...]]]:
        """``(start, end, concept index, lexicon key, score, kind, alternatives)`` of each match."""
        lex, cfg = self.lexicon, self.config
        tokens = tokenize(text)
        if not tokens:
            return []
        norm = [normalize_token(raw) for _, _, raw in tokens]

        def joins(j: int) -> bool:  # may tokens j-1 and j belong to one term? (no sentence break, comma, bracket)
            gap = text[tokens[j - 1][1]:tokens[j][0]]
            return gap == " " or bool(_GAP_OK.fullmatch(gap))

        # fixes[i]: a fallback spelling for token i, with its score: a derivational variant that is in the lexicon
        # ("atherosclerotic" -> "atherosclerosis") or a spelling correction of a token that is not ("pnuemothorax").
        fixes: dict[int, tuple[str, float, str]] = {}
        vocab = lex.vocabulary
        for i, tok in enumerate(norm):
            if len(tok) < 5 or not tok.isalpha() or tok in STOP_WORDS or tokens[i][2].lower() in CUE_WORDS:
                continue
            variant = self._derive(tok)
            if variant is not None:
                fixes[i] = (variant, _DERIVED_SCORE, "morphology")
            elif cfg.fuzzy and tok not in vocab and len(tok) >= cfg.fuzzy_min_chars and not tokens[i][2].isupper():
                fix = self._spell_index().correct(tok)
                if fix is not None:
                    fixes[i] = (fix[0], fix[1], "fuzzy")

        nodes = lex.nodes

        def walk(i: int, prefer_fix: bool) -> tuple[int, float, str, str] | None:
            # path: the keys' tokens taken so far, joined by spaces (a node of the implicit token trie). At each
            # token the exact form is tried before its fix (after it when prefer_fix).
            path, j, score, kind, found = "", i, 1.0, "exact", None
            while j < n:
                head, fix = (path + " " if path else ""), (fixes.get(j) if fixes else None)
                if fix is not None and prefer_fix:
                    nxt, value, how = head + fix[0], fix[1], fix[2]
                    flags = nodes.get(nxt, 0)
                    if not flags:
                        nxt, value, how = head + norm[j], 1.0, "exact"
                        flags = nodes.get(nxt, 0)
                else:
                    nxt, value, how = head + norm[j], 1.0, "exact"
                    flags = nodes.get(nxt, 0)
                    if not flags and fix is not None:
                        nxt, value, how = head + fix[0], fix[1], fix[2]
                        flags = nodes.get(nxt, 0)
                if not flags:
                    break
                path, score = nxt, min(score, value)
                kind = how if how != "exact" else kind
                j += 1
                if flags & IS_TERM:
                    found = (j, score, kind, path)
                if j >= n or not flags & HAS_LONGER or not joins(j):
                    break
            return found

        out: list[tuple[int, int, int, str, float, str, tuple[str, ...]]] = []
        bag_tokens = lex.bag_tokens
        i, n = 0, len(tokens)
        while i < n:
            if i and norm[i - 1] in NEGATING_PREFIXES and joins(i):  # "non-enhancing" is not "enhancing"
                i += 1
                continue
            best = None  # (end token, score, kind, key)
            if norm[i] in nodes or i in fixes:  # else no walk from i can take its first step
                best = walk(i, False)
                if best is None and fixes:
                    best = walk(i, True)
            abbr = tokens[i][2]
            if abbr in lex.abbreviations and (best is None or (best[0] == i + 1 and best[1] < 1.0)):
                best = (i + 1, 1.0, "abbreviation", abbr)
            if cfg.max_bag_tokens >= 2 and norm[i] in bag_tokens:
                content = [norm[i]]
                for j in range(i + 1, min(n, i + cfg.max_bag_tokens)):
                    if not joins(j):
                        break
                    if norm[j] in BAG_SKIP:
                        continue
                    if norm[j] not in bag_tokens:
                        break
                    content.append(norm[j])
                    if best is not None and best[0] >= j + 1:
                        continue
                    key = lex.bags.get(" ".join(sorted(content)))
                    if key is not None and key.split(" ") != norm[i:j + 1]:
                        best = (j + 1, 0.95, "word_order", key)
            if best is None:
                i += 1
                continue
            end, score, kind, key = best
            candidates = lex.abbreviations[key] if kind == "abbreviation" else lex.candidates(key)
            picked = self._pick(candidates)
            if picked is None:
                i += 1
                continue
            idx, alternatives = picked
            out.append((tokens[i][0], tokens[end - 1][1], idx, key, round(score, 4), kind, alternatives))
            i = end
        return out

    def concepts(self, text: str, include_uncertain: bool = True, include_historical: bool = True,
                 include_negated: bool = False) -> list[str]:
        """Distinct concept ids linked in ``text``, in text order: not negated (unless ``include_negated``), and
        optionally also not uncertain / historical."""
        keep = []
        for m in self.link(text):
            if ((m.negated and not include_negated) or (m.uncertain and not include_uncertain)
                    or (m.historical and not include_historical)):
                continue
            keep.append(m.concept_id)
        return list(dict.fromkeys(keep))

    def __repr__(self) -> str:
        return (f"ConceptLinker(concepts={len(self.lexicon.concept_ids)}, terms={len(self.lexicon)}, "
                f"fuzzy={self.config.fuzzy})")
