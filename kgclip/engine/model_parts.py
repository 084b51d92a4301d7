"""Optional trained parts of a workspace: the KG-CLIP model (image descriptor and joint-space text side) and the
GNN concept embeddings (nearest concepts). The engine uses them only when its config names their directories; the
training-free :class:`~kgclip.models.thumbnail.ThumbnailFeaturizer` stays the default.

Both wrappers expose a ``fingerprint`` that the workspace manifest records, so a workspace whose model or
embeddings changed since it was built is detected on load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgclip.errors import StaleArtifactError
from kgclip.fingerprint import fingerprint_file, fingerprint_json
from kgclip.ontology.model import ConceptGraph
from kgclip.models.image_input import ImageLike, LoadedImage, load_image
from kgclip.rag.evidence import KGFact

__all__ = ["ModelImageFeaturizer", "ModelTextEncoder", "NeighborConcepts", "model_fingerprint", "NEAREST_RELATION",
           "check_fingerprint", "load_model"]

# Relation name of the "nearest by GNN embedding" facts (rendered "X similar by embedding Y").
NEAREST_RELATION = "similar_by_embedding"


def model_fingerprint(directory: str | Path) -> str:
    """Fingerprint of a saved KGClipModel directory (header + weights + concept ids).

    Raises:
        ModelNotFoundError: not a model directory.
    """
    from kgclip.models.kgclip import CHECKPOINT_FILE, KGClipModel

    root = Path(directory)
    KGClipModel.read_checkpoint_info(root)  # clear error for a directory that is not a model
    return fingerprint_json({name: fingerprint_file(root / name) if (root / name).is_file() else ""
                             for name in (CHECKPOINT_FILE, "model.safetensors", "concepts.json")})


def load_model(directory: str | Path, text_encoder: Any = None) -> Any:
    """Load a KGClipModel on the CPU, reusing ``text_encoder`` when it is the tower the model was trained with."""
    from kgclip.models.kgclip import KGClipModel

    info = KGClipModel.read_checkpoint_info(directory)
    same = text_encoder is not None and getattr(text_encoder, "fingerprint", None) == info["fingerprints"].get(
        "text_tower")
    return KGClipModel.from_pretrained(directory, text_encoder=text_encoder if same else None)


class ModelImageFeaturizer:
    """Image vectors from the KG-CLIP image tower (same interface as ``ThumbnailFeaturizer``).

    Shapes:
        ``embed(images)`` -> ``[N, output_dim]`` float32 unit vectors; ``embed_one`` -> ``[output_dim]``.
    """

    def __init__(self, model: Any, directory: str | Path, fingerprint: str | None = None) -> None:
        self.model = model
        self.dim = int(model.config.output_dim)
        self.name = f"kgclip-model:{Path(directory).name}"
        self.fingerprint = fingerprint or model_fingerprint(directory)

    def _pixels(self, image: ImageLike | LoadedImage) -> Any:
        """One image -> ``[1, S, S]`` float in [0, 1] at the tower's input size (resized here so that a batch
        can be stacked; prepare_pixels then skips its own resize, giving the same result as one at a time)."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(load_image(image).pixels, dtype=np.float32))[None, None]
        size = self.model.image_tower.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x[0].clamp(0.0, 1.0)

    def embed_one(self, image: ImageLike | LoadedImage) -> np.ndarray:
        return self.embed([image])[0]

    def embed(self, images: Sequence[ImageLike | LoadedImage], show_progress: bool = False,
              batch_size: int = 32) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in tqdm(range(0, len(images), batch_size), desc="image features (model)", disable=not show_progress,
                      leave=False):
            batch = torch.stack([self._pixels(im) for im in images[i:i + batch_size]])
            out.append(self.model.encode_images(batch).numpy())
        return np.concatenate(out).astype(np.float32)


class ModelTextEncoder:
    """Case texts and search queries in the model's joint space (so an image vector can search the text table).

    Shapes:
        ``encode(texts)`` -> ``[N, output_dim]`` float32 tensor of unit vectors.
    """

    def __init__(self, model: Any, fingerprint: str) -> None:
        self.model = model
        self.dim = int(model.config.output_dim)
        self.name = "kgclip-model-text"
        self.fingerprint = fingerprint_json({"model": fingerprint, "side": "text"})

    def encode(self, texts: Sequence[str], show_progress: bool = False, batch_size: int = 256) -> Any:
        return self.model.encode_text(list(texts), batch_size=batch_size)


class NeighborConcepts:
    """Nearest concepts by GNN embedding, as graph-style facts for evidence and :meth:`Engine.explain`."""

    def __init__(self, embeddings: Any, directory: str | Path) -> None:
        self.embeddings = embeddings
        self.directory = Path(directory)
        self.fingerprint = str(embeddings.fingerprint)

    @classmethod
    def load(cls, directory: str | Path, graph: ConceptGraph) -> "NeighborConcepts":
        """Load embeddings that describe ``graph``.

        Raises:
            StaleArtifactError: the graph changed since the embeddings were computed (run ``kgclip kg refresh``).
            ArtifactCorruptError: not an embeddings directory, or damaged.
        """
        from kgclip.kg.embeddings import ConceptEmbeddings

        return cls(ConceptEmbeddings.load(directory, graph=graph), directory)

    def nearest(self, concept_id: str, k: int = 5) -> list[tuple[str, float]]:
        """Up to ``k`` nearest concepts (id, cosine); empty for a concept without an embedding."""
        if concept_id not in self.embeddings or len(self.embeddings) < 2:
            return []
        return self.embeddings.nearest(concept_id, k)

    def facts(self, graph: ConceptGraph, concept_ids: Sequence[str], k: int = 3, limit: int = 12) -> list[KGFact]:
        """``concept --similar_by_embedding--> neighbour`` facts for each concept (neighbours in the graph only)."""
        facts: list[KGFact] = []
        for cid in dict.fromkeys(concept_ids):
            if cid not in graph:
                continue
            for other, _ in self.nearest(cid, k + 2):
                if other in graph and other != cid:
                    facts.append(KGFact(cid, graph.name_of(cid), NEAREST_RELATION, other, graph.name_of(other)))
                    if sum(f.source_id == cid for f in facts) >= k:
                        break
            if len(facts) >= limit:
                break
        return facts[:limit]


def check_fingerprint(kind: str, directory: str | Path, recorded: str | None, current: str, workspace: Path,
                      fix: str) -> None:
    """Refuse a part whose fingerprint differs from what the workspace manifest recorded."""
    if recorded != current:
        raise StaleArtifactError(f"the {kind} at {directory} changed since workspace {workspace} was built "
                                 f"(fingerprint {str(recorded)[:12]} -> {current[:12]}); {fix}")
