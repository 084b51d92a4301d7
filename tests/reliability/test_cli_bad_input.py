"""Bad input through every CLI command: a clear `kgclip: error:` (or a usage message) and never a traceback.

Each case is one bad input a user or a script could give; see ``conftest.py`` for how the suite tallies them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgclip.cli.main import main
from kgclip.ontology.store import save_graph
from kgclip.testing import tiny_graph

BAD = "\udcff"  # how Python decodes a non-UTF-8 byte on the command line (surrogateescape)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-bad")
    save_graph(tiny_graph(), root / "tiny")
    (root / "notes.txt").write_text("not an image, not an ontology\n")
    (root / "empty.png").write_bytes(b"")
    (root / "binary.obo").write_bytes(bytes(range(256)) * 8)
    (root / "no_text.jsonl").write_text('{"id": "a", "body": "x"}\n')
    (root / "array.jsonl").write_text("[1, 2, 3]\n")
    (root / "bad_quote.csv").write_text('id,text\na,"never closed\n')
    (root / "huge_id.jsonl").write_text('{"id": 18446744073709551616, "text": "x"}\n')
    (root / "latin1.jsonl").write_bytes('{"id": "a", "text": "caf\xe9"}\n'.encode("latin-1"))
    (root / "cases_missing_image.jsonl").write_text('{"case_id": "c1", "image": "/nonexistent.png", "text": "x"}\n')
    for name, edit in (("ws_bad_k", lambda c: c.update(k_cases="five")), ("ws_truncated", None)):
        ws = root / name
        shutil.copytree(demo_dir, ws)
        config = ws / "engine_config.json"
        if edit is None:
            config.write_text(config.read_text()[:40])
        else:
            payload = json.loads(config.read_text())
            edit(payload["config"])
            config.write_text(json.dumps(payload))
    ws = root / "ws_no_manifest"
    shutil.copytree(demo_dir, ws)
    (ws / "manifest.json").unlink()
    return {"root": root, "tiny": root / "tiny", "demo": demo_dir, "image": next(demo_dir.glob("images/*"))}


def _cases(d: dict[str, Path]) -> dict[str, list[str]]:
    t, r, demo, img = str(d["tiny"]), d["root"], str(d["demo"]), str(d["image"])
    return {
        "onto_id_path_traversal": ["ontology", "add-concept", t, "../../etc/x", "--name", "x"],
        "onto_empty_name": ["ontology", "add-concept", t, "RADLEX:RID90001", "--name", ""],
        "onto_line_separator_name": ["ontology", "add-concept", t, "RADLEX:RID90002", "--name", "a\u2028b"],
        "onto_nul_name": ["ontology", "add-concept", t, "RADLEX:RID90003", "--name", "a\x00b"],
        "onto_non_utf8_name": ["ontology", "add-concept", t, "RADLEX:RID90004", "--name", f"caf{BAD}"],
        "onto_bogus_relation_type": ["ontology", "add-relation", t, "RADLEX:RID1", "bogus_rel", "RADLEX:RID2"],
        "onto_empty_relation_type": ["ontology", "add-relation", t, "RADLEX:RID1", "", "RADLEX:RID2"],
        "onto_unknown_source": ["ontology", "add-relation", t, "RADLEX:RID999999", "is_a", "RADLEX:RID1"],
        "onto_unknown_target": ["ontology", "add-relation", t, "RADLEX:RID1", "is_a", "RADLEX:RID999999"],
        "onto_undo_zero": ["ontology", "undo", t, "-n", "0"],
        "onto_undo_too_many": ["ontology", "undo", t, "-n", "1000"],
        "onto_show_unknown": ["ontology", "show", t, "RADLEX:RID999999"],
        "onto_search_missing_dir": ["ontology", "search", str(r / "missing"), "lung"],
        "onto_info_on_file": ["ontology", "info", str(r / "notes.txt")],
        "onto_import_unknown_format": ["ontology", "import", "bogus", str(r / "notes.txt"), "--into", str(r / "x")],
        "onto_import_missing_file": ["ontology", "import", "obo", str(r / "missing.obo"), "--into", str(r / "y")],
        "onto_import_binary_obo": ["ontology", "import", "obo", str(r / "binary.obo"), "--into", str(r / "z")],
        "onto_diff_missing": ["ontology", "diff", t, str(r / "missing")],
        "onto_export_bad_format": ["ontology", "export", t, "--format", "bogus", "--out", str(r / "o.ttl")],
        "onto_merge_unknown": ["ontology", "merge", t, "RADLEX:RID999998", "RADLEX:RID999999"],
        "onto_deprecate_unknown": ["ontology", "deprecate", t, "RADLEX:RID999999"],
        "onto_update_unknown": ["ontology", "update-concept", t, "RADLEX:RID999999", "--name", "x"],
        "link_non_utf8": ["link", f"no pleural effusion {BAD}", "--tiny"],
        "link_missing_ontology": ["link", "no effusion", "--ontology", str(r / "missing")],
        "link_empty_text": ["link", "", "--tiny"],
        "ask_missing_image": ["ask", str(r / "missing.png"), "Is there an effusion?", "--workspace", demo],
        "ask_empty_question": ["ask", img, "   ", "--workspace", demo],
        "ask_huge_question": ["ask", img, "why " * 300_000, "--workspace", demo],
        "ask_text_file_as_image": ["ask", str(r / "notes.txt"), "Is there an effusion?", "--workspace", demo],
        "ask_empty_image": ["ask", str(r / "empty.png"), "Is there an effusion?", "--workspace", demo],
        "ask_missing_workspace": ["ask", img, "Is there an effusion?", "--workspace", str(r / "missing")],
        "ask_non_utf8_question": ["ask", img, f"Is there an effusion{BAD}?", "--workspace", demo],
        "ask_bad_k_in_config": ["ask", img, "Is there an effusion?", "--workspace", str(r / "ws_bad_k")],
        "ask_truncated_config": ["ask", img, "Is there an effusion?", "--workspace", str(r / "ws_truncated")],
        "ask_missing_manifest": ["ask", img, "Is there an effusion?", "--workspace", str(r / "ws_no_manifest")],
        "draft_missing_image": ["report", "draft", str(r / "missing.png"), "--workspace", demo],
        "draft_k_zero": ["report", "draft", img, "--workspace", demo, "--k", "0"],
        "draft_bad_filter": ["report", "draft", img, "--workspace", demo, "--filter", "modality"],
        "draft_unknown_region": ["report", "draft", img, "--workspace", demo, "--region", "nowhere"],
        "index_build_missing_input": ["index", "build", str(r / "i1"), "--input", str(r / "missing.jsonl")],
        "index_build_no_text_field": ["index", "build", str(r / "i2"), "--input", str(r / "no_text.jsonl"),
                                      "--encoder", "hashing-64"],
        "index_build_array_line": ["index", "build", str(r / "i3"), "--input", str(r / "array.jsonl"),
                                   "--encoder", "hashing-64"],
        "index_build_unterminated_csv": ["index", "build", str(r / "i4"), "--input", str(r / "bad_quote.csv"),
                                         "--encoder", "hashing-64"],
        "index_build_id_above_int64": ["index", "build", str(r / "i5"), "--input", str(r / "huge_id.jsonl"),
                                       "--encoder", "hashing-64"],
        "index_build_latin1_jsonl": ["index", "build", str(r / "i6"), "--input", str(r / "latin1.jsonl"),
                                     "--encoder", "hashing-64"],
        "index_build_unknown_encoder": ["index", "build", str(r / "i7"), "--input", str(r / "no_text.jsonl"),
                                        "--encoder", "no-such-encoder"],
        "index_search_missing_dir": ["index", "search", str(r / "missing"), "lung"],
        "index_search_k_zero": ["index", "search", str(r / "missing"), "lung", "-k", "0"],
        "index_search_filter_without_value": ["index", "search", str(r / "missing"), "lung", "--filter", "modality"],
        "kg_refresh_missing_embeddings": ["kg", "refresh", "--ontology", t, "--embeddings", str(r / "missing")],
        "kg_neighbors_missing_embeddings": ["kg", "neighbors", "DOID:4", "--embeddings", str(r / "missing")],
        "eval_vqa_missing_path": ["eval", "vqa-rad", str(r / "missing")],
        "eval_report_missing_path": ["eval", "report", str(r / "missing")],
        "demo_out_is_a_file": ["demo", "--out", str(r / "notes.txt"), "--quiet"],
        "demo_missing_data": ["demo", "--out", str(r / "d"), "--data", str(r / "missing"), "--quiet"],
        "serve_public_without_token": ["serve", "--ontology", t, "--host", "0.0.0.0"],
        "serve_missing_workspace": ["serve", "--workspace", str(r / "missing")],
        "serve_nothing_to_serve": ["serve"],
        "cases_add_missing_workspace": ["cases", "add", str(r / "missing"), "--input", str(r / "no_text.jsonl")],
        "cases_add_missing_input": ["cases", "add", demo, "--input", str(r / "missing.jsonl")],
        "cases_add_missing_image": ["cases", "add", str(r / "ws_bad_k"), "--input",
                                    str(r / "cases_missing_image.jsonl")],
        "unknown_command": ["no-such-command"],
    }


CASE_NAMES = sorted(_cases({k: Path("/x") for k in ("tiny", "root", "demo", "image")}))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASE_NAMES)
def test_cli_bad_input_gets_a_clear_error(case: str, dirs: dict[str, Path], capsys) -> None:  # noqa: ANN001
    before = {p: p.stat().st_mtime_ns for p in dirs["demo"].rglob("*") if p.is_file()}
    code, err = run(_cases(dirs)[case], capsys)
    assert code not in (0, None), f"{case}: accepted silently"
    assert "Traceback" not in err
    assert err.startswith("kgclip: error:") or "usage:" in err or "error:" in err, err[-500:]
    assert len(err) < 5000, "an error message, not a dump"
    after = {p: p.stat().st_mtime_ns for p in dirs["demo"].rglob("*") if p.is_file()}
    assert after == before, "a refused command changed the workspace"


def test_cli_broken_pipe_is_silent(tmp_path: Path) -> None:
    import subprocess
    import sys

    save_graph(tiny_graph(), tmp_path / "tiny")
    script = ("import sys\nfrom kgclip.cli.main import main\n"
              f"sys.exit(main(['ontology', 'search', {str(tmp_path / 'tiny')!r}, 'R']))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away at once, like `| head -0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err
