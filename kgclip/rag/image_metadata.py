"""An image's modality, plane and body region from the metadata classifiers (:mod:`kgclip.models.metadata_heads`),
in one vocabulary, and the answers they give to questions of those kinds.

Vocabulary (what the heads are trained on and predict):

- ``modality``: ``CT, MR, XR, US, NM, MG, XA`` (:func:`normalize_modality`: ``"MRI"``, ``"MR - T2 weighted"`` ->
  ``MR``; ``CR`` / ``DX`` / ``"x-ray"`` -> ``XR``);
- ``plane``: ``axial, coronal, sagittal, pa, ap, lateral`` (:func:`plane_label`: ``"Transverse"`` -> ``axial``;
  montages, 3D reconstructions and photographs -> unknown);
- ``region``: the regions of :mod:`kgclip.rag.regions` (``head, neck, chest, abdomen, pelvis, spine, limb,
  breast``); a label naming several (``ABDOMENPELVIS``) trains them as a shared target.

:func:`metadata_training_labels` turns any collection's metadata records (a case's ``modality`` / ``body_part`` /
``plane``, a DICOM header's fields, a dataset's location labels) into these labels; nothing here knows a dataset.

Answers (:func:`classifier_answer`), only ever with labels of the question's kind, confidence the head's calibrated
probability: a yes/no question naming a value ("Is this an MRI?", "Is this a chest x-ray?") is yes with the
probability the heads give the named values (every named field must be one the heads know); a choice question
("CT or MRI?") takes the more probable option; an open question ("What modality is this?") re-weighs the answerer's
candidates of that kind by the probability of their label (``"t2 weighted"`` is MR), and when none of them carries
the label the head is sure of, answers that label itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kgclip.rag.acquisition_qa import HEADER_CONFIDENCE, stated_acquisition
from kgclip.rag.regions import regions_of_label
from kgclip.rag.router import TOPICS, route_question

__all__ = [
    "ACQUISITION_FIELDS",
    "FIELDS",
    "acquisition_labels",
    "answering_labels",
    "KIND_FIELD",
    "MAX_CONFIDENCE",
    "ImageLabels",
    "asks_about_metadata",
    "asks_for_field",
    "classifier_answer",
    "confident_label",
    "fit_case_heads",
    "labels_from_qa",
    "metadata_training_labels",
    "normalize_modality",
    "plane_label",
]

FIELDS = ("modality", "plane", "region")
# Acquisition fields (router topics contrast / sequence, kgclip.rag.acquisition_qa): trained like FIELDS where the
# metadata says them, but used in answers only where the head beats the majority class on its validation carve
# (answering_labels). benchmarks/bench_metadata_heads.py (MedPix train + VQA-RAD train, 20 % of cases carved, seed 0;
# results/bench_metadata_heads_val_s9_contrast.json): contrast 0.775 [0.728, 0.822] vs majority 0.594 (n 298; CT
# 0.811 vs 0.649, MR 0.648 vs 0.394), sequence 0.699 [0.628, 0.769] vs 0.455 (n 156), ECE 0.078 / 0.077.
ACQUISITION_FIELDS = TOPICS  # a router topic names its classifier field
# No classifier answer is surer than a DICOM header's: a head that never saw an image's true class still puts all
# its probability on the classes it knows.
MAX_CONFIDENCE = HEADER_CONFIDENCE
KIND_FIELD = {"modality": "modality", "plane": "plane", "organ": "region"}
ImageLabels = Mapping[str, Mapping[str, float]]  # field -> {label: calibrated probability}

_MODALITIES = {"mr": "MR", "mri": "MR", "ct": "CT", "cta": "CT", "xr": "XR", "cr": "XR", "dx": "XR", "dr": "XR",
               "rg": "XR", "x-ray": "XR", "xray": "XR", "radiograph": "XR", "us": "US", "ultrasound": "US",
               "nm": "NM", "pt": "NM", "pet": "NM", "mg": "MG", "xa": "XA"}
_PLANES = {"axial": "axial", "transverse": "axial", "transaxial": "axial", "coronal": "coronal",
           "sagittal": "sagittal", "pa": "pa", "posteroanterior": "pa", "ap": "ap", "anteroposterior": "ap",
           "lateral": "lateral", "ll": "lateral", "rl": "lateral"}
# Words in an answer or question that name a modality (whole words, lower case, after "-" -> " ").
_MODALITY_WORDS = (
    (re.compile(r"\b(mri?|magnetic resonance|t1|t2|flair|dwi|diffusion|adc|gradient echo|stir)\b"), "MR"),
    (re.compile(r"\b(ct|cta|cat scan|computed tomography)\b"), "CT"),
    (re.compile(r"\b(x ?rays?|xray|radiograph\w*|plain film|film|cxr|kub)\b"), "XR"),
    (re.compile(r"\b(ultrasound|sonogra\w*|doppler)\b"), "US"),
    (re.compile(r"\b(pet|nuclear medicine|scintigra\w*)\b"), "NM"),
    (re.compile(r"\b(mammogra\w*)\b"), "MG"),
    (re.compile(r"\b(angiogra\w*)\b"), "XA"),
)
_PLANE_WORDS = re.compile(r"\b(axial|transverse|coronal|sagittal|saggital|pa|posteroanterior|ap|anteroposterior|"
                          r"lateral)\b")
# Open questions that ask for the field itself ("What modality is this?", "In what plane?", "Which organ system?").
_ASKS_FOR = {
    "modality": re.compile(r"\b(modality|(type|kind) of (image|imaging|scan|study|radiograph)|"
                           r"imaging (method|technique)|"
                           r"how (was|is) (this|the) (image|scan|picture) (taken|obtained|acquired|made))\b"),
    "plane": re.compile(r"\b(what|which) (imaging )?(plane|projection|view)\b|\b(plane|projection) (is|was)\b|"
                        r"\bwhat is the (image |imaging )?(plane|projection)\b|\bimage s (plane|projection)\b"),
    "region": re.compile(r"\b(organ system|body part|part of the body|body region|anatomic\w* region)\b|"
                         r"\borgans? (is |are )?(\w+ )?(shown|imaged|pictured|visuali[sz]ed|displayed|evaluated|"
                         r"depicted|captured)\b|\borgans? is this image of\b"),
}
_DISPLAY = {"modality": {"CT": "CT", "MR": "MRI", "XR": "X-ray", "US": "Ultrasound", "NM": "PET", "MG": "Mammography",
                         "XA": "Angiography"},
            "plane": {"pa": "PA", "ap": "AP"}}


# A question naming any of these asks about the acquisition in more detail than the heads know ("Is this a T1
# weighted image?" is not answered "yes" because the image is an MR; "Is this a noncontrast CT?" not because a CT).
_FINER = re.compile(r"\b(t1|t2|flair|dwi|adc|diffusion|weighted|weighting|sequence|contrast|noncontrast|enhanced|"
                    r"enhancing|gadolinium|stir|iv|oral|special|portable|decubitus|oblique|reformat\w*|3d)\b")
# Words a yes/no question about the image's own modality / plane / region may hold besides the values it names.
_FRAME = frozenset(["is", "are", "was", "were", "does", "do", "did", "this", "these", "that", "it", "the", "a", "an",
                    "image", "images", "picture", "photo", "scan", "scans", "projection", "study", "view", "taken",
                    "with", "using", "by", "via", "in", "on", "of", "plane", "section", "slice", "obtained", "done",
                    "performed", "shown", "type", "kind", "modality", "imaging", "plain", "radiology", "radiological"])


def _text(value: str) -> str:
    text = re.sub(r"\bx\s*-?\s*rays?\b", "xray", (value or "").lower())
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.replace("-", " "))) + " "


def asks_about_metadata(question: str) -> bool:
    """Whether a yes/no question asks what the image itself is ("Is this an MRI?", "Is this a chest x-ray?",
    "Was this taken in the axial plane?") rather than about a finding on it ("Is there acute blood on this head
    CT?", "Is the chest x-ray normal?"): besides the modality / plane / region values it names it holds only framing
    words, and nothing finer than the heads know (sequences, contrast)."""
    text = _text(question)
    if _FINER.search(text):
        return False
    named = False
    for word in text.split():
        if word in _FRAME:
            continue
        if _modalities_in(word) or _planes_in(word) or regions_of_label(word):
            named = True
            continue
        return False
    return named


def asks_for_field(question: str, field: str) -> bool:
    """Whether an open question asks for the metadata field itself ("What modality is this?", "Which organ system is
    shown?") rather than for something the field only narrows ("What organ is enlarged?": the region head knows the
    abdomen, not which of its organs)."""
    pattern = _ASKS_FOR.get(field)
    return bool(pattern and pattern.search(_text(question)))


def normalize_modality(value: str | None) -> str:
    """``"MRI"`` / ``"MR - T2 weighted"`` -> ``"MR"``, ``"CR"`` -> ``"XR"``...; ``""`` when unknown."""
    text = (value or "").strip().lower()
    if not text:
        return ""
    head = re.split(r"[\s/,(-]+", text)[0]
    return _MODALITIES.get(head, _MODALITIES.get(text, ""))


def plane_label(value: str | None) -> str:
    """``"Axial"`` / ``"Transverse"`` -> ``axial``, ``"PA"`` -> ``pa``...; ``""`` for montages, 3D, unknown."""
    text = (value or "").strip().lower()
    return _PLANES.get(text, _PLANES.get(text.split(" ")[0] if text else "", ""))


def _modalities_in(text: str) -> list[str]:
    t = _text(text)
    return [m for pattern, m in _MODALITY_WORDS if pattern.search(t)]


def _planes_in(text: str) -> list[str]:
    return list(dict.fromkeys(_PLANES["sagittal" if w == "saggital" else w] for w in _PLANE_WORDS.findall(_text(text))))


def _values_in(field: str, text: str) -> list[str]:
    if field == "modality":
        return _modalities_in(text)
    if field == "plane":
        return _planes_in(text)
    return sorted(regions_of_label(text))


def labels_from_qa(qa: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Modality, plane, contrast and MR sequence an image's own question/answer pairs state ("What plane is this?"
    -> "Axial"; "Is this an MRI?" -> "yes"; "Was contrast used?" -> "no": contrast ``without``); ``""`` where they
    say nothing or disagree. Only questions routed to that kind (contrast / sequence: that topic) count; a contrast
    question naming a route ("Is there oral contrast?") says nothing when answered "no" (IV contrast may be there)."""
    votes: dict[str, dict[str, int]] = {"modality": {}, "plane": {}, "contrast": {}, "sequence": {}}
    for question, answer in qa:
        route = route_question(question)
        if route.topic:
            value = stated_acquisition(question, answer)
            if value:
                votes[route.topic][value] = votes[route.topic].get(value, 0) + 1
            continue
        field = KIND_FIELD.get(route.kind)
        if field not in votes:
            continue
        a = answer.strip().lower()
        if route.form == "yes/no":
            named = _values_in(field, question)
            found = named if (a == "yes" and len(named) == 1) else []
        else:
            found = _values_in(field, answer)
        for v in found[:1] if len(found) == 1 else []:
            votes[field][v] = votes[field].get(v, 0) + 1
    return {f: (next(iter(v)) if len(v) == 1 else "") for f, v in votes.items()}


def metadata_training_labels(records: Sequence[Mapping[str, Any]]) -> dict[str, list[frozenset[str]]]:
    """Per field of :data:`FIELDS`, each record's label set in the shared vocabulary (empty: unknown).

    A record is any image's metadata: ``modality`` (``CT``, ``MR - FLAIR``, DICOM ``CR``...), ``plane`` (``Axial``,
    DICOM ``ViewPosition`` ``PA``...), and a region from ``region``, ``body_part``, ``location`` or
    ``location_category`` (the first that names one; see :func:`kgclip.rag.regions.regions_of_label`);
    ``contrast`` / ``sequence`` from those keys, else parsed from ``modality_detail`` or ``modality``
    (:func:`acquisition_labels`).
    """
    out: dict[str, list[frozenset[str]]] = {f: [] for f in FIELDS + ACQUISITION_FIELDS}
    for r in records:
        acq = acquisition_labels(str(r.get("modality_detail") or r.get("modality") or ""))
        for f in ACQUISITION_FIELDS:
            out[f].append(frozenset({str(r.get(f) or "") or acq[f]} - {""}))
        m = normalize_modality(str(r.get("modality") or ""))
        p = plane_label(str(r.get("plane") or r.get("view_position") or ""))
        region: frozenset[str] = frozenset()
        for key in ("region", "body_part", "location", "location_category"):
            region = regions_of_label(str(r.get(key) or ""))
            if region:
                break
        out["modality"].append(frozenset({m} - {""}))
        out["plane"].append(frozenset({p} - {""}))
        out["region"].append(region)
    return out


_CT_WITH = re.compile(r"(w/ ?contrast|with contrast|w/ ?gad|gadolinium|\bgd\b|gi contrast|iv contrast|gi & iv|"
                      r"contrast enhanced|\bcta\b)")  # not MRA: time-of-flight MRA needs none
_WITHOUT = re.compile(r"(non ?contrast|without contrast|w/o contrast|unenhanced|non ?enhanced|no contrast)")
_SEQUENCE_LABELS = (("FLAIR", re.compile(r"\bflair\b")), ("DWI", re.compile(r"\b(dwi|diffusion weighted)\b")),
                    ("T1", re.compile(r"\bt1w?\b|t1 weighted")), ("T2", re.compile(r"\bt2 weighted\b|\bt2w?\b(?!\*)")))


def acquisition_labels(modality: str) -> dict[str, str]:
    """Contrast (``with`` / ``without``) and MR sequence (``T1`` / ``T2`` / ``FLAIR`` / ``DWI``) a modality string
    states (``"CT w/contrast (IV)"`` -> with; ``"MR - T1W - noncontrast"`` -> without, T1; ``"MR - FLAIR"`` -> FLAIR);
    ``""`` where it does not. Other sequences (T2* GRE, ADC maps, PD, STIR, MRA) and montages give no sequence: too
    few images to learn, or not one acquisition.

    >>> acquisition_labels("MR - T1W w/Gadolinium")
    {'contrast': 'with', 'sequence': 'T1'}
    >>> acquisition_labels("CT - noncontrast")
    {'contrast': 'without', 'sequence': ''}
    """
    text = " ".join((modality or "").lower().replace("-", " ").split())
    if not text or "montage" in text:
        return {"contrast": "", "sequence": ""}
    contrast = "without" if _WITHOUT.search(text) else "with" if _CT_WITH.search(text) else ""
    sequence = ""
    if normalize_modality(text) == "MR" and not re.search(r"\b(adc|mra|t2\*|gre|swi|spectroscopy)\b", text):
        sequence = next((name for name, pattern in _SEQUENCE_LABELS if pattern.search(text)), "")
    return {"contrast": contrast, "sequence": sequence}


def answering_labels(heads: Any, labels: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``labels`` (one image's :meth:`~kgclip.models.metadata_heads.MetadataHeads.predict`) without the acquisition
    fields whose head does not beat the majority class on its validation carve (``figures["beats_majority"]``, the
    lower bound of the paired bootstrap CI of head-minus-majority accuracy above 0; heads saved before it existed
    count as not beating it)."""
    return {f: dict(p) for f, p in labels.items()
            if f not in ACQUISITION_FIELDS or heads.heads[f].figures.get("beats_majority", False)}


def fit_case_heads(cases: Sequence[Any], vectors: Any, *, feature_fingerprint: str) -> Any:
    """Metadata heads trained on a collection's cases, or ``None`` when their metadata cannot train any head.

    Each case (anything with ``case_id``, ``modality``, ``body_part`` and ``qa`` question/answer pairs, like an
    engine case) gives its stored ``modality`` / ``body_part``, else what its own questions state
    (:func:`labels_from_qa`); plane only from its questions. Shapes: ``vectors [len(cases), D]``.
    """
    import numpy as np

    from kgclip.errors import InputFormatError
    from kgclip.models.metadata_heads import fit_metadata_heads

    records = []
    for c in cases:
        said = labels_from_qa(list(getattr(c, "qa", []) or []))
        records.append({"modality": getattr(c, "modality", "") or said["modality"], "plane": said["plane"],
                        "body_part": getattr(c, "body_part", ""),
                        "modality_detail": getattr(c, "modality_detail", "") or "",
                        "contrast": said.get("contrast", ""), "sequence": said.get("sequence", "")})
    if not records:
        return None
    try:
        return fit_metadata_heads(np.asarray(vectors, np.float32), metadata_training_labels(records),
                                  feature_fingerprint=feature_fingerprint, groups=[str(c.case_id) for c in cases])
    except InputFormatError:
        return None


def confident_label(labels: ImageLabels | None, field: str, threshold: float) -> tuple[str, float] | None:
    """``(label, probability)`` of the most probable ``field`` label when it reaches ``threshold``, else ``None``."""
    probs = (labels or {}).get(field) or {}
    if not probs:
        return None
    best = max(probs, key=lambda k: (probs[k], k))
    return (best, float(probs[best])) if probs[best] >= threshold else None


def _display(field: str, label: str) -> str:
    return _DISPLAY.get(field, {}).get(label, label)


def classifier_answer(question: str, labels: ImageLabels | None,
                      candidates: Sequence[tuple[str, float]] = ()) -> tuple[str, float] | None:
    """``(answer, confidence)`` from the heads' probabilities for modality / plane / body-region questions (module
    docstring), or ``None`` when the heads cannot say (another kind, a named value they do not know, no head).
    The confidence is at most :data:`MAX_CONFIDENCE`."""
    said = _classifier_answer(question, labels, candidates)
    return None if said is None else (said[0], min(float(said[1]), MAX_CONFIDENCE))


def _classifier_answer(question: str, labels: ImageLabels | None,
                       candidates: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
    if not labels:
        return None
    route = route_question(question)
    field = KIND_FIELD.get(route.kind)
    if field is None:
        return None
    if route.form == "yes/no":
        if not asks_about_metadata(question):
            return None
        p_yes, named_any = 1.0, False
        for f in FIELDS:
            named = _values_in(f, question)
            if not named:
                continue
            probs = labels.get(f) or {}
            if not probs or any(v not in probs for v in named):
                return None  # a value the heads never learned: they cannot say no to it
            p_yes *= min(1.0, sum(probs[v] for v in named))
            named_any = True
        if not named_any:
            return None
        return ("yes", p_yes) if p_yes >= 0.5 else ("no", 1.0 - p_yes)
    probs = labels.get(field) or {}
    if not probs:
        return None
    if _FINER.search(_text(question)):
        return None  # "What contrast was given?", "Which MRI sequence?": finer than the heads know
    if route.form == "choice":
        named = _values_in(field, question)
        if len(named) < 2 or any(v not in probs for v in named):
            return None
        best = max(named, key=lambda v: probs[v])
        total = sum(probs[v] for v in named)
        said = [c for c, _ in candidates if _values_in(field, c) == [best]]
        return (said[0] if said else _display(field, best)), probs[best] / max(total, 1e-12)
    # Open: the answerer's candidates of this kind, re-weighed by the probability of the label each one names. When
    # the question does not ask for the field itself and the answerer's best candidate names no value of the kind,
    # it asks something else ("What sign is seen on this radiograph?").
    asks = asks_for_field(question, field)
    if not asks and (not candidates or not [v for v in _values_in(field, candidates[0][0]) if v in probs]):
        return None
    scored = []
    for text, p in candidates:
        vals = [v for v in _values_in(field, text) if v in probs]
        if vals:
            scored.append((p * max(probs[v] for v in vals), text, max(vals, key=lambda v: probs[v]), p))
    top = max(probs, key=lambda k: (probs[k], k))
    if field != "region" and probs[top] >= 0.5 and not any(v == top for _, _, v, _ in scored):
        return _display(field, top), probs[top]  # no candidate says what the head is sure of: its own label
    return _best(scored, probs) if scored else None


def _best(scored: list[tuple[float, str, str, float]], probs: Mapping[str, float]) -> tuple[str, float]:
    """The best re-weighed candidate; confidence P(label) x the answerer's probability of this wording (the head
    knows the modality, not whether the collection says "X-ray", "Xray" or "plain film": on VQA-RAD --split val
    the label share alone, P(label) x p / (p of the label's candidates), was 0.78 on average for 0.45 right)."""
    _, text, label, p = max(scored, key=lambda s: s[0])
    return text, probs[label] * p
