"""The analyst notebook executes end to end (nbclient) against the demo workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_analyst_notebook_runs(demo_dir, repo_root, monkeypatch):
    monkeypatch.setenv("KGCLIP_WORKSPACE", str(demo_dir))
    path = Path(repo_root) / "notebooks" / "analyst.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<b>A:" in h for h in html)  # an Answer rendered
    assert any("<svg" in h for h in html)  # a subgraph rendered
    # A draft rendered: its findings, or (the demo's cases have no findings text) why nothing was drafted.
    assert any("FINDINGS" in h or "<b>Not drafted</b>" in h for h in html)
