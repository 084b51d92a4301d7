"""Text side: concept linking with negation, text towers, and KG-enriched text embeddings.

Submodules import lazily-heavy dependencies themselves (torch for the towers and the fusion); importing this package
imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgclip._lazy import lazy_exports

__all__ = [
    "ConceptLinker",
    "LinkerConfig",
    "Mention",
    "ContextAnnotator",
    "NegationConfig",
    "TextEncoder",
    "load_text_encoder",
    "EnrichedText",
    "ConceptFusion",
    "TextEnricher",
]

_WHERE = {
    "ConceptLinker": "linker", "LinkerConfig": "linker", "Mention": "linker",
    "ContextAnnotator": "negation", "NegationConfig": "negation",
    "TextEncoder": "encoders", "load_text_encoder": "encoders",
    "EnrichedText": "enrich", "ConceptFusion": "enrich", "TextEnricher": "enrich",
}

if TYPE_CHECKING:
    from kgclip.text.encoders import TextEncoder, load_text_encoder
    from kgclip.text.enrich import ConceptFusion, EnrichedText, TextEnricher
    from kgclip.text.linker import ConceptLinker, LinkerConfig, Mention
    from kgclip.text.negation import ContextAnnotator, NegationConfig

__getattr__, __dir__ = lazy_exports(__name__, {name: f"kgclip.text.{module}" for name, module in _WHERE.items()})
