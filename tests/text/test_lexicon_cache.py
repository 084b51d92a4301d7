"""The on-disk lexicon cache: cached and fresh linkers agree, edits and damage rebuild, never a stale lexicon."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import kgclip.text.linker as linker_module
from kgclip.config import kgclip_home
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.testing import tiny_graph
from kgclip.text.lexicon import Lexicon
from kgclip.text.lexicon_cache import lexicon_inputs_fingerprint, load_lexicon
from kgclip.text.linker import ConceptLinker, LinkerConfig

# Every kind of match (exact, abbreviation, word order, morphology, fuzzy, alternatives) and every context flag.
TEXTS = [
    "Lung adenocarcinoma with a small pleural effusion.",
    "No pleural effusion or pneumothorax. Possible pneumonia. History of lung cancer.",
    "Small PTX on the left; small ptx is not an abbreviation.",
    "carcinoma of the lung, effusion pleural",
    "atelectatic changes and pnuemothorax, Cardiomegally",
    "Hydrothorax. Enlarged heart. Pneumonitis vs pneumonia. Collapse of lung.",
    "PLEURAL EFFUSIONS in both lungs, the lung, cancer screening",
    "Seizure disorder, cough, encephalon, airspace consolidation.",
    "",
]


@pytest.fixture(autouse=True)
def _empty_process_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test starts without in-process lexicons, so every from_graph below goes to disk or builds.
    monkeypatch.setattr(linker_module, "_LEXICONS", OrderedDict())


def _cache_files() -> list[Path]:
    return sorted((kgclip_home() / "cache" / "linker").glob("lexicon-*.safetensors"))


def _links(linker: ConceptLinker) -> list[list[dict]]:
    return [[m.to_dict() for m in linker.link(text)] for text in TEXTS]


def _reload(graph: ConceptGraph, config: LinkerConfig | None = None) -> ConceptLinker:
    linker_module._LEXICONS.clear()
    return ConceptLinker.from_graph(graph, config)


def _assert_same_tables(a: Lexicon, b: Lexicon) -> None:
    for name in ("concept_ids", "names", "deprecated", "keys", "terms", "offsets", "indices", "nodes",
                 "abbreviations", "key_text", "bags", "bag_tokens", "vocabulary", "max_term_tokens"):
        assert getattr(a, name) == getattr(b, name), name
    assert dict(a.entries) == dict(b.entries)


def test_cached_and_fresh_linkers_link_identically() -> None:
    graph = tiny_graph()
    fresh = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    built = _reload(graph)
    assert (fresh.lexicon_source, built.lexicon_source) == ("built", "built") and len(_cache_files()) == 1
    cached = _reload(graph)
    assert cached.lexicon_source == "disk" and cached.lexicon is not built.lexicon
    _assert_same_tables(cached.lexicon, fresh.lexicon)
    expected = _links(fresh)
    assert sum(map(len, expected)) >= 20 and {m["kind"] for ms in expected for m in ms} == {
        "exact", "abbreviation", "word_order", "morphology", "fuzzy"}
    assert _links(built) == expected and _links(cached) == expected
    assert ConceptLinker.from_graph(graph).lexicon_source == "memory"


def test_settings_are_part_of_the_key() -> None:
    graph = ConceptGraph.from_records([Concept("X:1", "rib"), Concept("X:2", "rib cage"), Concept("X:3", "effusion")])
    assert [m.concept_id for m in _reload(graph).link("rib effusion")] == ["X:1", "X:3"]
    strict = _reload(graph, LinkerConfig(min_term_chars=4))
    assert strict.lexicon_source == "built" and len(_cache_files()) == 2
    assert [m.concept_id for m in strict.link("rib effusion")] == ["X:3"]
    # settings that only change linking, not the lexicon, share the cached lexicon
    assert _reload(graph, LinkerConfig(fuzzy=False, negation=False)).lexicon_source == "disk"


def test_an_edited_graph_invalidates_the_cache() -> None:
    graph = tiny_graph()
    assert _reload(graph).link("bullae") == []
    graph.add_concept(Concept("RADLEX:RID99", "bulla"))  # a new name: a new lexicon
    linker = _reload(graph)
    assert linker.lexicon_source == "built" and [m.concept_id for m in linker.link("bullae")] == ["RADLEX:RID99"]
    # renaming, a new synonym, deprecation and a new source all change what is linked
    for edit in (Concept("RADLEX:RID99", "emphysematous bulla"),
                 Concept("RADLEX:RID99", "bulla", synonyms=("bleb",)),
                 Concept("RADLEX:RID99", "bulla", synonyms=("bleb",), deprecated=True),
                 Concept("RADLEX:RID99", "bulla", synonyms=("bleb",), deprecated=True, source="radlex")):
        graph.replace_concept(edit)
        assert _reload(graph).lexicon_source == "built"
    assert [m.concept_id for m in _reload(graph).link("a bleb")] == ["RADLEX:RID99"]
    # a relation does not change the lexicon: the cached one is reused
    graph.add_relation(Relation("RADLEX:RID99", "is_a", "RADLEX:RID5"))
    assert _reload(graph).lexicon_source == "disk"


@pytest.mark.parametrize("records", [
    [],  # every table empty: stored as JSON
    [Concept("X:1", "lung"), Concept("X:2", "effusion")],  # no multi-word term: no prefixes, no bags
    [Concept("X:1", "pleural\x00effusion", synonyms=("pleural effusion",)), Concept("X:\x002", "lung")],  # NULs
], ids=["empty", "single-words", "nul-characters"])
def test_unusual_graphs_round_trip(records: list[Concept]) -> None:
    graph = ConceptGraph.from_records(records)
    fresh = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    _reload(graph)
    cached = _reload(graph)
    assert cached.lexicon_source == "disk"
    _assert_same_tables(cached.lexicon, fresh.lexicon)
    text = "Left pleural effusion; lungs clear."
    assert cached.link(text) == fresh.link(text)


def test_inputs_fingerprint_is_unambiguous() -> None:
    def fp(*concepts: Concept) -> str:
        return lexicon_inputs_fingerprint(ConceptGraph.from_records(concepts))

    assert fp(Concept("X:1", "a\x00", synonyms=("b",))) != fp(Concept("X:1", "a", synonyms=("\x00b",)))
    assert fp(Concept("X:1", "ab", synonyms=("c",))) != fp(Concept("X:1", "a", synonyms=("bc",)))
    assert fp(Concept("X:1", "a", synonyms=("b", "c"))) != fp(Concept("X:1", "a", synonyms=("b c",)))
    assert fp(Concept("X:1", "a", synonyms=("b",)), Concept("X:2", "c")) != fp(
        Concept("X:1", "a"), Concept("X:2", "c", synonyms=("b",)))
    assert fp(Concept("X:1", "a")) == fp(Concept("X:1", "a", definition="changed", xrefs=("UMLS:C1",)))


def _damage_text(data: bytes) -> bytes:
    # Same length, still valid JSON and safetensors: without a checksum this would link "pneumothorax" wrongly.
    assert data.count(b"pneumothorax") >= 1
    return data.replace(b"pneumothorax", b"pneumothoray")


def _damage_array(data: bytes) -> bytes:
    # Point every candidate list at concept 0 (the "indices" tensor is the one holding only small integers).
    header = int.from_bytes(data[:8], "little")
    body = bytearray(data)
    info = json.loads(data[8:8 + header])["indices"]
    start, end = (8 + header + offset for offset in info["data_offsets"])
    body[start:end] = np.zeros((end - start) // 4, dtype=np.int32).tobytes()
    return bytes(body)


@pytest.mark.parametrize("damage", [
    lambda data: b"",
    lambda data: data[: len(data) // 2],
    lambda data: b"{not json" + data,
    lambda data: data[:8] + b"\xff" * 16 + data[24:],
    _damage_text,
    _damage_array,
], ids=["empty", "truncated", "garbage", "bad-header", "edited-string", "edited-array"])
def test_a_damaged_cache_is_rebuilt(damage) -> None:
    graph = tiny_graph()
    expected = _links(ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False)))
    _reload(graph)
    (path,) = _cache_files()
    path.write_bytes(damage(path.read_bytes()))
    rebuilt = _reload(graph)
    assert rebuilt.lexicon_source == "built" and _links(rebuilt) == expected
    assert _reload(graph).lexicon_source == "disk"  # the rebuild rewrote a good file


def test_a_cache_for_other_inputs_is_refused(tmp_path: Path) -> None:
    graph = tiny_graph()
    _reload(graph)
    (path,) = _cache_files()
    # a file renamed onto another key (or a key collision) is refused by the inputs stamped inside it
    assert load_lexicon(path, {"lexicon_inputs": "other", "settings": {}, "normalisation": ""}) is None
    assert load_lexicon(tmp_path / "missing.safetensors", {}) is None


def test_an_unwritable_home_still_links(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("KGCLIP_HOME", str(blocker))
    linker = ConceptLinker.from_graph(tiny_graph())
    assert linker.lexicon_source == "built"
    assert [m.concept_id for m in linker.link("Small PTX")] == ["RADLEX:RID5352"]


@pytest.mark.slow
def test_shipped_ontologies_cached_and_fresh_agree() -> None:
    store = pytest.importorskip("kgclip.ontology.store")
    if not store.shipped_ontology_dirs():
        pytest.skip("the shipped ontologies are not built in this checkout")
    graph = store.load_ontologies()
    fresh = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    _reload(graph)
    cached = _reload(graph)
    assert cached.lexicon_source == "disk"
    _assert_same_tables(cached.lexicon, fresh.lexicon)
    texts = TEXTS + [
        "Heart size is normal. No focal airspace consolidation, pleural effusion or pneumothorax.",
        "Atherosclerotic calcification of the aortic arch. Emphysematous changes. Kyphotic thoracic spine.",
        "Degenerative changes of the thoracic spine. Hiatal hernia. Right upper lobe pneumonia.",
        "Interval placement of a right IJ central venous catheter; tip in the SVC. COPD. T12 compression fracture.",
    ]
    assert [[m.to_dict() for m in cached.link(t)] for t in texts] == [[m.to_dict() for m in fresh.link(t)]
                                                                      for t in texts]
