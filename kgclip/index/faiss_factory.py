"""Building and training the FAISS index inside a :class:`~kgclip.index.faiss_index.FaissIndex`.

:class:`IndexConfig` names the index by a FAISS factory string; :func:`build_index` turns it into an empty FAISS
index set up for explicit ids (flat codes wrapped in ``IndexIDMap2``, IVF with a hash-table direct map, anything
else addressed by position), and :func:`index_family` tells which of those an index is. IVF, PQ and SQ indexes
must be trained before the first add: :func:`needed_training_vectors` and :func:`train_index` say how many
vectors that takes and refuse too few with an error saying what to do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from kgclip.config import Config
from kgclip.errors import ConfigError, IndexError_

__all__ = ["IndexConfig", "build_index", "index_family", "hnsw_of", "needed_training_vectors", "train_index"]

_DEVICES = ("cpu", "auto", "cuda")


@dataclass(frozen=True)
class IndexConfig(Config):
    """Configuration of a :class:`FaissIndex` (saved in its manifest)."""

    dim: int = 384  # vector dimension
    factory: str = "Flat"  # FAISS factory string without ids/metric: Flat, IVF4096,Flat, IVF1024,PQ32, HNSW32...
    nprobe: int = 16  # IVF lists visited per query (recall vs speed)
    ef_search: int = 64  # HNSW candidate list size per query (recall vs speed); raised to k when smaller
    ef_construction: int = 200  # HNSW build-time candidate list size (graph quality vs build time; see README)
    device: str = "cpu"  # cpu | auto (GPU via faiss-gpu when present) | cuda (GPU required)
    exact_filter_max: int = 50_000  # filtered searches matching at most this many items are scored exactly
    filter_boost: float = 8.0  # broad filtered IVF / HNSW searches raise nprobe / efSearch by 1 / matching fraction,
    # at most this factor (1 disables), so recall stays about that of an unfiltered search
    compact_min_dead_fraction: float = 0.0  # save() rebuilds a graph index when tombstones exceed this fraction
    spherical: bool = True  # IVF training: normalise centroids (spherical k-means suits cosine similarity)

    def __post_init__(self) -> None:
        if int(self.dim) <= 0:
            raise ConfigError(f"dim must be positive, got {self.dim}")
        if not self.factory or "idmap" in self.factory.lower():
            raise ConfigError(
                f"factory {self.factory!r}: give a FAISS factory string such as 'Flat', 'IVF1024,Flat' or "
                "'HNSW32', without IDMap (ids are handled by FaissIndex)"
            )
        if self.device not in _DEVICES:
            raise ConfigError(f"device must be one of {_DEVICES}, got {self.device!r}")
        if self.nprobe < 1 or self.ef_search < 1 or self.ef_construction < 1:
            raise ConfigError("nprobe, ef_search and ef_construction must be >= 1")
        if self.exact_filter_max < 0 or not 0.0 <= self.compact_min_dead_fraction <= 1.0:
            raise ConfigError("exact_filter_max must be >= 0 and compact_min_dead_fraction within [0, 1]")
        if not self.filter_boost >= 1.0:
            raise ConfigError(f"filter_boost must be >= 1 (1 disables the boost), got {self.filter_boost}")


def build_index(config: IndexConfig) -> Any:
    """An empty FAISS index for ``config`` (inner-product metric; ids handled as :func:`index_family` says)."""
    try:
        index = faiss.index_factory(config.dim, config.factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"FAISS cannot build factory {config.factory!r}: {exc}".strip()) from exc
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.cp.spherical = config.spherical
        concrete = faiss.downcast_index(ivf)
        if hasattr(concrete, "do_polysemous_training"):
            # Polysemous code re-ordering is only used with polysemous_ht and takes minutes to train.
            concrete.do_polysemous_training = False
        return index
    if isinstance(faiss.downcast_index(index), faiss.IndexFlatCodes):
        return faiss.IndexIDMap2(index)
    return index


def index_family(index: Any) -> str:
    """``"ivf"`` (native ids), ``"idmap"`` (an ``IndexIDMap2``) or ``"graph"`` (addressed by position)."""
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    if isinstance(index, faiss.IndexIDMap2):
        return "idmap"
    return "graph"


def hnsw_of(index: Any) -> Any:
    """The HNSW graph of an HNSW index (to set ``efSearch`` / ``efConstruction``), else ``None``."""
    return getattr(faiss.downcast_index(index), "hnsw", None)


def needed_training_vectors(index: Any) -> int:
    """The fewest vectors FAISS can train ``index`` on (0 when no training is needed)."""
    if index.is_trained:
        return 0
    need = 1
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        need = max(need, int(ivf.nlist))
        ivf = faiss.downcast_index(ivf)
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIDMap2):
        inner = faiss.downcast_index(inner.index)
    for holder in (ivf, inner):
        pq = getattr(holder, "pq", None)
        if pq is not None:
            need = max(need, int(pq.ksub))
    return need


def train_index(index: Any, x: np.ndarray, factory: str) -> None:
    """Train ``index`` (built from ``factory``) on normalised vectors ``x`` ``[N, dim]``, refusing too few."""
    need = needed_training_vectors(index)
    if len(x) < need:
        raise IndexError_(
            f"factory {factory!r} needs at least {need} training vectors (about {39 * need} "
            f"for good clusters), got {len(x)}. Add more vectors in the first batch, call train() with a "
            f"larger sample, or choose a smaller index (e.g. fewer IVF lists, or 'Flat')."
        )
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and len(x) < 39 * int(ivf.nlist):
        # stacklevel 3: the warning points at whoever called FaissIndex.train (or add), not at this helper.
        warnings.warn(
            f"training IVF with {len(x)} vectors for {ivf.nlist} lists; FAISS recommends >= "
            f"{39 * int(ivf.nlist)}", stacklevel=3)
    index.train(x)
