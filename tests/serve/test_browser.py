"""The web app in a real browser (Playwright driving the system Chromium): what a radiologist and a curator see.

Skipped where no Chromium is installed (`.ci/run` installs Debian's `chromium`, so CI runs these).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
pydicom_data = pytest.importorskip("pydicom.data")

from kgclip.serve.app import create_app  # noqa: E402
from kgclip.serve.config import ServeConfig  # noqa: E402

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)")
_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from kgclip.cli.main import main
    from kgclip.ontology.model import Concept, ConceptGraph, Relation
    from kgclip.ontology.store import save_graph
    from kgclip.testing import tiny_graph

    root = tmp_path_factory.mktemp("browser")
    onto, doid = root / "tiny", root / "doid"
    save_graph(tiny_graph(), onto)
    save_graph(ConceptGraph.from_records([
        Concept("DOID:4", "disease"), Concept("DOID:3905", "hydrothorax disease", synonyms=("pleural effusions",)),
        Relation("DOID:3905", "is_a", "DOID:4")], name="doid"), doid)
    assert main(["ontology", "suggest", str(doid), "--kind", "same_as", "--with", str(onto)]) == 0
    port = _free_port()
    config = ServeConfig(workspace=workspace, ontologies=(onto, doid), port=port)
    srv = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):  # noqa: ANN001, ANN201
    context = browser.new_context(base_url=server)
    p = context.new_page()
    p.set_default_timeout(120_000)  # model calls on a loaded 2-core machine
    yield p
    context.close()


def test_upload_a_dicom_ask_and_see_evidence(page) -> None:  # noqa: ANN001
    page.goto("/")
    page.set_input_files("#file", pydicom_data.get_testdata_file("CT_small.dcm"))
    page.wait_for_selector("#viewer:not([hidden]) #scan")
    assert "modality: CT" in page.inner_text("#scanmeta")
    assert page.locator("#window option").count() > 1  # CT window presets
    page.select_option("#window", "lung")
    page.fill("#question", "Is there a pleural effusion?")
    page.click("#askform button")
    page.wait_for_selector("#answer:not([hidden]) #answertext")
    assert page.inner_text("#answertext").strip()
    assert page.locator("#evidence figure.card").count() >= 1


def test_draft_open_citation_edit_accept_then_find_it(page, workspace) -> None:  # noqa: ANN001
    from tests.serve.conftest import chest_image

    page.goto("/")
    page.set_input_files("#file", str(chest_image(workspace)))
    page.wait_for_selector("#viewer:not([hidden])")
    page.select_option("#region", "chest")
    page.click("#draftbtn")
    page.wait_for_selector("#draft:not([hidden]) li.sentence")
    assert "draft confidence" in page.inner_text("#draftconf")  # as the CLI and the exports give it
    first = page.locator("#findings li.sentence, #impression li.sentence").first
    first.locator("button.chip").first.click()
    page.wait_for_selector("#citation:not([hidden])")
    assert page.inner_text("#citeid").strip()
    first.locator(".text").fill("Browser-edited sentence: no pneumothorax.")
    page.click("#addfinding")
    page.locator("#findings li.sentence .text").last.fill("Hand-written finding: old rib fracture.")
    page.fill("#author", "dr browser")
    page.click("#acceptbtn")
    page.wait_for_selector("#status:has-text('Accepted as case')")
    case_id = page.inner_text("#status").split("Accepted as case ")[1].split(";")[0]
    page.goto("/search")
    page.fill("#searchq", "Browser-edited sentence: no pneumothorax.")
    page.click("#searchform button")
    page.wait_for_selector("#gallery figure.card")
    assert case_id in [c.get_attribute("data-case") for c in page.locator("#gallery figure.card").all()]


def test_nothing_drafted_says_why_and_cannot_be_accepted_empty(page, workspace) -> None:  # noqa: ANN001
    from tests.serve.conftest import chest_image

    page.goto("/")
    page.set_input_files("#file", str(chest_image(workspace)))
    page.wait_for_selector("#viewer:not([hidden])")
    page.select_option("#region", "head")  # the demo's head cases have questions only, no findings to draft from
    page.click("#draftbtn")
    page.wait_for_selector("#draftnotice:not([hidden])")
    assert page.inner_text("#draftnotice").startswith("Not drafted: no similar head")
    assert page.locator("#draft li.sentence").count() == 0
    for button in ("#acceptbtn", "#exporttext", "#exportfhir"):
        assert page.is_disabled(button), button
    page.click("#addfinding")  # still writable by hand; accept and export follow the text
    assert page.is_disabled("#acceptbtn")
    page.locator("#findings li.sentence .text").last.fill("Hand-written finding: no acute intracranial abnormality.")
    assert page.is_enabled("#acceptbtn") and page.is_enabled("#exportfhir")
    page.locator("#findings li.sentence button[title=remove]").last.click()
    assert page.is_disabled("#acceptbtn")


def test_curate_add_concept_then_undo(page) -> None:  # noqa: ANN001
    page.goto("/curate")
    page.click("text=Add a concept")
    page.fill("#addconcept [name=id]", "RADLEX:RID880001")
    page.fill("#addconcept [name=name]", "browser added concept")
    page.fill("#addconcept [name=author]", "curator ann")
    page.fill("#addconcept [name=reason]", "browser test")
    page.click("#addconcept button")
    page.wait_for_selector("#status:has-text('Added:')")
    page.fill("#conceptq", "browser added")
    page.click("#conceptsearch button")
    page.click("#concepthits a")
    page.wait_for_selector("#conceptid")
    assert page.inner_text("#conceptid") == "RADLEX:RID880001"
    page.goto("/curate")
    page.fill("#undoauthor", "curator ann")
    page.click("#undoform button")
    page.wait_for_selector("#status:has-text('Undone:')")
    page.fill("#conceptq", "browser added")
    page.click("#conceptsearch button")
    page.wait_for_selector("#status:has-text('0 concepts')")


def test_curate_accept_a_suggested_link(page) -> None:  # noqa: ANN001
    page.goto("/curate")
    page.select_option("#onto", "doid")
    page.wait_for_selector("#suggestions li[data-n]")
    item = page.locator("#suggestions li[data-n]", has_text="hydrothorax disease").first
    assert "pleural effusion" in item.inner_text()
    page.fill("#reviewauthor", "curator ann")
    item.locator("button.accept").click()
    page.wait_for_selector("#status:has-text('Accepted:')")
    page.wait_for_selector("#changelog li:has-text('DOID:3905')")
