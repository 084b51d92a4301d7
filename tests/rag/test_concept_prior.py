"""The learned concept prior: metadata rates with back-off, image heads, ancestors, persistence; and the drafter's
convex mix of prior and consensus."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kgclip.errors import ArtifactCorruptError, ConfigError, ModelNotFoundError, StaleArtifactError
from kgclip.rag.concept_prior import ConceptPrior, ConceptPriorConfig, train_concept_prior
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit
from kgclip.rag.report import DraftConfig, draft_from_cases
from kgclip.testing import tiny_graph

EFFUSION, PTX, CARDIO = "RADLEX:RID4872", "RADLEX:RID5352", "RADLEX:RID1392"
CANCER, ADENO = "DOID:1324", "DOID:3910"


def _rows(n: int = 80, seed: int = 0):
    """Chest rows: effusion when feature 0 is positive; head rows: never effusion, always cardiomegaly (odd but
    easy to check); pneumothorax in 2 rows only (below min_cases)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    regions = ["Thorax" if i % 2 == 0 else "Head" for i in range(n)]
    sets = []
    for i in range(n):
        s = set()
        if regions[i] == "Thorax" and x[i, 0] > 0:
            s.add(EFFUSION)
        if regions[i] == "Head":
            s.add(CARDIO)
        if i < 2:
            s.add(PTX)
        sets.append(s)
    return x, ["CT"] * n, regions, sets


def test_rates_back_off_and_image_heads_learn_what_the_image_shows():
    x, mods, regions, sets = _rows()
    prior = train_concept_prior(x, mods, regions, sets, config=ConceptPriorConfig(min_cases=5, l2=0.1))
    assert prior.concepts == sorted([EFFUSION, CARDIO])  # pneumothorax: 2 cases < min_cases
    j_eff, j_card = prior.concepts.index(EFFUSION), prior.concepts.index(CARDIO)
    probe = np.zeros((4, 4), np.float32)
    probe[0, 0], probe[1, 0] = 2.0, -2.0
    p = prior.predict(probe, ["CT", "CT", "CT", None], ["Thorax", "Thorax", "Head", "Nowhere"])
    assert p[0, j_eff] > 0.8 and p[1, j_eff] < 0.2  # the image decides within the chest
    assert p[2, j_card] > 0.8 and p[2, j_eff] < 0.1  # the region's rate
    overall = np.mean([EFFUSION in s for s in sets])
    meta_only = prior.predict(None, [None], ["Nowhere"])[0]
    assert meta_only[j_eff] == pytest.approx(overall, abs=1e-3)  # unknown region: the overall rate
    one = prior.predict_one(probe[0], "CT", "Thorax")
    assert set(one) == {EFFUSION, CARDIO} and one[EFFUSION] == pytest.approx(p[0, j_eff], rel=1e-5)
    with pytest.raises(ValueError, match=r"features must be \[1, 4\]"):
        prior.predict(np.zeros((1, 3), np.float32), ["CT"], ["Head"])


def test_images_of_one_case_share_its_weight_and_min_cases_counts_cases():
    x, mods, regions, sets = _rows(20)
    # Ten copies of case 0 (which alone has pneumothorax besides case 1): still 2 cases, not 11.
    rows = [0] * 10 + list(range(1, 20))
    prior = train_concept_prior(x[rows], [mods[i] for i in rows], [regions[i] for i in rows],
                                [sets[i] for i in rows], case_ids=[f"c{i}" for i in rows],
                                config=ConceptPriorConfig(min_cases=3, use_image=False))
    assert PTX not in prior.concepts and prior.meta["n_cases"] == 20 and prior.meta["n_rows"] == 29
    with pytest.raises(ValueError, match="lower min_cases"):
        train_concept_prior(None, mods, regions, sets, config=ConceptPriorConfig(min_cases=1000))


def test_ancestor_credit_gives_the_general_concept_a_soft_target():
    g = tiny_graph()
    sets = [{ADENO}] * 6 + [set()] * 6
    args = (None, ["CT"] * 12, ["Thorax"] * 12, sets)
    exact = train_concept_prior(*args, config=ConceptPriorConfig(min_cases=1, use_image=False, smoothing=0.01),
                                graph=g)
    assert CANCER not in exact.concepts  # never linked itself: no head, whatever the graph says
    sets2 = sets[:-1] + [{CANCER}]
    exact = train_concept_prior(None, ["CT"] * 12, ["Thorax"] * 12, sets2, graph=g,
                                config=ConceptPriorConfig(min_cases=1, use_image=False, smoothing=0.01))
    soft = train_concept_prior(None, ["CT"] * 12, ["Thorax"] * 12, sets2, graph=g,
                               config=ConceptPriorConfig(min_cases=1, use_image=False, smoothing=0.01,
                                                         ancestor_credit=0.5))
    p_exact = exact.predict_one(None, "CT", "Thorax")[CANCER]
    p_soft = soft.predict_one(None, "CT", "Thorax")[CANCER]
    assert p_exact == pytest.approx(1 / 12, abs=0.01) and p_soft == pytest.approx((1 + 6 * 0.5) / 12, abs=0.01)


