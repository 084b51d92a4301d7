"""Bad input to ``kgclip ontology ...``: every case exits 1 with one ``kgclip: error:`` line that names the fix, shows
no traceback, and leaves the graph directory byte-for-byte as it was. Also: piping into ``head`` is not an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.ontology.store import save_graph
from kgclip.testing import tiny_graph

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "kgclip" / "testing" / "fixtures"
G = "{dir}"  # replaced by the graph directory

# (argv, a phrase the message must hold)
CASES = {
    "undeclared relation type": (["add-relation", G, "DOID:552", "bogus_rel", "DOID:4"],
                                 "kgclip ontology declare-relation DIR bogus_rel"),
    "empty relation type": (["add-relation", G, "DOID:552", "", "DOID:4"], "invalid relation type ''"),
    "path as relation type": (["add-relation", G, "DOID:552", "../../etc/x", "DOID:4"], "invalid relation type"),
    "path as concept id": (["add-concept", G, "../../etc/x", "--name", "x"], "never a path"),
    "path inside concept id": (["add-concept", G, "DOID:../../x", "--name", "x"], "never a path"),
    "empty name": (["add-concept", G, "DOID:9000001", "--name", ""], "invalid name '': it is empty"),
    "blank name": (["add-concept", G, "DOID:9000001", "--name", "   "], "it is empty"),
    "line separator in name": (["add-concept", G, "DOID:9000001", "--name", "a\u2028b"], "U+2028"),
    "paragraph separator in name": (["add-concept", G, "DOID:9000001", "--name", "a\u2029b"], "U+2029"),
    "next-line control in name": (["add-concept", G, "DOID:9000001", "--name", "a\x85b"], "U+0085"),
    "tab in name": (["add-concept", G, "DOID:9000001", "--name", "a\tb"], "U+0009"),
    "escape code in name": (["add-concept", G, "DOID:9000001", "--name", "a\x1b[31mred"], "U+001B"),
    "empty synonym": (["add-concept", G, "DOID:9000001", "--name", "ok", "--synonym", ""], "invalid synonym"),
    "unknown parent": (["add-concept", G, "DOID:9000001", "--name", "ok", "--parent", "DOID:999999"],
                       "kgclip ontology search"),
    "xref that is not an id": (["add-concept", G, "DOID:9000001", "--name", "ok", "--xref", "see MeSH"],
                               "invalid xref"),
    "existing id": (["add-concept", G, "DOID:552", "--name", "again"], "already exists"),
    "update to an empty name": (["update-concept", G, "DOID:552", "--name", ""], "invalid name"),
    "update with a line separator": (["update-concept", G, "DOID:552", "--add-synonym", "x\u2028y"], "U+2028"),
    "update of an unknown id": (["update-concept", G, "DOID:999999", "--name", "x"], "is not in graph"),
    "show an unknown id": (["show", G, "DOID:999999"], "kgclip ontology search"),
    "remove a missing relation": (["remove-relation", G, "DOID:552", "is_a", "DOID:1826"], "does not exist"),
    "is_a cycle": (["add-relation", G, "DOID:4", "is_a", "DOID:552"], "cycle"),
    "self relation": (["add-relation", G, "DOID:552", "located_in", "DOID:552"], "itself"),
    "undo too many": (["undo", G, "-n", "99"], "can be undone"),
    "undo zero": (["undo", G, "-n", "0"], "can be undone"),
    "deprecate an unknown id": (["deprecate", G, "DOID:999999"], "is not in graph"),
    "merge with itself": (["merge", G, "DOID:552", "DOID:552"], "itself"),
    "declare an invalid type": (["declare-relation", G, "Bad/Type"], "invalid relation type"),
    "declare a declared type": (["declare-relation", G, "is_a"], "already declared"),
    "import an unknown format": (["import", "nope", str(FIXTURES / "tiny_ontology.obo"), "--into", G],
                                 "among choices"),
    "import an unknown option": (["import", "obo", str(FIXTURES / "tiny_ontology.obo"), "--into", G, "--option",
                                  "nope=1"], "its options are"),
    "import a malformed file": (["import", "radlex-csv", str(FIXTURES / "radlex_bad.csv"), "--into", G],
                                "--on-error skip"),
    "import a truncated file": (["import", "owl", str(FIXTURES / "truncated.owl"), "--into", G], "--on-error skip"),
    "import a missing file": (["import", "obo", str(FIXTURES / "missing.obo"), "--into", G], "file not found"),
}


@pytest.fixture()
def graph_dir(tmp_path: Path) -> Path:
    save_graph(tiny_graph(), tmp_path / "g")
    return tmp_path / "g"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("argv, phrase", list(CASES.values()), ids=list(CASES))
def test_bad_ontology_command_is_a_clear_error(graph_dir: Path, capsys: pytest.CaptureFixture[str],
                                               argv: list[str], phrase: str) -> None:
    before = _files(graph_dir)
    code = main(["ontology", *(a.replace(G, str(graph_dir)) for a in argv)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("kgclip: error:") and phrase in err and "Traceback" not in err
    assert "on_error='skip'" not in err
    assert _files(graph_dir) == before


@pytest.mark.filterwarnings("ignore:.*differs from the fingerprint in meta.json")
@pytest.mark.parametrize("damage, phrase", [
    (lambda d: (d / "changelog.jsonl").write_text('{"seq": 1, "op"\n', encoding="utf-8"), "restore"),
    (lambda d: (d / "changelog.jsonl").write_text('[1, 2]\n', encoding="utf-8"), "not a changelog entry"),
    (lambda d: (d / "changelog.jsonl").write_bytes(b'{"seq": 1}\xff\n'), "not UTF-8"),
    (lambda d: (d / "meta.json").write_text("{nope", encoding="utf-8"), "not valid JSON"),
    (lambda d: (d / "meta.json").write_text("[]", encoding="utf-8"), "no JSON object"),
    (lambda d: (d / "concepts.tsv").write_text("id\tname\n", encoding="utf-8"), "expected the header"),
], ids=["torn changelog line", "changelog line not an object", "changelog not utf-8", "meta not json",
        "meta not an object", "concepts header"])
def test_damaged_graph_directory_is_a_clear_error(graph_dir: Path, capsys: pytest.CaptureFixture[str], damage,  # noqa: ANN001
                                                  phrase: str) -> None:
    damage(graph_dir)
    codes = [main(["ontology", command, str(graph_dir)]) for command in ("info", "log", "validate")]
    err = capsys.readouterr().err
    assert 1 in codes and phrase in err and "Traceback" not in err


def test_search_piped_into_head_is_silent(graph_dir: Path) -> None:
    # Enough output to fill the pipe after `head` has exited, so the writer gets EPIPE.
    graph = tiny_graph()
    from kgclip.ontology.curation import Curator

    cur = Curator(graph, author="t")
    with cur.batch():
        for i in range(3000):
            cur.add_concept(f"DOID:{9000000 + i}", f"lesion variant {i} " + "x" * 40, parents=["DOID:4"])
    save_graph(cur.graph, graph_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(f"{sys.executable} -m kgclip ontology search {graph_dir} lesion --limit 5000 | head -n 1",
                          shell=True, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1
    assert proc.stderr == "", proc.stderr
