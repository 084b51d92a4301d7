"""One lazy-export helper for every package ``__init__`` (PEP 562), so ``import kgclip.x`` loads no torch, faiss or
transformers until a name that needs them is used.

Example:
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"read_image": "kgclip.imaging.io"})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package`` for ``exports`` (name -> absolute module path).

    A resolved name is cached in the package's namespace, so later lookups skip ``__getattr__``.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
