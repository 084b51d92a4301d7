"""Security of `kgclip serve`: token off loopback, CSRF, strict ids, upload limits, read-only mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.errors import ConfigError
from kgclip.serve.config import ServeConfig, is_loopback
from tests.serve.conftest import make_client

TOKEN = "t0ken-for-tests-0123456789"


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.5.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.org")


def test_non_local_host_without_token_refuses_to_start(onto_dir: Path, capsys) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="without a token"):
        ServeConfig(ontologies=(onto_dir,), host="0.0.0.0").check_exposure()
    assert main(["serve", "--ontology", str(onto_dir), "--host", "0.0.0.0"]) == 1
    assert "--token" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="at least 16"):
        ServeConfig(ontologies=(onto_dir,), host="0.0.0.0", token="short")


def test_token_is_required_when_set(onto_dir: Path) -> None:
    with make_client(None, onto_dir, host="0.0.0.0", token=TOKEN) as c:
        assert c.get("/curate").status_code == 401
        assert c.get("/curate", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        assert c.get("/curate", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get(f"/login?token={TOKEN}", follow_redirects=False).status_code == 303
        assert c.get("/curate").status_code == 200  # the login cookie now carries the token


def test_post_without_csrf_token_is_forbidden(onto_dir: Path) -> None:
    with make_client(None, onto_dir) as c:
        page = c.get("/curate")
        assert page.status_code == 200 and 'name="csrf-token"' in page.text
        body = {"id": "RADLEX:RID9", "name": "x", "author": "ann"}
        plain = c.__class__.__mro__[1].post  # TestClient.post: no CSRF header
        assert plain(c, "/api/ontology/tiny/edit/add_concept", json=body).status_code == 403
        bad = plain(c, "/api/ontology/tiny/edit/add_concept", json=body, headers={"X-CSRF-Token": "forged"})
        assert bad.status_code == 403
        assert c.post("/api/ontology/tiny/edit/add_concept", json=body).status_code == 200


def test_security_headers(onto_dir: Path) -> None:
    with make_client(None, onto_dir) as c:
        headers = c.get("/curate").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/api/case/..%2F..%2Fetc%2Fpasswd", "/api/case/../../etc/passwd/image.png", "/api/upload/..%2Fx/image.png",
    "/curate/tiny/..%2F..%2Fetc", "/curate/..%2Ftiny/RADLEX:RID1", "/api/ontology/..%2F..%2Fetc/search?q=a",
    "/api/ontology/tiny/concept/..%2F..%2Fconcepts.tsv", "/static/..%2F..%2Fapp.py",
])
def test_path_traversal_is_404(path: str, onto_dir: Path, workspace: Path) -> None:
    with make_client(workspace, onto_dir) as c:
        assert c.get(path).status_code == 404


def test_read_only_refuses_changes(onto_dir: Path) -> None:
    with make_client(None, onto_dir, read_only=True) as c:
        r = c.post("/api/ontology/tiny/edit/add_concept", json={"id": "RADLEX:RID9", "name": "x", "author": "ann"})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert "read-only" in c.get("/curate").text


def test_oversize_and_non_image_uploads_get_clear_messages(workspace: Path) -> None:
    with make_client(workspace, max_upload_bytes=2000) as c:
        big = c.post("/api/upload", files={"file": ("x.png", b"\x89PNG" + b"0" * 5000, "image/png")})
        assert big.status_code == 413 and "upload limit" in big.json()["error"]
        text = c.post("/api/upload", files={"file": ("notes.txt", b"just some text, not a scan", "text/plain")})
        assert text.status_code == 400 and "image" in text.json()["error"].lower()
        assert c.post("/api/ask", json={"upload": "u00", "question": "x"}).json()["error"].startswith("unknown upload")
