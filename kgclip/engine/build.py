"""Building a workspace (:meth:`kgclip.engine.Engine.build`) and the trained parts a config asks for.

Write discipline of a build: every input is read and every vector, table and model is computed before the first
write into the workspace, so a bad input (a missing or corrupt model directory, stale embeddings, unreadable data)
fails with the workspace untouched. The files are then written one by one, each atomically, with the manifest
last; :func:`kgclip.engine.load.load_workspace` checks the artifacts against the manifest, so a write phase cut
short is refused on load, never answered from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kgclip.engine.cases import Case, case_meta, cases_from_vqa_rad, load_cases, save_cases, with_image_metadata
from kgclip.engine.config import EngineConfig
from kgclip.engine.images import SALT_FILE, ensure_uid_salt, store_image
from kgclip.engine.manifest import write_engine_manifest
from kgclip.engine.model_parts import NeighborConcepts
from kgclip.engine.store import link_tree, mutation
from kgclip.engine.tables import detach, new_table, release_local_stores, reopen
from kgclip.errors import ConfigError
from kgclip.fingerprint import features_fingerprint
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concept_prior import fit_case_prior
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.image_metadata import fit_case_heads
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad

__all__ = ["WorkspaceParts", "build_workspace", "trained_parts", "shipped_demo_dir", "METADATA_HEADS", "CONCEPT_PRIOR"]

METADATA_HEADS = "metadata_heads"  # the workspace folder of the image metadata classifiers
CONCEPT_PRIOR = "concept_prior"  # the workspace folder of the learned findings-concept prior (report drafts)


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
    # Image metadata classifiers (modality / plane / region) trained on the cases' metadata at build time; None when
    # the cases' metadata could not train any, or the workspace predates them.
    metadata_heads: Any = None
    # The findings-concept prior (kgclip.rag.concept_prior) trained at build time on the cases with findings text;
    # None when fewer than MIN_PRIOR_CASES cases have findings (a VQA-RAD-style build: questions only).
    concept_prior: Any = None


def build_workspace(config: EngineConfig, workspace_dir: str | Path, *, vqa_rad: str | Path | None = None,
                    graph: ConceptGraph | None = None, show_progress: bool = True,
                    embeddings: Any = None, model_fp: str | None = None,
                    allow_burned_in: bool = False) -> WorkspaceParts:
    """Build a workspace (see :meth:`kgclip.engine.Engine.build`), as one :func:`~kgclip.engine.store.mutation`.

    Cases added to an existing workspace with ``add_cases`` are kept: re-linked to the (new) graph and re-embedded
    from their stored images. The workspace's UID salt is kept too.

    Args:
        embeddings: the ``ConceptEmbeddings`` of ``config.concept_embeddings_dir`` when the caller already read
            them (they are still checked against the graph).
        model_fp: the fingerprint of ``config.model_dir`` when the caller already computed it.
        allow_burned_in: store images whose header says ``BurnedInAnnotation=YES`` (default: refused).
    """
    from tqdm.auto import tqdm

    from kgclip.data.demo import read_demo_metadata
    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.ontology.store import load_ontologies

    vqa_rad = _data_dir(vqa_rad)
    config = config.with_parts()
    steps = tqdm(total=5, desc="building workspace", disable=not show_progress)
    items = _without_excluded(read_vqa_rad(vqa_rad), config.exclude_images)
    if graph is None:
        graph = load_ontologies(list(config.ontology_dirs) or None)
    encoder, featurizer, table_encoder, neighbors = _parts(config, graph, embeddings, model_fp)
    tagger = ConceptTagger(graph) if config.use_kg else None
    steps.update()
    workspace = Path(workspace_dir)
    with mutation(workspace, carry=lambda live: [SALT_FILE]) as staging:
        salt = ensure_uid_salt(staging)
        cases = with_image_metadata(cases_from_vqa_rad(items), read_demo_metadata(vqa_rad))
        for case in cases:  # the workspace owns de-identified copies of its images (thumbnails, re-embedding)
            case.image = store_image(staging, case.image, uid_salt=salt, allow_burned_in=allow_burned_in)
        cases = _with_added_cases(cases, workspace, staging)
        for case in cases:
            case.concepts = tagger.concept_ids(case.text, include_negated=False) if tagger else []
        steps.update()
        img = featurizer.embed([_image_path(staging, c) for c in cases], show_progress=show_progress)
        txt = table_encoder.encode([c.text or c.case_id for c in cases], show_progress=show_progress).numpy()
        steps.update()
        train = examples_from_vqa_rad([i for i in items if i.split == "train"])
        answerer, val = VQAAnswerer.fit(train, {c.case_id: v for c, v in zip(cases, img)},
                                        graph=graph if config.use_kg else None, text_encoder=encoder,
                                        config=replace(config.answerer, use_kg=config.use_kg),
                                        image_featurizer=featurizer.name, show_progress=show_progress)
        answerer.tagger = tagger
        # Modality / plane / region classifiers on the same image vectors, from the cases' own metadata.
        feature_fp = features_fingerprint(featurizer)
        heads = fit_case_heads(cases, img, feature_fingerprint=feature_fp)
        # What the findings of cases like this one assert, learned from the cases' own findings (drafts mix it in).
        prior = fit_case_prior(cases, img, tagger=tagger, graph=graph, feature_name=featurizer.name,
                               feature_fingerprint=feature_fp)
        steps.update()
        tables = _write_version(staging, config, graph, cases, answerer, img, txt, featurizer, table_encoder)
        if heads is not None:
            heads.save(staging / METADATA_HEADS)
        if prior is not None:
            prior.save(staging / CONCEPT_PRIOR)
        source = str(Path(vqa_rad).expanduser().resolve())  # absolute: Engine.open / refresh rebuild from it
        manifest = write_engine_manifest(staging, config, graph, encoder, featurizer, cases,
                                         {"val_acc": val["val_acc"], "source": source}, neighbors)
        for table in tables:
            detach(table)  # an external store bound to the staging path is reopened from the workspace below
        release_local_stores(workspace)  # and the previous version's stores are about to be swapped away
    image_table, text_table = (reopen(t, workspace / f"index_{n}") for t, n in zip(tables, ("image", "text")))
    steps.update()
    steps.close()
    return WorkspaceParts(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                          featurizer, table_encoder, neighbors, heads, prior)


def _without_excluded(items: list[Any], exclude: Sequence[str]) -> list[Any]:
    """``items`` without those of the excluded images (by file name or image key)."""
    if not exclude:
        return items
    excluded = set(exclude)
    kept = [i for i in items if i.image_name not in excluded and i.image_key not in excluded]
    if not kept:
        raise ConfigError(f"exclude_images leaves nothing to build from (all {len(items)} questions are on "
                          "excluded images); exclude fewer images")
    return kept


def _data_dir(vqa_rad: str | Path | None) -> str | Path:
    if vqa_rad is not None:
        return vqa_rad
    shipped = shipped_demo_dir()
    if shipped is None:
        raise ConfigError("no data to build from: pass vqa_rad=PATH (a folder with the VQA-RAD JSON and "
                          "images/); the shipped sample kgclip/demo_data/vqa-rad is missing")
    return shipped


def _parts(config: EngineConfig, graph: ConceptGraph, embeddings: Any, model_fp: str | None
           ) -> tuple[Any, Any, Any, NeighborConcepts | None]:
    """The text encoder, the image featuriser, the case-text encoder and the concept neighbours of a build."""
    from kgclip.text.encoders import load_text_encoder

    encoder = load_text_encoder(config.text_encoder, device="cpu")
    if config.concept_embeddings_dir is not None:
        embeddings = read_embeddings(config.concept_embeddings_dir, embeddings)
        embeddings.check_current(graph, directory=config.concept_embeddings_dir)
    featurizer, table_encoder, neighbors = trained_parts(config, encoder, graph, model_fp=model_fp,
                                                         embeddings=embeddings)
    return encoder, featurizer, table_encoder, neighbors


def _image_path(directory: Path, case: Case) -> Path:
    """A case image: stored in the workspace (relative) or left where it was (absolute, ``copy_images=False``)."""
    path = Path(case.image)
    return path if path.is_absolute() else directory / path


def _with_added_cases(cases: list[Case], workspace: Path, staging: Path) -> list[Case]:
    """``cases`` plus the cases ``add_cases`` put into the current workspace (their stored images hard-linked)."""
    if not (workspace / "cases.json").is_file():
        return cases
    added = [c for c in load_cases(workspace / "cases.json") if c.origin == "added"]
    for case in added:
        if not Path(case.image).is_absolute() and not (staging / case.image).exists():
            link_tree(workspace / case.image, staging / case.image)
    added_ids = {a.case_id for a in added}  # an added case replaces a built one of the same id
    return [c for c in cases if c.case_id not in added_ids] + added


def _write_version(staging: Path, config: EngineConfig, graph: ConceptGraph, cases: list[Case],
                   answerer: VQAAnswerer, img: Any, txt: Any, featurizer: Any, table_encoder: Any) -> list[Any]:
    """Write every artifact but the manifest into ``staging``; returns the two vector tables."""
    from kgclip.ontology.store import save_cache

    tables = [new_table(config.index_backend, config.index_uri, staging, name, enc.dim, enc.fingerprint)
              for name, enc in (("image", featurizer), ("text", table_encoder))]
    meta = [case_meta(c) for c in cases]
    for table, vectors, name in zip(tables, (img, txt), ("image", "text")):
        table.add(list(range(len(cases))), vectors, meta)
        table.save(staging / f"index_{name}")
    save_cache(graph, staging / "graph.safetensors")
    save_cases(staging / "cases.json", cases)
    answerer.save(staging / "answerer")
    config.save(staging / "engine_config.json")
    return tables


def read_embeddings(directory: str, embeddings: Any = None) -> Any:
    from kgclip.kg.embeddings import ConceptEmbeddings

    return embeddings if embeddings is not None else ConceptEmbeddings.load(directory)


def trained_parts(config: EngineConfig, encoder: Any, graph: ConceptGraph, *, model_fp: str | None = None,
                  embeddings: Any = None) -> tuple[Any, Any, NeighborConcepts | None]:
    """The image featuriser, the case-text table encoder and the concept neighbours the config asks for.

    ``model_fp`` / ``embeddings``: already computed / loaded (and checked against ``graph``) by the caller, so
    the weights are not hashed and the embeddings not read a second time.
    """
    table_encoder: Any = encoder
    if config.model_dir is None:
        from kgclip.models.features import load_image_features

        featurizer: Any = load_image_features(config.image_features)
    else:
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
