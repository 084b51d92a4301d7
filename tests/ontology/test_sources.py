"""Readers on the shipped fixtures: what each yields, the registry, format detection and the conformance suite."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import kgclip.testing
from kgclip.errors import InputFormatError, ResolutionError
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology.sources import FORMATS, READERS, SourceWarning, detect_format, load_graph, read_records

FIXTURES = Path(kgclip.testing.__file__).parent / "fixtures"


def sig(graph: ConceptGraph) -> tuple[dict, list]:
    concepts = {c.id: (c.name, tuple(sorted(c.synonyms)), c.definition, c.deprecated, tuple(sorted(c.xrefs)))
                for c in graph.concepts()}
    return concepts, sorted((r.source, r.type, r.target) for r in graph.relations())


# ----------------------------------------------------------------------------------------- registry
def test_registry_lists_every_format() -> None:
    assert list(READERS) == list(FORMATS) == sorted(FORMATS)
    assert {"radlex-csv", "radlex-owl", "owl", "obo", "doid-tsv", "umls-rrf", "slake-kg"} == set(FORMATS)
    with pytest.raises(ResolutionError, match=r"among choices \{doid-tsv, obo, owl, radlex-csv"):
        read_records("owl2", FIXTURES / "tiny_ontology.owl")


def test_reader_aliases_resolve_through_the_registry() -> None:
    assert READERS.canonical("UMLS") == "umls-rrf" and READERS.resolve("rrf") is READERS.resolve("umls-rrf")
    assert READERS.canonical("Turtle") == "owl" and READERS.canonical("slake") == "slake-kg"
    assert "doid" in READERS and "doid2" not in READERS
    assert set(READERS.aliases().values()) <= set(FORMATS)
    via_alias = load_graph("rdf-xml", FIXTURES / "tiny_ontology.owl")
    assert via_alias.fingerprint() == load_graph("owl", FIXTURES / "tiny_ontology.owl").fingerprint()


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(InputFormatError, match="does not accept"):
        read_records("obo", FIXTURES / "tiny_ontology.obo", sabs={"MSH"})


@pytest.mark.parametrize("name, fmt", [
    ("radlex_sample.csv", "radlex-csv"), ("radlex_sample.owl", "radlex-owl"), ("radlex_sample_v3.owl", "radlex-owl"),
    ("tiny_ontology.owl", "owl"), ("tiny_ontology.ttl", "owl"), ("tiny_ontology.obo", "obo"),
    ("doid_sample", "doid-tsv"), ("doid_sample/HumanDO.tsv", "doid-tsv"), ("slake_sample", "slake-kg"),
    ("umls_sample", "umls-rrf"), ("umls_sample/MRCONSO.RRF", "umls-rrf"),
])
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(FIXTURES / name) == fmt


# ----------------------------------------------------------------------------------------- RadLex
def test_radlex_csv_fixture() -> None:
    g = load_graph("radlex-csv", FIXTURES / "radlex_sample.csv")
    assert g.concept("RADLEX:RID1363").name == "pleura, visceral"  # quoted term with a comma
    assert g.parents("RADLEX:RID1301") == ["RADLEX:RID3"]
    assert g.parents("RADLEX:RID1") == []  # RID0 is "no parent"
    assert g.concept("RADLEX:RID1144").deprecated  # child of "Obsolete Radlex Term"
    assert not g.concept("RADLEX:RID1301").deprecated
    assert g.validate().ok


def test_radlex_owl_fixture_current_shape() -> None:
    g = load_graph("radlex-owl", FIXTURES / "radlex_sample.owl")
    lung = g.concept("RADLEX:RID1301")
    assert lung.name == "lung" and set(lung.synonyms) == {"lungs", "pulmo"}
    assert lung.definition == "Organ of respiration." and lung.xrefs == ("UMLS:C0024109",)
    # Part_Of as a restriction, as a direct assertion, Has_Part and Branch_Of stay separate typed relations.
    assert g.parents("RADLEX:RID1301", "part_of") == ["RADLEX:RID1243"]
    assert g.parents("RADLEX:RID1302", "part_of") == ["RADLEX:RID1243"]
    assert g.parents("RADLEX:RID1243", "has_part") == ["RADLEX:RID1301"]
    assert g.parents("RADLEX:RID974", "branch_of") == ["RADLEX:RID905"]
    assert len(g.relations("RADLEX:RID974", "branch_of")) == 1  # restriction + direct assertion, kept once
    # obsolete (Preferred_Name_for_Obsolete under the obsolete class) and owl:deprecated
    assert g.concept("RADLEX:RID1144").deprecated and g.concept("RADLEX:RID1144").name == "superior thalamic vein"
    assert g.concept("RADLEX:RID28530").deprecated
    # the later rdf:Description block is merged into the owl:Class of the same RID
    pleura = g.concept("RADLEX:RID1362")
    assert pleura.name == "pleura" and pleura.synonyms == ("pleural membrane",)
    assert pleura.xrefs == ("UMLS:C0032225",) and pleura.definition.startswith("The serous membrane")
    assert g.parents("RADLEX:RID1362", "part_of") == ["RADLEX:RID1243"]
    assert g.validate().ok


def test_radlex_owl_fixture_older_shape() -> None:
    g = load_graph("radlex-owl", FIXTURES / "radlex_sample_v3.owl")
    assert sorted(g.ids) == ["RADLEX:RID3", "RADLEX:RID6434", "RADLEX:RID6435"]
    cerebrum = g.concept("RADLEX:RID6435")  # given by rdf:ID, completed by a later rdf:Description
    assert cerebrum.name == "cerebrum" and cerebrum.synonyms == ("telencephalon",)
    assert g.parents("RADLEX:RID6435") == ["RADLEX:RID6434"]
    assert g.parents("RADLEX:RID6435", "part_of") == ["RADLEX:RID6434"]  # filler as a nested named owl:Class
    assert g.concept("RADLEX:RID6434").xrefs == ("UMLS:C0006104",)


def test_radlex_umls_xrefs_become_same_as_when_umls_is_loaded() -> None:
    radlex = load_graph("radlex-owl", FIXTURES / "radlex_sample.owl")
    umls = load_graph("umls-rrf", FIXTURES / "umls_sample")
    merged = ConceptGraph.union([radlex, umls])
    assert merged.parents("RADLEX:RID1301", "same_as") == ["UMLS:C0024109"]


# ----------------------------------------------------------------------------------------- OWL / OBO
def test_owl_rdfxml_turtle_and_obo_agree() -> None:
    xml = sig(load_graph("owl", FIXTURES / "tiny_ontology.owl"))
    ttl = sig(load_graph("owl", FIXTURES / "tiny_ontology.ttl"))
    obo = sig(load_graph("obo", FIXTURES / "tiny_ontology.obo"))
    assert xml == ttl == obo


def test_owl_fixture_content() -> None:
    g = load_graph("owl", FIXTURES / "tiny_ontology.owl")
    pneumonia = g.concept("DOID:552")
    assert pneumonia.name == "pneumonia"
    assert set(pneumonia.synonyms) == {"lung inflammation", "pneumonitis"}  # narrow synonyms are not the concept
    assert pneumonia.definition == "A lung disease that involves inflammation of the lung."
    assert set(pneumonia.xrefs) == {"UMLS:C0032285", "MESH:D011014", "SNOMEDCT:233604007"}
    assert g.parents("DOID:552", "has_symptom") == ["SYMP:0000614"]  # property label
    assert g.parents("DOID:552", "has_material_basis_in") == ["DOID:0050117"]  # label declared after use
    assert g.parents("DOID:1324", "located_in") == ["UBERON:0002048"]  # RO id without a label in the file
    assert g.parents("UBERON:0002048", "part_of") == ["UBERON:0000170"]  # BFO_0000050 labelled "part of"
    assert g.concept("DOID:9999").deprecated
    assert g.concept("SYMP:0000614").synonyms == ("tussis",)  # later rdf:Description merged
    assert g.concept("TINY_ONTOLOGY:Ward").name == "hospital ward"  # non-OBO IRI: file-name namespace
    assert g.parents("TINY_ONTOLOGY:Ward") == []  # owl:Thing is not a parent
    assert not any("url:" in x for c in g.concepts() for x in c.xrefs)  # owl:Axiom annotations skipped


def test_owl_namespace_option() -> None:
    g = load_graph("owl", FIXTURES / "tiny_ontology.owl", namespace="LOCAL")
    assert "LOCAL:Ward" in g


def test_owl_matches_rdflib_extraction_on_fixtures(repo_root: Path) -> None:
    bench = _bench_module(repo_root)
    assert bench.kgclip_extract("owl", FIXTURES / "tiny_ontology.owl") == bench.rdflib_extract(
        FIXTURES / "tiny_ontology.owl", "owl")
    assert bench.kgclip_extract("radlex-owl", FIXTURES / "radlex_sample.owl") == bench.rdflib_extract(
        FIXTURES / "radlex_sample.owl", "radlex")


def _bench_module(repo_root: Path):  # noqa: ANN202
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_ontology_ingest",
                                                  repo_root / "benchmarks" / "bench_ontology_ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------- DO TSV, SLAKE
def test_doid_tsv_fixture_directory() -> None:
    g = load_graph("doid-tsv", FIXTURES / "doid_sample")
    assert g.parents("DOID:552") == ["DOID:1579"]  # parent given by label
    assert g.parents("DOID:7") == ["DOID:4"] and g.concept("DOID:4").name == "disease"
    assert set(g.concept("DOID:552").xrefs) == {"UMLS:C0032285", "MESH:D011014"}
    assert sorted(g.parents("DOID:552", "has_symptom")) == ["SYMP:0000613", "SYMP:0000614"]
    assert g.concept("SYMP:0000614").name == "cough"
    assert g.validate().ok


def test_doid_tsv_unknown_header(tmp_path: Path) -> None:
    bad = tmp_path / "other.tsv"
    bad.write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="unrecognised header"):
        list(read_records("doid-tsv", bad))


def test_slake_fixture() -> None:
    g = load_graph("slake-kg", FIXTURES / "slake_sample")
    p = g.concept("SLAKE:pneumonia")
    assert p.name == "Pneumonia" and p.definition.startswith("an inflammation") and p.synonyms == ("lung infection",)
    assert sorted(g.parents("SLAKE:pneumonia", "has_symptom")) == ["SLAKE:chest_pain", "SLAKE:cough", "SLAKE:fever"]
    assert g.parents("SLAKE:pneumonia", "located_in") == ["SLAKE:lung"]
    assert g.parents("SLAKE:lung", "part_of") == ["SLAKE:respiratory_system"]  # organ file meets disease file
    assert g.concept("SLAKE:bacteria_viruses_and_fungi").name == "bacteria#viruses and fungi"  # '#' in a value
    effusion = g.concept("SLAKE:pleural_effusion")  # chunk (quoted, two lines) used when there is no description
    assert "costophrenic angle" in effusion.definition
    assert g.validate().ok


# ----------------------------------------------------------------------------------------- conformance
CONFORMANCE = [
    ("radlex-csv", "radlex_sample.csv"), ("radlex-owl", "radlex_sample.owl"), ("radlex-owl", "radlex_sample_v3.owl"),
    ("owl", "tiny_ontology.owl"), ("owl", "tiny_ontology.ttl"), ("obo", "tiny_ontology.obo"),
    ("doid-tsv", "doid_sample"), ("umls-rrf", "umls_sample"), ("slake-kg", "slake_sample"),
]


@pytest.mark.parametrize("fmt, name", CONFORMANCE)
def test_conformance_records(fmt: str, name: str) -> None:
    """Every reader: yields only Concept/Relation, namespaced ids, is lazy and repeatable, builds a valid graph."""
    records = read_records(fmt, FIXTURES / name)
    assert iter(records) is records  # a lazy iterator, not a list
    first = list(records)
    assert first and all(isinstance(r, (Concept, Relation)) for r in first)
    assert any(isinstance(r, Concept) for r in first) and any(isinstance(r, Relation) for r in first)
    for r in first:
        ids = [r.id] if isinstance(r, Concept) else [r.source, r.target]
        for cid in ids:
            prefix, sep, local = cid.partition(":")
            assert sep and prefix and local and prefix == prefix.upper() and cid == cid.strip(), cid
        if isinstance(r, Concept):
            assert all(":" in x for x in r.xrefs)
        else:
            assert r.type and r.type == r.type.strip() and " " not in r.type
    assert list(read_records(fmt, FIXTURES / name)) == first  # deterministic
    graph = load_graph(fmt, FIXTURES / name)
    assert len(graph) > 0 and graph.validate().ok


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_conformance_on_error_is_validated(fmt: str) -> None:
    path = FIXTURES / dict((f, n) for f, n in CONFORMANCE)[fmt]
    with pytest.raises(ValueError, match="on_error"):
        list(read_records(fmt, path, on_error="ignore"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_conformance_missing_and_empty_input(fmt: str, tmp_path: Path) -> None:
    with pytest.raises(InputFormatError):
        list(read_records(fmt, tmp_path / "missing.file"))
    empty = tmp_path / {"umls-rrf": "MRCONSO.RRF", "doid-tsv": "HumanDO.tsv"}.get(fmt, "empty.txt")
    empty.write_bytes(b"")
    target = tmp_path if fmt == "umls-rrf" else empty
    with pytest.raises(InputFormatError, match="empty"):
        list(read_records(fmt, target))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(read_records(fmt, target, on_error="skip")) == []
    assert any(issubclass(w.category, SourceWarning) and "empty" in str(w.message) for w in caught)


def test_auto_format_and_undetectable(tmp_path: Path) -> None:
    assert list(read_records("auto", FIXTURES / "tiny_ontology.obo")) == list(
        read_records("obo", FIXTURES / "tiny_ontology.obo"))
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="pass the format explicitly"):
        detect_format(unknown)
    with pytest.raises(InputFormatError, match="pass the format explicitly"):
        detect_format(tmp_path)
