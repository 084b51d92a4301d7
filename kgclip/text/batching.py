"""What every concrete text tower shares: an in-memory cache by text, length-bucketed batches with a progress bar
counted in tokens, and the thread count that uses every core this process may use.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import torch

__all__ = ["CachedEncoder", "available_threads", "length_batches", "threads_for"]

# Below this many tokens a forward pass is a few milliseconds of work: splitting it over threads gains nothing,
# and on a busy machine the threads wait for each other (a one-question forward took 0.5 s on two threads under
# load, 15 ms on one).
SMALL_WORK_TOKENS = 512


def available_threads() -> int:
    """Cores this process may use: ``OMP_NUM_THREADS`` when set (a user's cap), else the CPU affinity mask."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def threads_for(n_tokens: int) -> Iterator[None]:
    """Run the block on one torch thread when the work is small (``n_tokens`` < :data:`SMALL_WORK_TOKENS`), else
    with the threads already set; the previous setting is restored after."""
    if n_tokens >= SMALL_WORK_TOKENS or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def length_batches(lengths: Sequence[int], batch_size: int, *, max_tokens: int | None = None,
                   desc: str = "encoding text", show_progress: bool = False) -> Iterator[tuple[list[int], int]]:
    """Batches of indices of similar length, longest first, with the padded width of each.

    With ``max_tokens``, a batch of short texts takes more than ``batch_size`` rows, as many as keep its padded
    size (rows x width) within ``max_tokens``: short texts then cost fewer calls, long ones are unchanged.

    The progress bar counts tokens, not batches: a batch of long texts costs more than one of short texts, so a
    count of batches would promise an ETA the long batches then break.

    Example:
        >>> [(idx, width) for idx, width in length_batches([3, 9, 4, 8], 2)]
        [([1, 3], 9), ([2, 0], 4)]
        >>> [(idx, width) for idx, width in length_batches([3, 9, 4, 8], 1, max_tokens=8)]
        [([1], 9), ([3], 8), ([2, 0], 4)]
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 (or None for batch_size rows), got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    with tqdm(total=int(sum(lengths)), desc=f"{desc}: {len(lengths)} texts", unit="tok", unit_scale=True,
              disable=not show_progress, leave=False) as bar:
        start = 0
        while start < len(order):
            width = lengths[order[start]]
            rows = max(batch_size, max_tokens // max(1, width)) if max_tokens else batch_size
            idx = order[start:start + rows]
            start += len(idx)
            yield idx, width
            bar.update(sum(lengths[i] for i in idx))


class CachedEncoder:
    """In-memory LRU cache keyed by text, shared by the concrete encoders."""

    cache_size: int = 50_000

    def __init__(self) -> None:
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> torch.Tensor:
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is None:
                missing.setdefault(text, []).append(i)
            else:
                self._cache.move_to_end(text)
                out[i] = hit
        if missing:
            unique = list(missing)
            vectors = self._encode_uncached(unique, batch_size, show_progress)
            for text, vector in zip(unique, vectors):
                for i in missing[text]:
                    out[i] = vector
                self._cache[text] = vector.clone()
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    def _encode_uncached(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        raise NotImplementedError

    dim: int
