"""Who may call the server and how: a token off loopback, CSRF on every POST, strict headers, checked ids.

- **Token.** With ``ServeConfig.token`` set, every request carries ``Authorization: Bearer <token>`` or the
  ``kgclip_token`` cookie that ``GET /login?token=...`` sets (HttpOnly, SameSite=Strict).
- **CSRF.** Double-submit: every response sets a random ``kgclip_csrf`` cookie (SameSite=Strict) if absent, pages
  carry it in ``<meta name="csrf-token">``, and every POST must echo it in the ``X-CSRF-Token`` header; else 403.
- **Headers.** A Content-Security-Policy that allows only the app's own script, no framing, no MIME sniffing, no
  referrer.
- **Ids.** Case ids, upload ids, concept ids and ontology names from a URL are matched against a strict pattern and
  looked up in what the server knows; they never become filesystem paths.
"""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

__all__ = ["SecurityMiddleware", "safe_id", "CSRF_COOKIE", "TOKEN_COOKIE"]

CSRF_COOKIE = "kgclip_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_COOKIE = "kgclip_token"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def safe_id(value: str) -> bool:
    """``True`` if ``value`` may be looked up as an id: letters, digits, ``._:-``, no path separators, <= 128."""
    return bool(_SAFE_ID.match(value)) and ".." not in value


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class SecurityMiddleware(BaseHTTPMiddleware):
    """Token check, CSRF check and security headers for every request."""

    def __init__(self, app, *, token: str | None) -> None:  # noqa: ANN001 - an ASGI app
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token is not None:
            if request.url.path == "/login":
                return self._login(request)
            bearer = request.headers.get("authorization", "")
            given = bearer[7:] if bearer.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE)
            if not _same(given, self.token):
                return PlainTextResponse("401: this server needs its token: open /login?token=... once, or send "
                                         "'Authorization: Bearer <token>'", status_code=401)
        csrf = request.cookies.get(CSRF_COOKIE)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if not _same(request.headers.get(CSRF_HEADER), csrf):
                return JSONResponse({"error": "missing or wrong CSRF token: reload the page and try again"},
                                    status_code=403)
        if not csrf:
            csrf = secrets.token_urlsafe(32)
            request.state.csrf = csrf
        else:
            request.state.csrf = csrf
        response = await call_next(request)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", path="/")
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _login(self, request: Request) -> Response:
        if not _same(request.query_params.get("token"), self.token):
            return PlainTextResponse("401: wrong token", status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, str(self.token), httponly=True, samesite="strict", path="/")
        return response
