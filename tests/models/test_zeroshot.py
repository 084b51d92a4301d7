"""Prompt-ensemble zero-shot classification on a synthetic, separable case."""

from __future__ import annotations

import pytest
import torch

from kgclip.errors import ConfigError
from kgclip.models.zeroshot import DEFAULT_TEMPLATES, ZeroShotClassifier, zero_shot_accuracy
from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder


class _TextOnlyModel:
    """Text side = the hashing encoder; images are given as embeddings near their class's prompts."""

    def __init__(self) -> None:
        self.encoder = load_text_encoder("hashing-128")
        self.prompts_seen: list[str] = []

    def encode_text(self, texts):  # noqa: ANN001, ANN201
        self.prompts_seen.extend(texts)
        return self.encoder.encode(list(texts))

    def scale(self) -> torch.Tensor:
        return torch.tensor(50.0)


def test_separable_classes_are_recovered() -> None:
    model = _TextOnlyModel()
    classes = {"CT": ["computed tomography", "CT"], "MR": ["magnetic resonance imaging", "MRI"],
               "US": ["ultrasound sonography"]}
    clf = ZeroShotClassifier(model, classes)
    assert clf.n_prompts == 5 * len(DEFAULT_TEMPLATES)
    assert "a computed tomography image" in model.prompts_seen
    gen = torch.Generator().manual_seed(0)
    truth = ["CT", "MR", "US"] * 5
    emb = torch.stack([clf.class_embeddings[clf.labels.index(t)] for t in truth])
    emb = emb + 0.05 * torch.randn(emb.shape, generator=gen)
    result = clf.classify_embeddings(emb)
    assert result.predicted == truth
    assert torch.allclose(result.probs.sum(1), torch.ones(len(truth)))
    acc = zero_shot_accuracy(result, truth)
    assert acc == {"accuracy": 1.0, "majority": pytest.approx(1 / 3), "n": 15}
    assert result.top(0, 2)[0][0] == "CT"
    assert "<table" in result._repr_html_()


def test_from_concepts_uses_names_and_synonyms() -> None:
    model = _TextOnlyModel()
    clf = ZeroShotClassifier.from_concepts(model, tiny_graph(), ["RADLEX:RID4872", "RADLEX:RID5352"],
                                           templates=("{} scan",))
    assert clf.labels == ["RADLEX:RID4872", "RADLEX:RID5352"]
    assert {"pleural effusion scan", "hydrothorax scan", "PTX scan"} <= set(model.prompts_seen)


def test_majority_and_errors() -> None:
    model = _TextOnlyModel()
    with pytest.raises(ConfigError):
        ZeroShotClassifier(model, {})
    with pytest.raises(ConfigError):
        ZeroShotClassifier(model, {"a": ["a"]}, templates=("no placeholder",))
    clf = ZeroShotClassifier(model, {"a": [], "b": []})  # the label itself is the prompt
    result = clf.classify_embeddings(clf.class_embeddings[[0, 0, 1]])
    assert zero_shot_accuracy(result, ["a", "a", "a"]) == {"accuracy": pytest.approx(2 / 3),
                                                           "majority": 1.0, "n": 3}
    with pytest.raises(ConfigError):
        zero_shot_accuracy(result, ["a"])
