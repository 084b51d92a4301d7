"""The linker on real IU X-ray reports (read from the shared data folder; never copied into the repository)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kgclip.testing import tiny_graph
from kgclip.text.linker import ConceptLinker, LinkerConfig

pytestmark = pytest.mark.data


def _reports(shared_data: Path, n: int) -> list[dict[str, str]]:
    with open(shared_data / "iu-xray" / "indiana_reports.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))[:n]


@pytest.fixture(scope="module")
def radlex_doid_linker() -> ConceptLinker:
    store = pytest.importorskip("kgclip.ontology.store")
    if not store.shipped_ontology_dirs():
        pytest.skip("the shipped ontologies are not built in this checkout")
    return ConceptLinker.from_graph(store.load_ontologies(), LinkerConfig(disk_cache=False))


def test_negation_removes_most_findings_from_normal_reports(shared_data: Path) -> None:
    linker = ConceptLinker.from_graph(tiny_graph(), LinkerConfig(disk_cache=False))
    findings = {"RADLEX:RID4872", "RADLEX:RID5352", "RADLEX:RID28530", "RADLEX:RID1385", "RADLEX:RID1392",
                "DOID:552"}
    normal = [r for r in _reports(shared_data, 1500) if r["Problems"].strip().lower() == "normal"]
    assert len(normal) > 300
    with_neg = without = 0
    for r in normal:
        for m in linker.link(f"{r['findings']}\n\n{r['impression']}"):
            if m.concept_id in findings:
                without += 1
                with_neg += not m.negated
    assert without > 200  # normal reports do name findings ("no pleural effusion")...
    assert with_neg <= 0.1 * without  # ...and nearly all of them negated


def test_real_reports_link_with_shipped_ontologies(shared_data: Path, radlex_doid_linker: ConceptLinker) -> None:
    rows = [r for r in _reports(shared_data, 1200) if "Pleural Effusion" in r["Problems"].split(";")]
    assert len(rows) >= 20
    hits = 0
    for r in rows:
        names = {m.name for m in radlex_doid_linker.link(f"{r['findings']}\n\n{r['impression']}") if not m.negated}
        hits += "pleural effusion" in names or "effusion" in names
    assert hits >= 0.6 * len(rows)


def test_every_report_links_without_error(shared_data: Path, radlex_doid_linker: ConceptLinker) -> None:
    rows = _reports(shared_data, 400)
    out = radlex_doid_linker.link_batch([f"{r['findings']}\n\n{r['impression']}" for r in rows])
    assert len(out) == len(rows) and sum(map(len, out)) > 2000
    for r, mentions in zip(rows, out):
        text = f"{r['findings']}\n\n{r['impression']}"
        assert all(text[m.start:m.end] == m.text for m in mentions)
