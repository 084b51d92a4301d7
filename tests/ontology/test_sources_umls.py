"""The UMLS RRF reader on releases written in the exact RRF format by ``kgclip.testing.rrf``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import kgclip.testing
from kgclip.errors import InputFormatError
from kgclip.ontology.model import Concept, Relation
from kgclip.ontology.sources import SourceWarning, load_graph, read_records
from kgclip.ontology.sources.umls_rrf import DEFAULT_COLUMNS, read_mrfiles
from kgclip.testing.rrf import SAMPLE_RELEASE, generate_release, rrf_line, write_release

FIXTURES = Path(kgclip.testing.__file__).parent / "fixtures"


def test_shipped_fixture_is_what_the_writer_writes(tmp_path: Path) -> None:
    write_release(tmp_path, **SAMPLE_RELEASE)
    for name in ("MRCONSO.RRF", "MRREL.RRF", "MRSTY.RRF", "MRDEF.RRF", "MRFILES.RRF"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / "umls_sample" / name).read_bytes(), name


def test_rrf_format() -> None:
    assert rrf_line(["C0000001", "ENG", ""]) == "C0000001|ENG||\n"
    with pytest.raises(ValueError):
        rrf_line(["a|b"])
    line = (FIXTURES / "umls_sample" / "MRCONSO.RRF").read_text(encoding="utf-8").splitlines()[0]
    assert line.endswith("|") and len(line.split("|")) == len(DEFAULT_COLUMNS["MRCONSO.RRF"]) + 1
    assert read_mrfiles(FIXTURES / "umls_sample")["MRREL.RRF"] == DEFAULT_COLUMNS["MRREL.RRF"]


def test_concepts_names_types_definitions() -> None:
    g = load_graph("umls-rrf", FIXTURES / "umls_sample")
    assert sorted(g.ids) == ["UMLS:C0024109", "UMLS:C0024115", "UMLS:C0032227", "UMLS:C0032285"]  # ENG only
    pneumonia = g.concept("UMLS:C0032285")
    assert pneumonia.name == "Pneumonia"  # TS=P, STT=PF, ISPREF=Y wins over the row listed first
    assert pneumonia.synonyms == ("Pneumonitis",)  # the suppressed (SUPPRESS=E) name is dropped
    assert pneumonia.semantic_types == ("T047",)
    assert pneumonia.definition == "Inflammation of any part of the lung."  # first definition
    assert g.concept("UMLS:C0024109").name == "Lung"  # the French name is filtered by LAT
    assert g.concept("UMLS:C0024109").semantic_types == ("T023",)


def test_relation_directions() -> None:
    g = load_graph("umls-rrf", FIXTURES / "umls_sample")
    # PAR (C0024115 is a parent of C0032285) and the mirrored CHD row give one is_a edge.
    assert g.parents("UMLS:C0032285") == ["UMLS:C0024115"]
    # CHD with RELA isa: CUI2 isa CUI1; RB: CUI2 is broader than CUI1.
    assert g.parents("UMLS:C0032227") == ["UMLS:C0024115"]
    # RELA wins: lung diseases has_finding_site lung (RELA is what CUI2 is to CUI1).
    assert g.parents("UMLS:C0024115", "has_finding_site") == ["UMLS:C0024109"]
    assert "sib" not in " ".join(g.relation_types)  # sibling rows are skipped
    assert not g.dangling  # the relation to the filtered-out French-only CUI is dropped
    assert g.num_relations == 3


def test_filters() -> None:
    everything = load_graph("umls-rrf", FIXTURES / "umls_sample", languages=None, exclude_suppressed=False)
    assert "UMLS:C9999999" in everything
    assert "Pneumonia NOS" in everything.concept("UMLS:C0032285").synonyms
    assert everything.parents("UMLS:C0024109", "is_a") == []  # RN: CUI2 (C9999999) is narrower than C0024109
    assert everything.parents("UMLS:C9999999") == ["UMLS:C0024109"]
    snomed = load_graph("umls-rrf", FIXTURES / "umls_sample", sabs={"SNOMEDCT_US"})
    assert snomed.concept("UMLS:C0032285").name == "Pneumonitis"  # best name left after the SAB filter
    assert "UMLS:C0024109" not in snomed
    mh = load_graph("umls-rrf", FIXTURES / "umls_sample", ttys={"MH"})
    assert all(not c.synonyms for c in mh.concepts())
    plain = load_graph("umls-rrf", FIXTURES / "umls_sample", use_rela=False)
    assert sorted(plain.relation_types) == ["is_a", "related_to"]  # RO without its RELA
    no_rel = load_graph("umls-rrf", FIXTURES / "umls_sample", relations=False)
    assert no_rel.num_relations == 0


def test_mrfiles_column_order_is_honoured(tmp_path: Path) -> None:
    """A release whose MRFILES lists MRSTY columns in another order is read by name, not position."""
    write_release(tmp_path, **SAMPLE_RELEASE)
    order = ("TUI", "CUI", "STN", "STY", "ATUI", "CVF")
    rows = (tmp_path / "MRSTY.RRF").read_text(encoding="utf-8").splitlines()
    swapped = ["|".join([r.split("|")[1], r.split("|")[0]] + r.split("|")[2:]) for r in rows]
    (tmp_path / "MRSTY.RRF").write_text("\n".join(swapped) + "\n", encoding="utf-8")
    mrfiles = (tmp_path / "MRFILES.RRF").read_text(encoding="utf-8")
    (tmp_path / "MRFILES.RRF").write_text(mrfiles.replace("CUI,TUI,STN,STY,ATUI,CVF", ",".join(order)),
                                          encoding="utf-8")
    g = load_graph("umls-rrf", tmp_path)
    assert g.concept("UMLS:C0032285").semantic_types == ("T047",)


def test_without_mrfiles_uses_documented_columns(tmp_path: Path) -> None:
    write_release(tmp_path, mrfiles=False, **SAMPLE_RELEASE)
    assert not (tmp_path / "MRFILES.RRF").exists()
    assert len(load_graph("umls-rrf", tmp_path)) == 4


def test_wrong_field_count_raise_and_skip(tmp_path: Path) -> None:
    write_release(tmp_path, **SAMPLE_RELEASE)
    with open(tmp_path / "MRREL.RRF", "a", encoding="utf-8") as handle:
        handle.write("C0032285|A1|SCUI|PAR|C0024109|\n")  # a truncated row: line 8
    with pytest.raises(InputFormatError, match="expected 16 fields") as info:
        list(read_records("umls-rrf", tmp_path))
    assert info.value.line == 8 and "MRREL.RRF:8" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = list(read_records("umls-rrf", tmp_path, on_error="skip"))
    messages = [str(w.message) for w in caught if issubclass(w.category, SourceWarning)]
    assert len(messages) == 1 and "MRREL.RRF:8" in messages[0]
    assert sum(isinstance(r, Relation) for r in records) == 5  # PAR, CHD, isa, RB (3 distinct edges) + finding site


def test_non_utf8_row(tmp_path: Path) -> None:
    write_release(tmp_path, **SAMPLE_RELEASE)
    path = tmp_path / "MRCONSO.RRF"
    path.write_bytes(path.read_bytes().replace(b"Hydrothorax", b"Hydroth\xf6rax"))
    with pytest.raises(InputFormatError, match="not valid UTF-8") as info:
        list(read_records("umls-rrf", tmp_path))
    assert info.value.line == 9
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        g = load_graph("umls-rrf", tmp_path, on_error="skip")
    assert g.concept("UMLS:C0032227").synonyms == ()


def test_streams_without_reading_whole_files(tmp_path: Path) -> None:
    """A generated release is consumed lazily: the first concept comes out before MRREL is opened."""
    counts = generate_release(tmp_path, concepts=2_000, names_per_concept=3, relations_per_concept=6)
    assert counts["MRCONSO.RRF"] == 6_000 and counts["MRREL.RRF"] == (2_000 - 1) * 6
    records = read_records("umls-rrf", tmp_path)
    first = next(records)
    assert isinstance(first, Concept) and first.id == "UMLS:C0000001" and first.name == "concept 1 name 0"
    g = load_graph("umls-rrf", tmp_path)
    assert len(g) == 2_000 and g.validate().ok
    assert set(g.relation_types) == {"is_a", "has_finding_site", "finding_site_of"}
    assert all(int(t.split("C")[1]) < int(s.split("C")[1]) for s, t in
               ((r.source, r.target) for r in g.relations(relation_type="is_a")))


def test_mrfiles_without_a_needed_column_is_a_clear_error(tmp_path: Path) -> None:
    import shutil

    release = tmp_path / "META"
    shutil.copytree(Path(__file__).resolve().parents[2] / "kgclip" / "testing" / "fixtures" / "umls_sample", release)
    text = (release / "MRFILES.RRF").read_text(encoding="utf-8")
    (release / "MRFILES.RRF").write_text(text + "MRSTY.RRF|Semantic types|CUI,STY|2|1|10|\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="MRSTY.RRF has no column.*TUI"):
        list(read_records("umls-rrf", release))
