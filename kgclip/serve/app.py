"""The ASGI app: routes for pages, scans (ask, draft, search, accept) and curation, over the public APIs."""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from kgclip.errors import KgclipError
from kgclip.serve import curate_api, pages, scans_api
from kgclip.serve.config import ServeConfig
from kgclip.serve.security import SecurityMiddleware
from kgclip.serve.state import ReadOnlyError, ServerState

__all__ = ["create_app"]


def _error_response(exc: Exception) -> JSONResponse:
    from kgclip.errors import ConfigError, CurationError, ImageReadError, InputFormatError, LockedError

    status = 400
    if isinstance(exc, ReadOnlyError):
        status = 403
    elif isinstance(exc, LockedError):
        status = 409
    elif isinstance(exc, CurationError):
        status = 409 if "changed by another writer" in str(exc) else 400
    elif isinstance(exc, (ImageReadError, InputFormatError, ConfigError)):
        status = 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def _kgclip_error(request: Request, exc: Exception) -> Response:
    return _error_response(exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "not found"}, status_code=404)
    return pages.not_found(request)


def create_app(config: ServeConfig, *, engine: Any = None) -> Starlette:
    """The web app for ``config`` (``engine``: an already loaded :class:`~kgclip.engine.Engine`, e.g. in tests).

    Raises:
        ConfigError: the config would expose the server beyond loopback without a token.
    """
    config.check_exposure()
    state = ServerState(config, engine)
    static = resources.files("kgclip.serve").joinpath("static")
    routes = [
        *pages.routes(),
        *scans_api.routes(),
        *curate_api.routes(),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={KgclipError: _kgclip_error, 404: _not_found})
    app.add_middleware(SecurityMiddleware, token=config.token)
    app.state.kgclip = state
    return app
