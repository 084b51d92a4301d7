"""Engine.open and `kgclip ask / report draft --model-dir / --concept-embeddings`: a workspace built with exactly
the requested parts loads without a rebuild; other parts rebuild it (with its own config, graph and data); a bad
part directory fails clearly with the workspace untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import kgclip.engine.open as engine_open
from kgclip.cli.main import main
from kgclip.engine import Engine, EngineConfig
from kgclip.engine.open import plan_open
from kgclip.errors import ArtifactCorruptError, ConfigError, ModelNotFoundError, StaleArtifactError
from kgclip.ontology.model import Concept, ConceptGraph
from kgclip.engine.model_parts import NEAREST_RELATION, model_fingerprint
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.testing import tiny_graph
from kgclip.testing.parts import save_tiny_embeddings, save_tiny_model

QUESTION = "Is there a pleural effusion?"


@pytest.fixture(scope="module")
def base(tmp_path_factory):  # noqa: ANN001, ANN201
    """A workspace built with model A (hashing-64 text, tiny graph), models A and B, embeddings of the graph."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("open")
    save_tiny_model(root / "model-a", seed=0)
    save_tiny_model(root / "model-b", seed=1)
    save_tiny_embeddings(root / "kg", tiny_graph())
    data = make_vqa_folder(root / "data", n_images=12)
    config = EngineConfig(text_encoder="hashing-64", model_dir=str(root / "model-a"))
    Engine.build(config, root / "ws", vqa_rad=data, graph=tiny_graph(), show_progress=False)
    return root


@pytest.fixture()
def ws(base, tmp_path):  # noqa: ANN001, ANN201
    """A private copy of the base workspace (tests rebuild it)."""
    shutil.copytree(base / "ws", tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture()
def builds(monkeypatch):  # noqa: ANN001, ANN201
    """Counts the builds Engine.open starts."""
    calls = []
    real = engine_open.build_workspace

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_open, "build_workspace", counting)
    return calls


def snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``directory``: modification time and content hash."""
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(directory.rglob("*")) if p.is_file()}


def image(base: Path) -> Path:
    return base / "data" / "images" / "synth010.png"


def test_same_parts_load_without_rebuild(base, ws, builds, tmp_path) -> None:  # noqa: ANN001
    before = snapshot(ws)
    lines: list[str] = []
    engine = Engine.open(ws, model_dir=base / "model-a", show_progress=False, notify=lines.append)
    assert engine.open_action == "loaded" and not builds and not lines
    assert snapshot(ws) == before  # nothing written, manifest mtime included
    assert engine.manifest["fingerprints"]["model"] == model_fingerprint(base / "model-a")
    assert engine.ask(image(base), QUESTION).text
    # The same model at another path: same fingerprint, so it loads from there, still without writing.
    shutil.copytree(base / "model-a", tmp_path / "copy-a")
    moved = Engine.open(ws, model_dir=tmp_path / "copy-a", show_progress=False)
    assert moved.open_action == "loaded" and not builds and snapshot(ws) == before
    assert moved.config.model_dir == str((tmp_path / "copy-a").resolve())
    # No parts: exactly Engine.load.
    plain = Engine.open(ws, show_progress=False)
    assert plain.open_action == "loaded" and plain.config.model_dir == str((base / "model-a").resolve())


def test_open_hashes_each_requested_model_once(base, ws, monkeypatch) -> None:  # noqa: ANN001
    """The plan's fingerprint of the model is reused by the load and by a rebuild (hashing reads the weights)."""
    from kgclip.engine import model_parts

    hashed: list[str] = []
    real = model_parts.model_fingerprint

    def counting(directory):  # noqa: ANN001, ANN202
        hashed.append(str(directory))
        return real(directory)

    monkeypatch.setattr(model_parts, "model_fingerprint", counting)
    assert Engine.open(ws, model_dir=base / "model-a", show_progress=False).open_action == "loaded"
    assert len(hashed) == 1
    hashed.clear()
    assert Engine.open(ws, model_dir=base / "model-b", show_progress=False).open_action == "rebuilt"
    assert len(hashed) == 1


