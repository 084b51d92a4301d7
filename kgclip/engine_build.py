"""Building, loading and re-opening an engine workspace: the :class:`EngineConfig`, the build, the manifest of
fingerprints and the staleness checks. :class:`kgclip.engine.Engine` wraps these; most users call
``Engine.build`` / ``Engine.load`` / ``Engine.open`` rather than the functions here.

Write discipline of a build: every input is read and every vector, table and model is computed before the first
write into the workspace, so a bad input (a missing or corrupt model directory, stale embeddings, unreadable data)
fails with the workspace untouched. The files are then written one by one, each atomically, with the manifest
last; :func:`load_workspace` checks the artifacts against the manifest, so a write phase cut short is refused on
load, never answered from.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kgclip.config import Config
from kgclip.errors import ConfigError, EncoderMismatchError, ModelNotFoundError, StaleArtifactError
from kgclip.fingerprint import fingerprint_file, fingerprint_json
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.answerer import AnswererConfig
from kgclip.rag.cases import Case, VectorTable, load_cases, save_cases
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.inputs import ThumbnailFeaturizer
from kgclip.rag.model_parts import NeighborConcepts
from kgclip.rag.report import DraftConfig
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad
from kgclip.rag.workspace import cases_from_vqa_rad, read_manifest, write_manifest

__all__ = ["EngineConfig", "WorkspaceParts", "build_workspace", "load_workspace", "case_meta",
           "write_engine_manifest"]


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
    # Vector tables: "faiss" (in-process, saved in the workspace) or "milvus" (a Milvus collection per table).
    index_backend: str = "faiss"
    # milvus only: a Milvus Lite file ("x.db") or a server ("http://host:19530"), shared by both tables (each in a
    # new unique collection). None: a Milvus Lite file inside each table's directory (<workspace>/index_*/milvus.db),
    # so the workspace stays self-contained and movable.
    index_uri: str | None = None
    # A KGClipModel directory (kgclip train): its image tower gives the image vectors (image table, image search,
    # evidence, answerer) and its text side the case-text table, so image->text search works in the joint space.
    # None: the training-free thumbnail descriptor and the text encoder above (the default).
    model_dir: str | None = None
    # GNN concept embeddings (kgclip kg train): explain() and evidence KG facts add the nearest concepts.
    concept_embeddings_dir: str | None = None

    def __post_init__(self) -> None:
        if self.k_cases < 1 or self.draft_k < 1:
            raise ConfigError("k_cases and draft_k must be >= 1")
        if self.index_backend not in ("faiss", "milvus"):
            raise ConfigError(f"index_backend must be 'faiss' or 'milvus', got {self.index_backend!r}")
        if self.index_uri is not None and self.index_backend != "milvus":
            raise ConfigError("index_uri applies to index_backend='milvus' only; remove it or set the backend")
        if self.index_uri is not None and (not isinstance(self.index_uri, str) or not self.index_uri.strip()):
            raise ConfigError("index_uri must be a Milvus Lite file (x.db) or http://host:19530, or None")
        if not self.text_encoder:
            raise ConfigError("text_encoder must name a text tower, e.g. 'minilm' or a local directory")
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

    def with_parts(self, model_dir: str | Path | None = None,
                   concept_embeddings_dir: str | Path | None = None) -> "EngineConfig":
        """This config with the given trained parts (``None``: keep this config's), as absolute paths so that
        a workspace built with it loads from any working directory."""
        given = {"model_dir": model_dir or self.model_dir,
                 "concept_embeddings_dir": concept_embeddings_dir or self.concept_embeddings_dir}
        changes = {name: str(Path(value).expanduser().resolve()) for name, value in given.items() if value is not None}
        return replace(self, **changes)


@dataclass
class WorkspaceParts:
    """Everything an :class:`~kgclip.engine.Engine` holds, as built or loaded (field names are its arguments)."""

    directory: Path
    config: EngineConfig
    graph: ConceptGraph
    cases: list[Case]
    answerer: VQAAnswerer
    image_table: VectorTable
    text_table: VectorTable
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
    from kgclip.rag.workspace import shipped_demo_dir
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
        embeddings = _read_embeddings(config.concept_embeddings_dir, embeddings)
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
    image_table = new_table(config, workspace, "image", featurizer.dim, featurizer.fingerprint)
    text_table = new_table(config, workspace, "text", table_encoder.dim, table_encoder.fingerprint)
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


def _read_embeddings(directory: str, embeddings: Any = None) -> Any:
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
        from kgclip.rag.model_parts import ModelImageFeaturizer, ModelTextEncoder, load_model, model_fingerprint

        fp = model_fp or model_fingerprint(config.model_dir)
        model = load_model(config.model_dir, text_encoder=encoder)
        featurizer = ModelImageFeaturizer(model, config.model_dir, fingerprint=fp)
        table_encoder = ModelTextEncoder(model, fp)
    neighbors = None
    if config.concept_embeddings_dir is not None:
        neighbors = (NeighborConcepts(embeddings, config.concept_embeddings_dir) if embeddings is not None
                     else NeighborConcepts.load(config.concept_embeddings_dir, graph))
    return featurizer, table_encoder, neighbors


def new_table(config: EngineConfig, workspace: Path, name: str, dim: int, fingerprint: str) -> VectorTable:
    """An empty vector table ``index_<name>`` with the configured backend (FAISS: unchanged default)."""
    if config.index_backend == "faiss":
        return VectorTable(dim, fingerprint)
    if config.index_uri is None:  # own Lite file in the table directory, fixed collection: rebuilds replace it
        uri, collection = str(workspace / f"index_{name}" / "milvus.db"), f"kgclip_{name}"
        if Path(uri).exists():  # the workspace's own earlier collection, perhaps of another encoder / dim
            from kgclip.index.milvus_support import drop_collection

            drop_collection(uri, collection)
        return VectorTable(dim, fingerprint, backend="milvus", uri=uri, collection=collection)
    return VectorTable(dim, fingerprint, backend="milvus", uri=config.index_uri)


def case_meta(case: Case) -> dict[str, Any]:
    """The metadata a case carries in both vector tables (filterable fields, text, linked concepts)."""
    return {"kind": "case", "case_id": case.case_id, "modality": case.modality, "body_part": case.body_part,
            "text": case.text, "concepts": list(case.concepts), "source": case.split}


def write_engine_manifest(workspace: Path, config: EngineConfig, graph: ConceptGraph, encoder: Any,
                          featurizer: Any, cases: Sequence[Case], extra: dict[str, Any],
                          neighbors: NeighborConcepts | None = None) -> dict[str, Any]:
    """Write the workspace manifest (fingerprints of every artifact and part, counts, build info); returns it."""
    fingerprints = {
        "graph": graph.fingerprint(),
        "text_encoder": encoder.fingerprint,
        "image_featurizer": featurizer.fingerprint,
        "cases": fingerprint_file(workspace / "cases.json"),
        "answerer": fingerprint_file(workspace / "answerer" / "answerer.safetensors"),
        "config": fingerprint_json(config.to_dict()),
    }
    counts = {"cases": len(cases), "concepts": len(graph), "relations": graph.num_relations,
              "qa": sum(len(c.qa) for c in cases)}
    parts = {"text_encoder": encoder.name, "image_featurizer": featurizer.name}
    # Optional trained parts: recorded only when configured, so a default manifest is unchanged.
    if config.model_dir is not None:
        fingerprints["model"] = featurizer.fingerprint
        parts["model_dir"] = str(config.model_dir)
    if neighbors is not None:
        fingerprints["concept_embeddings"] = neighbors.fingerprint
        parts["concept_embeddings_dir"] = str(config.concept_embeddings_dir)
    write_manifest(workspace, config.to_dict() | {"build": extra}, fingerprints, counts, parts)
    return read_manifest(workspace)


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
    from kgclip.ontology.store import load_cache, load_ontologies
    from kgclip.text.encoders import load_text_encoder

    workspace = Path(workspace_dir)
    manifest = read_manifest(workspace)
    config = config or EngineConfig.load(workspace / "engine_config.json")
    fps = manifest["fingerprints"]
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
    graph = load_cache(workspace / "graph.safetensors")
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
    image_table = VectorTable.load(workspace / "index_image", featurizer.fingerprint)
    text_table = VectorTable.load(workspace / "index_text", table_encoder.fingerprint)
    return WorkspaceParts(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                          featurizer, table_encoder, neighbors)


def _load_parts(workspace: Path, config: EngineConfig, encoder: Any, graph: ConceptGraph,
                fps: Mapping[str, str], embeddings: Any = None,
                model_fp: str | None = None) -> tuple[Any, Any, NeighborConcepts | None]:
    """Reload the configured model / embeddings, refusing ones that changed since the build."""
    from kgclip.rag.model_parts import check_fingerprint, model_fingerprint

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
        emb = _read_embeddings(config.concept_embeddings_dir, embeddings)
        if emb.graph_fingerprint != graph.fingerprint():
            raise StaleArtifactError(
                f"the concept embeddings at {config.concept_embeddings_dir} describe another version of the "
                f"graph than workspace {workspace}; run `kgclip kg refresh --embeddings "
                f"{config.concept_embeddings_dir}` on the workspace's ontology, then Engine.refresh")
        check_fingerprint("concept embeddings", config.concept_embeddings_dir, fps.get("concept_embeddings"),
                          emb.fingerprint, workspace, f"{rebuild} to record the new embeddings")
    return trained_parts(config, encoder, graph, model_fp=current, embeddings=emb)
