"""Choose implementations by name; an unknown name lists the valid choices (after PyG's ``resolver.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from kgclip.errors import ResolutionError

__all__ = ["Registry"]

T = TypeVar("T")


def _normalise(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


class Registry(Generic[T], Mapping[str, T]):
    """A read-only-after-registration name -> implementation table.

    Example:
        >>> encoders = Registry("GNN encoder")
        >>> @encoders.register("rgcn")
        ... class RGCN: ...
        >>> encoders.resolve("R-GCN") is RGCN
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = _normalise(name)
            if key in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = obj
            return obj

        return decorator

    def resolve(self, name: str) -> T:
        try:
            return self._items[_normalise(name)]
        except KeyError:
            choices = ", ".join(sorted(self._items))
            raise ResolutionError(f"Could not resolve {self.kind} {name!r} among choices {{{choices}}}") from None

    def __getitem__(self, name: str) -> T:
        return self.resolve(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
