"""Configuration of the KG-enriched dual encoder (:class:`~kgclip.models.kgclip.KGClipModel`).

:class:`KGClipConfig` holds everything needed to rebuild the model before its weights are loaded; it is saved in
the checkpoint header (``kgclip_model.json``) and compared on load.
"""

from __future__ import annotations

import dataclasses

from kgclip.config import Config
from kgclip.errors import ConfigError

__all__ = ["KGClipConfig", "ENRICHMENTS"]

ENRICHMENTS = ("none", "gnn", "text")


@dataclasses.dataclass(frozen=True)
class KGClipConfig(Config):
    """Architecture of :class:`~kgclip.models.kgclip.KGClipModel`: all it takes to rebuild it before loading weights."""

    # Image tower name or directory (see kgclip.models.backbones.load_image_tower).
    image_tower: str = "builtin-cnn"
    # Input side for the built-in tower; pretrained towers use their own size.
    image_size: int = 112
    # Channel widths of the built-in tower's four stages.
    image_widths: tuple[int, ...] = (16, 32, 64, 128)
    # Text tower name or directory (kgclip.text.encoders.load_text_encoder); frozen.
    text_tower: str = "minilm"
    # KG enrichment: "none", "gnn" (GNN concept embeddings) or "text" (the GNN's text-only input features).
    enrichment: str = "none"
    # Width of the concept table rows (0 when enrichment is "none"); set from the table when the model is built.
    concept_dim: int = 0
    # At most this many linked concepts per text are fused (first mentions first).
    max_concepts: int = 12
    # Joint embedding size.
    embed_dim: int = 256
    # Hidden width of the text projection MLP (0: a single linear layer).
    text_hidden: int = 512
    # Initial temperature of the contrastive logits (CLIP: 0.07).
    init_temperature: float = 0.07
    # Upper bound of 1/temperature (CLIP clamps at 100).
    max_logit_scale: float = 100.0
    # Add a concept projection head for KAD-style image-to-concept alignment.
    concept_head: bool = False
    # Which tower weights train: -1 the whole tower (the built-in CNN, trained from scratch), 0 none (a frozen
    # pretrained backbone: training runs on its cached pooled features), k > 0 the last k blocks and the head of an
    # EfficientNet tower (training runs on the cached input of those blocks).
    train_blocks: int = -1
    # Hidden width of a residual MLP on the image side (0: the linear projection alone).
    image_hidden: int = 0
    # Dropout on the image tower's pooled features before the image projection (training only). With ~1.3k
    # MedPix pairs the linear head overfits within a few epochs; dropping half of the 1280 frozen features is
    # what helped most on validation (R@10 0.331 -> 0.387, 3 seeds), so the pretrained recipe sets it to 0.5.
    image_dropout: float = 0.0
    # Members of an ensemble of heads on the same towers: each member has its own image and text projections (and
    # concept fusion) and is trained as a single head of its own (kgclip.models.train: own initialisation, batch
    # order, dropout and epoch); the model's embedding is the members' unit embeddings concatenated and scaled by
    # 1/sqrt(ensemble), so a cosine between two embeddings is the members' mean cosine. 1: a single head.
    ensemble: int = 1

    @property
    def output_dim(self) -> int:
        """Width of the model's embeddings: ``embed_dim`` per member times ``ensemble``."""
        return self.embed_dim * self.ensemble

    def __post_init__(self) -> None:
        if self.enrichment not in ENRICHMENTS:
            raise ConfigError(f"enrichment must be one of {ENRICHMENTS}, got {self.enrichment!r}")
        if self.enrichment == "none" and self.concept_dim:
            raise ConfigError("concept_dim must be 0 when enrichment is 'none'")
        if self.enrichment != "none" and self.concept_dim < 1:
            raise ConfigError(f"enrichment {self.enrichment!r} needs concept_dim >= 1 (the width of the table)")
        if self.concept_head and self.enrichment == "none":
            raise ConfigError("concept_head needs a concept table: set enrichment to 'gnn' or 'text'")
        if self.ensemble < 1:
            raise ConfigError(f"ensemble must be >= 1 (the number of heads), got {self.ensemble}")
        if self.ensemble > 1 and self.concept_head:
            raise ConfigError("concept_head is not available with ensemble > 1; use one or the other")
        if self.embed_dim < 1 or self.text_hidden < 0 or self.max_concepts < 1:
            raise ConfigError("embed_dim and max_concepts must be >= 1 and text_hidden >= 0")
        if not 0.0 < self.init_temperature < 1.0 or self.max_logit_scale <= 1.0:
            raise ConfigError("init_temperature must be in (0, 1) and max_logit_scale > 1")
        if self.image_size < 32:
            raise ConfigError(f"image_size must be >= 32, got {self.image_size}")
        if not 0.0 <= self.image_dropout < 1.0:
            raise ConfigError(f"image_dropout must be in [0, 1), got {self.image_dropout}")
        if self.train_blocks < -1 or self.image_hidden < 0:
            raise ConfigError(f"train_blocks must be >= -1 (-1 whole tower, 0 frozen, k last blocks) and image_hidden "
                              f">= 0, got {self.train_blocks}, {self.image_hidden}")

