"""Hugging Face hub names (``hf-hub:<org>/<repo>``) resolved to a local snapshot through the normal hub cache.

Used by the image towers (:mod:`kgclip.models.hub_towers`) and usable by any text tower, so that both towers of one
hub model (open_clip's BiomedCLIP, a Hugging Face ``CLIPModel`` such as PubMedCLIP) come from the same snapshot.
With ``HF_HUB_OFFLINE=1`` only the cache is read; nothing is downloaded at import time, and tests place tiny models
in a temporary cache (``HF_HUB_CACHE``).
"""

from __future__ import annotations

from pathlib import Path

from kgclip.errors import ModelNotFoundError

__all__ = ["HUB_PREFIX", "is_hub_name", "resolve_hub_snapshot"]

HUB_PREFIX = "hf-hub:"


def is_hub_name(name: str) -> bool:
    """Whether ``name`` is an ``hf-hub:<repo>`` reference."""
    return name.strip().lower().startswith(HUB_PREFIX)


def resolve_hub_snapshot(name: str, revision: str | None = None) -> Path:
    """The local snapshot directory of ``hf-hub:<org>/<repo>`` (or a bare ``<org>/<repo>``).

    Downloads into the hub cache only when the environment allows it (network, no ``HF_HUB_OFFLINE``); otherwise the
    cached snapshot is used.

    Raises:
        ModelNotFoundError: the repository is neither cached nor reachable (the message names the download command).
    """
    repo = name.strip()[len(HUB_PREFIX):] if is_hub_name(name) else name.strip()
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ModelNotFoundError(f"{name!r} is not a hub name; write hf-hub:<org>/<repo>, e.g. "
                                 "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - transformers depends on huggingface_hub
        raise ModelNotFoundError("hf-hub: names need huggingface_hub: pip install huggingface_hub") from exc
    try:
        return Path(snapshot_download(repo_id=repo, revision=revision))
    except Exception as exc:  # noqa: BLE001 - offline / not cached / gated: one clear error with the fix
        raise ModelNotFoundError(
            f"hub model {repo!r} is not in the hub cache and cannot be downloaded here ({type(exc).__name__}); on a "
            f"machine with a network run `huggingface-cli download {repo}` (it fills the same cache, see "
            "HF_HUB_CACHE), or pass a local model directory instead") from exc
