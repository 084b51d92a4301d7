"""ConceptEmbeddings: one vector per concept, saved with the trained encoder so that it can be refreshed.

On disk (a directory, written atomically)::

    meta.json               ids, fingerprints (graph, text tower, encoder weights, config), file checksums
    embeddings.safetensors  vectors [N, D] float32
    encoder.safetensors     encoder + DistMult decoder weights, and every layer's node states [N, D]

Keeping each layer's node states lets :meth:`ConceptEmbeddings.refresh` recompute layer ``l`` only for concepts
within ``l`` relations of a changed one (exactly what a full re-encode would give for them), so a concept a
curator just added gets an embedding from its text and its relations in well under a second, without retraining.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kgclip.artifacts import read_json_header
from kgclip.atomic import atomic_directory
from kgclip.errors import (ArtifactCorruptError, ConfigError, EncoderMismatchError, StaleArtifactError,
                           UnknownConceptError)
from kgclip.fingerprint import Hasher, fingerprint_file, fingerprint_json
from kgclip.kg.convert import INVERSE_SUFFIX, concept_features, text_encoder_fingerprint
from kgclip.kg.encoders import KGEncoder, build_encoder
from kgclip.ontology.model import ConceptGraph
from kgclip.text.encoders import TextEncoder, load_text_encoder

__all__ = ["ConceptEmbeddings", "FORMAT_VERSION"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
_FILES = ("embeddings.safetensors", "encoder.safetensors")


def _state_fingerprint(state: dict[str, Tensor]) -> str:
    h = Hasher()
    for name in sorted(state):
        h.update_str(name).update_array(state[name].detach().cpu().numpy())
    return h.hexdigest()


@dataclasses.dataclass
class ConceptEmbeddings:
    """Concept embeddings with their id map and provenance.

    Attributes:
        vectors: ``[N, D]`` float32, row ``i`` is concept ``ids[i]``.
        ids: concept ids in row order.
        meta: provenance: ``graph_fingerprint``, ``text_encoder`` (name or path), ``text_encoder_fingerprint``,
            ``config`` (a :class:`~kgclip.kg.train.KGTrainConfig` dict), ``relation_types`` (base vocabulary),
            ``encoder_fingerprint``, ``metrics``.
        encoder_state: encoder weights (``None`` for embeddings that cannot be refreshed).
        decoder_state: DistMult relation diagonals (``{"relations": [R, D]}``).
        states: the encoder's layer states ``[h^(0) .. h^(L-1)]``, each ``[N, D]`` (for refresh).
        refreshed_ids: the concepts whose vector the last :meth:`refresh` recomputed.
    """

    vectors: Tensor
    ids: list[str]
    meta: dict[str, Any]
    encoder_state: dict[str, Tensor] | None = None
    decoder_state: dict[str, Tensor] | None = None
    states: list[Tensor] = dataclasses.field(default_factory=list)
    refreshed_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.vectors.dim() != 2 or self.vectors.size(0) != len(self.ids):
            raise ValueError(f"vectors {tuple(self.vectors.shape)} do not match {len(self.ids)} ids")
        self.vectors = self.vectors.float().contiguous()
        self._index = {cid: i for i, cid in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise ValueError("ids contain duplicates")
        self._unit: Tensor | None = None
        self._pending_graph: tuple[ConceptGraph, int] | None = None  # set by refresh: fingerprinted on demand

    # ------------------------------------------------------------------ access
    @property
    def dim(self) -> int:
        return int(self.vectors.size(1))

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the graph, the text tower, the encoder weights and the config these came from."""
        self.graph_fingerprint  # noqa: B018 - resolves a pending graph fingerprint
        return fingerprint_json({k: self.meta.get(k) for k in (
            "graph_fingerprint", "text_encoder_fingerprint", "encoder_fingerprint", "config")})

    @property
    def graph_fingerprint(self) -> str:
        """Fingerprint of the graph these embeddings describe.

        After :meth:`refresh` it is computed on first use (hashing a RadLex-size graph takes longer than the
        refresh itself), from the graph as it was refreshed; if that graph was edited since, the result is
        ``"edited-after-refresh"`` and the embeddings count as stale.
        """
        if self._pending_graph is not None:
            graph, version = self._pending_graph
            self.meta["graph_fingerprint"] = graph.fingerprint() if graph.version == version else "edited-after-refresh"
            self._pending_graph = None
        return str(self.meta.get("graph_fingerprint", ""))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._index

    def __repr__(self) -> str:
        return (f"ConceptEmbeddings(concepts={len(self)}, dim={self.dim}, "
                f"encoder={self.meta.get('config', {}).get('encoder')!r}, fingerprint={self.fingerprint[:12]!r})")

    def index_of(self, concept_id: str) -> int:
        """Row of a concept; :class:`UnknownConceptError` if it has no embedding."""
        try:
            return self._index[concept_id]
        except KeyError:
            raise UnknownConceptError(
                f"concept {concept_id!r} has no embedding; if a curator added it, run `kgclip kg refresh`") from None

    def get(self, ids: Sequence[str] | str) -> Tensor:
        """Vectors of ``ids``. Shapes: ``[len(ids), D]`` (``[D]`` for one id as a string)."""
        if isinstance(ids, str):
            return self.vectors[self.index_of(ids)]
        return self.vectors[torch.tensor([self.index_of(c) for c in ids], dtype=torch.long)]

    def nearest(self, concept_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` concepts closest by cosine similarity (the concept itself excluded)."""
        if self._unit is None:
            self._unit = torch.nn.functional.normalize(self.vectors, dim=-1)
        scores = self._unit @ self._unit[self.index_of(concept_id)]
        scores[self.index_of(concept_id)] = float("-inf")
        top = torch.topk(scores, min(k, len(self) - 1))
        return [(self.ids[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]

    def _repr_html_(self) -> str:
        cfg = self.meta.get("config", {})
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in [("concepts", len(self)), ("dim", self.dim), ("encoder", cfg.get("encoder")),
                                    ("text tower", self.meta.get("text_encoder")),
                                    ("graph", self.graph_fingerprint[:12]), ("fingerprint", self.fingerprint[:12]),
                                    ("metrics", self.meta.get("metrics", {}))])
        return f"<table><caption>ConceptEmbeddings</caption>{rows}</table>"

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the artifact directory atomically (a crash leaves the old directory or the new one)."""
        from safetensors.torch import save_file

        target = Path(directory)
        with atomic_directory(target) as tmp:
            save_file({"vectors": self.vectors}, str(tmp / "embeddings.safetensors"))
            tensors: dict[str, Tensor] = {}
            for name, value in (self.encoder_state or {}).items():
                tensors[f"encoder.{name}"] = value.detach().cpu().contiguous()
            for name, value in (self.decoder_state or {}).items():
                tensors[f"decoder.{name}"] = value.detach().cpu().contiguous()
            for layer, state in enumerate(self.states):
                tensors[f"state.{layer}"] = state.detach().cpu().float().contiguous()
            save_file(tensors or {"empty": torch.zeros(0)}, str(tmp / "encoder.safetensors"))
            meta = dict(self.meta, ids=self.ids, fingerprint=self.fingerprint, format_version=FORMAT_VERSION,
                        checksums={name: fingerprint_file(tmp / name) for name in _FILES})
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str], graph: ConceptGraph | None = None) -> "ConceptEmbeddings":
        """Read an artifact directory written by :meth:`save`.

        Args:
            directory: the directory.
            graph: when given, the embeddings must have been built from (or refreshed to) this graph, else
                :class:`StaleArtifactError`.

        Raises:
            ArtifactCorruptError: a file is missing, truncated, or fails its checksum.
            StaleArtifactError: ``graph`` differs from the one the embeddings describe.
        """
        from safetensors.torch import load_file

        root = Path(directory)
        fix = f"re-create it with `kgclip kg train --out {root}`"
        meta = read_json_header(root / "meta.json", missing=f"no concept embeddings at {root} (meta.json missing); "
                                                            f"{fix}", recover=fix)
        for name in _FILES:
            path = root / name
            if not path.is_file():
                raise ArtifactCorruptError(f"{path} is missing; {fix}")
            expected = meta.get("checksums", {}).get(name)
            if expected and fingerprint_file(path) != expected:
                raise ArtifactCorruptError(f"{path} is corrupted (checksum mismatch); {fix}")
        try:
            vectors = load_file(str(root / "embeddings.safetensors"))["vectors"]
            tensors = load_file(str(root / "encoder.safetensors"))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged file
            raise ArtifactCorruptError(f"cannot read the safetensors files in {root} ({exc}); {fix}") from exc
        encoder_state = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")} or None
        decoder_state = {k[len("decoder."):]: v for k, v in tensors.items() if k.startswith("decoder.")} or None
        layers = sorted(int(k.split(".")[1]) for k in tensors if k.startswith("state."))
        states = [tensors[f"state.{i}"] for i in layers]
        ids = meta.pop("ids", None)
        if not isinstance(ids, list) or len(ids) != vectors.size(0):
            raise ArtifactCorruptError(f"{root}: meta.json ids do not match the vectors; {fix}")
        for key in ("checksums", "fingerprint"):
            meta.pop(key, None)
        out = cls(vectors=vectors, ids=ids, meta=meta, encoder_state=encoder_state, decoder_state=decoder_state,
                  states=states)
        if graph is not None:
            out.check_current(graph, directory=root)
        return out

    def check_current(self, graph: ConceptGraph, directory: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`StaleArtifactError` if ``graph`` is not the graph these embeddings describe."""
        if graph.fingerprint() != self.graph_fingerprint:
            where = f" --embeddings {directory}" if directory is not None else ""
            missing = sum(1 for cid in graph.ids if cid not in self._index)
            raise StaleArtifactError(
                f"concept embeddings are stale: graph {graph.name!r} changed since they were computed "
                f"({missing} concept(s) without an embedding). Run `kgclip kg refresh --ontology DIR{where}` "
                "to re-encode the changed neighbourhoods, or `kgclip kg train` to retrain.")

    # ------------------------------------------------------------------ refresh
    def build_encoder(self) -> KGEncoder:
        """The trained encoder, rebuilt from the saved config and weights."""
        if not self.encoder_state:
            raise ConfigError("these embeddings were saved without encoder weights and cannot be refreshed; "
                              "retrain with `kgclip kg train`")
        cfg = self.meta["config"]
        encoder = build_encoder(cfg["encoder"], in_dim=int(self.meta["text_dim"]),
                                num_relations=2 * len(self.meta["relation_types"]), num_nodes=len(self),
                                hidden_dim=cfg["hidden_dim"], num_layers=cfg["num_layers"], dropout=cfg["dropout"],
                                num_bases=cfg["num_bases"], heads=cfg["heads"])
        if not encoder.inductive:
            raise ConfigError(f"the {cfg['encoder']!r} encoder cannot embed new or changed concepts; "
                              "retrain with `kgclip kg train --encoder rgcn`")
        encoder.load_state_dict(self.encoder_state)
        return encoder.eval()

    def refresh(
        self,
        graph: ConceptGraph,
        changed_ids: Iterable[str] | None = None,
        *,
        text_encoder: TextEncoder | None = None,
        cache_dir: str | os.PathLike[str] | None | bool = None,
    ) -> "ConceptEmbeddings":
        """Re-encode only what changed: the ``l``-hop neighbourhood of the changed concepts at layer ``l``.

        Args:
            graph: the edited graph.
            changed_ids: concepts whose text or relations changed (e.g. from the curation changelog; include
                both ends of an added or removed relation). Concepts new to the graph are always included;
                concepts no longer in the graph lose their row.
            text_encoder: the text tower (default: the one named in ``meta``; its fingerprint must match).
            cache_dir: text feature cache root (see :func:`kgclip.kg.convert.concept_features`).

        Returns:
            New embeddings for ``graph`` (this object is unchanged); ``refreshed_ids`` lists recomputed rows.
            The result equals a full re-encode of ``graph`` with the trained encoder.
        """
        encoder = self.build_encoder()
        if len(self.states) != encoder.num_layers:
            raise ArtifactCorruptError("the embeddings lack the encoder's layer states needed for refresh; "
                                       "retrain with `kgclip kg train`")
        text = text_encoder or load_text_encoder(self.meta["text_encoder"])
        if text_encoder_fingerprint(text) != self.meta["text_encoder_fingerprint"]:
            raise EncoderMismatchError(
                f"text tower {text.name!r} differs from the one these embeddings were trained with "
                f"({self.meta['text_encoder']!r}); refresh with that one or retrain")
        n = len(graph)
        old_rows = torch.tensor([self._index.get(cid, -1) for cid in graph.ids], dtype=torch.long)
        known = old_rows >= 0
        seeds = set(cid for cid, r in zip(graph.ids, old_rows.tolist()) if r < 0)
        for cid in changed_ids or ():
            if cid in graph:
                seeds.add(cid)
        seed_rows = torch.tensor(sorted(graph.index_of(c) for c in seeds), dtype=torch.long)

        def carried(old: Tensor) -> Tensor:
            new = torch.zeros(n, old.size(1), dtype=old.dtype)
            new[known] = old[old_rows[known]]
            return new

        states = [carried(s) for s in self.states] + [carried(self.vectors)]
        # Edges in the trained vocabulary, as message-passing (source, target, type) with inverses.
        vocab = {t: i for i, t in enumerate(self.meta["relation_types"])}
        src, rel, dst = graph.edge_arrays()
        remap = np.array([vocab.get(t, -1) for t in graph.relation_types] or [-1], dtype=np.int64)
        r = remap[rel] if len(rel) else np.zeros(0, np.int64)
        ok = r >= 0
        nb = len(vocab)
        s_all = torch.from_numpy(np.concatenate([src[ok], dst[ok]]).astype(np.int64))
        d_all = torch.from_numpy(np.concatenate([dst[ok], src[ok]]).astype(np.int64))
        t_all = torch.from_numpy(np.concatenate([r[ok], r[ok] + nb]))
        changed = torch.zeros(n, dtype=torch.bool)
        changed[seed_rows] = True
        with torch.no_grad():
            if seed_rows.numel():
                x = concept_features(graph, text, ids=[graph.ids[i] for i in seed_rows.tolist()], cache_dir=cache_dir)
                states[0][seed_rows] = encoder.input(x)
            for layer in range(encoder.num_layers):
                # Layer l+1 changes where layer l changed, and one hop downstream of it.
                grown = changed.clone()
                grown[d_all[changed[s_all]]] = True
                changed = grown
                targets = torch.nonzero(changed).view(-1)
                if targets.numel() == 0:
                    break
                in_edges = changed[d_all]
                es, ed, et = s_all[in_edges], d_all[in_edges], t_all[in_edges]
                local_nodes = torch.unique(torch.cat([targets, es]))
                position = torch.full((n,), -1, dtype=torch.long)
                position[local_nodes] = torch.arange(local_nodes.numel())
                h = encoder.layer(layer, states[layer][local_nodes], torch.stack([position[es], position[ed]]), et)
                states[layer + 1][targets] = h[position[targets]]
        refreshed = tuple(graph.ids[i] for i in torch.nonzero(changed).view(-1).tolist())
        meta = dict(self.meta, graph_fingerprint=None, refreshes=int(self.meta.get("refreshes", 0)) + 1)
        dropped = [t for t in graph.relation_types if t not in vocab and not t.endswith(INVERSE_SUFFIX)]
        if dropped:
            log.warning("relation types %s are unknown to the trained encoder and were ignored; retrain with "
                        "`kgclip kg train` to learn them", dropped)
        fresh = ConceptEmbeddings(vectors=states[-1], ids=list(graph.ids), meta=meta,
                                  encoder_state=self.encoder_state, decoder_state=self.decoder_state,
                                  states=states[:-1], refreshed_ids=refreshed)
        fresh._pending_graph = (graph, graph.version)
        return fresh
