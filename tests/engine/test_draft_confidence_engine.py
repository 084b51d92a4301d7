"""Engine.draft_report and `kgclip report draft` with the draft confidence: cases that agree are drafted, cases
that disagree are declined under the validation-chosen threshold with a notice naming the confidence, and the
default (threshold 0) always drafts."""

from __future__ import annotations

import json

import pytest

from kgclip.rag.draft_confidence import VAL_MIN_CONFIDENCE
from kgclip.rag.report import DraftConfig

AGREE = ["Findings: Small left pleural effusion. Cardiomegaly. Impression: pneumonia.",
         "Findings: Left pleural effusion. Mild cardiomegaly.",
         "Findings: Pleural effusion on the left. Cardiomegaly is present."]
DISAGREE = ["Findings: Pneumothorax on the right.", "Findings: Chronic cough.",
            "Findings: Mass suspicious for lung adenocarcinoma."]
NOTICE = "similar cases disagree: cannot draft a reliable report (confidence "


@pytest.fixture(scope="module")
def workspace(small_workspace):
    """The module's small workspace plus chest cases that agree and abdomen cases that disagree."""
    engine, data = small_workspace
    cases = [{"case_id": f"chest-{i}", "image": str(data / "images" / f"synth{2 * i:03d}.png"), "text": t,
              "body_part": "CHEST"} for i, t in enumerate(AGREE)]
    cases += [{"case_id": f"abd-{i}", "image": str(data / "images" / f"synth{2 * i + 1:03d}.png"), "text": t,
               "body_part": "ABDOMEN"} for i, t in enumerate(DISAGREE)]
    engine.add_cases(cases)
    return engine, data


def test_engine_declines_when_the_similar_cases_disagree(workspace):
    engine, data = workspace
    image = data / "images" / "synth010.png"
    threshold = VAL_MIN_CONFIDENCE
    assert engine.config.draft.min_confidence == DraftConfig().min_confidence == 0.0  # declining is opt-in
    chest = engine.draft_report(image, region="CHEST", min_confidence=threshold)
    assert chest.findings and not chest.abstained and chest.confidence >= threshold
    abdomen = engine.draft_report(image, region="ABDOMEN", min_confidence=threshold)
    assert abdomen.abstained and not abdomen.findings and not abdomen.impression
    assert abdomen.confidence < threshold < chest.confidence
    assert abdomen.notice.startswith(f"{NOTICE}{abdomen.confidence:.2f} < {threshold:.2f}")
    assert {h.case_id for h in abdomen.similar_cases} == {"abd-0", "abd-1", "abd-2"}
    # The default, threshold 0: always a draft (the same confidence, reported, not acted on).
    always = engine.draft_report(image, region="ABDOMEN")
    assert always.findings and not always.abstained and always.confidence == abdomen.confidence
    assert {s.case_id for s in always.findings} <= {"abd-0", "abd-1", "abd-2"}


def test_cli_prints_the_notice_and_can_always_draft(workspace, capsys):
    from kgclip.cli.main import main

    engine, data = workspace
    image = str(data / "images" / "synth010.png")
    where = ["--workspace", str(engine.directory)]
    declining = ["--min-confidence", str(VAL_MIN_CONFIDENCE)]
    assert main(["report", "draft", image, *where, "--region", "abdomen", *declining]) == 0
    out = capsys.readouterr().out
    assert "Similar cases disagree: cannot draft a reliable report (confidence" in out
    assert "SIMILAR CASES:" in out and "[abd-" in out and "CONFIDENCE: " in out
    assert main(["report", "draft", image, *where, "--region", "abdomen", *declining, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["abstained"] and row["notice"].startswith(NOTICE) and not row["findings"]
    assert 0.0 <= row["confidence"] < VAL_MIN_CONFIDENCE and len(row["similar_cases"]) == 3
    assert main(["report", "draft", image, *where, "--region", "abdomen", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not row["abstained"] and row["findings"] and row["notice"] == ""
    assert main(["report", "draft", image, *where, "--region", "abdomen", *declining, "--format", "fhir"]) == 0
    fhir = json.loads(capsys.readouterr().out)
    assert fhir["conclusion"].startswith(NOTICE) and fhir["extension"][0]["valueDecimal"] == row["confidence"]
    assert main(["report", "draft", image, *where, "--min-confidence", "2"]) != 0  # checked, with the fix
    assert "min_confidence must be in [0, 1]" in capsys.readouterr().err
