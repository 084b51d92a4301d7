"""Curation through the web app: pages, edits with author and reason, changelog, undo, concurrent edits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kgclip.ontology.changelog import CHANGELOG_FILE, Changelog
from kgclip.ontology.store import load_graph_dir
from tests.serve.conftest import make_client


def test_search_concept_page_and_svg(onto_dir: Path) -> None:
    with make_client(None, onto_dir) as c:
        graph = load_graph_dir(onto_dir)
        concept = next(iter(graph.concepts()))
        hits = c.get(f"/api/ontology/tiny/search?q={concept.name.split()[0]}").json()["hits"]
        assert concept.id in [h["id"] for h in hits]
        page = c.get(f"/curate/tiny/{concept.id}")
        assert page.status_code == 200 and concept.id in page.text
        svg = c.get(f"/api/ontology/tiny/concept/{concept.id}/graph.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml") and svg.text.startswith("<svg")
        assert c.get("/curate/tiny/RADLEX:RID999999").status_code == 404
        assert c.get("/api/ontology/tiny/concept/RADLEX:RID999999").status_code == 400


def test_add_undo_and_changelog(onto_dir: Path) -> None:
    with make_client(None, onto_dir) as c:
        parent = next(iter(load_graph_dir(onto_dir).concepts())).id
        r = c.post("/api/ontology/tiny/edit/add_concept",
                   json={"id": "RADLEX:RID900001", "name": "web added finding", "parents": [parent],
                         "author": "ann", "reason": "seen on a case"})
        assert r.status_code == 200, r.text
        assert "RADLEX:RID900001" in load_graph_dir(onto_dir)
        log = c.get("/api/ontology/tiny/changelog").json()["entries"]
        assert log[0]["op"] == "add_concept" and log[0]["author"] == "ann" and log[0]["reason"] == "seen on a case"
        assert c.post("/api/ontology/tiny/edit/undo", json={"n": 1, "author": "ann"}).status_code == 200
        assert "RADLEX:RID900001" not in load_graph_dir(onto_dir)
        dup = c.post("/api/ontology/tiny/edit/add_concept", json={"id": parent, "name": "x", "author": "ann"})
        assert dup.status_code == 400 and "already exists" in dup.json()["error"]
        assert c.post("/api/ontology/tiny/edit/add_concept", json={"id": "RADLEX:RID7", "name": "x"}).status_code == 400


def test_concurrent_edits_lose_nothing(onto_dir: Path) -> None:
    parent = next(iter(load_graph_dir(onto_dir).concepts())).id

    def add(i: int) -> int:
        with make_client(None, onto_dir) as c:
            return c.post("/api/ontology/tiny/edit/add_concept",
                          json={"id": f"RADLEX:RID95{i:04d}", "name": f"finding {i}", "parents": [parent],
                                "author": f"curator{i % 3}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add, range(24)))
    assert codes == [200] * 24
    graph = load_graph_dir(onto_dir)
    assert all(f"RADLEX:RID95{i:04d}" in graph for i in range(24))
    assert sum(e.op == "add_concept" for e in Changelog.load(onto_dir / CHANGELOG_FILE).entries) == 24


def test_review_queue_accept_then_reject_is_refused(doid_with_suggestions: Path) -> None:
    doid = doid_with_suggestions
    with make_client(None, doid) as c:
        queue = c.get("/api/ontology/doid/suggestions").json()["pending"]
        first = next(s for s in queue if s["source"] == "DOID:3905")
        assert first["kind"] == "same_as" and first["target"] == "RADLEX:RID4872"
        r = c.post("/api/ontology/doid/review", json={"n": first["n"], "decision": "accept", "author": "ann"})
        assert r.status_code == 200, r.text
        assert "RADLEX:RID4872" in load_graph_dir(doid).concept("DOID:3905").xrefs  # a curated edit, undoable
        again = c.post("/api/ontology/doid/review", json={"n": first["n"], "decision": "reject", "author": "ann"})
        assert again.status_code == 400 and "already accepted" in again.json()["error"]
        assert first["n"] not in [s["n"] for s in c.get("/api/ontology/doid/suggestions").json()["pending"]]
        assert c.post("/api/ontology/doid/edit/undo", json={"n": 1, "author": "ann"}).status_code == 200
        assert "RADLEX:RID4872" not in load_graph_dir(doid).concept("DOID:3905").xrefs
