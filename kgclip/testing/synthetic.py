"""A tiny synthetic VQA-RAD-style folder (PNG images + JSON rows) for tests and examples.

Images come in two kinds that a pixel descriptor tells apart (horizontal stripes = "chest" with a pleural
effusion; a bright disc = "head" without one), and the questions use concepts of :func:`kgclip.testing.tiny_graph`,
so an answerer that looks at the image can answer the closed questions and one that looks at the question can
answer the open ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["make_vqa_folder"]


def _image(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    if kind == "chest":
        img = 0.5 + 0.4 * np.sin(yy / 3.0 + rng.uniform(0, 0.5))
    else:
        img = ((yy - 32) ** 2 + (xx - 32) ** 2 < (18 + rng.integers(0, 4)) ** 2).astype(float) * 0.8 + 0.1
    img = img + rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_vqa_folder(directory: str | Path, n_images: int = 12, with_test: bool = True) -> Path:
    """Write ``images/*.png`` and ``VQA_RAD_Dataset_Public.json`` into ``directory``; returns it."""
    from PIL import Image

    root = Path(directory)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    qid = 0

    def add(image: str, organ: str, question: str, answer: str, closed: bool, phrase: str, group: str) -> None:
        nonlocal qid
        rows.append({"qid": str(qid), "phrase_type": phrase, "qid_linked_id": group, "image_name": image,
                     "image_organ": organ, "question": question, "answer": answer,
                     "answer_type": "CLOSED" if closed else "OPEN", "question_type": "PRES"})
        qid += 1

    for i in range(n_images):
        kind = "chest" if i % 2 == 0 else "head"
        name = f"synth{i:03d}.png"
        Image.fromarray(_image(kind, i)).save(root / "images" / name)
        organ = "CHEST" if kind == "chest" else "HEAD"
        effusion = "yes" if kind == "chest" else "no"
        test = with_test and i >= n_images - 2
        phrase = "test_freeform" if test else "freeform"
        add(name, organ, "Is there a pleural effusion?", effusion, True, phrase, f"g{i}a")
        add(name, organ, "Is there fluid in the pleural space?", effusion, True,
            "test_para" if test else "para", f"g{i}a")
        add(name, organ, "What organ is shown?", "lung" if kind == "chest" else "brain", False, phrase, f"g{i}b")
        add(name, organ, "Is the heart enlarged?", "yes" if i % 4 == 0 else "no", True, phrase, f"g{i}c")
        add(name, organ, "Is this a CT or an MRI?", "CT" if kind == "chest" else "MRI", True, phrase, f"g{i}d")
        add(name, organ, "What is the abnormality?", "pleural effusion" if kind == "chest" else "epilepsy",
            False, phrase, f"g{i}e")
    (root / "VQA_RAD_Dataset_Public.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return root
