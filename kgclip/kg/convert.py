"""ConceptGraph -> PyTorch Geometric ``Data``, with text features cached on disk by content hash.

The converted graph carries every relation twice: ``source --type--> target`` and, added explicitly,
``target --type_inv--> source``, so that a message-passing layer sees both directions with their own weights
(a child learns from its parent through ``is_a``, the parent from its children through ``is_a_inv``).

Initial node features come from a text tower over each concept's name, synonyms and definition
(:func:`concept_text`). Computing them for RadLex + Disease Ontology takes minutes on a CPU, so vectors are cached
under ``<cache_dir>/kg-features/<text encoder fingerprint>/`` keyed by a hash of the text: an unchanged concept is
never re-encoded, and a curator's edit re-encodes only the concepts whose text changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from kgclip.atomic import atomic_path
from kgclip.config import kgclip_home
from kgclip.fingerprint import Hasher
from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.text.encoders import TextEncoder, load_text_encoder

__all__ = [
    "INVERSE_SUFFIX",
    "concept_text",
    "relation_vocabulary",
    "to_pyg",
    "FeatureCache",
    "concept_features",
    "text_encoder_fingerprint",
]

log = logging.getLogger(__name__)

INVERSE_SUFFIX = "_inv"
_MAX_SYNONYMS = 8  # long synonym lists (UMLS) drown the name; the first few carry the meaning
_MAX_DEFINITION_CHARS = 400  # MiniLM truncates at 256 tokens anyway


def concept_text(concept: Concept) -> str:
    """The text a concept is featurised from: ``"name; syn1; syn2. definition"``."""
    names = [concept.name or concept.id, *concept.synonyms[:_MAX_SYNONYMS]]
    text = "; ".join(dict.fromkeys(n for n in names if n))
    if concept.definition:
        text += ". " + concept.definition[:_MAX_DEFINITION_CHARS]
    return text


def relation_vocabulary(base_types: Sequence[str]) -> list[str]:
    """Base relation types followed by their explicit inverses: ``[t0, t1, ..., t0_inv, t1_inv, ...]``."""
    base = list(base_types)
    return base + [t + INVERSE_SUFFIX for t in base]


def to_pyg(
    graph: ConceptGraph,
    x: torch.Tensor | None = None,
    *,
    relation_types: Sequence[str] | None = None,
    add_inverse: bool = True,
) -> Data:
    """Convert a concept graph into a PyG ``Data`` with typed edges and id maps.

    Args:
        graph: the concept graph; node ``i`` is ``graph.ids[i]``.
        x: optional node features ``[N, F]`` (see :func:`concept_features`).
        relation_types: the base relation vocabulary to use (a trained encoder's); relations of other types are
            dropped with a warning. Defaults to ``graph.relation_types``. Types with no edges are kept, so a
            vocabulary stays stable when a curator removes the last relation of a type.
        add_inverse: add ``<type>_inv`` edges in the opposite direction.

    Returns:
        ``Data`` with ``edge_index`` ``[2, E]`` (long), ``edge_type`` ``[E]`` (long), ``num_nodes``, optional ``x``,
        and plain attributes ``node_ids`` (list), ``node_index`` (id -> row), ``relation_types`` (list: base types,
        then inverses when ``add_inverse``), ``relation_index`` (type -> id) and ``num_base_relations``.

    Shapes:
        ``edge_index``: ``[2, E]`` with ``E = 2 * num_kept_relations`` when ``add_inverse``.
    """
    base = list(graph.relation_types if relation_types is None else relation_types)
    if len(set(base)) != len(base):
        raise ValueError(f"relation_types has duplicates: {base}")
    src, rel, dst = graph.edge_arrays()
    # Map the graph's relation ids onto the vocabulary's (-1 = not in the vocabulary).
    lookup = {t: i for i, t in enumerate(base)}
    remap = np.array([lookup.get(t, -1) for t in graph.relation_types] or [-1], dtype=np.int64)
    rel_mapped = remap[rel] if len(rel) else np.zeros(0, np.int64)
    keep = rel_mapped >= 0
    if not keep.all():
        dropped = sorted({graph.relation_types[r] for r in np.unique(rel[~keep]).tolist()})
        log.warning("dropping %d relation(s) of type(s) %s unknown to the encoder; retrain with `kgclip kg train` "
                    "to learn them", int((~keep).sum()), dropped)
    s = torch.from_numpy(src[keep].astype(np.int64))
    d = torch.from_numpy(dst[keep].astype(np.int64))
    r = torch.from_numpy(rel_mapped[keep])
    if add_inverse:
        edge_index = torch.stack([torch.cat([s, d]), torch.cat([d, s])])
        edge_type = torch.cat([r, r + len(base)])
        vocab = relation_vocabulary(base)
    else:
        edge_index = torch.stack([s, d])
        edge_type = r
        vocab = base
    data = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=len(graph))
    if x is not None:
        if x.shape[0] != len(graph):
            raise ValueError(f"x has {x.shape[0]} rows but the graph has {len(graph)} concepts")
        data.x = x
    data.node_ids = list(graph.ids)
    data.node_index = {cid: i for i, cid in enumerate(data.node_ids)}
    data.relation_types = vocab
    data.relation_index = {t: i for i, t in enumerate(vocab)}
    data.num_base_relations = len(base)
    return data


_TEXT_FINGERPRINTS: dict[int, tuple[TextEncoder, str]] = {}


def text_encoder_fingerprint(encoder: TextEncoder) -> str:
    """``encoder.fingerprint``, computed once per encoder object (a Hugging Face tower re-hashes its weight files
    on every access, ~90 MB for MiniLM, which would dominate a sub-second refresh)."""
    hit = _TEXT_FINGERPRINTS.get(id(encoder))
    if hit is None or hit[0] is not encoder:
        hit = _TEXT_FINGERPRINTS[id(encoder)] = (encoder, encoder.fingerprint)
    return hit[1]


def _text_key(text: str) -> bytes:
    return bytes.fromhex(Hasher().update_str(text).hexdigest())


class FeatureCache:
    """Text vectors of one text tower on disk, keyed by a hash of the text.

    Stored as append-only safetensors shards (``keys`` ``uint8 [M, 16]``, ``vectors`` ``float32 [M, D]``) under
    ``<root>/kg-features/<encoder fingerprint>/``; a shard is written atomically, and an unreadable shard is skipped
    with a warning (the cache is disposable: its vectors are recomputed).

    Args:
        encoder: the text tower.
        root: cache root; ``None`` -> :func:`kgclip.config.kgclip_home`.
    """

    _MAX_SHARDS = 32  # merged into one shard beyond this, so that loading stays one read per few files

    def __init__(self, encoder: TextEncoder, root: str | os.PathLike[str] | None = None) -> None:
        self.encoder = encoder
        self.directory = (Path(root if root is not None else kgclip_home()) / "kg-features"
                          / text_encoder_fingerprint(encoder))
        self._index: dict[bytes, torch.Tensor] | None = None

    def _load(self) -> dict[bytes, torch.Tensor]:
        if self._index is not None:
            return self._index
        from safetensors.torch import load_file

        index: dict[bytes, torch.Tensor] = {}
        for shard in sorted(self.directory.glob("shard-*.safetensors")):
            try:
                tensors = load_file(str(shard))
                keys, vectors = tensors["keys"], tensors["vectors"]
                if keys.shape[0] != vectors.shape[0] or vectors.shape[1] != self.encoder.dim:
                    raise ValueError("shape mismatch")
            except Exception as exc:  # noqa: BLE001 - any unreadable shard is just a cache miss
                log.warning("ignoring unreadable feature cache shard %s (%s); its vectors will be recomputed",
                            shard, exc)
                continue
            for key, vector in zip(keys.numpy(), vectors):
                index[key.tobytes()] = vector
        self._index = index
        return index

    def _write_shard(self, keys: list[bytes], vectors: torch.Tensor) -> None:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        key_tensor = torch.from_numpy(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16).copy())
        name = Hasher().update_bytes(b"".join(keys)).hexdigest()
        with atomic_path(self.directory / f"shard-{name}.safetensors") as tmp:
            save_file({"keys": key_tensor, "vectors": vectors.contiguous()}, str(tmp))

    def _compact(self) -> None:
        shards = sorted(self.directory.glob("shard-*.safetensors"))
        if len(shards) <= self._MAX_SHARDS or self._index is None:
            return
        keys = list(self._index)
        self._write_shard(keys, torch.stack([self._index[k] for k in keys]))
        merged = self.directory / f"shard-{Hasher().update_bytes(b''.join(keys)).hexdigest()}.safetensors"
        for shard in shards:
            if shard != merged:
                shard.unlink(missing_ok=True)

    def encode(self, texts: Sequence[str], show_progress: bool = False, batch_size: int = 128) -> torch.Tensor:
        """Vectors for ``texts``, computing (and caching) only the ones not seen before.

        Shapes:
            returns ``[len(texts), encoder.dim]`` float32.
        """
        index = self._load()
        keys = [_text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in index))
        if missing:
            by_key = dict(zip(keys, texts))
            vectors = self.encoder.encode([by_key[k] for k in missing], batch_size=batch_size,
                                          show_progress=show_progress).float()
            self._write_shard(missing, vectors)
            for key, vector in zip(missing, vectors):
                index[key] = vector
            self._compact()
        if not keys:
            return torch.zeros(0, self.encoder.dim)
        return torch.stack([index[k] for k in keys])


_CACHES: dict[tuple[str, str], FeatureCache] = {}


def concept_features(
    graph: ConceptGraph,
    text_encoder: str | TextEncoder = "minilm",
    *,
    ids: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None | bool = None,
    show_progress: bool = False,
) -> torch.Tensor:
    """Text-tower features of concepts (all of them, or ``ids``), from the on-disk cache when possible.

    Args:
        graph: the concept graph.
        text_encoder: a text tower or its name (``"minilm"``, ``"hashing-64"``, a local model directory).
        ids: which concepts (default: all, in ``graph.ids`` order).
        cache_dir: cache root (``None`` -> ``kgclip_home()``); ``False`` disables the disk cache.
        show_progress: show a progress bar while encoding.

    Shapes:
        returns ``[len(ids), text_encoder.dim]`` float32, unit L2 norm per row.
    """
    encoder = load_text_encoder(text_encoder) if isinstance(text_encoder, str) else text_encoder
    wanted = graph.ids if ids is None else ids
    texts = [concept_text(graph.concept(cid)) for cid in wanted]
    if cache_dir is False:
        return encoder.encode(texts, show_progress=show_progress).float()
    root = str(Path(cache_dir if cache_dir is not None else kgclip_home()).resolve())
    key = (root, text_encoder_fingerprint(encoder))
    cache = _CACHES.get(key)
    if cache is None or cache.encoder is not encoder:
        cache = _CACHES[key] = FeatureCache(encoder, root)
    return cache.encode(texts, show_progress=show_progress)
