"""The workspace's two vector tables (case images, case texts) as :mod:`kgclip.index` indexes.

The backend is chosen by name through the index layer's :class:`~kgclip.resolver.Registry`
(:data:`kgclip.index.base.INDEX_BACKENDS`): ``"faiss"`` (in-process, an exact ``Flat`` index saved in the workspace)
or ``"milvus"``. A backend whose class can ``drop`` its collection keeps its vectors in an external store: it gets a
Milvus Lite file inside the table directory (or the configured ``index_uri``), and a rebuild drops the collection an
earlier build left there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgclip.errors import ArtifactCorruptError, ConfigError, IndexError_, KgclipError, ResolutionError

__all__ = ["backend_class", "keeps_external_store", "new_table", "load_table", "detach", "reopen",
           "release_local_stores"]

_LITE_FILE = "milvus.db"  # the local store of an external-store table kept inside its workspace directory


def backend_class(name: str) -> type:
    """The index backend class registered under ``name``.

    Raises:
        ConfigError: no such backend (the message lists the registered ones).
    """
    import kgclip.index.faiss_index  # noqa: F401  (importing a backend module registers it)
    import kgclip.index.milvus_index  # noqa: F401
    from kgclip.index.base import INDEX_BACKENDS

    try:
        return INDEX_BACKENDS.resolve(name)
    except ResolutionError as exc:
        raise ConfigError(f"index_backend: {exc}") from None


def keeps_external_store(cls: type) -> bool:
    """Whether the backend's vectors live in an external collection (dropped with ``drop``), not in its directory."""
    return callable(getattr(cls, "drop", None))


def new_table(backend: str, uri: str | None, workspace: Path, name: str, dim: int, fingerprint: str) -> Any:
    """An empty index ``index_<name>`` of the named backend (``uri``: its external store, when it has one).

    Raises:
        IndexError_: the backend cannot be created (e.g. a Milvus server that does not answer, naming its uri).
    """
    cls = backend_class(backend)
    kwargs: dict[str, Any] = {}
    if keeps_external_store(cls):
        if uri is None:  # own Lite file in the table directory, fixed collection: rebuilds replace it
            kwargs = {"uri": str(workspace / f"index_{name}" / _LITE_FILE), "collection": f"kgclip_{name}"}
            if Path(kwargs["uri"]).exists():  # the workspace's own earlier collection, perhaps of another dim
                from kgclip.index.milvus_support import drop_collection

                drop_collection(kwargs["uri"], kwargs["collection"])
        else:
            kwargs = {"uri": uri}
    try:
        index = cls(dim=dim, encoder_fingerprint=fingerprint, **kwargs)
        if len(index) and keeps_external_store(cls):  # a named collection left by an earlier build: start over
            index.drop()
            index.close()
            index = cls(dim=dim, encoder_fingerprint=fingerprint, **kwargs)
    except KgclipError:
        raise  # already says what failed and what to do (e.g. Milvus unreachable, naming the uri)
    except Exception as exc:  # noqa: BLE001 - e.g. a missing optional dependency of the backend
        raise IndexError_(f"cannot create the {backend!r} vector index ({type(exc).__name__}: {exc}); install "
                          f"the backend (pip install 'kgclip[{backend}]') or choose index_backend='faiss'") from exc
    return index


def load_table(directory: Path, fingerprint: str) -> Any:
    """Load a saved table, refusing one built with another encoder (``EncoderMismatchError``).

    Raises:
        ArtifactCorruptError: the table is missing, damaged, or in the exact-table format of kgclip before 0.2.
    """
    from kgclip.index.base import load_index

    if (Path(directory) / "table.json").is_file():
        raise ArtifactCorruptError(f"{directory} is a vector table in the format of an older kgclip; rebuild the "
                                   "workspace with `kgclip demo --out DIR` or Engine.build(config, DIR)")
    return load_index(directory, encoder_fingerprint=fingerprint)


def detach(table: Any) -> None:
    """Release an external-store table written into a staging directory before that directory is renamed (a
    Milvus Lite server is bound to its file's path); in-process tables need nothing."""
    if not keeps_external_store(type(table)):
        return
    table.close()
    uri = str(getattr(table, "uri", "") or "")
    if uri and "://" not in uri:
        _release(uri)


def release_local_stores(workspace: Path) -> None:
    """Stop the servers of the local stores inside ``workspace``'s table directories before the directory is
    swapped: a Milvus Lite server is bound to its file's path and would otherwise keep serving the old file."""
    for name in ("index_image", "index_text"):
        path = Path(workspace) / name / _LITE_FILE
        if path.exists():
            _release(str(path))


def _release(path: str) -> None:
    from kgclip.index.milvus_support import _release_lite

    _release_lite(path)


def reopen(table: Any, directory: Path) -> Any:
    """``table`` as saved in ``directory``: itself for an in-process table, reconnected for an external store."""
    if not keeps_external_store(type(table)):
        return table
    return load_table(directory, table.encoder_fingerprint)
