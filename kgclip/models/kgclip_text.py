"""The text side of the KG-enriched dual encoder: linking texts to concepts, fusing them in, projecting.

A text's linked concepts come as ``(affirmed, negated)`` id lists (:func:`link_texts`, from any
:class:`ConceptSource`); the model fuses their concept-table rows into the frozen text tower's vector
(:func:`build_fusion`, a :class:`kgclip.text.enrich.ConceptFusion`) and maps the result into the joint space
(:class:`TextHead`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["ConceptSource", "link_texts", "build_fusion", "TextHead"]


class ConceptSource(Protocol):
    """What the model needs from a linker (a ConceptLinker; ``link_batch`` is used when present)."""

    def concepts(self, text: str) -> list[str]: ...


def link_texts(linker: Any, texts: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """``(affirmed, negated)`` concept ids per text with a :class:`kgclip.text.linker.ConceptLinker`-like linker.

    A linker with ``link_batch`` (mentions with ``negated`` flags) gives both lists; one with only
    ``concepts(text)`` gives affirmed concepts and no negated ones.
    """
    if hasattr(linker, "link_batch"):
        out = []
        for mentions in linker.link_batch(list(texts)):
            pos = list(dict.fromkeys(m.concept_id for m in mentions if not m.negated))
            neg = [c for c in dict.fromkeys(m.concept_id for m in mentions if m.negated) if c not in pos]
            out.append((pos, neg))
        return out
    return [(list(dict.fromkeys(linker.concepts(t))), []) for t in texts]


def build_fusion(text_dim: int, concept_dim: int) -> nn.Module:
    """The module that mixes a text's concept rows into its text vector (:class:`kgclip.text.enrich.ConceptFusion`)."""
    from kgclip.text.enrich import ConceptFusion

    return ConceptFusion(text_dim=text_dim, concept_dim=concept_dim)


class TextHead(nn.Module):
    """Linear map plus (optionally) a residual MLP: the frozen tower's geometry survives at initialisation."""

    def __init__(self, d_in: int, d_out: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False)
        self.mlp = None
        if hidden:
            self.mlp = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) if self.mlp is None else self.linear(x) + self.mlp(x)
