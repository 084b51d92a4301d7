"""Building a workspace (:meth:`kgclip.engine.Engine.build`) and the trained parts a config asks for.

Write discipline of a build: every input is read and every vector, table and model is computed before the first
write into the workspace, so a bad input (a missing or corrupt model directory, stale embeddings, unreadable data)
fails with the workspace untouched. The files are then written one by one, each atomically, with the manifest
last; :func:`kgclip.engine.load.load_workspace` checks the artifacts against the manifest, so a write phase cut
short is refused on load, never answered from.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kgclip.engine.cases import Case, case_meta, cases_from_vqa_rad, save_cases
from kgclip.engine.config import EngineConfig
from kgclip.engine.manifest import write_engine_manifest
from kgclip.engine.model_parts import NeighborConcepts
from kgclip.engine.tables import new_table
from kgclip.errors import ConfigError
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad

__all__ = ["WorkspaceParts", "build_workspace", "trained_parts", "shipped_demo_dir"]


def shipped_demo_dir() -> Path | None:
    """The CC0 VQA-RAD sample the package ships (``kgclip/demo_data/vqa-rad``), if present."""
    path = Path(__file__).resolve().parents[1] / "demo_data" / "vqa-rad"
    return path if path.is_dir() else None


@dataclass
class WorkspaceParts:
    """Everything an :class:`~kgclip.engine.Engine` holds, as built or loaded (field names are its arguments)."""

    directory: Path
    config: EngineConfig
    graph: ConceptGraph
    cases: list[Case]
    answerer: VQAAnswerer
    image_table: Any  # a kgclip.index VectorIndex of the case images
    text_table: Any  # a kgclip.index VectorIndex of the case texts
    text_encoder: Any  # questions and the answerer
    manifest: dict[str, Any]
    featurizer: Any  # image vectors: the KG-CLIP image tower, or the thumbnail descriptor
    table_text_encoder: Any  # the case-text table (the model's joint space, or text_encoder)
    neighbors: NeighborConcepts | None  # GNN nearest concepts, when configured


def build_workspace(config: EngineConfig, workspace_dir: str | Path, *, vqa_rad: str | Path | None = None,
                    graph: ConceptGraph | None = None, show_progress: bool = True,
                    embeddings: Any = None, model_fp: str | None = None) -> WorkspaceParts:
    """Build a workspace (see :meth:`kgclip.engine.Engine.build`).

    Args:
        embeddings: the ``ConceptEmbeddings`` of ``config.concept_embeddings_dir`` when the caller already read
            them (they are still checked against the graph).
        model_fp: the fingerprint of ``config.model_dir`` when the caller already computed it.
    """
    from tqdm.auto import tqdm

    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.ontology.store import load_ontologies, save_cache
    from kgclip.text.encoders import load_text_encoder

    if vqa_rad is None:
        vqa_rad = shipped_demo_dir()
        if vqa_rad is None:
            raise ConfigError("no data to build from: pass vqa_rad=PATH (a folder with the VQA-RAD JSON and "
                              "images/); the shipped sample kgclip/demo_data/vqa-rad is missing")
    config = config.with_parts()
    steps = tqdm(total=6, desc="building workspace", disable=not show_progress)
    items = read_vqa_rad(vqa_rad)
    if graph is None:
        graph = load_ontologies(list(config.ontology_dirs) or None)
    steps.update()
    encoder = load_text_encoder(config.text_encoder, device="cpu")
    if config.concept_embeddings_dir is not None:
        embeddings = read_embeddings(config.concept_embeddings_dir, embeddings)
        embeddings.check_current(graph, directory=config.concept_embeddings_dir)
    featurizer, table_encoder, neighbors = trained_parts(config, encoder, graph, model_fp=model_fp,
                                                         embeddings=embeddings)
    cases = cases_from_vqa_rad(items)
    sources = [Path(c.image) for c in cases]
    tagger = ConceptTagger(graph) if config.use_kg else None
    for case in cases:
        case.concepts = tagger.concept_ids(case.text, include_negated=False) if tagger else []
    steps.update()
    img = featurizer.embed(sources, show_progress=show_progress)
    txt = table_encoder.encode([c.text or c.case_id for c in cases], show_progress=show_progress).numpy()
    steps.update()
    train = examples_from_vqa_rad([i for i in items if i.split == "train"])
    answerer, val = VQAAnswerer.fit(train, {c.case_id: v for c, v in zip(cases, img)},
                                    graph=graph if config.use_kg else None, text_encoder=encoder,
                                    config=replace(config.answerer, use_kg=config.use_kg),
                                    image_featurizer=featurizer.name, show_progress=show_progress)
    answerer.tagger = tagger
    steps.update()
    # Everything is computed: from here on the workspace is written (manifest last).
    workspace = Path(workspace_dir)
    (workspace / "images").mkdir(parents=True, exist_ok=True)
    for case, src in zip(cases, sources):  # the workspace owns copies of its images (thumbnails, re-embedding)
        dst = workspace / "images" / src.name
        if src.is_file() and not dst.exists():
            shutil.copyfile(src, dst)
        case.image = f"images/{src.name}"
    image_table = new_table(config.index_backend, config.index_uri, workspace, "image", featurizer.dim,
                            featurizer.fingerprint)
    text_table = new_table(config.index_backend, config.index_uri, workspace, "text", table_encoder.dim,
                           table_encoder.fingerprint)
    meta = [case_meta(c) for c in cases]
    image_table.add(list(range(len(cases))), img, meta)
    text_table.add(list(range(len(cases))), txt, meta)
    steps.update()
    save_cache(graph, workspace / "graph.safetensors")
    save_cases(workspace / "cases.json", cases)
    answerer.save(workspace / "answerer")
    image_table.save(workspace / "index_image")
    text_table.save(workspace / "index_text")
    config.save(workspace / "engine_config.json")
    source = str(Path(vqa_rad).expanduser().resolve())  # absolute: Engine.open / refresh rebuild from it
    manifest = write_engine_manifest(workspace, config, graph, encoder, featurizer, cases,
                                     {"val_acc": val["val_acc"], "source": source}, neighbors)
    steps.update()
    steps.close()
    return WorkspaceParts(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                          featurizer, table_encoder, neighbors)


def read_embeddings(directory: str, embeddings: Any = None) -> Any:
    from kgclip.kg.embeddings import ConceptEmbeddings

    return embeddings if embeddings is not None else ConceptEmbeddings.load(directory)


def trained_parts(config: EngineConfig, encoder: Any, graph: ConceptGraph, *, model_fp: str | None = None,
                  embeddings: Any = None) -> tuple[Any, Any, NeighborConcepts | None]:
    """The image featuriser, the case-text table encoder and the concept neighbours the config asks for.

    ``model_fp`` / ``embeddings``: already computed / loaded (and checked against ``graph``) by the caller, so
    the weights are not hashed and the embeddings not read a second time.
    """
    featurizer: Any = ThumbnailFeaturizer()
    table_encoder: Any = encoder
    if config.model_dir is not None:
        from kgclip.engine.model_parts import ModelImageFeaturizer, ModelTextEncoder, load_model, model_fingerprint

        fp = model_fp or model_fingerprint(config.model_dir)
        model = load_model(config.model_dir, text_encoder=encoder)
        featurizer = ModelImageFeaturizer(model, config.model_dir, fingerprint=fp)
        table_encoder = ModelTextEncoder(model, fp)
    neighbors = None
    if config.concept_embeddings_dir is not None:
        neighbors = (NeighborConcepts(embeddings, config.concept_embeddings_dir) if embeddings is not None
                     else NeighborConcepts.load(config.concept_embeddings_dir, graph))
    return featurizer, table_encoder, neighbors
