"""A negating prefix or word in a term ("non-enhancing mass", "pneumothorax without tension") is part of its meaning:
text that lacks it must not link the term, and text that has it must not link the term without it."""

from __future__ import annotations

import pytest

from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.text.lexicon import LEXICON_FORMAT, Lexicon
from kgclip.text.linker import ConceptLinker, LinkerConfig, Mention
from kgclip.text.spelling import SpellIndex, differ_by_negation


def _linker(*concepts: Concept) -> ConceptLinker:
    return ConceptLinker.from_graph(ConceptGraph.from_records(concepts), LinkerConfig(disk_cache=False))


def spans(mentions: list[Mention]) -> list[tuple[str, str]]:
    return [(m.text, m.concept_id) for m in mentions]


@pytest.fixture(scope="module")
def both() -> ConceptLinker:
    return _linker(Concept("R:1", "enhancing mass"), Concept("R:2", "non-enhancing mass"), Concept("R:3", "mass"),
                   Concept("R:4", "liver"))


def test_enhancing_mass_never_links_the_non_enhancing_concept(both: ConceptLinker) -> None:
    assert spans(both.link("There is an enhancing mass in the liver.")) == [("enhancing mass", "R:1"),
                                                                            ("liver", "R:4")]
    assert spans(both.link("Enhancing masses.")) == [("Enhancing masses", "R:1")]  # plurals still fold


def test_non_enhancing_mass_links_itself_in_every_spelling(both: ConceptLinker) -> None:
    for text in ("A non-enhancing mass.", "A non enhancing mass.", "Non-enhancing masses", "NON-ENHANCING MASS"):
        (m,) = both.link(text)
        assert m.concept_id == "R:2" and m.kind == "exact" and not m.negated, text


def test_no_enhancing_mass_is_the_enhancing_concept_negated(both: ConceptLinker) -> None:
    (m,) = both.link("No enhancing mass.")
    assert m.concept_id == "R:1" and m.negated and m.negation_cue == "no"
    (m,) = both.link("No non-enhancing mass.")
    assert m.concept_id == "R:2" and m.negated


def test_only_the_term_without_the_prefix_known() -> None:
    # "non-enhancing mass" in text, only "enhancing mass" in the graph: it is a mass, not an enhancing one.
    linker = _linker(Concept("R:1", "enhancing mass"), Concept("R:3", "mass"), Concept("R:5", "united fracture"),
                     Concept("R:6", "fracture"))
    assert spans(linker.link("A non-enhancing mass.")) == [("mass", "R:3")]
    assert spans(linker.link("A non enhancing mass.")) == [("mass", "R:3")]
    assert spans(linker.link("An un-united fracture.")) == [("fracture", "R:6")]
    assert spans(linker.link("A united fracture.")) == [("united fracture", "R:5")]


def test_only_the_term_with_the_prefix_known() -> None:
    # The bug: the word-order bag of "non-enhancing mass" dropped "non" (a stop word) and matched "enhancing mass".
    linker = _linker(Concept("R:2", "non-enhancing mass"), Concept("R:3", "mass"))
    assert spans(linker.link("There is an enhancing mass.")) == [("mass", "R:3")]
    assert spans(linker.link("mass enhancing")) == [("mass", "R:3")]
    assert spans(linker.link("non-enhancing mass")) == [("non-enhancing mass", "R:2")]


def test_word_order_never_drops_a_word_the_window_cannot_skip() -> None:
    linker = _linker(Concept("D:1", "pneumothorax without tension"), Concept("D:2", "pneumothorax"),
                     Concept("D:3", "carcinoma of lung"), Concept("D:4", "hodgkin lymphoma"),
                     Concept("D:5", "non-hodgkin lymphoma"))
    assert spans(linker.link("tension pneumothorax")) == [("pneumothorax", "D:2")]
    (m,) = linker.link("lung carcinoma")  # legitimate word-order variants still link
    assert m.concept_id == "D:3" and m.kind == "word_order"
    (m,) = linker.link("lymphoma hodgkin")
    assert m.concept_id == "D:4" and m.kind == "word_order"
    (m,) = linker.link("Non-Hodgkin lymphoma")
    assert m.concept_id == "D:5" and m.kind == "exact"


def test_lexicon_bags_keep_negating_words() -> None:
    lex = Lexicon.build([("R:2", "non-enhancing mass", (), "radlex", False),
                         ("D:1", "pneumothorax without tension", (), "doid", False),
                         ("D:3", "carcinoma of the lung", (), "doid", False)])
    assert "enhancing mass" not in lex.bags and "pneumothorax tension" not in lex.bags
    assert lex.bags["carcinoma lung"] == "carcinoma of the lung"
    assert LEXICON_FORMAT >= 3  # bags changed meaning: lexicons cached in format 2 are rebuilt


def test_spelling_never_adds_or_removes_a_negating_prefix() -> None:
    assert differ_by_negation("atypical", "typical") and differ_by_negation("symmetric", "asymmetric")
    assert differ_by_negation("nonspecific", "specific") and differ_by_negation("incompetence", "competence")
    assert not differ_by_negation("pnuemothorax", "pneumothorax") and not differ_by_negation("x", "x")
    index = SpellIndex(["typical", "asymmetric", "incompetence", "pneumothorax"], 0.6, 5, 2)
    assert index.correct("atypical") is None and index.correct("symmetric") is None
    assert index.correct("competence") is None
    assert index.correct("pnuemothorax")[0] == "pneumothorax"  # ordinary typos are still corrected
    linker = _linker(Concept("D:1", "typical pneumonia"), Concept("D:2", "pneumonia"))
    assert spans(linker.link("atypical pneumonia")) == [("pneumonia", "D:2")]
    (m,) = linker.link("typical pneumoniia")
    assert m.concept_id == "D:1" and m.kind == "fuzzy"


def test_single_edit_typos_are_corrected_through_symmetric_deletes() -> None:
    index = SpellIndex(["lesion", "effusion", "hypovolemia", "hypokalemia", "pneumothorax", "horse", "nodule"],
                       0.6, 5, 2)
    assert index.correct("lesoin")[0] == "lesion"  # transposition in a 6-letter word
    assert index.correct("efusion")[0] == "effusion"  # deletion
    assert index.correct("nodulle")[0] == "nodule"  # insertion
    assert index.correct("lesiun")[0] == "lesion"  # one substitution: Dice alone rejected this
    assert index.correct("pnemuothoraks") is None  # three edits: too far even for a long word
    assert index.correct("pneumathorox")[0] == "pneumothorax"  # two edits in a 12-letter word
    assert index.correct("hypovolemiq")[0] == "hypovolemia"  # not its two-substitution neighbour hypokalemia
    assert index.correct("worse") is None  # a short word keeps its first letter
    assert index.correct("lesi") is None  # under fuzzy_min_chars
