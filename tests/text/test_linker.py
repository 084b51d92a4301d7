from __future__ import annotations

import json
import time

import pytest

from kgclip.errors import ConfigError
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.testing import tiny_graph
from kgclip.text.lexicon import normalize_token
from kgclip.text.linker import ConceptLinker, LinkerConfig, Mention


@pytest.fixture(scope="module")
def linker() -> ConceptLinker:
    return ConceptLinker.from_graph(tiny_graph(), LinkerConfig(disk_cache=False))


def ids(mentions: list[Mention]) -> list[str]:
    return [m.concept_id for m in mentions]


def test_exact_longest_match_and_spans(linker: ConceptLinker) -> None:
    text = "Lung adenocarcinoma with a small pleural effusion."
    mentions = linker.link(text)
    assert ids(mentions) == ["DOID:3910", "RADLEX:RID4872"]  # not "lung" + nothing: the longest term wins
    for m in mentions:
        assert text[m.start:m.end] == m.text
        assert m.score == 1.0 and m.kind == "exact"


def test_case_punctuation_and_plurals(linker: ConceptLinker) -> None:
    assert ids(linker.link("PLEURAL EFFUSIONS")) == ["RADLEX:RID4872"]
    assert ids(linker.link("pleural-effusion")) == ["RADLEX:RID4872"]
    assert ids(linker.link("both lungs")) == ["RADLEX:RID1301"]
    assert normalize_token("Opacities") == "opacity" and normalize_token("vertebrae") == "vertebra"
    assert normalize_token("atelectasis") == "atelectasis" and normalize_token("masses") == "mass"


def test_a_term_never_spans_a_sentence_break_or_comma(linker: ConceptLinker) -> None:
    assert "RADLEX:RID4872" not in ids(linker.link("Thickened pleural. Effusion noted."))
    assert "DOID:1324" not in ids(linker.link("The lung, cancer screening"))


def test_synonyms_and_abbreviations_case_sensitive(linker: ConceptLinker) -> None:
    assert ids(linker.link("Hydrothorax on the left")) == ["RADLEX:RID4872"]
    (m,) = linker.link("Small PTX")
    assert m.concept_id == "RADLEX:RID5352" and m.kind == "abbreviation"
    assert linker.link("small ptx") == []  # abbreviations only in capitals


def test_word_order_variants(linker: ConceptLinker) -> None:
    (m,) = linker.link("carcinoma of the lung")
    assert m.concept_id == "DOID:1324" and m.kind == "word_order" and m.score < 1.0
    (m,) = linker.link("effusion pleural")
    assert m.concept_id == "RADLEX:RID4872"


def test_spelling_variants_through_ngrams(linker: ConceptLinker) -> None:
    (m,) = linker.link("pnuemothorax")
    assert m.concept_id == "RADLEX:RID5352" and m.kind == "fuzzy" and 0.6 <= m.score < 1.0
    (m,) = linker.link("Cardiomegally")
    assert m.concept_id == "RADLEX:RID1392"
    assert linker.link("pneumatic") == []  # far from every name: no match
    strict = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(fuzzy_threshold=0.95, disk_cache=False))
    assert strict.link("pnuemothorax") == []
    exact_only = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(fuzzy=False, disk_cache=False))
    assert exact_only.link("pnuemothorax") == []


def test_morphology(linker: ConceptLinker) -> None:
    (m,) = linker.link("atelectatic changes")
    assert m.concept_id == "RADLEX:RID1385" and m.kind == "morphology"


def test_cue_words_are_not_corrected_into_concepts() -> None:
    graph = ConceptGraph.from_records([Concept("X:1", "possibly"), Concept("X:2", "pneumonia")])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    assert ids(linker.link("possible pneumonia")) == ["X:2"]


def test_negation_flags_on_mentions(linker: ConceptLinker) -> None:
    mentions = linker.link("No pleural effusion or pneumothorax. Possible pneumonia. History of lung cancer.")
    flags = {m.concept_id: (m.negated, m.uncertain, m.historical) for m in mentions}
    assert flags == {"RADLEX:RID4872": (True, False, False), "RADLEX:RID5352": (True, False, False),
                     "DOID:552": (False, True, False), "DOID:1324": (False, False, True)}
    assert linker.concepts("No effusion. Cardiomegaly.") == ["RADLEX:RID1392"]
    off = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(negation=False, disk_cache=False))
    assert not any(m.negated for m in off.link("No pleural effusion."))


