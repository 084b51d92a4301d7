"""The workspace manifest (``manifest.json``): fingerprints of every artifact and trained part, counts and build
info, written last by every build so that a build cut short is refused on load; and the staleness checks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgclip.artifacts import read_json_header
from kgclip.atomic import atomic_write_json
from kgclip.engine.cases import Case
from kgclip.engine.config import EngineConfig
from kgclip.errors import ArtifactCorruptError
from kgclip.fingerprint import fingerprint_file, fingerprint_json
from kgclip.ontology.model import ConceptGraph

__all__ = ["MANIFEST", "FORMAT", "write_manifest", "read_manifest", "write_engine_manifest"]

MANIFEST = "manifest.json"
FORMAT = "kgclip-workspace-1"


def write_manifest(directory: Path, config: dict[str, Any], fingerprints: dict[str, str],
                   counts: dict[str, int], parts: dict[str, str]) -> None:
    from kgclip.ontology.store import kgclip_version

    atomic_write_json(directory / MANIFEST, {"format": FORMAT, "kgclip_version": kgclip_version(),
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                             "config": config, "fingerprints": fingerprints, "counts": counts,
                                             "parts": parts})


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a workspace.

    Raises:
        ArtifactCorruptError: not a workspace, unreadable, or written in another format.
    """
    path = Path(directory) / MANIFEST
    manifest = read_json_header(path, missing=f"{directory} is not a kgclip workspace (no {MANIFEST}); build one "
                                              "with `kgclip demo --out DIR` or Engine.build(config, DIR)",
                                recover="rebuild the workspace")
    if manifest.get("format") != FORMAT:
        raise ArtifactCorruptError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}; rebuild "
                                   "the workspace with this kgclip version (`kgclip demo --out DIR` or "
                                   "Engine.build(config, DIR))")
    return manifest


def write_engine_manifest(workspace: Path, config: EngineConfig, graph: ConceptGraph, encoder: Any,
                          featurizer: Any, cases: Sequence[Case], extra: dict[str, Any],
                          neighbors: Any = None) -> dict[str, Any]:
    """Write the workspace manifest (fingerprints of every artifact and part, counts, build info); returns it."""
    fingerprints = {
        "graph": graph.fingerprint(),
        "text_encoder": encoder.fingerprint,
        "image_featurizer": featurizer.fingerprint,
        "cases": fingerprint_file(workspace / "cases.json"),
        "answerer": fingerprint_file(workspace / "answerer" / "answerer.safetensors"),
        # The graph file's bytes: a load that finds them unchanged takes the fingerprint stored in the file
        # instead of recomputing it (about a second of every cold start).
        "graph_file": fingerprint_file(workspace / "graph.safetensors"),
        "config": fingerprint_json(config.to_dict()),
        "config_file": fingerprint_file(workspace / "engine_config.json"),  # edits to the file are detected
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
