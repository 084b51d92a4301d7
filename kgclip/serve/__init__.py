"""``kgclip serve``: a small web app for radiologists (ask a scan, draft a report) and curators (edit the graph).

One ASGI process (Starlette + uvicorn), server-rendered HTML with a little hand-written JavaScript, on top of the
public :class:`~kgclip.engine.Engine` and ontology APIs only. Security defaults are in :mod:`kgclip.serve.security`.

Example:
    >>> from kgclip.serve import ServeConfig, create_app           # doctest: +SKIP
    >>> app = create_app(ServeConfig(workspace="indexes/demo"))     # doctest: +SKIP
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports

__all__ = ["ServeConfig", "create_app"]

__getattr__, __dir__ = lazy_exports(__name__, {"ServeConfig": "kgclip.serve.config",
                                               "create_app": "kgclip.serve.app"})
