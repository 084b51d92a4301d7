"""The user's own QA pairs: checked on reading, and a refit answerer learns them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from kgclip.errors import InputFormatError
from kgclip.rag.answerer import AnswererConfig
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.rag.user_qa import read_qa_pairs, refit_answerer
from kgclip.rag.vqa import VQAAnswerer, examples_from_vqa_rad
from kgclip.data.vqa_rad import read_vqa_rad
from kgclip.testing.synthetic import make_vqa_folder
from kgclip.text.encoders import load_text_encoder


def _scan(path, kind):
    yy, xx = np.mgrid[0:64, 0:64]
    img = (xx % 16 < 8) * 200 + 30 if kind == "checker" else ((yy - 32) ** 2 + (xx - 32) ** 2 < 300) * 200 + 20
    Image.fromarray(img.astype(np.uint8)).save(path)
    return path.name


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_read_qa_pairs_checks_every_line(tmp_path):
    name = _scan(tmp_path / "a.png", "checker")
    good = _write(tmp_path / "qa.jsonl", [{"image": name, "question": "Is there a grid?", "answer": "yes"},
                                          {"image": name, "question": "What pattern?", "answer": "checker"}])
    pairs = read_qa_pairs(good)
    assert [p.example.closed for p in pairs] == [True, False] and pairs[0].image == tmp_path / name
    with pytest.raises(InputFormatError, match=r"qa2.jsonl:2"):
        read_qa_pairs(_write(tmp_path / "qa2.jsonl", [{"image": name, "question": "Q?", "answer": "b"},
                                                      {"image": name, "question": "", "answer": "b"}]))
    with pytest.raises(InputFormatError, match="does not exist"):
        read_qa_pairs(tmp_path / "nope.jsonl")
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    with pytest.raises(InputFormatError, match="too small"):
        read_qa_pairs(_write(tmp_path / "qa3.jsonl", [{"image": "tiny.png", "question": "Q?", "answer": "b"}]))


def test_refit_learns_the_users_answers(tmp_path):
    root = make_vqa_folder(tmp_path / "vqa", n_images=8)
    items = read_vqa_rad(root, split="train")
    paths = {i.image_key: i.image_path for i in items}
    feat = ThumbnailFeaturizer()
    vecs = dict(zip(paths, feat.embed(list(paths.values()))))
    model, _ = VQAAnswerer.fit(examples_from_vqa_rad(items), vecs, graph=None,
                               text_encoder=load_text_encoder("hashing-64"), config=AnswererConfig(use_kg=False),
                               show_progress=False)
    rows = []
    for i in range(6):
        name = _scan(tmp_path / f"u{i}.png", "checker")
        rows.append({"image": name, "question": "What pattern is shown?", "answer": "checkerboard",
                     "group": f"u{i}"})
    pairs = read_qa_pairs(_write(tmp_path / "mine.jsonl", rows))
    refit, val = refit_answerer(model, pairs, feat, graph=None, show_progress=False)
    assert "checkerboard" in refit.core.answers and "checkerboard" not in model.core.answers
    assert len(refit.examples) == len(model.examples) + 6 and "val_acc" in val
    pred = refit.predict("What pattern is shown?", feat.embed_one(tmp_path / "u0.png"))
    assert pred.normalized == "checkerboard"
