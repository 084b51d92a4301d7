"""The kgclip error hierarchy.

Every message says what went wrong *and* what to do about it. Catch :class:`KgclipError` to handle any
error raised by kgclip itself.
"""

from __future__ import annotations

__all__ = [
    "KgclipError",
    "ConfigError",
    "ResolutionError",
    "InputFormatError",
    "UnknownConceptError",
    "DuplicateConceptError",
    "GraphValidationError",
    "CurationError",
    "StaleArtifactError",
    "ArtifactCorruptError",
    "ModelNotFoundError", "DataNotFoundError",
    "ImageReadError",
    "IndexError_",
    "EncoderMismatchError",
    "LockedError",
]


class KgclipError(Exception):
    """Base class of every error kgclip raises on purpose."""


class ConfigError(KgclipError, ValueError):
    """A configuration value is invalid."""


class ResolutionError(KgclipError, KeyError):
    """A name (encoder, backend, format...) is not among the registered choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputFormatError(KgclipError, ValueError):
    """An input file is malformed. The message names the file and the line (or element) where it broke.

    Attributes:
        path: the file that failed, when known.
        line: 1-based line number, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class UnknownConceptError(KgclipError, KeyError):
    """A concept id is not in the graph."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateConceptError(KgclipError, ValueError):
    """A concept id is already in the graph."""


class GraphValidationError(KgclipError, ValueError):
    """A graph failed validation (dangling ids, is-a cycles, duplicate ids)."""


class CurationError(KgclipError, ValueError):
    """A curation edit was refused; the graph is unchanged."""


class StaleArtifactError(KgclipError):
    """An artifact was built from inputs that have since changed (its fingerprint does not match)."""


class ArtifactCorruptError(KgclipError):
    """An artifact on disk is truncated or corrupted."""


class ModelNotFoundError(KgclipError, FileNotFoundError):
    """A model directory or package is missing."""


class DataNotFoundError(KgclipError, FileNotFoundError):
    """A dataset directory, or a file it must hold, is missing."""


class ImageReadError(KgclipError, ValueError):
    """An image or DICOM file cannot be read."""


class IndexError_(KgclipError):
    """A vector index operation failed (named with a trailing underscore to keep the builtin visible)."""


class EncoderMismatchError(KgclipError):
    """An index was built with a different encoder than the one used to query it."""


class LockedError(KgclipError):
    """Another process holds the write lock on an artifact directory."""
