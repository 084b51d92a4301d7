"""Bad inputs under both policies: truncated / malformed XML, non-UTF-8 bytes, short rows, RRF field counts."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

import kgclip.testing
from kgclip.errors import InputFormatError
from kgclip.ontology.model import Concept
from kgclip.ontology.sources import SourceWarning, load_graph, read_records

FIXTURES = Path(kgclip.testing.__file__).parent / "fixtures"


def _skip(fmt: str, path: Path, **options):  # noqa: ANN202
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = list(read_records(fmt, path, on_error="skip", **options))
    return records, [str(w.message) for w in caught if issubclass(w.category, SourceWarning)]


# ----------------------------------------------------------------------------------------- XML
@pytest.mark.parametrize("fmt", ["owl", "radlex-owl"])
def test_truncated_xml_raises_with_line(fmt: str) -> None:
    with pytest.raises(InputFormatError) as info:
        list(read_records(fmt, FIXTURES / "truncated.owl"))
    message = str(info.value)
    assert "truncated.owl:" in message and "truncated" in message
    assert "--on-error skip" in message and 'on_error="skip"' in message
    assert info.value.line is not None and info.value.line > 40


def test_truncated_xml_skip_keeps_what_was_read() -> None:
    records, messages = _skip("owl", FIXTURES / "truncated.owl")
    assert any(isinstance(r, Concept) and r.id == "DOID:4" for r in records)  # complete elements before the cut
    assert len(messages) == 1 and "truncated.owl:" in messages[0]


def test_malformed_xml_names_line(tmp_path: Path) -> None:
    text = (FIXTURES / "tiny_ontology.owl").read_text(encoding="utf-8")
    lines = text.splitlines()
    target = next(i for i, line in enumerate(lines) if "DOID_1324" in line and "owl:Class" in line)
    lines[target + 1] = lines[target + 1].replace("/>", ">")  # an element never closed
    bad = tmp_path / "bad.owl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputFormatError, match="malformed XML") as info:
        list(read_records("owl", bad))
    assert info.value.line is not None and info.value.line >= target + 1


def test_non_utf8_byte_in_xml(tmp_path: Path) -> None:
    raw = (FIXTURES / "tiny_ontology.owl").read_bytes().replace(b"lung cancer", b"lung canc\xe9r", 1)
    bad = tmp_path / "latin1.owl"
    bad.write_bytes(raw)
    line = raw[:raw.index(b"\xe9")].count(b"\n") + 1
    with pytest.raises(InputFormatError, match="not valid UTF-8") as info:
        list(read_records("owl", bad))
    assert info.value.line == line
    _, messages = _skip("owl", bad)
    assert len(messages) == 1 and f"latin1.owl:{line}" in messages[0]


def test_not_rdfxml(tmp_path: Path) -> None:
    other = tmp_path / "other.owl"
    other.write_text("<?xml version='1.0'?><Ontology xmlns='http://www.w3.org/2002/07/owl#'/>", encoding="utf-8")
    with pytest.raises(InputFormatError, match="not rdf:RDF"):
        list(read_records("owl", other))


def test_malformed_turtle(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix owl: <http://www.w3.org/2002/07/owl#> .\n<http://x/A> a owl:Class ;;; oops\n",
                   encoding="utf-8")
    with pytest.raises(InputFormatError, match="malformed Turtle"):
        list(read_records("owl", bad))
    records, messages = _skip("owl", bad)
    assert records == [] and messages


# ----------------------------------------------------------------------------------------- line-based files
def test_radlex_csv_bad_rows_raise_with_line() -> None:
    with pytest.raises(InputFormatError, match="not valid UTF-8") as info:
        list(read_records("radlex-csv", FIXTURES / "radlex_bad.csv"))
    assert info.value.line == 3 and "radlex_bad.csv:3" in str(info.value)


def test_radlex_csv_bad_rows_skip_with_warnings() -> None:
    records, messages = _skip("radlex-csv", FIXTURES / "radlex_bad.csv")
    assert len(messages) == 2
    assert "radlex_bad.csv:3" in messages[0] and "UTF-8" in messages[0]
    assert "radlex_bad.csv:5" in messages[1] and "expected 3 fields" in messages[1]
    good = load_graph("radlex-csv", FIXTURES / "radlex_sample.csv")
    assert {r.id for r in records if isinstance(r, Concept)} == set(good.ids)


def test_obo_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.obo"
    text = (FIXTURES / "tiny_ontology.obo").read_text(encoding="utf-8")
    bad.write_text(text.replace("name: pneumonia\n", "name: pneumonia\nthis line has no tag\n"), encoding="utf-8")
    with pytest.raises(InputFormatError, match="tag: value") as info:
        list(read_records("obo", bad))
    assert info.value.line == text[:text.index("name: pneumonia")].count("\n") + 2
    records, messages = _skip("obo", bad)
    assert len(messages) == 1 and any(isinstance(r, Concept) and r.id == "DOID:552" for r in records)


def test_obo_non_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "bad.obo"
    bad.write_bytes((FIXTURES / "tiny_ontology.obo").read_bytes().replace(b"name: cough", b"name: c\xf6ugh"))
    with pytest.raises(InputFormatError, match="UTF-8"):
        list(read_records("obo", bad))
    records, messages = _skip("obo", bad)
    assert len(messages) == 1
    cough = [r for r in records if isinstance(r, Concept) and r.id == "SYMP:0000614"]
    assert cough and cough[0].name == ""  # the bad line is skipped, not the stanza


def test_doid_tsv_wrong_field_count(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "doid_sample", tmp_path / "do")
    path = tmp_path / "do" / "disease-symptom.tsv"
    path.write_text(path.read_text(encoding="utf-8") + "DOID:1324\tlung cancer\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="expected 4 tab-separated fields") as info:
        list(read_records("doid-tsv", tmp_path / "do"))
    assert info.value.line == 4
    records, messages = _skip("doid-tsv", tmp_path / "do")
    assert len(messages) == 1 and "disease-symptom.tsv:4" in messages[0]


def test_doid_tsv_unknown_parent_label(tmp_path: Path) -> None:
    bad = tmp_path / "HumanDO.tsv"
    bad.write_text('id\tlabel\tsubClassOf\n"DOID:1"\t"a"\t"no such label"\n', encoding="utf-8")
    with pytest.raises(InputFormatError, match="not a label in this file"):
        list(read_records("doid-tsv", bad))


def test_slake_unclosed_quote(tmp_path: Path) -> None:
    bad = tmp_path / "en_disease.csv"
    bad.write_text('disease#attribute#value\nA#description#"never closed\nB#location#Lung\n', encoding="utf-8")
    with pytest.raises(InputFormatError, match="never closed"):
        list(read_records("slake-kg", bad))


def test_slake_short_row(tmp_path: Path) -> None:
    bad = tmp_path / "en_disease.csv"
    bad.write_text("disease#attribute#value\nA#location\nB#location#Lung\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="head#attribute#value") as info:
        list(read_records("slake-kg", bad))
    assert info.value.line == 2
    records, messages = _skip("slake-kg", bad)
    assert len(messages) == 1 and any(isinstance(r, Concept) and r.id == "SLAKE:b" for r in records)
