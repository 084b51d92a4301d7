"""Lexical alignment (names, synonyms, xrefs), name-based parents, and the suggestions file."""

from __future__ import annotations

import pytest

from kgclip.errors import ConfigError, InputFormatError, StaleArtifactError
from kgclip.ontology.align import AlignConfig, align, name_parents, normalize_words
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.suggestions import Suggestion, check_fresh, read_suggestions, write_suggestions
from kgclip.testing import tiny_graph


def do_like() -> ConceptGraph:
    return ConceptGraph.from_records([
        Concept("DOID:4", "disease"),
        Concept("DOID:9675", "pulmonary emphysema", synonyms=("emphysema",), xrefs=("UMLS:C0034067",)),
        Concept("DOID:3905", "hydrothorax disease", synonyms=("pleural effusions",)),
        Concept("DOID:1324", "lung cancer", xrefs=("UMLS:C0242379",)),
        Concept("DOID:99", "pneumothorax", deprecated=True),
        Relation("DOID:9675", "is_a", "DOID:4"), Relation("DOID:1324", "is_a", "DOID:4"),
    ], name="do")


def test_normalize_words_folds_case_plural_and_function_words() -> None:
    assert normalize_words("Effusions of the Pleura") == ("effusion", "pleura")
    assert normalize_words("arteries") == ("artery",)
    assert normalize_words("pneumothorax, NOS") == ("pneumothorax",)


def test_align_finds_synonym_and_name_matches_but_not_deprecated_ones() -> None:
    found = align(tiny_graph(), do_like(), AlignConfig(use_xrefs=False))
    pairs = {(s.source, s.target): s for s in found}
    assert ("RADLEX:RID4872", "DOID:3905") in pairs  # "pleural effusion" = synonym "pleural effusions"
    assert pairs[("RADLEX:RID4872", "DOID:3905")].method == "synonym"
    assert pairs[("RADLEX:RID4872", "DOID:3905")].score == pytest.approx(0.95)
    assert ("DOID:1324", "DOID:1324") not in pairs
    assert not any(s.target == "DOID:99" for s in found)  # deprecated concepts are never suggested
    assert all(s.kind == "same_as" and s.score >= 0.6 for s in found)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)


def test_align_word_overlap_ranks_rare_shared_words_high() -> None:
    a = ConceptGraph.from_records([Concept("RADLEX:RID1", "emphysema"), Concept("RADLEX:RID2", "lung")])
    b = ConceptGraph.from_records([Concept("DOID:9675", "pulmonary emphysema")])
    (s,) = align(a, b, AlignConfig(min_score=0.3))
    assert (s.source, s.target) == ("RADLEX:RID1", "DOID:9675")
    assert 0.3 < s.score < 0.9 and "word overlap" in s.why


def test_xrefs_are_evidence_only_when_enabled() -> None:
    a = ConceptGraph.from_records([Concept("X:1", "lung tumour", xrefs=("UMLS:C0242379",))])
    with_x = align(a, do_like(), AlignConfig(use_xrefs=True))
    assert [(s.source, s.target, s.method) for s in with_x] == [("X:1", "DOID:1324", "xref")]
    assert all(s.method != "xref" for s in align(a, do_like(), AlignConfig(use_xrefs=False)))


def test_pairs_already_linked_are_not_suggested() -> None:
    g = tiny_graph()  # DOID:552 pneumonia already has same_as UMLS:C0032285 Pneumonia
    assert all({s.source, s.target} != {"DOID:552", "UMLS:C0032285"} for s in align(g, g))


def test_mutual_best_keeps_one_partner() -> None:
    a = ConceptGraph.from_records([Concept("A:1", "renal cyst")])
    b = ConceptGraph.from_records([Concept("B:1", "renal cyst"), Concept("B:2", "renal cyst disease")])
    assert [s.target for s in align(a, b, AlignConfig(min_score=0.3))] == ["B:1"]
    assert len(align(a, b, AlignConfig(min_score=0.3, mutual_best=False))) == 2


def test_align_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        AlignConfig(min_score=0)


def test_name_parents_prefers_the_head_of_the_name() -> None:
    g = tiny_graph()
    g.add_concept(Concept("DOID:3907", "squamous cell lung cancer"))
    top = name_parents(g, "DOID:3907", k=3)
    assert top[0].target == "DOID:1324" and top[0].kind == "is_a" and top[0].method == "head_noun"


def test_suggestions_file_round_trip_and_staleness(tmp_path) -> None:
    items = [Suggestion("same_as", "A:1", "B:1", 0.9, "name"), Suggestion("is_a", "A:2", "A:1", 0.5, "head_noun")]
    written = write_suggestions(tmp_path, items, {"self": "abc"}, kind="mixed")
    back = read_suggestions(tmp_path)
    assert [s.n for s in back.suggestions] == [1, 2] and back.suggestions == written.suggestions
    assert back.header["kind"] == "mixed"
    check_fresh(back, {"self": "abc"})
    with pytest.raises(StaleArtifactError, match="changed since"):
        check_fresh(back, {"self": "def"})
    with pytest.raises(InputFormatError, match="no suggestion #7"):
        back.get(7)
    (tmp_path / "suggestions.jsonl").write_text('{"type": "header", "graphs": {}}\nnot json\n')
    with pytest.raises(InputFormatError, match=r"jsonl:2"):
        read_suggestions(tmp_path)
    with pytest.raises(InputFormatError, match="kgclip ontology suggest"):
        read_suggestions(tmp_path / "elsewhere")
