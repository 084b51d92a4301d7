"""The server's one config: where the workspace and ontologies are, where it listens, and its limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from kgclip.config import Config
from kgclip.errors import ConfigError

__all__ = ["ServeConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): the only hosts served without a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig(Config):
    """Settings of ``kgclip serve``.

    Attributes:
        workspace: an engine workspace (from ``kgclip demo`` or ``Engine.build``); ``None`` serves curation only.
        ontologies: curated graph directories to browse and edit (their names in URLs are the folder names).
        host: address to bind; anything but loopback needs ``token``.
        port: TCP port.
        token: shared secret every request must carry (``Authorization: Bearer``, or the cookie set by
            ``/login?token=``); required off loopback.
        read_only: refuse every change (accepting drafts, curation edits, reviews) with 403.
        max_upload_bytes: largest upload accepted (checked before it is read whole).
        max_pixels: largest image accepted, in pixel values (checked from the header, before decoding).
        max_question_chars: longest question or search text accepted.
        max_uploads: uploads kept in memory (de-identified pixels only); the oldest are dropped first.
    """

    workspace: Path | None = None
    ontologies: tuple[Path, ...] = field(default_factory=tuple)
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    read_only: bool = False
    max_upload_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_question_chars: int = 2000
    max_uploads: int = 64

    def __post_init__(self) -> None:
        if self.workspace is not None:
            object.__setattr__(self, "workspace", Path(self.workspace))
        object.__setattr__(self, "ontologies", tuple(Path(p) for p in self.ontologies))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        for name in ("max_upload_bytes", "max_pixels", "max_question_chars", "max_uploads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("the token must be at least 16 characters; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
        names = [p.name for p in self.ontologies]
        if len(set(names)) != len(names):
            raise ConfigError(f"ontology directories must have distinct folder names, got {names}")
        if self.workspace is None and not self.ontologies:
            raise ConfigError("nothing to serve: pass --workspace DIR (ask, draft, search) and/or --ontology DIR "
                              "(curation)")

    def check_exposure(self) -> None:
        """Refuse to listen beyond this machine without a token.

        Raises:
            ConfigError: ``host`` is not loopback and no ``token`` is set.
        """
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(f"refusing to serve on {self.host!r} without a token: anyone who can reach it could "
                              "read cases and edit ontologies. Pass --token (or set KGCLIP_TOKEN), or bind "
                              "127.0.0.1")
