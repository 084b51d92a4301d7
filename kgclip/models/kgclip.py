"""The KG-enriched dual encoder: image tower + frozen text tower + concept fusion + projection heads.

Text side: ``caption -> text tower (frozen) -> [Dt]``; its linked, non-negated concepts look up rows of a fixed
concept table (GNN embeddings from ``kgclip kg train``, or the text-only features the GNN starts from) and a fusion
module (:class:`kgclip.text.enrich.ConceptFusion`) mixes them into the text vector; a projection head maps it into
the joint space. Image side: ``pixels -> image tower -> linear projection``. Both sides are L2-normalised and
compared with a learnable temperature (CLIP).

The text tower stays frozen so that its caption vectors can be computed once per dataset: that is what makes
training on a 2-core CPU feasible. The concept table is a buffer (saved with the model, never trained).

A checkpoint directory holds ``kgclip_model.json`` (config, library versions, fingerprints of the concept table
and text tower), ``model.safetensors`` and ``concepts.json`` (the table's concept ids); it is written atomically.

The configuration is in :mod:`kgclip.models.kgclip_config`; the text side's parts (concept linking, fusion, the
projection head) are in :mod:`kgclip.models.kgclip_text`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kgclip.artifacts import read_json_header
from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.errors import ArtifactCorruptError, ConfigError, EncoderMismatchError, ModelNotFoundError
from kgclip.models.kgclip_config import ENRICHMENTS, KGClipConfig
from kgclip.models.kgclip_text import ConceptSource, TextHead, build_fusion, link_texts
from kgclip.models.tower import state_mismatch

__all__ = ["KGClipConfig", "KGClipModel", "KGClipOutput", "ENRICHMENTS", "CHECKPOINT_FILE", "library_versions",
           "link_texts"]

CHECKPOINT_FILE = "kgclip_model.json"
_FORMAT = 1


@dataclasses.dataclass
class KGClipOutput:
    """What :meth:`KGClipModel.forward` returns.

    Attributes:
        image_embeds: unit image embeddings ``[B, E]``.
        text_embeds: unit text embeddings ``[B, E]``.
        logit_scale: ``1 / temperature`` (scalar tensor, clamped).
    """

    image_embeds: torch.Tensor
    text_embeds: torch.Tensor
    logit_scale: torch.Tensor


def library_versions() -> dict[str, str]:
    """Versions of the libraries a checkpoint depends on."""
    import importlib.metadata as md

    out = {}
    for name in ("kgclip", "torch", "transformers", "safetensors", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


class EnsembleMember(nn.Module):
    """The trainable head of one further member of an ensemble (``KGClipConfig.ensemble``): its own image and
    text projections, concept fusion and temperature, on the model's shared towers and concept table."""

    def __init__(self, config: KGClipConfig, image_dim: int, text_dim: int) -> None:
        super().__init__()
        self.image_proj: nn.Module = (nn.Linear(image_dim, config.embed_dim, bias=False) if not config.image_hidden
                                      else TextHead(image_dim, config.embed_dim, config.image_hidden))
        self.text_proj = TextHead(text_dim, config.embed_dim, config.text_hidden)
        self.logit_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1.0 / config.init_temperature)))))
        self.fusion: nn.Module | None = (build_fusion(text_dim, config.concept_dim) if config.enrichment != "none"
                                         else None)