def test_save_and_load_round_trip_with_fingerprint_checks(tmp_path):
    x, mods, regions, sets = _rows()
    g = tiny_graph()
    prior = train_concept_prior(x, mods, regions, sets, graph=g, feature_name="toy", feature_fingerprint="fp-1")
    prior.save(tmp_path / "prior")
    assert sorted(p.name for p in (tmp_path / "prior").iterdir()) == ["concept_prior.json",
                                                                     "concept_prior.safetensors"]
    back = ConceptPrior.load(tmp_path / "prior", feature_fingerprint="fp-1", graph=g)
    assert back.concepts == prior.concepts and back.config == prior.config and back.groups == prior.groups
    np.testing.assert_allclose(back.predict(x[:5], mods[:5], regions[:5]), prior.predict(x[:5], mods[:5],
                                                                                         regions[:5]), rtol=1e-6)
    with pytest.raises(StaleArtifactError, match="same feature extractor"):
        ConceptPrior.load(tmp_path / "prior", feature_fingerprint="fp-2")
    with pytest.raises(ModelNotFoundError, match="train_concept_prior"):
        ConceptPrior.load(tmp_path / "nothing-here")
    (tmp_path / "prior" / "concept_prior.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ArtifactCorruptError, match="retrain"):
        ConceptPrior.load(tmp_path / "prior")


def test_config_is_checked():
    assert ConceptPriorConfig.from_dict(ConceptPriorConfig(l2=3.0).to_dict()) == ConceptPriorConfig(l2=3.0)
    for bad in ({"min_cases": 0}, {"smoothing": 0.0}, {"l2": -1.0}, {"ancestor_credit": 1.5}, {"max_iter": 0}):
        with pytest.raises(ConfigError):
            ConceptPriorConfig(**bad)
    with pytest.raises(ValueError, match="one entry per training row"):
        train_concept_prior(None, ["CT"], ["Head", "Head"], [set(), set()])
    for bad in ({"prior_mix": 1.5}, {"min_new_score": 1.0}):
        with pytest.raises(ConfigError):
            DraftConfig(**bad)


def _hit(case_id: str, score: float, text: str) -> CaseHit:
    return CaseHit(case_id, score, text, metadata={"body_part": "CHEST"})


def test_the_prior_steers_which_sentences_the_draft_keeps():
    g = tiny_graph()
    tagger = ConceptTagger(g)
    # Consensus: cardiomegaly in 3 of 4 cases, pleural effusion in 1.
    hits = [_hit("a", 0.9, "Cardiomegaly."), _hit("b", 0.85, "Cardiomegaly is present."),
            _hit("c", 0.8, "Enlarged heart with cardiomegaly."), _hit("d", 0.75, "Small pleural effusion.")]
    cfg = DraftConfig(temperature=0.0, min_support=0.35, word_weight=0.0, max_findings=4, prior_mix=0.0)
    alone = draft_from_cases(hits, tagger=tagger, graph=g, config=cfg)
    assert [s.text for s in alone.findings] == ["Cardiomegaly."]
    prior = {EFFUSION: 0.9, CARDIO: 0.05}  # the learned model is sure of the effusion, not of the heart
    mixed = draft_from_cases(hits, tagger=tagger, graph=g, config=dataclasses.replace(cfg, prior_mix=1.0),
                             concept_prior=prior)
    assert [s.text for s in mixed.findings] == ["Small pleural effusion."]
    assert mixed.findings[0].case_id == "d" and mixed.findings[0].citations == ("d",)
    half = draft_from_cases(hits, tagger=tagger, graph=g, config=dataclasses.replace(cfg, prior_mix=0.5),
                            concept_prior=prior)
    # 0.5 x 0.9 + 0.5 x 0.25 = 0.575 for the effusion, 0.5 x 0.05 + 0.5 x 0.75 = 0.4 for cardiomegaly.
    assert [s.text for s in half.findings] == ["Cardiomegaly.", "Small pleural effusion."]
    assert draft_from_cases(hits, tagger=tagger, graph=g, config=cfg, concept_prior=prior).findings == alone.findings
    # min_new_score: a sentence whose best new concept scores below it is left out, with the reason.
    floor = draft_from_cases(hits, tagger=tagger, graph=g, concept_prior=prior,
                             config=dataclasses.replace(cfg, prior_mix=0.5, min_support=0.0, min_new_score=0.45))
    assert [s.text for s in floor.findings] == ["Small pleural effusion."]
    assert "what it would add is unlikely" in {why for _, why in floor.removed}
