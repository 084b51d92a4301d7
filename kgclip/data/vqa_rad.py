"""VQA-RAD reader (``VQA_RAD_Dataset_Public.json`` + ``images/``), CC0 1.0.

This is the one reader of VQA-RAD: evaluation, the engine's workspace build, training pairs and the demo all read
through :func:`read_vqa_rad`, and all name an image by :func:`image_key` (the file name without its extension,
``synpic54610``), which is also the case id of the image in a workspace.

The one split definition: ``phrase_type`` ``freeform``/``para`` is train (1,797 rows), ``test_freeform``/``test_para``
the standard test set (451 rows). ``answer_type`` is ``CLOSED``/``OPEN`` (two rows carry a trailing space, stripped
here); five answers are JSON numbers, read as text.

>>> items = read_vqa_rad("path/to/vqa-rad", split="test")        # doctest: +SKIP
>>> items[0].question, items[0].answer, items[0].answer_type      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kgclip.data._common import OnError, handle_bad_row, load_json, resolve_root
from kgclip.errors import InputFormatError

__all__ = ["VQARadItem", "read_vqa_rad", "image_key", "VQA_RAD_JSON", "TRAIN_PHRASE_TYPES", "TEST_PHRASE_TYPES"]

VQA_RAD_JSON = "VQA_RAD_Dataset_Public.json"
TRAIN_PHRASE_TYPES = frozenset({"freeform", "para"})
TEST_PHRASE_TYPES = frozenset({"test_freeform", "test_para"})


def image_key(image_name: str | Path) -> str:
    """The one key of a VQA-RAD image everywhere (features, answerer memory, workspace case id): the file name
    without its extension (``images/synpic54610.jpg`` -> ``synpic54610``)."""
    return Path(str(image_name)).stem


@dataclasses.dataclass(frozen=True)
class VQARadItem:
    """One VQA-RAD question about one image.

    Attributes:
        qid: the question id (text).
        image_name: e.g. ``synpic54610.jpg``.
        image_path: absolute path of the image.
        question: the question as asked.
        answer: the answer as text, whitespace-stripped (case kept; compare case-insensitively).
        answer_type: ``CLOSED`` (yes/no or a choice) or ``OPEN``.
        phrase_type: ``freeform``, ``para``, ``test_freeform`` or ``test_para``.
        split: ``train`` or ``test``.
        organ: ``HEAD``, ``CHEST`` or ``ABD``.
        question_type: e.g. ``PRES``, ``POS``, ``ABN``, ``MODALITY`` (may be comma-separated).
        linked_id: ``qid_linked_id``: a freeform question and its paraphrase share it.
    """

    qid: str
    image_name: str
    image_path: Path
    question: str
    answer: str
    answer_type: str
    phrase_type: str
    split: str
    organ: str
    question_type: str
    linked_id: str

    @property
    def is_closed(self) -> bool:
        return self.answer_type == "CLOSED"

    @property
    def image_key(self) -> str:
        """See :func:`image_key`."""
        return image_key(self.image_name)


def read_vqa_rad(
    root: str | Path | None = None,
    split: str | None = None,
    *,
    on_error: OnError = "raise",
    check_images: bool = True,
) -> list[VQARadItem]:
    """Read VQA-RAD.

    Args:
        root: the dataset directory (holding ``VQA_RAD_Dataset_Public.json`` and ``images/``) or the JSON file itself
            (images then in ``images/`` beside it); default ``<shared data>/vqa-rad``.
        split: ``"train"``, ``"test"`` or ``None`` for both.
        on_error: policy for a malformed row or a missing image (``raise``/``warn``/``skip``).
        check_images: verify that each image file exists.
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"VQA-RAD splits are 'train' and 'test', got {split!r}")
    base = resolve_root(root, "vqa-rad", "VQA-RAD")
    json_path = base if base.is_file() else base / VQA_RAD_JSON
    if not json_path.is_file():
        raise InputFormatError(f"no VQA-RAD JSON ({VQA_RAD_JSON}) in {base}; pass the folder holding "
                               f"{VQA_RAD_JSON} and images/, or the JSON file itself", path=str(json_path))
    rows = load_json(json_path)
    if not isinstance(rows, list):
        raise InputFormatError("expected a JSON list of VQA-RAD rows (question, answer, image_name, phrase_type, "
                               "answer_type)", path=str(json_path))
    image_dir = json_path.parent / "images"
    items: list[VQARadItem] = []
    for i, row in enumerate(rows, start=1):
        try:
            phrase_type = str(row["phrase_type"]).strip()
            answer_type = str(row["answer_type"]).strip().upper()
            question, answer = str(row["question"]).strip(), str(row["answer"]).strip()
            image_name = str(row["image_name"]).strip()
        except (KeyError, TypeError) as exc:
            handle_bad_row(on_error, f"row without phrase_type/answer_type/question/answer/image_name ({exc!r})",
                           json_path, i)
            continue
        if phrase_type in TRAIN_PHRASE_TYPES:
            row_split = "train"
        elif phrase_type in TEST_PHRASE_TYPES:
            row_split = "test"
        else:
            handle_bad_row(on_error, f"unknown phrase_type {phrase_type!r}", json_path, i)
            continue
        if answer_type not in ("CLOSED", "OPEN") or not question or not answer:
            handle_bad_row(on_error, f"answer_type {answer_type!r} or an empty question/answer", json_path, i)
            continue
        if split is not None and row_split != split:
            continue
        path = image_dir / image_name
        if check_images and not path.is_file():
            handle_bad_row(on_error, f"image file {path} is missing", json_path, i)
            continue
        items.append(VQARadItem(
            qid=str(row.get("qid", i)), image_name=image_name, image_path=path.resolve(), question=question,
            answer=answer, answer_type=answer_type, phrase_type=phrase_type, split=row_split,
            organ=str(row.get("image_organ", "")).strip().upper(),
            question_type=str(row.get("question_type", "")).strip(), linked_id=str(row.get("qid_linked_id") or ""),
        ))
    return items
