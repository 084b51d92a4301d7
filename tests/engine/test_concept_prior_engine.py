"""A workspace whose cases have findings trains its own findings-concept prior at build time; drafts use it by
default; a questions-only workspace has none; a damaged prior is refused on load."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from kgclip.engine import Engine
from kgclip.engine.build import CONCEPT_PRIOR
from kgclip.errors import ArtifactCorruptError
from kgclip.rag.concept_prior import MIN_PRIOR_CASES, case_findings, fit_case_prior, metadata_keys
from kgclip.rag.concepts import ConceptTagger
from kgclip.testing import tiny_graph
from tests.engine.conftest import build_small

EFFUSION, PNEUMONIA = "RADLEX:RID4872", "DOID:552"


@pytest.fixture(scope="module")
def built(small_workspace):
    engine, data = small_workspace
    no_prior = engine.concept_prior
    # Chest cases report effusion, head cases a brain lesion: enough cases with findings for a prior.
    rows = []
    for i in range(MIN_PRIOR_CASES + 4):
        chest = i % 2 == 0
        rows.append({"case_id": f"case-{i}", "image": str(data / "images" / f"synth{i % 12:03d}.png"),
                     "body_part": "CHEST" if chest else "HEAD", "modality": "CT",
                     "findings": "Left pleural effusion." if chest else "Brain lesion, no pleural effusion."})
    engine.add_cases(rows)
    added = engine.concept_prior  # add_cases retrains it on every case's stored vector
    # A rebuild (as Engine.refresh does after an ontology edit) keeps the added cases and trains on them.
    rebuilt = build_small(data, engine.directory)
    return no_prior, rebuilt, data, added


def test_questions_only_workspace_has_no_prior(built):
    no_prior, _, _, _ = built
    assert no_prior is None


def test_add_cases_with_findings_train_the_prior_at_once(built):
    _, rebuilt, _, added = built
    assert added is not None and added.concepts == rebuilt.concept_prior.concepts
    assert added.meta["n_cases"] == MIN_PRIOR_CASES + 4


def test_build_trains_a_prior_on_the_cases_findings_and_drafts_use_it(built):
    _, engine, data, _ = built
    prior = engine.concept_prior
    assert prior is not None and (engine.directory / CONCEPT_PRIOR / "concept_prior.safetensors").is_file()
    assert prior.meta["metadata_keys"] == "normalized" and prior.meta["n_cases"] == MIN_PRIOR_CASES + 4
    assert EFFUSION in prior.concepts  # asserted in the chest findings; negated in the head ones
    chest = prior.predict_one(None, *metadata_keys("ct", "CHEST"))[EFFUSION]
    head = prior.predict_one(None, *metadata_keys("CT", "head"))[EFFUSION]
    assert chest > 0.8 > 0.2 > head
    loaded = Engine.load(engine.directory)
    assert loaded.concept_prior is not None and loaded.concept_prior.concepts == prior.concepts
    image = data / "images" / "synth006.png"
    vec = engine.featurizer.embed_one(image)
    with_prior = engine._prior_probabilities(engine.concept_prior, vec, "CT", "CHEST", None)
    assert with_prior is not None and with_prior[EFFUSION] > 0.5
    report = engine.draft_report(image, region="CHEST", modality="CT")
    assert report.findings and "effusion" in report.findings_text.lower()


def test_a_damaged_prior_is_refused_and_a_missing_one_is_fine(built, tmp_path):
    _, engine, _, _ = built
    copy = tmp_path / "ws"
    shutil.copytree(engine.directory, copy)
    (copy / CONCEPT_PRIOR / "concept_prior.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ArtifactCorruptError, match="concept prior"):
        Engine.load(copy)
    shutil.rmtree(copy / CONCEPT_PRIOR)
    assert Engine.load(copy).concept_prior is None


def test_fit_case_prior_needs_enough_cases_with_findings():
    tagger = ConceptTagger(tiny_graph())
    vec = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)

    def case(i: int, **kw: object) -> SimpleNamespace:
        return SimpleNamespace(**{"case_id": f"c{i}", "modality": "CT", "body_part": "CHEST", "qa": [],
                                  "findings": "", "impression": "", "text": "", **kw})

    few = [case(i, findings="Pleural effusion.") for i in range(MIN_PRIOR_CASES - 1)]
    assert fit_case_prior(few, vec[:len(few)], tagger=tagger, graph=None, feature_name="f",
                          feature_fingerprint="x") is None
    qa_only = [case(i, text="is there an effusion? yes", qa=[("is there an effusion?", "yes")]) for i in range(30)]
    assert case_findings(qa_only[0]) == ""
    assert fit_case_prior(qa_only, vec, tagger=tagger, graph=None, feature_name="f", feature_fingerprint="x") is None
    # Text without section headers counts as findings, its history sentences do not.
    unheaded = [case(i, text="60-year-old man with cough. Pleural effusion.") for i in range(30)]
    assert "effusion" in case_findings(unheaded[0]) and "year-old" not in case_findings(unheaded[0])
    prior = fit_case_prior(unheaded, vec, tagger=tagger, graph=None, feature_name="f", feature_fingerprint="x")
    assert prior is not None and EFFUSION in prior.concepts
