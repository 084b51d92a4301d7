"""Loading a workspace (:meth:`kgclip.engine.Engine.load`) and checking every artifact and trained part against
the manifest's fingerprints (staleness)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgclip.engine.build import (
    CONCEPT_PRIOR,
    METADATA_HEADS,
    WorkspaceParts,
    read_embeddings,
    trained_parts,
)
from kgclip.engine.cases import load_cases
from kgclip.engine.config import EngineConfig
from kgclip.engine.manifest import read_manifest
from kgclip.engine.model_parts import NeighborConcepts
from kgclip.engine.store import read_consistently
from kgclip.engine.tables import load_table
from kgclip.errors import EncoderMismatchError, ModelNotFoundError, StaleArtifactError
from kgclip.fingerprint import features_fingerprint, fingerprint_file
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.vqa import VQAAnswerer

__all__ = ["load_workspace"]


def load_workspace(workspace_dir: str | Path, *, text_encoder: str | None = None,
                   check_ontology_sources: bool = False, config: EngineConfig | None = None,
                   embeddings: Any = None, model_fp: str | None = None) -> WorkspaceParts:
    """Load and check a workspace (see :meth:`kgclip.engine.Engine.load`).

    Args:
        config: use this config instead of the saved one (same build, trained parts maybe at other paths: they
            are still checked against the manifest's fingerprints).
        embeddings: the ``ConceptEmbeddings`` of the configured directory, when the caller already read them.
        model_fp: the fingerprint of the configured model directory, when the caller already computed it.
    """
    workspace = Path(workspace_dir)
    return read_consistently(workspace, lambda: _load(workspace, text_encoder, check_ontology_sources, config,
                                                      embeddings, model_fp))


def _load(workspace: Path, text_encoder: str | None, check_ontology_sources: bool, config: EngineConfig | None,
          embeddings: Any, model_fp: str | None) -> WorkspaceParts:
    from kgclip.ontology.store import load_cache, load_ontologies
    from kgclip.text.encoders import load_text_encoder

    manifest = read_manifest(workspace)
    fps = manifest["fingerprints"]
    saved = _saved_config(workspace, fps)
    config = config or saved
    encoder = load_text_encoder(text_encoder or config.text_encoder, device="cpu")
    if encoder.fingerprint != fps["text_encoder"]:
        raise EncoderMismatchError(
            f"workspace {workspace} was built with text encoder {manifest['parts']['text_encoder']!r}, not "
            f"{encoder.name!r}; query it with the encoder it was built with, or rebuild it with Engine.build")
    for name, path in (("cases", workspace / "cases.json"),
                       ("answerer", workspace / "answerer" / "answerer.safetensors")):
        if not path.is_file() or fingerprint_file(path) != fps[name]:
            raise StaleArtifactError(f"{path} does not match the workspace manifest (changed or missing "
                                     "since the build); rebuild the workspace with Engine.build / kgclip demo")
    graph_file = workspace / "graph.safetensors"
    graph = load_cache(graph_file, trust_stored_fingerprint=(
        "graph_file" in fps and graph_file.is_file() and fingerprint_file(graph_file) == fps["graph_file"]))
    if graph.fingerprint() != fps["graph"]:
        raise StaleArtifactError(f"the concept graph in {workspace} does not match its manifest; rebuild")
    if check_ontology_sources:
        current = load_ontologies(list(config.ontology_dirs) or None)
        if current.fingerprint() != fps["graph"]:
            raise StaleArtifactError(
                f"the ontology changed since workspace {workspace} was built (curation edits?); call "
                "Engine.refresh(workspace) to re-link cases and retrain the answerer on the new graph")
    cases = load_cases(workspace / "cases.json")
    tagger = ConceptTagger(graph) if config.use_kg else None
    answerer = VQAAnswerer.load(workspace / "answerer", graph=graph if config.use_kg else None,
                                text_encoder=encoder, tagger=tagger)
    featurizer, table_encoder, neighbors = _load_parts(workspace, config, encoder, graph, fps, embeddings, model_fp)
    image_table = load_table(workspace / "index_image", featurizer.fingerprint)
    text_table = load_table(workspace / "index_text", table_encoder.fingerprint)
    feature_fp = features_fingerprint(featurizer)  # what the parts trained on the image vectors must match
    heads = None
    if (workspace / METADATA_HEADS).is_dir():  # workspaces built before the classifiers have none
        from kgclip.models.metadata_heads import MetadataHeads

        heads = MetadataHeads.load(workspace / METADATA_HEADS,
                                   feature_fingerprint=feature_fp)
    prior = None
    if (workspace / CONCEPT_PRIOR).is_dir():  # only workspaces whose cases have findings text have one
        from kgclip.rag.concept_prior import ConceptPrior

        prior = ConceptPrior.load(workspace / CONCEPT_PRIOR, feature_fingerprint=feature_fp)
    return WorkspaceParts(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                          featurizer, table_encoder, neighbors, heads, prior)


def _saved_config(workspace: Path, fps: Mapping[str, str]) -> EngineConfig:
    """``engine_config.json``, refused when it changed since the manifest was written (checksum of the file)."""
    path = workspace / "engine_config.json"
    config = EngineConfig.load(path)  # ConfigError naming the field for an invalid edit
    if "config_file" in fps and fingerprint_file(path) != fps["config_file"]:
        raise StaleArtifactError(f"{path} changed since workspace {workspace} was built; restore it, or rebuild "
                                 "the workspace with the config you want (Engine.build)")
    return config


def _load_parts(workspace: Path, config: EngineConfig, encoder: Any, graph: ConceptGraph,
                fps: Mapping[str, str], embeddings: Any = None,
                model_fp: str | None = None) -> tuple[Any, Any, NeighborConcepts | None]:
    """Reload the configured model / embeddings, refusing ones that changed since the build."""
    from kgclip.engine.model_parts import check_fingerprint, model_fingerprint

    rebuild = "rebuild the workspace with Engine.build (or Engine.refresh)"
    current, emb = model_fp, None
    if config.model_dir is not None:
        try:
            current = current or model_fingerprint(config.model_dir)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"workspace {workspace} was built with the KG-CLIP model at "
                                     f"{config.model_dir}, which is gone ({exc}); restore that directory or "
                                     f"{rebuild}") from exc
        check_fingerprint("KG-CLIP model", config.model_dir, fps.get("model"), current, workspace,
                          f"its image and text vectors came from the old model: {rebuild}, or restore the "
                          "model directory it was built with")
    if config.concept_embeddings_dir is not None:
        emb = read_embeddings(config.concept_embeddings_dir, embeddings)
        if emb.graph_fingerprint != graph.fingerprint():
            raise StaleArtifactError(
                f"the concept embeddings at {config.concept_embeddings_dir} describe another version of the "
                f"graph than workspace {workspace}; run `kgclip kg refresh --embeddings "
                f"{config.concept_embeddings_dir}` on the workspace's ontology, then Engine.refresh")
        check_fingerprint("concept embeddings", config.concept_embeddings_dir, fps.get("concept_embeddings"),
                          emb.fingerprint, workspace, f"{rebuild} to record the new embeddings")
    featurizer, table_encoder, neighbors = trained_parts(config, encoder, graph, model_fp=current, embeddings=emb)
    built_with = fps.get("image_featurizer")
    if config.model_dir is None and built_with and featurizer.fingerprint != built_with:
        raise StaleArtifactError(
            f"workspace {workspace} was built with other image features than {config.image_features!r} (the 32x32 "
            f"thumbnail of earlier kgclip versions, or changed tower weights): rebuild it with `kgclip demo --out "
            f"{workspace}` (the demo) or Engine.build(config, {str(workspace)!r}); to keep the thumbnail, build with "
            "EngineConfig(image_features='thumbnail')")
    return featurizer, table_encoder, neighbors