def test_other_model_rebuilds_then_loads(base, ws, builds) -> None:  # noqa: ANN001
    lines: list[str] = []
    engine = Engine.open(ws, model_dir=base / "model-b", show_progress=False, notify=lines.append)
    assert engine.open_action == "rebuilt" and builds == [ws]
    assert len(lines) == 1 and "rebuilding" in lines[0] and "model-a" in lines[0] and "model-b" in lines[0]
    fp_b = model_fingerprint(base / "model-b")
    assert engine.manifest["fingerprints"]["model"] == fp_b and engine.featurizer.fingerprint == fp_b
    assert engine.manifest["config"]["text_encoder"] == "hashing-64"  # the workspace's own config is kept
    assert len(engine.graph) == len(tiny_graph())  # ... and its own graph (not the shipped ontologies)
    assert engine.ask(image(base), QUESTION).text
    reloaded = Engine.load(ws)  # the rebuilt workspace is consistent on disk
    assert reloaded.config.model_dir == str((base / "model-b").resolve())
    before = snapshot(ws)
    again = Engine.open(ws, model_dir=base / "model-b", show_progress=False)
    assert again.open_action == "loaded" and builds == [ws] and snapshot(ws) == before


def test_embeddings_added_keep_the_model(base, ws, builds) -> None:  # noqa: ANN001
    engine = Engine.open(ws, concept_embeddings_dir=base / "kg", show_progress=False)
    assert engine.open_action == "rebuilt" and len(builds) == 1
    assert engine.config.model_dir == str((base / "model-a").resolve())  # a part not given keeps the workspace's
    assert "concept_embeddings" in engine.manifest["fingerprints"]
    assert any(f.relation == NEAREST_RELATION for f in engine.explain("RADLEX:RID4872").facts)
    both = Engine.open(ws, model_dir=base / "model-a", concept_embeddings_dir=base / "kg", show_progress=False)
    assert both.open_action == "loaded" and len(builds) == 1


def test_retrained_model_in_same_directory_rebuilds(base, ws, builds, tmp_path) -> None:  # noqa: ANN001
    model = tmp_path / "model"
    shutil.copytree(base / "model-a", model)
    Engine.open(ws, model_dir=model, show_progress=False)  # same fingerprint as model-a: loads
    assert not builds
    save_tiny_model(model, seed=2)  # retrained in place: the path is the same, the fingerprint is not
    engine = Engine.open(ws, model_dir=model, show_progress=False)
    assert engine.open_action == "rebuilt" and engine.manifest["fingerprints"]["model"] == model_fingerprint(model)


def test_bad_parts_fail_clearly_and_leave_the_workspace_untouched(base, ws, builds, tmp_path) -> None:  # noqa: ANN001
    before = snapshot(ws)
    with pytest.raises(ModelNotFoundError, match="kgclip train"):
        Engine.open(ws, model_dir=tmp_path / "no-model", show_progress=False)
    header = tmp_path / "bad-header"
    shutil.copytree(base / "model-a", header)
    (header / "kgclip_model.json").write_text("{not json")
    with pytest.raises(ArtifactCorruptError, match="kgclip_model.json"):
        Engine.open(ws, model_dir=header, show_progress=False)
    weights = tmp_path / "bad-weights"  # a readable header over damaged weights: found while rebuilding
    shutil.copytree(base / "model-a", weights)
    (weights / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactCorruptError, match="unreadable"):
        Engine.open(ws, model_dir=weights, show_progress=False)
    assert builds == [ws]  # that one got as far as the build, which failed before writing
    with pytest.raises(ArtifactCorruptError, match="kgclip kg train"):
        Engine.open(ws, concept_embeddings_dir=tmp_path / "no-kg", show_progress=False)
    other = ConceptGraph.from_records([Concept("X:1", "one"), Concept("X:2", "two")], name="other")
    save_tiny_embeddings(tmp_path / "kg-other", other, dim=4, full_meta=False)
    with pytest.raises(StaleArtifactError, match="another version of the graph"):
        Engine.open(ws, concept_embeddings_dir=tmp_path / "kg-other", show_progress=False)
    assert snapshot(ws) == before
    assert Engine.load(ws).open_action is None  # still loads as it was


