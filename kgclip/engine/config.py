"""How a workspace is built: :class:`EngineConfig`, saved beside the workspace as ``engine_config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.rag.answerer import AnswererConfig
from kgclip.rag.report import DraftConfig

__all__ = ["EngineConfig"]


@dataclass(frozen=True)
class EngineConfig(Config):
    """How a workspace is built."""

    text_encoder: str = "minilm"  # name or local directory of the text tower (questions and case texts)
    ontology_dirs: tuple[str, ...] = ()  # graph directories; empty: the ontologies kgclip ships
    use_kg: bool = True  # link questions and case texts to the graph; dedupe/contradictions in drafts
    answerer: AnswererConfig = field(default_factory=AnswererConfig)
    k_cases: int = 5  # similar cases shown as evidence
    # Drafting: the cases that vote on a draft's findings and how sentences are chosen (both selected on MedPix
    # validation carved from train; see kgclip.rag.report). Consensus needs many cases, not the few shown.
    draft_k: int = 160
    draft: DraftConfig = field(default_factory=DraftConfig)
    # Vector tables: an index backend registered in kgclip.index (kgclip.index.base.INDEX_BACKENDS): "faiss"
    # (in-process, saved in the workspace) or "milvus" (a Milvus collection per table).
    index_backend: str = "faiss"
    # milvus only: a Milvus Lite file ("x.db") or a server ("http://host:19530"), shared by both tables (each in a
    # new unique collection). None: a Milvus Lite file inside each table's directory (<workspace>/index_*/milvus.db),
    # so the workspace stays self-contained and movable.
    index_uri: str | None = None
    # A KGClipModel directory (kgclip train): its image tower gives the image vectors (image table, image search,
    # evidence, answerer) and its text side the case-text table, so image->text search works in the joint space.
    # None: the frozen image features below and the text encoder above (the default).
    model_dir: str | None = None
    # Image features without a model_dir, by name (kgclip.models.features.IMAGE_FEATURES): the ImageNet
    # EfficientNet-Lite0 tower's pooled features (the default: better than the 32x32 "thumbnail" descriptor on VQA-RAD
    # --split val, overall 0.409 vs 0.401, open 0.103 vs 0.082), "thumbnail", or "tower:<name>".
    image_features: str = "efficientnet-lite0"
    # GNN concept embeddings (kgclip kg train): explain() and evidence KG facts add the nearest concepts.
    concept_embeddings_dir: str | None = None
    # Images kept out of the workspace (file names such as "synpic15006.jpg", or image keys): no case and no training
    # question comes from them. The demo holds out the images it asks about, so its answers cannot be recalled from
    # the same image's other questions (99 % of VQA-RAD's test images are also training images).
    exclude_images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("k_cases", "draft_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}; fix engine_config.json "
                                  "or pass an int")
        if self.k_cases < 1 or self.draft_k < 1:
            raise ConfigError("k_cases and draft_k must be >= 1")
        self._check_index()
        if not isinstance(self.exclude_images, tuple | list) or not all(
                isinstance(name, str) and name.strip() for name in self.exclude_images):
            raise ConfigError("exclude_images must be a list of image file names (e.g. 'synpic15006.jpg'), got "
                              f"{self.exclude_images!r}")
        if not isinstance(self.text_encoder, str) or not self.text_encoder:
            raise ConfigError("text_encoder must name a text tower, e.g. 'minilm' or a local directory")
        if not isinstance(self.image_features, str) or not self.image_features.strip():
            raise ConfigError("image_features must name image features, e.g. 'efficientnet-lite0' or 'thumbnail'")
        for name in ("model_dir", "concept_embeddings_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a directory path or None, got {value!r}")
        if self.model_dir is not None and Path(self.model_dir).exists() and not Path(self.model_dir).is_dir():
            raise ConfigError(f"model_dir {self.model_dir!r} is a file; pass the directory `kgclip train` wrote")
        if (self.concept_embeddings_dir is not None and Path(self.concept_embeddings_dir).exists()
                and not Path(self.concept_embeddings_dir).is_dir()):
            raise ConfigError(f"concept_embeddings_dir {self.concept_embeddings_dir!r} is a file; pass the "
                              "directory `kgclip kg train` wrote")

    def _check_index(self) -> None:
        from kgclip.engine.tables import backend_class, keeps_external_store

        if not isinstance(self.index_backend, str):
            raise ConfigError(f"index_backend must name an index backend such as 'faiss', got {self.index_backend!r}")
        external = keeps_external_store(backend_class(self.index_backend))  # ConfigError listing the backends
        if self.index_uri is not None and not external:
            raise ConfigError(f"index_uri applies to a backend with an external store (e.g. 'milvus'), not "
                              f"{self.index_backend!r}; remove index_uri or set index_backend")
        if self.index_uri is not None and (not isinstance(self.index_uri, str) or not self.index_uri.strip()):
            raise ConfigError("index_uri must be a Milvus Lite file (x.db) or http://host:19530, or None")

    def with_parts(self, model_dir: str | Path | None = None,
                   concept_embeddings_dir: str | Path | None = None) -> "EngineConfig":
        """This config with the given trained parts (``None``: keep this config's), as absolute paths so that
        a workspace built with it loads from any working directory."""
        given = {"model_dir": model_dir or self.model_dir,
                 "concept_embeddings_dir": concept_embeddings_dir or self.concept_embeddings_dir}
        changes = {name: str(Path(value).expanduser().resolve()) for name, value in given.items() if value is not None}
        return replace(self, **changes)
