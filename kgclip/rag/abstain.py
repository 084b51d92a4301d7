"""When the engine should not answer: inputs out of its range, and answers it is not confident enough in.

:func:`check_input` looks at an input before any model sees it. An input it cannot read at all (missing file,
empty bytes, corrupt DICOM) raises :class:`~kgclip.errors.ImageReadError`: that is the user's error to fix. An
input it can read but that is not what the engine answers about gives an :class:`InputCheck` with ``ok=False`` and
a reason, and the answer abstains:

- a DICOM object that is not an image (RT dose / plan / structure set, structured report, ECG or other waveform,
  key object, presentation state...);
- an image too small to show anatomy, or a blank one (no contrast);
- a colour picture: radiographs, CT, MR and ultrasound B-mode are grey; a photograph or drawing is not.

:func:`answer_abstain_reason` decides from the prediction itself: the image is unlike every image in memory (its
nearest cosine is below the threshold learned from the memory's own spread), or the calibrated confidence is below
the workspace's threshold.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgclip.errors import ImageReadError, InputFormatError
from kgclip.text.lexicon import normalize_token

__all__ = ["InputCheck", "check_input", "check_question", "MAX_QUESTION_CHARS", "check_pixels",
           "answer_abstain_reason", "NON_IMAGE_MODALITIES", "MIN_SIDE"]

# DICOM Modality values of objects that carry no diagnostic picture to ask about.
NON_IMAGE_MODALITIES = frozenset({"RTDOSE", "RTPLAN", "RTSTRUCT", "RTRECORD", "SR", "ECG", "HD", "EPS", "RESP",
                                  "KO", "PR", "DOC", "REG", "SEG", "AU", "FID", "PLAN", "RWV"})
MAX_QUESTION_CHARS = 1000  # a question, not a document: longer input is refused before any model is loaded
MIN_SIDE = 32  # pixels; below this a picture cannot show anatomy (and a 32x32 thumbnail would be upsampled)


@dataclass(frozen=True)
class InputCheck:
    """The verdict on one input.

    Attributes:
        ok: the engine may answer about it.
        reason: why not, in words ("" when ``ok``).
        header: the allow-listed DICOM header (``modality``, ``body_part``, ``plane``, ``sop_class``...) or
            ``{"source_format": ...}`` for other files; ``{}`` for arrays.
    """

    ok: bool
    reason: str = ""
    header: dict[str, Any] = field(default_factory=dict)


def check_question(question: object) -> str:
    """The question, stripped; :class:`InputFormatError` for an empty, non-text, over-long or non-UTF-8 one."""
    if isinstance(question, bytes):
        raise InputFormatError("the question is bytes; pass text (str), e.g. 'Is there a pleural effusion?'")
    if not isinstance(question, str) or not question.strip():
        raise InputFormatError("the question is empty; ask something like 'Is there a pleural effusion?'")
    text = question.strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise InputFormatError(f"the question is {len(text):,} characters long; ask one question of at most "
                               f"{MAX_QUESTION_CHARS} characters (put case notes into cases, not questions)")
    if "\x00" in text:
        raise InputFormatError("the question contains NUL characters; pass plain text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable command-line bytes arrive as lone surrogates
        raise InputFormatError("the question is not valid text (bytes that are not UTF-8); retype it, or set the "
                               "terminal's encoding to UTF-8") from None
    return text


# Words that carry no subject of their own: a question made only of these and unknown words says nothing to answer.
_FUNCTION_WORDS = frozenset(
    "a an the is are was were be been am do does did can could would should will shall may might must has have had "
    "this that these those there here it its of in on at to for from by with without and or not no yes what which "
    "where when who whom whose why how any some me you i we they he she please tell show see image picture "
    "scan".split())


def unreadable_question_reason(question: str, known_words: set[str] | frozenset[str], linked: bool) -> str:
    """Why a question says nothing the engine can read ("" when it can): it links no concept, has content words
    (beside :data:`_FUNCTION_WORDS`), and none of them, plurals folded (:func:`~kgclip.text.lexicon.normalize_token`),
    is a word of ``known_words`` (the linker's lexicon, the answerer's training questions and answers; empty:
    nothing is refused). "asdf" or "Is there qwerty?" got a
    guessed answer before, declined only for low confidence."""
    if linked or not known_words:
        return ""
    words = re.findall(r"[a-z]+", question.lower())
    content = [w for w in words if w not in _FUNCTION_WORDS]
    if not content or any(normalize_token(w) in known_words for w in content):
        return ""  # "What do you see?" names nothing, but nothing unknown either: the answerer may try
    unknown = ", ".join(f"'{w}'" for w in dict.fromkeys(content))
    return (f"the question names nothing kgclip knows ({unknown}); ask about a finding, organ, modality or "
            "plane, e.g. 'Is there a pleural effusion?'")


_STATS_SIDE = 512


def check_pixels(pixels: np.ndarray, min_side: int = MIN_SIDE) -> str:
    """Why these pixels are out of range ("" when they are fine). ``pixels``: ``[H, W]`` grey or ``[H, W, 3]`` RGB,
    any numeric range (one frame)."""
    arr = np.asarray(pixels)
    colour = arr.ndim == 3 and arr.shape[-1] in (3, 4)
    h, w = arr.shape[:2]
    if min(h, w) < min_side:
        return f"the image is too small ({h}x{w} pixels; at least {min_side} a side is needed to see anatomy)"
    # Contrast and colour are statistics: every n-th pixel of a large image estimates them as well as all of them,
    # at a fraction of the cost (a 2k x 2k radiograph took ~0.1 s of every question).
    step = max(1, max(h, w) // _STATS_SIDE)
    arr = arr[::step, ::step].astype(np.float32)
    rgb = arr[..., :3] if colour else arr
    lo, hi = float(np.nanmin(rgb)), float(np.nanmax(rgb))
    scaled = (rgb - lo) / (hi - lo) if hi - lo > 1e-8 else np.zeros_like(rgb)
    grey = scaled.mean(axis=-1) if colour else scaled
    if hi - lo < 1e-8 or float(grey.std()) < 0.02:
        return "the image is blank (no contrast to read)"
    if colour:
        chroma = scaled.max(axis=-1) - scaled.min(axis=-1)
        if float((chroma > 0.15).mean()) > 0.10:
            return ("it is a colour picture, not a radiology image (radiographs, CT, MR and ultrasound are grey); "
                    "pass a DICOM, or a grey PNG/JPEG of a scan")
    return ""


def check_input(image: Any, min_side: int = MIN_SIDE) -> InputCheck:
    """Look at an input (path, bytes, array, PIL image) before answering. See the module docstring.

    Raises:
        ImageReadError: the file is missing, empty, not an image format, or a corrupt DICOM.
    """
    from kgclip.imaging.io import read_header, read_image

    if isinstance(image, np.ndarray):
        return InputCheck(not (reason := check_pixels(image, min_side)), reason)
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        return InputCheck(not (reason := check_pixels(np.asarray(image.convert("RGB")), min_side)), reason)
    if not isinstance(image, str | os.PathLike | bytes | bytearray):
        pixels = getattr(image, "pixels", None)  # already decoded (imaging.io.ImageData, models' LoadedImage)
        if pixels is None:
            raise ImageReadError(f"cannot read an image from a {type(image).__name__}; pass a path, bytes or array")
        header = dict(getattr(image, "meta", None) or {})
        frame = image.frame() if hasattr(image, "frame") else pixels
        reason = _non_image_reason(header) or check_pixels(frame, min_side)
        return InputCheck(not reason, reason, header)
    header = read_header(image)
    if reason := _non_image_reason(header):
        return InputCheck(False, reason, header)
    data = read_image(image, frame=None)
    frame = data.frame()
    return InputCheck(not (reason := check_pixels(frame, min_side)), reason, header)


def _non_image_reason(header: dict[str, Any]) -> str:
    """Why a DICOM header describes an object that is not an image to ask about ("" when it is one, or no DICOM)."""
    if str(header.get("source_format", "")).startswith("dicom"):
        modality = str(header.get("modality") or "").upper()
        sop = str(header.get("sop_class") or "")
        # A non-image class is out of range; an image class (or none) without pixels is a truncated file, and
        # read_image raises for it.
        if modality in NON_IMAGE_MODALITIES or (header.get("has_pixels") is False and sop and "Image" not in sop):
            return (f"{sop or 'this DICOM object'} (modality {modality or '?'}) is not an image the engine answers "
                    "questions about; pass an image instance (CT, MR, CR, DX, US...)")
    return ""


def _apart(value: float, threshold: float) -> tuple[str, str]:
    """Both numbers with the fewest decimals (2 to 4) that tell them apart: "0.67, below the threshold 0.67" read
    as a contradiction when the values were 0.6651 and 0.6702."""
    for places in (2, 3, 4):
        a, b = f"{value:.{places}f}", f"{threshold:.{places}f}"
        if a != b:
            return a, b
    return a, b


def answer_abstain_reason(pred: Any, *, image_threshold: float | None, min_confidence: float,
                          nearest_case: float | None = None, from_cases: bool = False) -> str:
    """Why the answerer should not give ``pred`` ("" when it may): an image unlike the collection, or a
    calibrated confidence below ``min_confidence``. ``pred``: a :class:`kgclip.rag.vqa.Prediction`.

    The collection is the answerer's memory images *and* the workspace's cases: ``nearest_case`` is the image's best
    cosine to a case (the similar-case search, same image space), so cases a user added bring such images into range
    at once. An image like those cases but unlike every memory image still gets no answer that rests on the answerer
    alone (it never saw such an image; its answer would be a question prior); ``from_cases``: the answer rests on the
    similar cases (their findings' votes, their metadata), and it stands.
    """
    if image_threshold is not None and pred.image_similarity < image_threshold:
        near_cases = nearest_case is not None and nearest_case >= image_threshold
        if not near_cases:
            best, limit = _apart(max(pred.image_similarity, nearest_case if nearest_case is not None else -1.0),
                                 image_threshold)
            return (f"no similar case: the image's best match in the collection has similarity {best}, below the "
                    f"threshold {limit} learned from the collection's own images; add similar cases "
                    "(Engine.add_cases) to answer about such images")
        if not from_cases:
            own, limit = _apart(pred.image_similarity, image_threshold)
            return (f"only the workspace's cases resemble this image (similarity {nearest_case:.2f}); the answerer "
                    f"was trained on no image like it ({own} < {limit}) and the "
                    "similar cases do not answer this question; add question-answer pairs about such images "
                    "(kgclip vqa fit) to answer it")
    if pred.confidence < min_confidence:
        confidence, limit = _apart(pred.confidence, min_confidence)
        return (f"not confident enough: calibrated confidence {confidence} is below the workspace's threshold {limit}")
    return ""
