"""Choose implementations by name; an unknown name lists the valid choices (after PyG's ``resolver.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from kgclip.errors import ResolutionError

__all__ = ["Registry"]

T = TypeVar("T")


def _normalise(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


class Registry(Generic[T], Mapping[str, T]):
    """A read-only-after-registration name -> implementation table.

    Names match ignoring case, ``-`` and ``_``. Aliases are registered with their implementation (the one place
    they live) and resolve like names; iteration and error messages list the registered names, not the aliases.

    Example:
        >>> encoders = Registry("GNN encoder")
        >>> @encoders.register("rgcn", aliases=("relational-gcn",))
        ... class RGCN: ...
        >>> encoders.resolve("R-GCN") is encoders.resolve("relational_gcn") is RGCN
        True
        >>> list(encoders)
        ['rgcn']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._names: dict[str, str] = {}  # normalised name -> name as registered (aliases excluded)
        self._aliases: dict[str, str] = {}  # normalised alias -> normalised name

    def register(self, name: str, *, aliases: Iterable[str] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = _normalise(name)
            for taken in (key, *map(_normalise, aliases)):
                if taken in self._items or taken in self._aliases:
                    raise ValueError(f"{self.kind} {taken!r} is registered twice")
            self._items[key] = obj
            self._names[key] = name
            self._aliases.update({_normalise(alias): key for alias in aliases})
            return obj

        return decorator

    def canonical(self, name: str) -> str:
        """The registered name that ``name`` (a name or an alias, in any spelling) resolves to."""
        key = _normalise(name)
        key = self._aliases.get(key, key)
        if key not in self._items:
            choices = ", ".join(sorted(self._names.values()))
            raise ResolutionError(f"Could not resolve {self.kind} {name!r} among choices {{{choices}}}")
        return self._names[key]

    def aliases(self) -> dict[str, str]:
        """``{alias: registered name}`` (aliases in their normalised spelling)."""
        return {alias: self._names[key] for alias, key in sorted(self._aliases.items())}

    def resolve(self, name: str) -> T:
        return self._items[_normalise(self.canonical(name))]

    def __getitem__(self, name: str) -> T:
        return self.resolve(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(_normalise(name), _normalise(name)) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names.values()))

    def __len__(self) -> int:
        return len(self._items)
