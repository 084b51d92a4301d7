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
    # k cases of the region, not what is left of the k nearest: one head case among twelve.
    one = engine.draft_report(data / "images" / "synth006.png", region="HEAD", k=1)
    assert [h.case_id for h in one.similar_cases] == ["head-0"] and [s.case_id for s in one.findings] == ["head-0"]


def test_cli_formats(engine_with_findings, capsys, tmp_path):
    from kgclip.cli.main import main

    engine, data = engine_with_findings
    image = str(data / "images" / "synth006.png")
    where = ["--workspace", str(engine.directory)]
    assert main(["report", "draft", image, *where, "--region", "chest", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["region"] == ["chest"] and row["findings"] and row["findings"][0]["cases"]
    # One shape for the CLI and the web app: the web app's JSON of the same draft, plus the workspace.
    from kgclip.serve.results import draft_json

    same = draft_json(engine.draft_report(data / "images" / "synth006.png", region="chest"))
    assert {k: v for k, v in row.items() if k != "workspace"} == json.loads(json.dumps(same))
    assert row["similar_cases"][0]["case_id"] and "score" in row["similar_cases"][0]
    out = tmp_path / "draft.fhir.json"
    assert main(["report", "draft", image, *where, "--region", "chest", "--format", "fhir", "--out", str(out)]) == 0
    fhir = json.loads(out.read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["contained"][0]["derivedFrom"]
    assert main(["report", "draft", image, *where, "--region", "abdomen"]) == 0
    assert re.search(r"No similar abdomen (\w+ )?cases to draft from\.", capsys.readouterr().out)


def test_a_concept_prior_trained_on_the_workspace_steers_the_draft(engine_with_findings):
    import dataclasses

    import numpy as np

    from kgclip.errors import StaleArtifactError
    from kgclip.rag.concept_prior import ConceptPriorConfig, train_concept_prior

    engine, data = engine_with_findings
    image = data / "images" / "synth006.png"
    vec = engine.featurizer.embed([image] * 6)
    effusion, pneumonia = "RADLEX:RID4872", "DOID:552"
    # Six chest "cases", all with pneumonia and none with effusion: the prior learns effusion is unlikely here.
    prior = train_concept_prior(vec, ["CT"] * 6, ["CHEST"] * 6, [{pneumonia}] * 3 + [{pneumonia, "x"}] * 3,
                                config=ConceptPriorConfig(min_cases=1, use_image=False),
                                feature_name=engine.featurizer.name, feature_fingerprint=engine.featurizer.fingerprint)
    assert prior.predict_one(None, "CT", "CHEST").get(effusion) is None
    old = engine.config
    engine.config = dataclasses.replace(old, draft=dataclasses.replace(old.draft, prior_mix=1.0, min_support=0.3,
                                                                         word_weight=0.0))
    try:
        steered = engine.draft_report(image, region="CHEST", concept_prior=prior)
        # With the prior's say only (prior_mix=1), effusion scores 0 and never clears min_support; the consensus
        # alone (prior_mix=0, same prior given) drafts it from the chest cases.
        assert all(effusion not in s.concepts for s in steered.findings)
        engine.config = dataclasses.replace(engine.config,
                                            draft=dataclasses.replace(engine.config.draft, prior_mix=0.0))
        plain = engine.draft_report(image, region="CHEST", concept_prior=prior)
        assert any(effusion in s.concepts for s in plain.findings)
        stale = train_concept_prior(np.zeros((2, 3), np.float32), ["CT"] * 2, ["CHEST"] * 2, [{pneumonia}] * 2,
                                    config=ConceptPriorConfig(min_cases=1), feature_fingerprint="other")
        with pytest.raises(StaleArtifactError, match="retrain it on this workspace"):
            engine.draft_report(image, region="CHEST", concept_prior=stale)
    finally:
        engine.config = old


def test_draft_refuses_a_region_it_cannot_place_before_reading_the_image(engine_with_findings):
    from kgclip.errors import ConfigError

    engine, data = engine_with_findings
    with pytest.raises(ConfigError, match="names no body region"):
        engine.draft_report(data / "images" / "no-such-image.png", region="nowhere")
    assert engine.draft_report(data / "images" / "synth006.png", region="chest").region == ("chest",)
