"""``kgclip.ontology.importing``: the import that ``kgclip ontology import`` runs, as a library call."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.errors import ConfigError, ResolutionError
from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog
from kgclip.ontology.importing import import_source, source_fingerprint
from kgclip.ontology.sources import parse_options
from kgclip.ontology.store import load_graph_dir, read_meta

FIXTURES = Path(__file__).resolve().parents[2] / "kgclip" / "testing" / "fixtures"


def test_import_merges_logs_and_records_the_source(tmp_path: Path) -> None:
    into = tmp_path / "g"
    first = import_source("obo", FIXTURES / "tiny_ontology.obo", into, author="ann")
    assert first.entry.op == "import" and first.entry.author == "ann" and first.changes.added_concepts
    assert first.graph.fingerprint() == load_graph_dir(into).fingerprint()
    # An alias resolves to the registered name, and that name is what the provenance records.
    second = import_source("turtle", FIXTURES / "tiny_ontology.ttl", into)
    sources = read_meta(into)["sources"]
    assert [s["format"] for s in sources] == ["obo", "owl"] and second.source["format"] == "owl"
    assert sources[1]["fingerprint"] == source_fingerprint(FIXTURES / "tiny_ontology.ttl")
    log = Changelog.load(into / CHANGELOG_FILE)
    assert [e.op for e in log] == ["import", "import"]
    # Re-importing the same file replaces its provenance record instead of listing it twice.
    import_source("obo", FIXTURES / "tiny_ontology.obo", into)
    assert [s["format"] for s in read_meta(into)["sources"]] == ["owl", "obo"]


def test_replace_and_bad_names(tmp_path: Path) -> None:
    into = tmp_path / "g"
    import_source("obo", FIXTURES / "tiny_ontology.obo", into)
    replaced = import_source("auto", FIXTURES / "radlex_sample.csv", into, replace=True)
    assert replaced.source["format"] == "radlex-csv"
    assert all(c.id.startswith("RADLEX:") for c in load_graph_dir(into).concepts())
    before = {p.name: p.read_bytes() for p in into.iterdir()}
    with pytest.raises(ResolutionError, match="among choices"):
        import_source("nope", FIXTURES / "tiny_ontology.obo", into)
    assert {p.name: p.read_bytes() for p in into.iterdir()} == before


def test_parse_options_types_values_by_the_readers_signature() -> None:
    assert parse_options("umls-rrf", ["sabs=MSH, RADLEX"])["sabs"] == ("MSH", "RADLEX")
    with pytest.raises(ConfigError, match="its options are"):
        parse_options("obo", ["nope=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options("obo", ["nope"])


def test_formats_command_lists_names_and_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ontology", "formats"]) == 0
    rows = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert "umls" in rows["umls-rrf"] and set(rows) >= {"owl", "obo", "radlex-csv", "doid-tsv", "slake-kg"}
