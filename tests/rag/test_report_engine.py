"""Engine.draft_report end to end: drafts only from cases with findings, of the image's body region (from the
header, the caller, or the similar cases' vote), never from question/answer text; FHIR and JSON from the CLI."""

from __future__ import annotations

import json
import re

import pytest

from kgclip.engine import Engine, EngineConfig
from kgclip.testing import tiny_graph
from kgclip.testing.synthetic import make_vqa_folder


@pytest.fixture(scope="module")
def engine_with_findings(tmp_path_factory):
    data = make_vqa_folder(tmp_path_factory.mktemp("data"), n_images=8, with_test=False)
    engine = Engine.build(EngineConfig(text_encoder="hashing-64"), tmp_path_factory.mktemp("ws") / "ws",
                          vqa_rad=data, graph=tiny_graph(), show_progress=False)
    chest = ["History: 60-year-old with cough. Findings: Small left pleural effusion. Impression: pneumonia.",
             "FINDINGS: Left pleural effusion with consolidation. IMPRESSION: 1. Pneumonia.",
             "Findings: Pleural effusion on the left (Fig. 1)."]
    cases = [{"case_id": f"chest-{i}", "image": str(data / "images" / f"synth{2 * i:03d}.png"), "text": t,
              "body_part": "CHEST"} for i, t in enumerate(chest)]
    cases.append({"case_id": "head-0", "image": str(data / "images" / "synth001.png"), "body_part": "HEAD",
                  "findings": "Brain lesion in a patient with epilepsy."})
    engine.add_cases(cases)
    return engine, data


def test_draft_comes_from_findings_of_the_same_region(engine_with_findings):
    engine, data = engine_with_findings
    report = engine.draft_report(data / "images" / "synth006.png", region="CHEST")
    assert report.findings and {s.case_id for s in report.findings} <= {"chest-0", "chest-1", "chest-2"}
    assert report.region == ("chest",) and report.region_source == "query"
    assert all("year-old" not in s.text and "Fig" not in s.text and "?" not in s.text for s in report.findings)
    assert report.impression and "pneumonia" in report.impression[0].text
    head = engine.draft_report(data / "images" / "synth007.png", region="HEAD")
    assert [s.case_id for s in head.findings] == ["head-0"]
    none = engine.draft_report(data / "images" / "synth006.png", region="ABDOMEN")
    # The workspace's modality classifier may add the query's modality ("no similar abdomen CT cases...").
    assert not none.findings and re.fullmatch(r"no similar abdomen (\w+ )?cases to draft from", none.notice)


def test_cli_formats(engine_with_findings, capsys, tmp_path):
    from kgclip.cli.main import main

    engine, data = engine_with_findings
    image = str(data / "images" / "synth006.png")
    where = ["--workspace", str(engine.directory)]
    assert main(["report", "draft", image, *where, "--region", "chest", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["region"] == ["chest"] and row["findings"] and row["findings"][0]["cases"]
    out = tmp_path / "draft.fhir.json"
    assert main(["report", "draft", image, *where, "--region", "chest", "--format", "fhir", "--out", str(out)]) == 0
    fhir = json.loads(out.read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["contained"][0]["derivedFrom"]
    assert main(["report", "draft", image, *where, "--region", "abdomen"]) == 0
    assert re.search(r"No similar abdomen (\w+ )?cases to draft from\.", capsys.readouterr().out)
