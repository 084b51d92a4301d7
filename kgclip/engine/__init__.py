"""The engine's one home: a workspace directory holding everything needed to ask a scan, search cases and draft a
report, and the :class:`Engine` that queries it.

Modules: :mod:`~kgclip.engine.config` (:class:`EngineConfig`), :mod:`~kgclip.engine.build` (build a workspace),
:mod:`~kgclip.engine.load` (load and check it), :mod:`~kgclip.engine.open` (load, or rebuild with other trained
parts), :mod:`~kgclip.engine.manifest` (fingerprints and staleness), :mod:`~kgclip.engine.cases` (the case
collection), :mod:`~kgclip.engine.tables` (its vector tables, through :mod:`kgclip.index`),
:mod:`~kgclip.engine.store` (the writer lock and atomic swaps every change goes through),
:mod:`~kgclip.engine.adding` (``add_cases``), :mod:`~kgclip.engine.images` (de-identified, content-addressed
image copies), :mod:`~kgclip.engine.limits` (input checks and limits), :mod:`~kgclip.engine.model_parts`
(optional trained parts), :mod:`~kgclip.engine.demo` (``kgclip demo``) and :mod:`~kgclip.engine.engine` (the
queries). Names load lazily (PEP 562).

Example:
    >>> from kgclip.engine import Engine, EngineConfig
    >>> engine = Engine.load("indexes/demo")                      # doctest: +SKIP
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports

_EXPORTS = {
    "Engine": "kgclip.engine.engine",
    "EngineConfig": "kgclip.engine.config",
    "Case": "kgclip.engine.cases",
    "run_demo": "kgclip.engine.demo",
    "DemoResult": "kgclip.engine.demo",
    "shipped_demo_dir": "kgclip.engine.build",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
