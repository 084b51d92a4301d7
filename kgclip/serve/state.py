"""What every route shares: the server state, blocking calls off the event loop, request body checks."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from starlette.requests import Request

from kgclip.errors import InputFormatError, KgclipError
from kgclip.serve.config import ServeConfig
from kgclip.serve.uploads import UploadStore

__all__ = ["ServerState", "state_of", "run_blocking", "json_body", "ReadOnlyError", "require_text"]


class ReadOnlyError(KgclipError):
    """A change was asked of a server started with ``--read-only``."""


class ServerState:
    """What the routes share: the config, the engine (loaded once), uploads, and a lock per writer."""

    def __init__(self, config: ServeConfig, engine: Any = None) -> None:
        self.config = config
        self._engine = engine
        self._engine_lock = threading.Lock()
        # One engine call at a time: queries share caches and add_cases rewrites the workspace.
        self.engine_busy = threading.Lock()
        self.uploads = UploadStore(capacity=config.max_uploads, max_pixels=config.max_pixels)
        self.ontologies = {p.name: p for p in config.ontologies}

    @property
    def engine(self) -> Any:
        if self.config.workspace is None and self._engine is None:
            raise KgclipError("this server has no workspace: start it with --workspace DIR to ask, draft and search")
        with self._engine_lock:
            if self._engine is None:
                from kgclip.engine import Engine

                self._engine = Engine.load(self.config.workspace)
            return self._engine

    def require_writable(self) -> None:
        if self.config.read_only:
            raise ReadOnlyError("this server is read-only (started with --read-only): changes are refused")


def state_of(request: Request) -> ServerState:
    return request.app.state.kgclip


async def run_blocking(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking library call (model inference, file writes) in a worker thread, off the event loop."""
    return await asyncio.to_thread(func, *args, **kwargs)


async def json_body(request: Request, max_bytes: int = 1_000_000) -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        InputFormatError: larger than ``max_bytes``, not UTF-8 JSON, or not an object.
    """
    raw = await request.body()
    if len(raw) > max_bytes:
        raise InputFormatError(f"request body over {max_bytes} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFormatError(f"the request body is not UTF-8 JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputFormatError("the request body must be a JSON object")
    return data


def require_text(data: dict[str, Any], key: str, limit: int, *, what: str | None = None) -> str:
    """``data[key]`` as a non-empty string of at most ``limit`` characters.

    Raises:
        InputFormatError: missing, not a string, empty or too long.
    """
    value = data.get(key)
    what = what or key
    if not isinstance(value, str) or not value.strip():
        raise InputFormatError(f"{what} is missing or empty")
    if len(value) > limit:
        raise InputFormatError(f"{what} is {len(value)} characters; the limit is {limit}")
    return value.strip()