class KGClipModel(nn.Module):
    """The dual encoder.

    Args:
        config: the architecture.
        concept_ids: ids of the concept table rows (required unless ``enrichment == "none"``).
        concept_vectors: the concept table ``[N, concept_dim]`` (zeros when loading a checkpoint, which fills it).
        concept_fingerprint: fingerprint of the embeddings the table came from (recorded in checkpoints).
        text_encoder: the frozen text tower (default: ``load_text_encoder(config.text_tower)``).
        linker: what links texts to concepts (default, on first use: a :class:`kgclip.text.linker.ConceptLinker`
            over the shipped ontologies).
    """

    def __init__(self, config: KGClipConfig, *, concept_ids: Sequence[str] | None = None,
                 concept_vectors: torch.Tensor | None = None, concept_fingerprint: str = "",
                 text_encoder: Any = None, linker: ConceptSource | None = None) -> None:
        super().__init__()
        from kgclip.models.backbones import is_builtin, load_image_tower
        from kgclip.text.encoders import load_text_encoder

        self.config = config
        if is_builtin(config.image_tower):
            self.image_tower = load_image_tower(config.image_tower, image_size=config.image_size,
                                                widths=config.image_widths)
        else:
            self.image_tower = load_image_tower(config.image_tower)
        # A plain attribute, not a submodule: the frozen tower is neither trained nor saved with the model.
        self.__dict__["text_encoder"] = text_encoder or load_text_encoder(config.text_tower)
        text_dim = int(self.text_encoder.dim)
        self.image_proj: nn.Module = (nn.Linear(self.image_tower.dim, config.embed_dim, bias=False)
                                      if not config.image_hidden
                                      else TextHead(self.image_tower.dim, config.embed_dim, config.image_hidden))
        # No parameters: checkpoints of models without it load unchanged; active only in training mode.
        self.image_dropout = nn.Dropout(config.image_dropout)
        self._freeze_tower()
        self.text_proj = TextHead(text_dim, config.embed_dim, config.text_hidden)
        self.logit_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(1.0 / config.init_temperature)))))
        self.concept_ids: list[str] = []
        self._concept_index: dict[str, int] = {}
        self.concept_fingerprint = concept_fingerprint
        self.fusion: nn.Module | None = None
        self.concept_proj: nn.Module | None = None
        self.concept_bias: nn.Parameter | None = None
        if config.enrichment != "none":
            if concept_ids is None:
                raise ConfigError(f"enrichment {config.enrichment!r} needs concept_ids and concept_vectors")
            vectors = (torch.zeros(len(concept_ids), config.concept_dim) if concept_vectors is None
                       else concept_vectors.detach().float().cpu())
            if vectors.shape != (len(concept_ids), config.concept_dim):
                raise ConfigError(f"concept table must be [{len(concept_ids)}, {config.concept_dim}], got "
                                  f"{tuple(vectors.shape)}")
            self.concept_ids = list(concept_ids)
            self._concept_index = {cid: i for i, cid in enumerate(self.concept_ids)}
            self.register_buffer("concept_vectors", vectors.contiguous())
            self.fusion = build_fusion(text_dim, config.concept_dim)
            if config.concept_head:
                self.concept_proj = nn.Linear(config.concept_dim, config.embed_dim, bias=False)
                self.concept_bias = nn.Parameter(torch.tensor(-4.0))  # sigmoid starts near a low positive rate
        self.__dict__["linker"] = linker
        # Members 1.. of an ensemble (member 0 is the parts above, so a single head's checkpoint keys are unchanged);
        # built last, so a single head is initialised exactly as before for the same seed.
        self.members = nn.ModuleList(EnsembleMember(config, self.image_tower.dim, text_dim)
                                     for _ in range(config.ensemble - 1))

    # ------------------------------------------------------------------------------------------------ images

    def _freeze_tower(self) -> None:
        """``train_blocks`` 0: no tower weight trains; k > 0: only the last k blocks and the head do."""
        k = self.config.train_blocks
        if k < 0:
            return
        n = int(getattr(self.image_tower, "n_blocks", 0))
        if k > 0 and not n:
            raise ConfigError(f"train_blocks={k} needs a tower with blocks (efficientnet-lite0), not "
                              f"{self.config.image_tower!r}; use train_blocks 0 (frozen) or -1 (whole tower)")
        if k > n:
            raise ConfigError(f"train_blocks={k} exceeds the tower's {n} blocks")
        for name, param in self.image_tower.named_parameters():
            trainable = k > 0 and (name.startswith(("_conv_head", "_bn1"))
                                   or (name.startswith("_blocks.") and int(name.split(".")[1]) >= n - k))
            param.requires_grad_(trainable)

    def train(self, mode: bool = True) -> "KGClipModel":
        """As ``nn.Module.train``; a pretrained tower's batch norms stay in eval mode (fine-tuning keeps their
        ImageNet statistics rather than re-estimating them from small batches)."""
        super().train(mode)
        if self.config.train_blocks >= 0:
            self.image_tower.eval()
        return self

    def frozen_features_part(self) -> str | None:
        """The cached tower output training runs on: ``"pooled"`` (frozen), ``"tap<k>"`` (the input of the first
        fine-tuned block), or ``None`` (training runs on pixels)."""
        k = self.config.train_blocks
        if k < 0:
            return None
        return "pooled" if k == 0 else f"tap{int(getattr(self.image_tower, 'n_blocks', 0)) - k}"

    def encode_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Cached tower outputs (see :meth:`frozen_features_part`) -> unit image embeddings (differentiable).

        Shapes: pooled ``[B, dim]`` or a block input ``[B, C, h, w]`` -> ``[B, output_dim]``.
        """
        x = features.float()
        if x.dim() == 4:
            tower: Any = self.image_tower
            start = tower.n_blocks - self.config.train_blocks
            x = tower.head(tower.blocks(x, start)).mean(dim=(2, 3))
        return self._project_image(x)

    def _heads(self) -> list[nn.Module]:
        """Member 0 (this module's own projections) and the other members of an ensemble."""
        return [self, *self.members]

    def _project_image(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled tower features -> unit (joined) embeddings; each member draws its own dropout mask."""
        return self.join_members([F.normalize(h.image_proj(self.image_dropout(x)), dim=-1) for h in self._heads()])

    @staticmethod
    def join_members(parts: list[torch.Tensor]) -> torch.Tensor:
        """Members' unit embeddings ``[B, E]`` each -> ``[B, E * n]`` unit rows (concatenated, / sqrt(n))."""
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1) / len(parts) ** 0.5

    def split_members(self, embeds: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of :meth:`join_members`: ``[B, E * n]`` -> n unit ``[B, E]`` member embeddings."""
        n = self.config.ensemble
        return [embeds] if n == 1 else [c * n ** 0.5 for c in embeds.split(self.config.embed_dim, dim=-1)]

    def prepare_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Raw pixels -> what :meth:`encode_image` takes: resized to the tower's size, 3 channels, normalised.

        Shapes: ``[B, C, H, W]`` with ``C`` 1 or 3, uint8 (0..255) or float in [0, 1] -> ``[B, 3, S, S]``.
        """
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(f"images must be [B, 1|3, H, W], got {tuple(images.shape)}")
        size = self.image_tower.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.image_tower.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.image_tower.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (see :meth:`prepare_pixels`) -> unit image embeddings (differentiable).

        Shapes: ``[B, 3, S, S]`` -> ``[B, output_dim]``.
        """
        return self._project_image(self.image_tower(pixels))

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Raw pixels -> unit embeddings, in eval mode and chunks (inference).

        Shapes: ``[N, C, H, W]`` uint8 or float in [0, 1] -> ``[N, output_dim]`` float32 on the CPU.
        """
        was = self.training
        self.eval()
        device = self.logit_scale.device
        out = [self.encode_image(self.prepare_pixels(images[i:i + batch_size].to(device))).float().cpu()
               for i in range(0, len(images), batch_size)]
        self.train(was)
        return torch.cat(out) if out else torch.zeros(0, self.config.output_dim)

    # -------------------------------------------------------------------------------------------------- text

    @property
    def text_fingerprint(self) -> str:
        return str(self.text_encoder.fingerprint)

    def set_linker(self, linker: ConceptSource | None) -> None:
        """Use ``linker`` (anything with ``concepts(text) -> list[str]``) to link texts to concepts."""
        self.__dict__["linker"] = linker

    def _default_linker(self) -> ConceptSource:
        if self.linker is None:
            from kgclip.ontology.store import load_ontologies
            from kgclip.text.linker import ConceptLinker

            self.__dict__["linker"] = ConceptLinker.from_graph(load_ontologies())
        return self.linker

    def concept_indices(self, links: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[torch.Tensor, ...]:
        """``(affirmed ids, negated ids)`` per text -> padded table rows (unknown ids dropped, duplicates removed).

        Shapes: ``B`` pairs -> ``(idx, mask, neg_idx, neg_mask)``, each ``[B, K]`` (long / bool) with
        ``K = config.max_concepts``; padding has index 0 and mask False.
        """
        k = self.config.max_concepts
        out = []
        for part in (0, 1):
            idx = torch.zeros(len(links), k, dtype=torch.long)
            mask = torch.zeros(len(links), k, dtype=torch.bool)
            for row, pair in enumerate(links):
                rows = [self._concept_index[c] for c in dict.fromkeys(pair[part]) if c in self._concept_index][:k]
                if rows:
                    idx[row, :len(rows)] = torch.tensor(rows)
                    mask[row, :len(rows)] = True
            out += [idx, mask]
        return tuple(out)

    def link(self, texts: Sequence[str]) -> list[tuple[list[str], list[str]]]:
        """``(affirmed, negated)`` concept ids of each text; uncertain mentions count as affirmed (as in
        :class:`kgclip.text.enrich.TextEnricher`). Empty when the model has no enrichment."""
        if self.config.enrichment == "none":
            return [([], []) for _ in texts]
        return link_texts(self._default_linker(), texts)

    def encode_text_features(self, text_emb: torch.Tensor, concept_idx: torch.Tensor | None = None,
                             concept_mask: torch.Tensor | None = None, negated_idx: torch.Tensor | None = None,
                             negated_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen text-tower vectors (+ linked concepts) -> unit joint-space embeddings (differentiable).

        Shapes: ``text_emb`` ``[B, Dt]``, concept / negated indices and masks ``[B, K]`` -> ``[B, output_dim]``.
        """
        base = text_emb.float()
        fuse = self.fusion is not None and concept_idx is not None and concept_mask is not None
        if fuse:
            concepts = self.concept_vectors[concept_idx]
            neg = self.concept_vectors[negated_idx] if negated_idx is not None else None
            neg_mask = negated_mask.bool() if negated_mask is not None else None
        parts = []
        for head in self._heads():
            x = head.fusion(base, concepts, concept_mask.bool(), neg, neg_mask) if fuse else base
            parts.append(F.normalize(head.text_proj(x), dim=-1))
        return self.join_members(parts)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 256,
                    links: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None) -> torch.Tensor:
        """Texts -> unit joint-space embeddings (inference).

        Args:
            texts: the texts.
            batch_size: texts per forward pass.
            links: already-linked ``(affirmed, negated)`` concept ids per text (default: the model's linker).

        Shapes: ``N`` texts -> ``[N, output_dim]`` float32 on the CPU.
        """
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.config.output_dim)
        was = self.training
        self.eval()
        device = self.logit_scale.device
        base = self.text_encoder.encode(texts, batch_size=batch_size).float()
        tensors = self.concept_indices(list(links) if links is not None else self.link(texts))
        out = [self.encode_text_features(base[i:i + batch_size].to(device),
                                         *(t[i:i + batch_size].to(device) for t in tensors)).cpu()
               for i in range(0, len(texts), batch_size)]
        self.train(was)
        return torch.cat(out)

    def encode_concepts(self, concept_idx: torch.Tensor) -> torch.Tensor:
        """Concept table rows -> unit joint-space embeddings (for the alignment loss).

        Shapes: ``[C]`` long -> ``[C, embed_dim]``.
        """
        if self.concept_proj is None:
            raise ConfigError("this model has no concept head; build it with concept_head=True")
        return F.normalize(self.concept_proj(self.concept_vectors[concept_idx]), dim=-1)

    # ----------------------------------------------------------------------------------------------- forward

    def scale(self) -> torch.Tensor:
        """``1 / temperature``, clamped to ``config.max_logit_scale``."""
        return self.logit_scale.exp().clamp(max=self.config.max_logit_scale)

    def forward(self, pixels: torch.Tensor, text_emb: torch.Tensor, *concepts: torch.Tensor) -> KGClipOutput:
        """Shapes: ``pixels`` ``[B, 3, S, S]``, ``text_emb`` ``[B, Dt]``, ``concepts`` the (up to four) ``[B, K]``
        tensors of :meth:`concept_indices` -> embeddings ``[B, E]``."""
        return KGClipOutput(self.encode_image(pixels), self.encode_text_features(text_emb, *concepts), self.scale())

    # ------------------------------------------------------------------------------------------- persistence

    def fingerprints(self) -> dict[str, str]:
        """Fingerprints of the inputs the model depends on (concept table, text tower)."""
        return {"concept_embeddings": self.concept_fingerprint, "text_tower": self.text_fingerprint}

    def save_pretrained(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write the model to ``directory`` atomically (replacing an older one only once the new one is complete).

        Args:
            directory: target directory.
            extra: JSON-serialisable facts to keep beside the config (training summary...).
        """
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        with atomic_directory(directory) as tmp:
            save_file(state, str(tmp / "model.safetensors"))
            atomic_write_json(tmp / "concepts.json", self.concept_ids)
            atomic_write_json(tmp / CHECKPOINT_FILE, {
                "format": _FORMAT, "type": "KGClipConfig", "config": self.config.to_dict(),
                "fusion": type(self.fusion).__qualname__ if self.fusion is not None else None,
                "fingerprints": self.fingerprints(), "versions": library_versions(), "extra": extra or {},
            })
        return Path(directory)

    @staticmethod
    def read_checkpoint_info(directory: str | os.PathLike[str]) -> dict[str, Any]:
        """The JSON header of a saved model (config, fingerprints, versions, extra)."""
        path = Path(directory) / CHECKPOINT_FILE
        info = read_json_header(path, missing=f"{directory} is not a kgclip model directory (no {CHECKPOINT_FILE}); "
                                              "train one with `kgclip train --data medpix PATH` or pass the directory "
                                              "it wrote",
                                recover="re-train or restore the model", missing_error=ModelNotFoundError)
        if info.get("format") != _FORMAT or info.get("type") != "KGClipConfig":
            raise ArtifactCorruptError(f"{path} is not a kgclip model header of format {_FORMAT}")
        return info

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *, expected_config: KGClipConfig | None = None,
                        text_encoder: Any = None, linker: ConceptSource | None = None,
                        check_text_tower: bool = True) -> "KGClipModel":
        """Load a model written by :meth:`save_pretrained`.

        Args:
            directory: the model directory.
            expected_config: refuse (``ConfigError``) a checkpoint whose config differs from this one.
            text_encoder: the text tower to use (default: load ``config.text_tower``).
            linker: the concept linker to use (default: the shipped ontologies, built on first use).
            check_text_tower: refuse a text tower whose fingerprint differs from the one trained with.

        Raises:
            ModelNotFoundError, ArtifactCorruptError, ConfigError (another configuration),
            EncoderMismatchError (another text tower).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        info = cls.read_checkpoint_info(directory)
        config = KGClipConfig.from_dict(info["config"])
        if expected_config is not None and expected_config != config:
            diff = {k: (v, getattr(expected_config, k)) for k, v in config.to_dict().items()
                    if expected_config.to_dict()[k] != v}
            raise ConfigError(f"{directory} holds a model of another configuration (field: saved vs expected "
                              f"{diff}); train a new model or load it without expected_config")
        try:
            concept_ids = json.loads((Path(directory) / "concepts.json").read_text(encoding="utf-8"))
            state = load_file(str(Path(directory) / "model.safetensors"))
        except (OSError, json.JSONDecodeError, SafetensorError) as exc:
            raise ArtifactCorruptError(f"{directory}: model files unreadable ({exc}); re-train or restore it") from exc
        model = cls(config, concept_ids=concept_ids if config.enrichment != "none" else None,
                    concept_fingerprint=info["fingerprints"].get("concept_embeddings", ""),
                    text_encoder=text_encoder, linker=linker)
        model.load_weights(state, source=str(directory))
        saved_text = info["fingerprints"].get("text_tower")
        if check_text_tower and saved_text and saved_text != model.text_fingerprint:
            raise EncoderMismatchError(
                f"{directory} was trained on text tower {config.text_tower!r} with fingerprint {saved_text}, but the "
                f"loaded tower has {model.text_fingerprint}; install the same text model or re-train")
        return model.eval()

    def load_weights(self, state: dict[str, torch.Tensor], source: str = "state") -> None:
        """Load a state dict, refusing one of another architecture with a clear error."""
        if mismatch := state_mismatch(self, state, show=5):
            raise ConfigError(
                f"{source} was saved from a model of another configuration: {mismatch}; load it with its own config "
                "(from_pretrained) or start training afresh")
        self.load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "fingerprints": self.fingerprints(),
                "concepts": len(self.concept_ids),
                "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad)}
