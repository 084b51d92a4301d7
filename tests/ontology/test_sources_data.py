"""Readers on the real ontology files under ``../shared/data`` (skipped when it is absent)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kgclip.ontology.sources import detect_format, load_graph

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def onto(shared_data: Path) -> Path:
    return shared_data / "ontologies"


def test_radlex_csv_counts(onto: Path) -> None:
    g = load_graph("radlex-csv", onto / "radlex" / "Radlex.csv")
    assert len(g) == 45_468 + 1  # every row, plus the RID1 root the rows point to
    assert g.concept("RADLEX:RID1").name == "RadLex entity"
    assert g.concept("RADLEX:RID10312").name == "magnetic resonance imaging"
    assert g.parents("RADLEX:RID10312") == ["RADLEX:RID10311"]
    assert g.concept("RADLEX:RID34209").name == "lateral occipital cortex, inferior division (Oli)"
    assert sum(c.deprecated for c in g.concepts()) == 35  # children of "Obsolete Radlex Term"
    report = g.validate()
    assert not report.is_a_cycles and not report.duplicate_ids
    # Radlex.csv names some parents that have no row of their own; they are reported, not invented.
    assert 0 < len(report.dangling) < 250


def test_do_cancer_slim_owl_and_obo_agree(onto: Path) -> None:
    owl = load_graph("owl", onto / "doid" / "subsets" / "DO_cancer_slim.owl")
    obo = load_graph("obo", onto / "doid" / "subsets" / "DO_cancer_slim.obo")
    assert len(owl) == 730 and set(owl.ids) == set(obo.ids)
    assert {c.id: c.name for c in owl.concepts()} == {c.id: c.name for c in obo.concepts()}
    is_a = lambda g: {(r.source, r.target) for r in g.relations(relation_type="is_a")}  # noqa: E731
    assert is_a(owl) == is_a(obo) and len(is_a(owl)) == 657
    assert {c.id for c in owl.concepts() if c.deprecated} == {c.id for c in obo.concepts() if c.deprecated}
    assert {c.id: set(c.synonyms) for c in owl.concepts()} == {c.id: set(c.synonyms) for c in obo.concepts()}
    angiosarcoma = owl.concept("DOID:0001816")
    assert angiosarcoma.name == "angiosarcoma" and angiosarcoma.synonyms == ("hemangiosarcoma",)
    assert {"UMLS:C0018923", "UMLS:C0854893", "MESH:D006394"} <= set(angiosarcoma.xrefs)
    assert angiosarcoma.definition.startswith("A vascular cancer")
    assert owl.parents("DOID:0001816") == ["DOID:162"]


def test_do_owl_matches_rdflib_extraction(onto: Path, repo_root: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_ontology_ingest",
                                                  repo_root / "benchmarks" / "bench_ontology_ingest.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = onto / "doid" / "subsets" / "DO_cancer_slim.owl"
    fast, reference = bench.kgclip_extract("owl", path), bench.rdflib_extract(path, "owl")
    assert fast == reference and len(fast[0]) == 730


@pytest.mark.parametrize("name", ["hp_import.owl", "symp_import.owl", "uberon_import.owl"])
def test_do_imports(onto: Path, name: str) -> None:
    g = load_graph("owl", onto / "doid" / "imports" / name)
    assert len(g) > 400 and g.num_relations > 400
    prefix = name.split("_")[0].upper()
    assert sum(cid.startswith(prefix + ":") for cid in g.ids) > 0.9 * len(g)
    assert not g.validate().is_a_cycles


def test_do_obsolete_classes(onto: Path) -> None:
    path = onto / "doid" / "subsets" / "gram-negative_bacterial_infectious_disease"
    owl, obo = load_graph("owl", path.with_suffix(".owl")), load_graph("obo", path.with_suffix(".obo"))
    deprecated = {c.id for c in owl.concepts() if c.deprecated}
    assert len(deprecated) > 100 and deprecated == {c.id for c in obo.concepts() if c.deprecated}
    assert owl.concept("DOID:0050024").name == "obsolete Ehrlichia ewingii ehrlichiosis"


def test_do_tsvs(onto: Path) -> None:
    g = load_graph("doid-tsv", onto / "doid")
    assert detect_format(onto / "doid") == "doid-tsv"
    assert len([c for c in g.ids if c.startswith("DOID:")]) >= 12_000
    assert g.concept("DOID:4").name == "disease"
    assert "DOID:7" in g and g.parents("DOID:7") == ["DOID:4"]
    assert sorted(g.parents("DOID:13241")) == ["DOID:417", "DOID:865"]  # two parent rows, by label
    symptoms = g.relations(relation_type="has_symptom")
    assert len(symptoms) > 2_000 and all(r.target.startswith("SYMP:") for r in symptoms)
    assert g.concept("SYMP:0000614").name  # the symptom concept is named
    xrefs = [x for c in g.concepts() for x in c.xrefs]
    assert sum(x.startswith("UMLS:") for x in xrefs) > 5_000 and not any(x.startswith("UMLS_CUI") for x in xrefs)
    report = g.validate()
    assert report.ok, report.summary()


def test_slake_kg(onto: Path) -> None:
    g = load_graph("slake-kg", onto / "slake-kg")
    assert len(g) > 1_000
    lung = g.concept("SLAKE:lung")
    assert lung.name == "Lung"
    assert "SLAKE:lung_cancer" in g and g.concept("SLAKE:lung_cancer").definition
    assert "SLAKE:lung" in g.parents("SLAKE:alveolar_proteinosis", "located_in")
    assert "SLAKE:cyanosis" in g.parents("SLAKE:alveolar_proteinosis", "has_symptom")
    assert g.parents("SLAKE:skeleton", "part_of") == ["SLAKE:motor_system"]
    assert g.validate().ok
