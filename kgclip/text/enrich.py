"""KG-enriched text embeddings: a text tower's vector fused with the embeddings of the concepts the text mentions.

:class:`ConceptFusion` (trainable, small) computes, for a batch::

    p_j   = W_c c_j                               affirmed concepts projected into the text space   [B, K, Dt]
    a     = softmax_j((W_q t) . p_j / sqrt(Dt))   attention with the text as query (padding masked)
    pos   = sum_j a_j p_j                         zero for a text without affirmed concepts
    neg   = mean_j W_n n_j                        negated concepts: their own projection, averaged   [B, Dt]
    g     = scale * sigmoid(W_g [t; pos])         gated residual, per dimension
    out   = normalize(t + g * pos - scale_neg * neg)

Negated concepts go through a *separate* learned projection and are subtracted, so "no pleural effusion" moves
away from "pleural effusion" instead of towards it, and the model can learn how much.

Untrained default: ``W_g = 0`` with bias 0, so ``g = scale / 2`` with ``scale = 0.4``; ``W_c`` and ``W_n`` are
random near-orthogonal projections, ``W_n`` initialised as ``W_c``. So the output is the text vector plus a small
(~0.2 relative) concept term: two texts that link the same concepts move closer, one that negates a concept the
other affirms moves apart, and text-to-text retrieval still works when nothing is linked (output = text).

:class:`TextEnricher` ties a text tower, a :class:`~kgclip.text.linker.ConceptLinker` and concept embeddings
(``kgclip.kg.embeddings.ConceptEmbeddings`` or anything with ``.vectors`` / ``.ids`` / ``.dim``) together.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from kgclip.errors import ConfigError
from kgclip.text.encoders import TextEncoder
from kgclip.text.linker import ConceptLinker, Mention

__all__ = ["EnrichedText", "ConceptFusion", "TextEnricher", "ConceptVectors", "ConceptBatch"]


class ConceptVectors(Protocol):
    """What the enricher needs of concept embeddings (``kgclip.kg.embeddings.ConceptEmbeddings`` provides it)."""

    @property
    def vectors(self) -> torch.Tensor: ...  # [N, Dc]

    @property
    def ids(self) -> Sequence[str]: ...


@dataclasses.dataclass
class EnrichedText:
    """One text with its enriched embedding.

    Attributes:
        text: the input text.
        embedding: ``[Dt]`` float32, unit norm: the fused embedding.
        concept_ids: linked, non-negated concepts that have an embedding (what the fusion used).
        negated_ids: linked, negated concepts that have an embedding.
        mentions: every mention the linker found (with context flags).
    """

    text: str
    embedding: torch.Tensor
    concept_ids: list[str]
    negated_ids: list[str]
    mentions: list[Mention]

    def _repr_html_(self) -> str:
        pos = ", ".join(html.escape(c) for c in self.concept_ids) or "&ndash;"
        neg = ", ".join(html.escape(c) for c in self.negated_ids) or "&ndash;"
        return (f"<div><i>{html.escape(self.text[:300])}</i><br>concepts: {pos}<br>negated: {neg}<br>"
                f"embedding: {tuple(self.embedding.shape)}</div>")


@dataclasses.dataclass
class ConceptBatch:
    """Padded concept indices of a batch of texts (rows into the concept embedding matrix).

    Shapes:
        concept_index, concept_mask, negated_index, negated_mask: ``[B, K]`` / ``[B, Kn]`` (long / bool);
        padding has index 0 and mask False; ``K, Kn >= 1``.
    """

    concept_index: torch.Tensor
    concept_mask: torch.Tensor
    negated_index: torch.Tensor
    negated_mask: torch.Tensor

    def __iter__(self):  # unpacks as (concept_index, mask, negated_index, negated_mask)
        return iter((self.concept_index, self.concept_mask, self.negated_index, self.negated_mask))

    def to(self, device: torch.device | str) -> "ConceptBatch":
        return ConceptBatch(*(t.to(device) for t in self))


class ConceptFusion(nn.Module):
    """Fuses a text embedding with the embeddings of its affirmed and negated concepts.

    Args:
        text_dim: ``Dt``, the text tower's dimension.
        concept_dim: ``Dc``, the concept embeddings' dimension.
        init_scale: size of the concept term in the untrained default (see the module docstring).
        seed: seed of the initial projections, so the untrained default is reproducible.

    Shapes:
        text_emb ``[B, Dt]``, concept_emb ``[B, K, Dc]``, mask ``[B, K]`` (True = real concept),
        negated_emb ``[B, Kn, Dc]`` and negated_mask ``[B, Kn]`` (optional) -> ``[B, Dt]`` unit vectors.
    """

    def __init__(self, text_dim: int, concept_dim: int, init_scale: float = 0.4, seed: int = 0) -> None:
        super().__init__()
        if text_dim < 1 or concept_dim < 1:
            raise ConfigError(f"text_dim and concept_dim must be >= 1, got {text_dim}, {concept_dim}")
        self.text_dim, self.concept_dim = text_dim, concept_dim
        self.concept_proj = nn.Linear(concept_dim, text_dim, bias=False)
        self.negated_proj = nn.Linear(concept_dim, text_dim, bias=False)
        self.query = nn.Linear(text_dim, text_dim, bias=False)
        self.gate = nn.Linear(2 * text_dim, text_dim)
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.negated_scale = nn.Parameter(torch.tensor(float(init_scale) / 2))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            # (semi-)orthogonal projections keep distances between concepts; identity query; closed gate.
            weight = torch.linalg.qr(torch.randn(max(text_dim, concept_dim), min(text_dim, concept_dim),
                                                 generator=generator))[0]
            weight = weight if text_dim >= concept_dim else weight.T
            self.concept_proj.weight.copy_(weight[:text_dim, :concept_dim])
            self.negated_proj.weight.copy_(weight[:text_dim, :concept_dim])
            self.query.weight.copy_(torch.eye(text_dim))
            self.gate.weight.zero_()
            self.gate.bias.zero_()

    def forward(self, text_emb: torch.Tensor, concept_emb: torch.Tensor, mask: torch.Tensor,
                negated_emb: torch.Tensor | None = None, negated_mask: torch.Tensor | None = None) -> torch.Tensor:
        if text_emb.dim() != 2 or text_emb.shape[1] != self.text_dim:
            raise ValueError(f"text_emb must be [B, {self.text_dim}], got {tuple(text_emb.shape)}")
        if concept_emb.dim() != 3 or concept_emb.shape[-1] != self.concept_dim or mask.shape != concept_emb.shape[:2]:
            raise ValueError(f"concept_emb must be [B, K, {self.concept_dim}] with mask [B, K]; got "
                             f"{tuple(concept_emb.shape)} and {tuple(mask.shape)}")
        mask = mask.bool()
        # Unit concept vectors: the concept term's size is then set by the gate alone, whatever the KG encoder's scale.
        projected = self.concept_proj(nn.functional.normalize(concept_emb.to(text_emb.dtype), dim=-1))  # [B, K, Dt]
        logits = torch.einsum("bd,bkd->bk", self.query(text_emb), projected) / math.sqrt(self.text_dim)
        logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # an all-padding row gives zeros, not NaN
        weights = weights * mask
        pooled = torch.einsum("bk,bkd->bd", weights, projected)
        gate = self.scale * torch.sigmoid(self.gate(torch.cat([text_emb, pooled], dim=-1)))
        out = text_emb + gate * pooled
        if negated_emb is not None and negated_mask is not None and negated_emb.shape[1] > 0:
            nm = negated_mask.bool().unsqueeze(-1).to(text_emb.dtype)
            unit = nn.functional.normalize(negated_emb.to(text_emb.dtype), dim=-1)
            neg = (self.negated_proj(unit) * nm).sum(1) / nm.sum(1).clamp(min=1.0)
            out = out - self.negated_scale * neg
        return nn.functional.normalize(out, dim=-1)


class TextEnricher:
    """Text tower + linker + concept embeddings + fusion.

    Args:
        encoder: a text tower (``kgclip.text.encoders.load_text_encoder``).
        linker: a :class:`ConceptLinker` over the graph whose concepts ``concept_embeddings`` covers.
        concept_embeddings: ``.vectors [N, Dc]``, ``.ids`` (length N), ``.dim``.
        fusion: a trained :class:`ConceptFusion`, or ``None`` for the untrained default.
        include_uncertain: whether uncertain mentions ("possible pneumonia") count as affirmed concepts.
        max_concepts: at most this many affirmed (and negated) concepts per text, in text order.
    """

    def __init__(self, encoder: TextEncoder, linker: ConceptLinker, concept_embeddings: Any,
                 fusion: ConceptFusion | None = None, include_uncertain: bool = True, max_concepts: int = 32) -> None:
        vectors = concept_embeddings.vectors
        if vectors.dim() != 2 or vectors.shape[0] != len(concept_embeddings.ids):
            raise ValueError(f"concept_embeddings.vectors must be [N, D] with N = len(ids); got "
                             f"{tuple(vectors.shape)} for {len(concept_embeddings.ids)} ids")
        if max_concepts < 1:
            raise ConfigError(f"max_concepts must be >= 1, got {max_concepts}")
        self.encoder, self.linker, self.concepts = encoder, linker, concept_embeddings
        self.fusion = fusion or ConceptFusion(encoder.dim, int(vectors.shape[1]))
        if self.fusion.text_dim != encoder.dim or self.fusion.concept_dim != vectors.shape[1]:
            raise ValueError(f"fusion is {self.fusion.text_dim}x{self.fusion.concept_dim} but the encoder gives "
                             f"{encoder.dim} and the concepts {vectors.shape[1]} dimensions")
        self.include_uncertain, self.max_concepts = include_uncertain, max_concepts
        self._row = {cid: i for i, cid in enumerate(concept_embeddings.ids)}

    def _split(self, mentions: list[Mention]) -> tuple[list[str], list[str]]:
        pos: list[str] = []
        neg: list[str] = []
        for m in mentions:
            if m.concept_id not in self._row:
                continue  # no embedding for it (e.g. a concept added after the KG was encoded)
            if m.negated:
                neg.append(m.concept_id)
            elif self.include_uncertain or not m.uncertain:
                pos.append(m.concept_id)
        pos = list(dict.fromkeys(pos))[: self.max_concepts]
        neg = [c for c in dict.fromkeys(neg) if c not in pos][: self.max_concepts]
        return pos, neg

    def collate_concepts(self, texts: Sequence[str] | None = None, *,
                         mentions: Sequence[list[Mention]] | None = None) -> ConceptBatch:
        """Link ``texts`` (or take their ``mentions``) and pad their concept rows.

        Shapes:
            returns concept_index ``[B, K]`` long, mask ``[B, K]`` bool, negated_index ``[B, Kn]``, negated_mask
            ``[B, Kn]`` (indices into ``concept_embeddings.vectors``); unpacks as a 4-tuple.
        """
        if mentions is None:
            mentions = self.linker.link_batch(list(texts or []))
        splits = [self._split(list(m)) for m in mentions]

        def pad(rows: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
            k = max([len(r) for r in rows] + [1])
            index = torch.zeros(len(rows), k, dtype=torch.long)
            mask = torch.zeros(len(rows), k, dtype=torch.bool)
            for b, row in enumerate(rows):
                if row:
                    index[b, : len(row)] = torch.tensor([self._row[c] for c in row], dtype=torch.long)
                    mask[b, : len(row)] = True
            return index, mask

        ci, cm = pad([p for p, _ in splits])
        ni, nm = pad([n for _, n in splits])
        return ConceptBatch(ci, cm, ni, nm)

    def fuse(self, text_emb: torch.Tensor, batch: ConceptBatch) -> torch.Tensor:
        """Differentiable fusion of precomputed text embeddings with a :class:`ConceptBatch`.

        Shapes:
            text_emb ``[B, Dt]`` -> ``[B, Dt]``.
        """
        vectors = self.concepts.vectors.to(text_emb.device)
        batch = batch.to(text_emb.device)
        return self.fusion(text_emb, vectors[batch.concept_index], batch.concept_mask,
                           vectors[batch.negated_index], batch.negated_mask)

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> list[EnrichedText]:
        """Enriched embeddings of ``texts`` with what was linked in each."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return []
        mentions = self.linker.link_batch(texts, show_progress=show_progress)
        embeddings = self._encode(texts, mentions, batch_size, show_progress)
        out = []
        for text, ments, emb in zip(texts, mentions, embeddings):
            pos, neg = self._split(ments)
            out.append(EnrichedText(text, emb, pos, neg, ments))
        return out

    def encode_tensor(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> torch.Tensor:
        """Shapes: ``texts`` of length B -> ``[B, Dt]`` float32 unit vectors."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return torch.zeros(0, self.encoder.dim)
        mentions = self.linker.link_batch(texts, show_progress=show_progress)
        return self._encode(texts, mentions, batch_size, show_progress)

    def _encode(self, texts: list[str], mentions: list[list[Mention]], batch_size: int,
                show_progress: bool) -> torch.Tensor:
        text_emb = self.encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
        batch = self.collate_concepts(mentions=mentions)
        device = next(self.fusion.parameters()).device
        with torch.no_grad():
            out = self.fuse(text_emb.to(device), batch)
        return out.float().cpu()

    @property
    def fingerprint(self) -> str:
        """Changes with the encoder, the concept embeddings and the fusion weights."""
        from kgclip.fingerprint import Hasher

        h = Hasher().update_str(self.encoder.fingerprint)
        concepts_fp = getattr(self.concepts, "fingerprint", "")
        concepts_fp = concepts_fp() if callable(concepts_fp) else concepts_fp
        if concepts_fp:
            h.update_str(str(concepts_fp))
        else:
            h.update_array(self.concepts.vectors.detach().cpu().numpy())
        for name, tensor in sorted(self.fusion.state_dict().items()):
            h.update_str(name).update_array(tensor.detach().cpu().numpy())
        h.update_json([self.include_uncertain, self.max_concepts])
        return h.hexdigest()
