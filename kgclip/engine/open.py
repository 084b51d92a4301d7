"""Open a workspace with the trained parts a user asks for (:meth:`kgclip.engine.Engine.open`).

A KG-CLIP model (``kgclip train``) and GNN concept embeddings (``kgclip kg train``) live in their own directories;
a workspace records the fingerprint of each part it was built with. Opening with a part compares the part's
fingerprint with the manifest's: the same part loads the workspace as it is; another part (or none recorded)
rebuilds it with its saved :class:`~kgclip.engine.config.EngineConfig` plus the parts asked for, on its own concept
graph and from the data it was built from; a missing workspace is built with the defaults of ``kgclip demo``.
Each requested part is read and checked before anything is written, so a missing or corrupt directory fails with
the workspace untouched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgclip.engine.build import WorkspaceParts, build_workspace
from kgclip.engine.config import EngineConfig
from kgclip.engine.load import load_workspace
from kgclip.engine.manifest import MANIFEST, read_manifest
from kgclip.engine.store import recover
from kgclip.errors import ConfigError, StaleArtifactError
from kgclip.ontology.model import ConceptGraph

__all__ = ["OpenPlan", "plan_open", "open_workspace"]


@dataclass(frozen=True)
class OpenPlan:
    """What opening a workspace with some trained parts will do."""

    action: str  # "loaded" (as it is), "built" (there was none) or "rebuilt" (it had other parts)
    config: EngineConfig | None  # the config to load or build with; None: the saved one
    reason: str = ""  # one line for the user when building
    source: str | None = None  # the VQA-RAD folder to build from; None: the shipped sample
    graph: ConceptGraph | None = None  # a rebuild keeps the workspace's own concept graph
    embeddings: Any = None  # the requested ConceptEmbeddings, already read
    model_fp: str | None = None  # the requested model's fingerprint, already computed (hashing reads the weights)


def plan_open(workspace_dir: str | Path, *, model_dir: str | Path | None = None,
              concept_embeddings_dir: str | Path | None = None, vqa_rad: str | Path | None = None) -> OpenPlan:
    """Decide whether the workspace loads as it is, or must be built / rebuilt with the requested parts.

    Raises:
        ModelNotFoundError, ArtifactCorruptError: a requested directory is missing or not what it should be.
        StaleArtifactError: the requested embeddings describe another graph than the workspace's.
        ConfigError: the directory exists but is not a workspace, or the data it was built from is gone.
    """
    workspace = Path(workspace_dir)
    recover(workspace)  # a writer that died mid-swap: put the previous version back first
    if model_dir is None and concept_embeddings_dir is None:
        return OpenPlan("loaded", None)
    # Only now: importing the KG layer pulls in torch_geometric (seconds), which a plain load never needs.
    from kgclip.engine.model_parts import model_fingerprint
    from kgclip.kg.embeddings import ConceptEmbeddings

    # Read the requested parts first: a bad directory fails here, before the workspace is touched.
    model_fp = model_fingerprint(model_dir) if model_dir is not None else None
    emb = ConceptEmbeddings.load(concept_embeddings_dir) if concept_embeddings_dir is not None else None
    if not (workspace / MANIFEST).is_file():
        if workspace.exists() and (not workspace.is_dir() or any(workspace.iterdir())):
            raise ConfigError(f"{workspace} exists but is not a kgclip workspace (no {MANIFEST}); pass a new or "
                              "empty directory to build one in, or the workspace `kgclip demo --out` wrote")
        config = EngineConfig().with_parts(model_dir, concept_embeddings_dir)
        return OpenPlan("built", config, f"no workspace at {workspace} yet: building one with "
                                         f"{_describe(config)} (demo defaults)", _source(vqa_rad), None, emb,
                        model_fp)
    manifest = read_manifest(workspace)
    config = EngineConfig.load(workspace / "engine_config.json").with_parts(model_dir, concept_embeddings_dir)
    fps, parts = manifest["fingerprints"], manifest["parts"]
    changed = []
    if model_fp is not None and model_fp != fps.get("model"):
        changed.append(f"KG-CLIP model {parts.get('model_dir', 'none')} -> {config.model_dir}")
    if emb is not None and emb.fingerprint != fps.get("concept_embeddings"):
        if emb.graph_fingerprint != fps["graph"]:
            raise StaleArtifactError(
                f"the concept embeddings at {concept_embeddings_dir} describe another version of the graph than "
                f"workspace {workspace} was built on; run `kgclip kg refresh --embeddings {concept_embeddings_dir}` "
                f"on the workspace's ontology, or Engine.refresh({str(workspace)!r}) after an ontology edit")
        changed.append(f"concept embeddings {parts.get('concept_embeddings_dir', 'none')} -> "
                       f"{config.concept_embeddings_dir}")
    if not changed:
        return OpenPlan("loaded", config, embeddings=emb, model_fp=model_fp)
    source = _source(vqa_rad or manifest["config"].get("build", {}).get("source"))
    from kgclip.ontology.store import load_cache

    graph = load_cache(workspace / "graph.safetensors")
    if graph.fingerprint() != fps["graph"]:
        raise StaleArtifactError(f"the concept graph in {workspace} does not match its manifest; rebuild it with "
                                 "Engine.build")
    return OpenPlan("rebuilt", config, f"workspace {workspace} was built with other parts "
                                       f"({'; '.join(changed)}): rebuilding it", source, graph, emb, model_fp)


def _source(path: str | Path | None) -> str | None:
    if path is not None and not Path(path).exists():
        raise ConfigError(f"the data to build the workspace from, {path}, does not exist; restore it or pass "
                          "vqa_rad=PATH (a VQA-RAD folder) to Engine.open")
    return None if path is None else str(path)


def _describe(config: EngineConfig) -> str:
    parts = [f"KG-CLIP model {config.model_dir}" if config.model_dir else "",
             f"concept embeddings {config.concept_embeddings_dir}" if config.concept_embeddings_dir else ""]
    return " and ".join(p for p in parts if p)


def open_workspace(workspace_dir: str | Path, *, model_dir: str | Path | None = None,
                   concept_embeddings_dir: str | Path | None = None, vqa_rad: str | Path | None = None,
                   show_progress: bool = True, notify: Callable[[str], None] | None = None
                   ) -> tuple[WorkspaceParts, str]:
    """Load, build or rebuild (see :func:`plan_open`); returns the parts and the action taken.

    ``notify`` receives the one line saying why a build happens (default: printed to stderr when
    ``show_progress``).
    """
    plan = plan_open(workspace_dir, model_dir=model_dir, concept_embeddings_dir=concept_embeddings_dir,
                     vqa_rad=vqa_rad)
    if plan.action == "loaded":
        return (load_workspace(workspace_dir, config=plan.config, embeddings=plan.embeddings,
                               model_fp=plan.model_fp), plan.action)
    if notify is not None:
        notify(plan.reason)
    elif show_progress:
        print(f"kgclip: {plan.reason}", file=sys.stderr, flush=True)
    parts = build_workspace(plan.config, workspace_dir, vqa_rad=plan.source, graph=plan.graph,
                            show_progress=show_progress, embeddings=plan.embeddings, model_fp=plan.model_fp)
    return parts, plan.action