def test_build_reads_everything_before_writing(base, ws, tmp_path) -> None:  # noqa: ANN001
    """A build over an existing workspace that fails on its input (an unreadable image) writes nothing, not even
    the images it would have copied."""
    from kgclip.errors import ImageReadError

    data = make_vqa_folder(tmp_path / "data", n_images=14)  # synth012 / synth013 are new to the workspace
    (data / "images" / "synth013.png").write_bytes(b"not a png")
    before = snapshot(ws)
    with pytest.raises(ImageReadError):
        Engine.build(Engine.load(ws).config, ws, vqa_rad=data, graph=tiny_graph(), show_progress=False)
    assert snapshot(ws) == before


def test_missing_and_foreign_workspaces(base, tmp_path) -> None:  # noqa: ANN001
    plan = plan_open(tmp_path / "new", model_dir=base / "model-a", vqa_rad=base / "data")
    assert plan.action == "built" and "no workspace" in plan.reason
    assert plan.config == EngineConfig().with_parts(base / "model-a")  # the demo defaults plus the part
    assert plan.source == str(base / "data") and not (tmp_path / "new").exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a kgclip workspace"):
        Engine.open(foreign, model_dir=base / "model-a", show_progress=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]
    with pytest.raises(ArtifactCorruptError, match="not a kgclip workspace"):
        Engine.open(tmp_path / "absent", show_progress=False)  # no parts: exactly Engine.load
    with pytest.raises(ConfigError, match="does not exist"):
        plan_open(tmp_path / "new", model_dir=base / "model-a", vqa_rad=tmp_path / "no-data")


# ---------------------------------------------------------------------------------------------------- CLI
def _json(capsys) -> dict:  # noqa: ANN001
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_flags_load_or_rebuild(base, ws, builds, capsys) -> None:  # noqa: ANN001
    img, where = str(image(base)), ["--workspace", str(ws)]
    assert main(["ask", img, QUESTION, *where, "--json"]) == 0  # no flags: unchanged, plus where it came from
    out = _json(capsys)
    assert out["text"] and out["workspace"]["action"] == "loaded" and not builds
    before = snapshot(ws)
    assert main(["ask", img, QUESTION, *where, "--model-dir", str(base / "model-a"), "--json"]) == 0
    out = _json(capsys)
    assert out["workspace"] == {"dir": str(ws), "action": "loaded", "concept_embeddings_dir": None,
                                "model_dir": str((base / "model-a").resolve())}
    assert not builds and snapshot(ws) == before
    assert main(["report", "draft", img, *where, "--model-dir", str(base / "model-b"), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    # A workspace of question/answer cases has no findings to draft from: the draft says so (issue 14).
    assert (report["findings"] or "findings text" in report["notice"]) and report["workspace"]["action"] == "rebuilt"
    assert len(builds) == 1
    notices = [line for line in captured.err.splitlines() if "rebuilding" in line]
    assert len(notices) == 1 and "model-b" in notices[0]
    assert main(["ask", img, QUESTION, *where, "--model-dir", str(base / "model-b")]) == 0
    assert "A: " in capsys.readouterr().out and len(builds) == 1  # text output; now it matches: no rebuild


def test_cli_bad_model_dir_is_a_clear_error(base, ws, tmp_path, capsys) -> None:  # noqa: ANN001
    before = snapshot(ws)
    for argv in (["ask", str(image(base)), QUESTION], ["report", "draft", str(image(base))]):
        code = main([*argv, "--workspace", str(ws), "--model-dir", str(tmp_path / "nope"), "--json"])
        captured = capsys.readouterr()
        assert code == 1 and not captured.out
        assert "nope" in captured.err and "kgclip train" in captured.err
    assert snapshot(ws) == before


@pytest.mark.slow
def test_cli_builds_a_missing_workspace_with_demo_defaults(base, tmp_path, capsys) -> None:  # noqa: ANN001
    from kgclip.engine import shipped_demo_dir

    if shipped_demo_dir() is None:
        pytest.skip("the shipped VQA-RAD sample is missing")
    img = sorted((shipped_demo_dir() / "images").glob("*.jpg"))[0]
    new = tmp_path / "new"
    assert main(["ask", str(img), "Is there a fracture?", "--workspace", str(new), "--model-dir",
                 str(base / "model-a"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["workspace"]["action"] == "built"
    assert "no workspace" in captured.err
    assert Engine.load(new).config == EngineConfig().with_parts(base / "model-a")