def test_shared_surface_form_prefers_current_then_preferred_then_id() -> None:
    graph = ConceptGraph.from_records([
        Concept("B:2", "effusion", deprecated=True),
        Concept("A:9", "fluid collection", synonyms=("effusion",)),
        Concept("C:1", "effusion"),
        Concept("A:1", "effusion"),
    ])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    (m,) = linker.link("effusion")
    assert m.concept_id == "A:1" and m.alternatives == ("C:1", "A:9", "B:2")
    ranked = ConceptLinker.from_graph(graph, LinkerConfig(source_priority=("x",), disk_cache=False))
    assert ranked.link("effusion")[0].concept_id == "A:1"
    only_old = ConceptGraph.from_records([Concept("B:2", "effusion", deprecated=True)])
    assert ids(ConceptLinker.from_graph(only_old, LinkerConfig(disk_cache=False)).link("effusion")) == ["B:2"]
    cfg = LinkerConfig(link_deprecated=False, disk_cache=False)
    assert ConceptLinker.from_graph(only_old, cfg).link("effusion") == []


def test_link_batch_and_determinism(linker: ConceptLinker) -> None:
    texts = ["No PTX.", "", "Cardiomegaly and lung cancer."]
    out = linker.link_batch(texts)
    assert [ids(o) for o in out] == [["RADLEX:RID5352"], [], ["RADLEX:RID1392", "DOID:1324"]]
    again = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(disk_cache=False)).link_batch(texts)
    assert out == again


def test_config_validation_and_roundtrip(tmp_path) -> None:
    with pytest.raises(ConfigError):
        LinkerConfig(fuzzy_threshold=0)
    with pytest.raises(ConfigError):
        LinkerConfig(fuzzy_min_chars=2)
    cfg = LinkerConfig(fuzzy_threshold=0.7, source_priority=("radlex", "doid"))
    cfg.save(tmp_path / "linker.json")
    assert LinkerConfig.load(tmp_path / "linker.json") == cfg


def test_mention_serialises(linker: ConceptLinker) -> None:
    (m,) = linker.link("No PTX")
    d = m.to_dict()
    assert d["concept_id"] == "RADLEX:RID5352" and d["negated"] is True
    assert json.loads(json.dumps(d)) == d
    assert "pneumothorax" in m._repr_html_()


# ------------------------------------------------------------------ bad input
def test_empty_and_whitespace(linker: ConceptLinker) -> None:
    assert linker.link("") == [] and linker.link("   \n\t ") == [] and linker.link_batch([]) == []
    assert linker.link(None) == []  # type: ignore[arg-type]


def test_very_long_text_is_bounded(linker: ConceptLinker) -> None:
    text = ("No pleural effusion. Cardiomegaly with pnuemothorax and xyzzyq. " * 1600)[:100_000]
    t0 = time.process_time()
    mentions = linker.link(text)
    elapsed = time.process_time() - t0
    assert len(mentions) > 4000 and all(text[m.start:m.end] == m.text for m in mentions)
    assert elapsed < 60  # generous: guards against quadratic blow-up, not a speed test
    capped = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(max_text_chars=1000, disk_cache=False))
    assert all(m.end <= 1000 for m in capped.link(text))


def test_non_english_and_binary_looking_text(linker: ConceptLinker) -> None:
    assert linker.link("Épanchement pleural bilatéral, 无 气胸, Пневмоторакс нет") == []
    noise = bytes(range(256)).decode("latin-1") * 40
    assert linker.link(noise) == [] or all(isinstance(m, Mention) for m in linker.link(noise))
    assert linker.link("\x00\x01\ufffd\ufffd PTX \x00") [0].concept_id == "RADLEX:RID5352"


