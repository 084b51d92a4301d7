"""Fixtures for the web app: a private copy of the demo workspace, a small curated graph, and clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from kgclip.ontology.store import save_graph  # noqa: E402
from kgclip.serve.app import create_app  # noqa: E402
from kgclip.serve.config import ServeConfig  # noqa: E402
from kgclip.testing import tiny_graph  # noqa: E402


class CsrfClient(TestClient):
    """A TestClient that echoes the CSRF cookie on every POST, as the pages' script does."""

    def post(self, url, *args, **kwargs):  # noqa: ANN001, ANN201 - TestClient's signature
        if "kgclip_csrf" not in self.cookies:
            self.get("/api/ontology")
        headers = {"X-CSRF-Token": self.cookies.get("kgclip_csrf", ""), **(kwargs.pop("headers", None) or {})}
        return super().post(url, *args, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def workspace(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo workspace this module may change (accepted drafts become cases)."""
    target = tmp_path_factory.mktemp("serve") / "ws"
    shutil.copytree(demo_dir, target)
    return target


@pytest.fixture()
def onto_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tiny"
    save_graph(tiny_graph(), directory)
    return directory


def make_client(workspace: Path | None, onto: Path | None = None, **kwargs) -> CsrfClient:  # noqa: ANN003
    config = ServeConfig(workspace=workspace, ontologies=(onto,) if onto else (), **kwargs)
    return CsrfClient(create_app(config), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def client(workspace: Path) -> Iterator[CsrfClient]:
    with make_client(workspace) as c:
        yield c
