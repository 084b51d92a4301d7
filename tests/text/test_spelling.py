"""The linker's speller corrects typos, not other forms of a vocabulary word: a false fix turns a correct report word
into a wrong concept."""

from __future__ import annotations

from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.text.linker import ConceptLinker, LinkerConfig
from kgclip.text.spelling import SpellIndex, differ_by_inflection

VOCABULARY = ["image", "streak", "possibly", "consolidation", "complication", "inhalation", "significant",
              "hyperlucent", "identifier", "void", "reduced", "rounded", "healed", "calcified", "pneumothorax",
              "exaggerated", "round"]


def test_another_form_of_a_vocabulary_word_is_not_a_typo() -> None:
    index = SpellIndex(VOCABULARY, 0.6, 5, 2)
    for word in ("imaged", "streaky", "possible", "consolidating", "consolidative", "complicating", "inhalational",
                 "significantly", "hyperlucency", "identified"):
        assert index.correct(word) is None, word
    assert differ_by_inflection("imaged", "image") and differ_by_inflection("possible", "possibly")
    assert not differ_by_inflection("reducd", "reduced") and not differ_by_inflection("heale", "healed")


def test_typos_inside_an_ending_are_still_corrected() -> None:
    index = SpellIndex(VOCABULARY, 0.6, 5, 2)
    for typo, word in (("reducd", "reduced"), ("rounde", "rounded"), ("heale", "healed"), ("calcifie", "calcified"),
                       ("pnuemothorax", "pneumothorax"), ("exaggerater", "exaggerated"), ("rouns", "round")):
        assert index.correct(typo)[0] == word, typo


def test_a_dropped_first_letter_is_not_a_typo_of_a_short_word() -> None:
    index = SpellIndex(VOCABULARY, 0.6, 5, 2)
    assert index.correct("ovoid") is None  # "ovoid" is a word, not "void" with a stray letter in front
    assert index.correct("oround") is None and index.correct("orund")[0] == "round"  # a swap of letters 1-2 is
    # still a typo


def test_report_sentences_keep_their_meaning() -> None:
    graph = ConceptGraph.from_records([Concept("R:1", "consolidation"), Concept("R:2", "streak"),
                                       Concept("R:3", "pneumothorax"), Concept("R:4", "void")])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    assert [m.concept_id for m in linker.link("Streaky opacities without consolidating features.")] == []
    assert [m.concept_id for m in linker.link("An ovoid density.")] == []
    (m,) = linker.link("Small left pnuemothorax.")
    assert m.concept_id == "R:3" and m.kind == "fuzzy"