def test_graph_without_synonyms_or_concepts() -> None:
    graph = ConceptGraph.from_records([Concept("X:1", "pleural effusion"), Concept("X:2", "lung"),
                                       Relation("X:1", "located_in", "X:2")])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    assert ids(linker.link("Left pleural effusions.")) == ["X:1"]
    empty = ConceptLinker.from_graph(ConceptGraph(), LinkerConfig(disk_cache=False))
    assert empty.link("No pleural effusion.") == []
    nameless = ConceptGraph.from_records([Concept("X:1", ""), Concept("X:2", "no"), Concept("X:3", "a")])
    assert ConceptLinker.from_graph(nameless, LinkerConfig(disk_cache=False)).link("no a effusion") == []


def test_drop_terms_filter_mentions_without_changing_the_lexicon() -> None:
    from kgclip.text.linker import QUESTION_DROP_TERMS

    plain = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(disk_cache=False))
    text = "Is the lung normal? No pleural effusion. Lung cancer."
    dropping = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(disk_cache=False, drop_terms=("LUNG",)))
    assert dropping.lexicon is plain.lexicon  # drop_terms is not part of the lexicon's cache key
    assert "RADLEX:RID1301" in ids(plain.link(text)) and "RADLEX:RID1301" not in ids(dropping.link(text))
    # "lung cancer" still wins its longest match: the dropped word does not split it
    assert "DOID:1324" in ids(dropping.link(text))
    kept = {m.concept_id: m for m in dropping.link(text)}
    assert kept["RADLEX:RID4872"].negated  # flags are those of the full link
    assert "left" in QUESTION_DROP_TERMS and "pleural effusion" not in QUESTION_DROP_TERMS


def test_concepts_can_include_negated(linker: ConceptLinker) -> None:
    text = "No pleural effusion. Cardiomegaly."
    assert linker.concepts(text) == ["RADLEX:RID1392"]
    assert linker.concepts(text, include_negated=True) == ["RADLEX:RID4872", "RADLEX:RID1392"]


def test_same_as_partners_and_shared_xrefs_lend_their_names() -> None:
    from kgclip.text.lexicon_cache import lexicon_inputs_fingerprint

    concepts = [Concept("R:1", "emphysema", source="radlex"),
                Concept("D:1", "pulmonary emphysema", ("lung emphysema",), source="doid"),
                Concept("D:2", "bronchitis obliterans", source="doid", deprecated=True, xrefs=("UMLS:C0006272",)),
                Concept("D:3", "obliterative bronchiolitis", source="doid", xrefs=("UMLS:C0006272",))]
    graph = ConceptGraph.from_records([*concepts, Relation("R:1", "same_as", "D:1")])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    # an obsolete name links to the current concept sharing its UMLS CUI (the obsolete one is an alternative)
    (m,) = linker.link("bronchitis obliterans")
    assert m.concept_id == "D:3" and "D:2" in m.alternatives
    # a concept's own name still wins over a partner's borrowed one; the partner is an alternative
    (m,) = linker.link("emphysema")
    assert m.concept_id == "R:1" and m.alternatives == ("D:1",)
    (m,) = linker.link("lung emphysema")
    assert m.concept_id == "D:1" and m.alternatives == ("R:1",)
    # the lexicon cache key follows the relations it borrows through
    plain = ConceptGraph.from_records(concepts)
    assert lexicon_inputs_fingerprint(plain) != lexicon_inputs_fingerprint(graph)


def test_latin_and_greek_plurals_reach_their_singular_terms() -> None:
    graph = ConceptGraph.from_records([Concept("X:1", "granuloma"), Concept("X:2", "pneumothorax"),
                                       Concept("X:3", "hiatal hernia"), Concept("X:4", "airway"),
                                       Concept("X:5", "pancreas"), Concept("X:6", "exophthalmos")])
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    assert ids(linker.link("The calcified granulomas are stable.")) == ["X:1"]
    assert ids(linker.link("Bilateral pneumothoraces have resolved.")) == ["X:2"]
    assert ids(linker.link("Two hiatal hernias. Central airways patent.")) == ["X:3", "X:4"]
    # singular -as / -os words still link to themselves (folded identically in the lexicon and the text)
    assert ids(linker.link("The pancreas is normal; no exophthalmos.")) == ["X:5", "X:6"]
    assert normalize_token("hemithoraces") == "hemithorax" and normalize_token("atelectasis") == "atelectasis"
