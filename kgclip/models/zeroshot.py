"""Prompt-ensemble zero-shot classification over any set of labels or ontology concepts.

Each class is described by its names (a concept's name and synonyms, or the strings given); every name is put into
every template (``"a {} image"``, ``"{} scan"``...), the prompts are embedded with the model's text side, and the
class vector is the normalised mean (CLIP's prompt ensembling). An image is assigned the class whose vector is most
similar to its embedding.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from kgclip.errors import ConfigError

__all__ = ["DEFAULT_TEMPLATES", "ZeroShotClassifier", "ZeroShotResult", "zero_shot_accuracy"]

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a {} image",
    "{} scan",
    "an image of {}",
    "a radiology image showing {}",
    "{} imaging",
)


@dataclasses.dataclass
class ZeroShotResult:
    """Predictions for a batch of images.

    Attributes:
        labels: the class names, in column order.
        probs: ``[N, C]`` softmax over classes (temperature of the model).
        predicted: the best class per image.
    """

    labels: list[str]
    probs: torch.Tensor
    predicted: list[str]

    def top(self, i: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely classes of image ``i`` with their probabilities."""
        values, idx = self.probs[i].topk(min(k, len(self.labels)))
        return [(self.labels[j], float(v)) for v, j in zip(values.tolist(), idx.tolist())]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i}</td><td>{html.escape(self.predicted[i])}</td><td>"
            + ", ".join(f"{html.escape(name)} {p:.2f}" for name, p in self.top(i)) + "</td></tr>"
            for i in range(min(len(self.predicted), 20)))
        return f"<table><tr><th>#</th><th>predicted</th><th>top classes</th></tr>{rows}</table>"


class ZeroShotClassifier:
    """Class vectors built from prompts; classify images or image embeddings.

    Args:
        model: a :class:`~kgclip.models.kgclip.KGClipModel` (anything with ``encode_text``, ``encode_images`` and
            ``scale()``).
        classes: ``{label: [name, synonym, ...]}``; a label's own text is used when its list is empty.
        templates: prompt templates with one ``{}``.
    """

    def __init__(self, model: Any, classes: Mapping[str, Sequence[str]],
                 templates: Sequence[str] = DEFAULT_TEMPLATES) -> None:
        if not classes:
            raise ConfigError("zero-shot classification needs at least one class")
        if not templates or any(t.count("{}") != 1 for t in templates):
            raise ConfigError(f"every template needs exactly one '{{}}', got {list(templates)}")
        self.model = model
        self.labels = list(classes)
        self.templates = list(templates)
        prompts: list[str] = []
        owners: list[int] = []
        for c, label in enumerate(self.labels):
            names = list(dict.fromkeys(n for n in (classes[label] or [label]) if n)) or [label]
            for name in names:
                for template in self.templates:
                    prompts.append(template.format(name))
                    owners.append(c)
        emb = model.encode_text(prompts)
        owner = torch.tensor(owners)
        sums = torch.zeros(len(self.labels), emb.shape[1]).index_add_(0, owner, emb)
        counts = torch.bincount(owner, minlength=len(self.labels)).clamp(min=1).unsqueeze(1)
        self.class_embeddings = torch.nn.functional.normalize(sums / counts, dim=-1)
        self.n_prompts = len(prompts)

    @classmethod
    def from_concepts(cls, model: Any, graph: Any, concept_ids: Sequence[str],
                      templates: Sequence[str] = DEFAULT_TEMPLATES, max_synonyms: int = 4) -> "ZeroShotClassifier":
        """Classes from ontology concepts: each concept's name and first ``max_synonyms`` synonyms are its prompts."""
        classes = {}
        for cid in concept_ids:
            concept = graph.concept(cid)
            classes[cid] = [concept.name, *concept.synonyms[:max_synonyms]]
        return cls(model, classes, templates)

    def scores(self, image_emb: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of image embeddings to each class. Shapes: ``[N, E]`` -> ``[N, C]``."""
        return torch.nn.functional.normalize(image_emb.float(), dim=-1) @ self.class_embeddings.T

    def classify_embeddings(self, image_emb: torch.Tensor) -> ZeroShotResult:
        """Classify precomputed image embeddings. Shapes: ``[N, E]``."""
        scale = float(self.model.scale().detach()) if hasattr(self.model, "scale") else 100.0
        probs = torch.softmax(self.scores(image_emb) * scale, dim=-1)
        predicted = [self.labels[i] for i in probs.argmax(dim=1).tolist()]
        return ZeroShotResult(self.labels, probs, predicted)

    def classify(self, images: torch.Tensor) -> ZeroShotResult:
        """Classify raw images. Shapes: ``[N, C, H, W]`` uint8 or float in [0, 1]."""
        return self.classify_embeddings(self.model.encode_images(images))


def zero_shot_accuracy(result: ZeroShotResult, truth: Sequence[str]) -> dict[str, float]:
    """Accuracy of ``result`` against ``truth`` and of always answering the majority true class.

    Returns:
        ``{"accuracy", "majority", "n"}``.
    """
    if len(truth) != len(result.predicted):
        raise ConfigError(f"{len(truth)} labels for {len(result.predicted)} predictions")
    if not truth:
        return {"accuracy": 0.0, "majority": 0.0, "n": 0}
    correct = sum(p == t for p, t in zip(result.predicted, truth))
    counts: dict[str, int] = {}
    for t in truth:
        counts[t] = counts.get(t, 0) + 1
    return {"accuracy": correct / len(truth), "majority": max(counts.values()) / len(truth), "n": len(truth)}
