"""Models: image towers (:mod:`kgclip.models.backbones`), the KG-enriched dual encoder, losses, training, zero-shot.

Nothing heavy is imported here: ``import kgclip.models`` does not import torch or transformers; import the
submodule you need (``from kgclip.models.backbones import load_image_tower``).
"""
