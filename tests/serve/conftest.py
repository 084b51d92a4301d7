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


# Reports written for these tests (the shipped demo has questions and answers only, which are never drafted from).
REPORTS = [
    ("The lungs are clear. No pleural effusion or pneumothorax. The cardiac silhouette is normal in size.",
     "No acute cardiopulmonary abnormality."),
    ("Small left pleural effusion. Mild cardiomegaly. No focal consolidation.", "Small left pleural effusion."),
    ("Right lower lobe consolidation. No pleural effusion. Heart size is normal.", "Right lower lobe pneumonia."),
]


@pytest.fixture(scope="module")
def workspace(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo workspace this module may change, plus three chest cases with findings to draft from."""
    from kgclip.engine import Engine

    target = tmp_path_factory.mktemp("serve") / "ws"
    shutil.copytree(demo_dir, target)
    engine = Engine.load(target)
    chest = [c for c in engine.cases if c.body_part.upper() == "CHEST"][:len(REPORTS)]
    engine.add_cases([{"case_id": f"report-{i}", "image": str(engine.image_path(c.image)), "body_part": "CHEST",
                       "modality": "XR", "findings": findings, "impression": impression}
                      for i, (c, (findings, impression)) in enumerate(zip(chest, REPORTS))])
    return target


def chest_image(workspace: Path) -> Path:
    """The original (shipped) file of a chest case of the demo."""
    from kgclip.data.demo import demo_vqa_rad_dir
    from kgclip.engine import Engine

    engine = Engine.load(workspace)
    # The last shipped one: cases added by the tests (reports, accepted drafts) have no shipped file.
    shipped = [next((demo_vqa_rad_dir() / "images").glob(f"{c.case_id}.*"), None)
               for c in engine.cases if c.body_part.upper() == "CHEST"]
    return [path for path in shipped if path is not None][-1]


@pytest.fixture()
def onto_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tiny"
    save_graph(tiny_graph(), directory)
    return directory


@pytest.fixture()
def doid_with_suggestions(tmp_path: Path) -> Path:
    """A small DO-like graph with `same_as` suggestions into the tiny RadLex graph (from the real aligner)."""
    from kgclip.cli.main import main
    from kgclip.ontology.model import Concept, ConceptGraph, Relation

    radlex, doid = tmp_path / "radlex", tmp_path / "doid"
    save_graph(tiny_graph(), radlex)
    save_graph(ConceptGraph.from_records([
        Concept("DOID:4", "disease"), Concept("DOID:3905", "hydrothorax disease", synonyms=("pleural effusions",)),
        Concept("DOID:1324", "lung cancer"), Relation("DOID:1324", "is_a", "DOID:4"),
        Relation("DOID:3905", "is_a", "DOID:4")], name="doid"), doid)
    assert main(["ontology", "suggest", str(doid), "--kind", "same_as", "--with", str(radlex)]) == 0
    return doid


def make_client(workspace: Path | None, onto: Path | None = None, **kwargs) -> CsrfClient:  # noqa: ANN003
    config = ServeConfig(workspace=workspace, ontologies=(onto,) if onto else (), **kwargs)
    return CsrfClient(create_app(config), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def client(workspace: Path) -> Iterator[CsrfClient]:
    with make_client(workspace) as c:
        yield c
