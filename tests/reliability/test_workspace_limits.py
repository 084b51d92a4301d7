"""Bad and oversized inputs to a workspace fail with a clear KgclipError before any work (never an OOM, a raw
traceback or a changed workspace); edits to engine_config.json are detected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgclip.engine import Engine, EngineConfig
from kgclip.engine.limits import MAX_FILTER_VALUES, MAX_K, MAX_QUESTION_CHARS
from kgclip.errors import (ArtifactCorruptError, ConfigError, ImageReadError, InputFormatError, KgclipError,
                           StaleArtifactError)
from kgclip.testing.workspaces import build_tiny_workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    engine = build_tiny_workspace(tmp, n_images=6)
    return engine, tmp / "data" / "images" / "synth000.png", tmp / "ws"


def test_huge_k_is_capped_at_the_collection(built):
    engine, image, _ = built
    n = len(engine.cases)
    assert len(engine.search(text="pleural effusion", k=10**9)) == n
    assert len(engine.search(image=image, k=10**9, filters={"body_part": "CHEST"})) <= n
    assert len(engine.similar_cases(image, k=10**9)) == n
    assert engine.draft_report(image, k=10**9).findings is not None
    assert MAX_K >= 1000


@pytest.mark.parametrize("k", [0, -3, "five", 2.5, True, None])
def test_bad_k_is_refused(built, k):
    engine, _, _ = built
    with pytest.raises(InputFormatError, match="k"):
        engine.search(text="effusion", k=k)


@pytest.mark.parametrize("question", ["", "   ", "x" * (MAX_QUESTION_CHARS + 1), "Is there \udcff fluid?",
                                      b"Is there fluid?", None, 42, ["a"]])
def test_bad_question_is_refused(built, question):
    engine, image, _ = built
    with pytest.raises(InputFormatError, match="question"):
        engine.ask(image, question)


@pytest.mark.parametrize("text", ["\udcfe", "y" * 20_001, b"bytes"])
def test_bad_search_text_is_refused(built, text):
    engine, _, _ = built
    with pytest.raises(InputFormatError, match="search text"):
        engine.search(text=text)


@pytest.mark.parametrize("filters", [{"modality": {"a": 1}}, {"modality": object()}, {"modality": [None]},
                                     {"": "CT"}, {3: "CT"}, ["modality"], {"modality": True},
                                     {"case_id": [str(i) for i in range(300_000)]},
                                     {"a": ["x"] * MAX_FILTER_VALUES, "b": "y"}])
def test_bad_filters_are_refused(built, filters):
    engine, image, _ = built
    with pytest.raises(InputFormatError, match="filter"):
        engine.search(text="effusion", filters=filters)
    with pytest.raises(InputFormatError, match="filter"):
        engine.draft_report(image, filters=filters)


@pytest.mark.parametrize("image", ["/no/such/file.png", b"", b"not an image at all", {"a": 1}])
def test_bad_images_are_refused(built, image):
    engine, _, _ = built
    with pytest.raises(ImageReadError):
        engine.ask(image, "Is there a pleural effusion?")


def test_a_volume_instead_of_an_image_abstains_with_a_reason(built):
    engine, _, _ = built
    answer = engine.ask(np.zeros((2, 3, 4, 5)), "Is there a pleural effusion?")  # readable, but out of range
    assert answer.abstained


def test_huge_png_is_refused_before_decoding(built, tmp_path):
    import struct
    import zlib

    engine, _, _ = built
    # A 30000 x 30000 PNG header with a tiny (invalid) body: the size check must refuse it from the header.
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
           + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + b"\x00" * 32)
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(ImageReadError):
        engine.ask(tmp_path / "bomb.png", "Is there a pleural effusion?")


@pytest.mark.parametrize("row", [
    "not a mapping", {"image": "x.png", "text": "no id"}, {"case_id": "a", "text": "no image"},
    {"case_id": "a", "image": "x.png", "text": {"a": 1}}, {"case_id": 7, "image": "x.png"},
    {"case_id": "a\udcff", "image": "x.png"}, {"case_id": "a", "image": "/no/such/image.png", "text": "t"},
    {"case_id": "a", "image": "x.png", "text": "t" * 100_001}])
def test_bad_case_rows_change_nothing(built, row, tmp_path):
    engine, image, ws = built
    if isinstance(row, dict) and row.get("image") == "x.png":
        row = {**row, "image": str(image)}
    before = (ws / "cases.json").read_bytes()
    with pytest.raises((InputFormatError, ImageReadError)):
        engine.add_cases([row])
    assert (ws / "cases.json").read_bytes() == before
    with pytest.raises(InputFormatError):
        engine.add_cases({"case_id": "a", "image": str(image)})  # one mapping, not a list


def test_edited_engine_config_is_detected(built, tmp_path):
    import shutil

    _, _, ws = built
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    path = copy / "engine_config.json"
    payload = json.loads(path.read_text())
    payload["config"]["k_cases"] = "five"
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="k_cases"):
        Engine.load(copy)
    payload["config"]["k_cases"] = 7  # valid, but not what the workspace was built with
    path.write_text(json.dumps(payload))
    with pytest.raises(StaleArtifactError, match="engine_config.json"):
        Engine.load(copy)


def test_old_exact_table_format_names_the_rebuild(built, tmp_path):
    import shutil

    _, _, ws = built
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    shutil.rmtree(copy / "index_image")
    (copy / "index_image").mkdir()
    (copy / "index_image" / "table.json").write_text("{}")
    with pytest.raises(ArtifactCorruptError, match="kgclip demo|Engine.build"):
        Engine.load(copy)


@pytest.mark.parametrize("field,value", [("k_cases", "five"), ("draft_k", 0), ("index_backend", "annoy"),
                                         ("index_backend", 3), ("text_encoder", ""), ("k_cases", True)])
def test_bad_config_values_are_config_errors(field, value):
    with pytest.raises(ConfigError):
        EngineConfig(**{field: value})


def test_every_refusal_is_a_kgclip_error():
    assert issubclass(InputFormatError, KgclipError) and issubclass(ImageReadError, KgclipError)


def test_build_refuses_a_directory_that_is_not_a_workspace(tmp_path):
    from kgclip.testing import tiny_graph
    from kgclip.testing.synthetic import make_vqa_folder

    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.txt").write_text("do not delete")
    data = make_vqa_folder(tmp_path / "data", n_images=4)
    with pytest.raises(ConfigError, match="not a kgclip workspace"):
        Engine.build(EngineConfig(text_encoder="hashing-64"), target, vqa_rad=data, graph=tiny_graph(),
                     show_progress=False)
    assert (target / "thesis.txt").read_text() == "do not delete"
