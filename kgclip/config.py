"""Typed, frozen configuration dataclasses with a JSON round-trip.

Each stage defines one frozen dataclass deriving from :class:`Config` (``KGTrainConfig`` in ``kg/train.py``,
``IndexConfig`` in ``index/faiss_index.py``...), with a comment on each field and checks in ``__post_init__``.
Override a field with :func:`dataclasses.replace`. Stage configs live beside their stage so that importing one stage
never imports another's heavy dependencies; this module holds what they share.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

from kgclip.atomic import atomic_write_json
from kgclip.errors import ConfigError

__all__ = ["Config", "kgclip_home", "shared_data_dir", "shipped_ontologies_dir"]

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every stage config: ``to_dict`` / ``from_dict`` / ``save`` / ``load``."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Path):
                value = str(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no field(s) {unknown}; valid fields are {sorted(names)}. "
                "Was this config written by another kgclip version?"
            )
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            hint = hints.get(name)
            if isinstance(hint, type) and issubclass(hint, Config) and isinstance(value, dict):
                value = hint.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, {"type": type(self).__name__, "config": self.to_dict()})

    @classmethod
    def load(cls: type[C], path: str | os.PathLike[str]) -> C:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}. Re-create it or pass the config explicitly.") from exc
        if payload.get("type") != cls.__name__:
            raise ConfigError(f"{path} holds a {payload.get('type')!r}, not a {cls.__name__}")
        return cls.from_dict(payload["config"])


def kgclip_home() -> Path:
    """Cache and workspace root: ``$KGCLIP_HOME`` or ``~/.cache/kgclip``; read lazily, never at import."""
    return Path(os.environ.get("KGCLIP_HOME", Path.home() / ".cache" / "kgclip"))


def shipped_ontologies_dir() -> Path | None:
    """Where the shipped curated graphs (RadLex, Disease Ontology) are, or ``None`` if this install has none.

    An installed wheel carries them as package data (``kgclip/shipped_ontologies``, mapped from the repository's
    ``ontologies/`` by pyproject.toml); an editable install or a source checkout reads ``ontologies/`` beside the
    package. Both are read-only inputs: curators edit a copy (``kgclip ontology import``/``cp -r``) or the checkout.
    """
    import importlib.resources

    packaged = Path(str(importlib.resources.files("kgclip").joinpath("shipped_ontologies")))
    for candidate in (packaged, Path(__file__).resolve().parents[1] / "ontologies"):
        if candidate.is_dir() and any(candidate.glob("*/concepts.tsv")):
            return candidate
    return None


def shared_data_dir() -> Path | None:
    """The development data folder: ``$KGCLIP_SHARED_DATA`` or ``../shared/data`` beside the checkout, if present."""
    env = os.environ.get("KGCLIP_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def dataset_dir(given: str | os.PathLike | None, name: str, option: str = "--medpix") -> Path:
    """``given`` when set, else ``<shared data>/<name>``; :class:`ConfigError` naming ``option`` when neither."""
    if given:
        return Path(given)
    shared = shared_data_dir()
    if shared is None:
        raise ConfigError(f"no {name} folder: pass {option} DIR (the shared data folder was not found)")
    return shared / name
