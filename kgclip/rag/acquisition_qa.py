"""Answers to acquisition questions (router topics ``contrast`` and ``sequence``): from the DICOM header's derived
fields (:mod:`kgclip.imaging.acquisition`), else from the contrast / sequence image classifiers.

Both sources give a distribution per field: the header a certain one (``{"with": 1.0}``; confidence capped at
:data:`HEADER_CONFIDENCE`, like the header's modality), the classifiers their calibrated probabilities
(``image_labels["contrast"]`` over ``with`` / ``without``, ``image_labels["sequence"]`` over ``T1`` / ``T2`` /
``FLAIR`` / ``DWI``...). An answer is ``(text, confidence)`` or ``None`` when the source cannot say:

- **contrast**, yes/no: "Was contrast used?" -> P(with); a question naming its absence ("Is this a noncontrast CT?")
  -> P(without). A question naming a route ("oral", "bowel", "IV") needs the route: the header's Contrast/Bolus
  Route, or for the classifiers only IV (with-contrast training labels are ~97 % IV: MedPix 548 of 565); oral / bowel
  questions are left to the answerer unless the header says. Choice ("with or without contrast?") -> the option
  naming the likelier value, written as the question writes it; open ("What contrast was given?") -> the header's
  route ("IV", "Oral", "Oral and IV").
- **sequence**, yes/no naming sequences ("Is this a T2 weighted image?") -> P(named); choice -> the likelier named
  option; open ("What MR sequence is this?") -> the likeliest sequence. For the header, T2 against FLAIR / STIR gets
  ``None``: FLAIR and STIR are T2-weighted too, and a weighting from TR / TE alone cannot tell them from T2.

VQA-RAD ``--split val`` (``kgclip eval vqa-rad --split val --acquisition-medpix``: contrast / sequence heads trained
on MedPix less VQA-RAD's images, :mod:`kgclip.eval.acquisition_heads`; VQA-RAD images carry no DICOM header):
closed 0.667 -> 0.671, paired difference +0.004 [-0.002, 0.011] (7 gained, 3 lost), open 0.108 -> 0.109, ECE
0.033 -> 0.031, abstention 0.076 -> 0.076; closed contrast questions 39 / 54 -> 43 / 54 right, closed modality-kind
accuracy 0.543 -> 0.567 (all kinds). The classifiers answered 45 closed contrast questions (36 right, mean confidence
~0.79) and 7 sequence ones (6 right). Without ``--acquisition-medpix`` the figures are those before (closed 0.667,
no change on any question): the heads each fold trains on its VQA-RAD cases, whose contrast / sequence labels come
from their own questions, never passed the gate, so no classifier answered these questions.

Fallbacks are never guesses: a header without the field (no Contrast/Bolus Agent, no TR / TE), a classifier that
does not know a named value, or a question naming neither gives ``None`` and the next source answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kgclip.rag.router import TOPICS, question_options, route_question

__all__ = ["HEADER_CONFIDENCE", "header_acquisition_labels", "acquisition_answer",
           "stated_acquisition"]

# How sure an answer read from the DICOM header is (every header answer: modality, plane, region, contrast,
# sequence; kgclip.rag.grounding); no classifier answer is surer (kgclip.rag.image_metadata.MAX_CONFIDENCE).
HEADER_CONFIDENCE = 0.97

_NEGATED = re.compile(r"\b(non ?contrast|without (iv |oral )?contrast|unenhanced|non ?enhanced|no contrast)\b")
_ORAL = re.compile(r"\b(oral|bowels?|colon|intestin\w*|gi|stomach|enteric|ingest\w*|small bowel|barium)\b")
_IV = re.compile(r"\b(iv|intravenous\w*|intravenously|vascular|vasculature|arterial|venous|vessels?)\b")
_SEQ_NAMES = (("FLAIR", re.compile(r"\bflair\b")), ("DWI", re.compile(r"\b(dwi|diffusion)\b")),
              ("STIR", re.compile(r"\bstir\b")), ("PD", re.compile(r"\b(pd|proton density)\b")),
              ("T1", re.compile(r"\bt1\b")), ("T2", re.compile(r"\bt2\b")))
_SEQ_DISPLAY = {"T1": "T1 weighted", "T2": "T2 weighted", "PD": "PD weighted"}
# FLAIR and STIR are T2-weighted; a header weighting from TR / TE (long TR, long TE) cannot tell them from T2.
_HEADER_AMBIGUOUS = {("T2", "FLAIR"), ("T2", "STIR"), ("FLAIR", "T2"), ("STIR", "T2")}


def _clean(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9+]+", text.lower().replace("-", " ")))


def _sequences_in(text: str) -> list[str]:
    t = _clean(text)
    found = [name for name, pattern in _SEQ_NAMES if pattern.search(t)]
    return ["FLAIR"] if "FLAIR" in found else found  # "T2 FLAIR" names FLAIR


def header_acquisition_labels(header: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The header's contrast / sequence as certain distributions (``{}`` for a field it does not give), plus
    ``route`` (``{"oral+iv": 1.0}``) when known."""
    if not str(header.get("source_format", "")).startswith("dicom"):
        return {}
    out: dict[str, dict[str, float]] = {}
    if header.get("contrast") in ("with", "without"):
        out["contrast"] = {str(header["contrast"]): 1.0}
        if header.get("contrast") == "with" and header.get("contrast_route"):
            out["route"] = {str(header["contrast_route"]): 1.0}
    if header.get("mr_sequence"):
        out["sequence"] = {str(header["mr_sequence"]): 1.0}
    return out


def acquisition_answer(question: str, labels: Mapping[str, Mapping[str, float]] | None, *,
                       from_header: bool = False) -> tuple[str, float] | None:
    """``(answer, confidence)`` for a contrast / sequence question from ``labels`` (module docstring), else
    ``None``. ``from_header``: the labels are the header's (:func:`header_acquisition_labels`)."""
    route = route_question(question)
    if route.kind != "modality" or route.topic not in TOPICS or not labels:
        return None
    probs = dict(labels.get(route.topic) or {})  # a topic names its classifier field
    if not probs:
        return None
    said = (_contrast(question, route.form, probs, labels.get("route"), from_header) if route.topic == "contrast"
            else _sequence(question, route.form, probs, from_header))
    if said is None:
        return None
    return said[0], min(float(said[1]), HEADER_CONFIDENCE) if from_header else float(said[1])


def _yes_no(p_yes: float) -> tuple[str, float]:
    return ("yes", p_yes) if p_yes >= 0.5 else ("no", 1.0 - p_yes)


_LEADS = ("with", "without", "non", "no", "noncontrast")


def _as_written(spans: tuple[str, ...], first: bool) -> str:
    """An option as the question writes it. The option after "or" runs to the end of the question: its longest span
    ("non contrast ct", "no contrast", "not"). The one before "or": its shortest span naming contrast, preferring
    one that starts with with / without / non / no ("with contrast" in "MRI with contrast or without contrast?",
    "contrast ct" in "a contrast CT or a non-contrast CT?", "contrast" in "use contrast or not?")."""
    if not first:
        return spans[-1]
    named = [s for s in spans if {"contrast", "noncontrast"} & set(s.split())]
    led = [s for s in named if s.split()[0] in _LEADS]
    return min(led or named or list(spans), key=lambda s: len(s.split()))


def _route_display(route: str) -> str:
    return {"iv": "IV", "oral": "Oral", "oral+iv": "Oral and IV"}.get(route, route)


def _contrast(question: str, form: str, probs: Mapping[str, float], routes: Mapping[str, float] | None,
              from_header: bool) -> tuple[str, float] | None:
    q = _clean(question)
    p_with = float(probs.get("with", 1.0 - float(probs.get("without", 0.0))))
    route = max(routes, key=lambda k: routes[k]) if routes else ""
    if form == "yes/no":
        if _NEGATED.search(q):
            return _yes_no(1.0 - p_with)
        oral, iv = bool(_ORAL.search(q)), bool(_IV.search(q))
        if oral or iv:
            if p_with < 0.5 and from_header:
                return _yes_no(p_with)  # no contrast at all: no oral, no IV contrast
            if not from_header:
                return _yes_no(p_with) if (iv and not oral) else None
            if not route:
                return None  # contrast, route unknown: cannot say whether it reached the bowel
            has = (not oral or "oral" in route) and (not iv or "iv" in route)
            return ("yes" if has else "no"), HEADER_CONFIDENCE
        return _yes_no(p_with)
    if form == "choice":
        options = question_options(question)
        scored = []
        for i, spans in enumerate(options):
            words = set(" ".join(spans).split())
            if words & {"without", "non", "noncontrast", "not", "no", "unenhanced"}:
                scored.append((1.0 - p_with, _as_written(spans, i == 0)))
            elif words & {"with", "contrast", "enhanced"}:
                scored.append((p_with, _as_written(spans, i == 0)))
            else:
                return None  # "oral or IV?", "bowels or vasculature?": an option the value does not name
        if len(scored) != 2 or scored[0][0] == scored[1][0]:
            return None
        p, shown = max(scored, key=lambda s: s[0])
        return shown, p
    if from_header and route and re.search(r"\b(what|which) (types? |kinds? |routes? )?(of )?contrast\b", q):
        return _route_display(route), HEADER_CONFIDENCE
    return None


def _sequence(question: str, form: str, probs: Mapping[str, float], from_header: bool) -> tuple[str, float] | None:
    best = max(probs, key=lambda k: (probs[k], k))
    if form == "yes/no":
        named = _sequences_in(question)
        if not named:
            return None
        if from_header and any((best, n) in _HEADER_AMBIGUOUS for n in named):
            return None
        if any(n not in probs for n in named) and not from_header and len(probs) > 1:
            return None  # a classifier that never learned the named sequence cannot say no to it
        return _yes_no(min(1.0, sum(float(probs.get(n, 0.0)) for n in named)))
    if form == "choice":
        named = list(dict.fromkeys(n for spans in question_options(question) for n in _sequences_in(spans[0])))
        if len(named) < 2:
            return None
        if from_header and any((best, n) in _HEADER_AMBIGUOUS for n in named):
            return None
        if not from_header and len(probs) > 1 and any(n not in probs for n in named):
            return None
        choice = max(named, key=lambda n: float(probs.get(n, 0.0)))
        total = sum(float(probs.get(n, 0.0)) for n in named)
        if total <= 0:
            return None
        return _SEQ_DISPLAY.get(choice, choice), float(probs.get(choice, 0.0)) / total
    if re.search(r"\b(sequence|weighting|weighted|what kind of mri?|type of mri?)\b", _clean(question)):
        return _SEQ_DISPLAY.get(best, best), float(probs[best])
    return None


def stated_acquisition(question: str, answer: str) -> str:
    """The contrast (``with`` / ``without``) or sequence (``T1`` / ``T2`` / ``FLAIR`` / ``DWI``) that a question of
    that topic and its answer state, else ``""`` (training labels from an image's own questions).

    >>> stated_acquisition("Was contrast used?", "No"), stated_acquisition("Is this a noncontrast CT?", "yes")
    ('without', 'without')
    >>> stated_acquisition("Is there oral contrast in the colon?", "no")
    ''
    >>> stated_acquisition("What MRI sequence is this?", "FLAIR")
    'FLAIR'
    """
    route = route_question(question)
    q, a = _clean(question), _clean(answer)
    if route.topic == "contrast":
        if route.form == "yes/no" and a in ("yes", "no"):
            negated = bool(_NEGATED.search(q))
            if _ORAL.search(q) or _IV.search(q):
                return "with" if (a == "yes" and not negated) else ""
            return "with" if (a == "yes") != negated else "without"
        if _NEGATED.search(a) or re.search(r"\b(non|without|no)\b", a):
            return "without"
        return "with" if re.search(r"\b(with|contrast|enhanced|iv|oral)\b", a) and a not in ("no",) else ""
    if route.topic == "sequence":
        if route.form == "yes/no":
            named = [n for n in _sequences_in(question) if n in ("T1", "T2", "FLAIR", "DWI")]
            return named[0] if (a == "yes" and len(named) == 1) else ""
        named = [n for n in _sequences_in(answer) if n in ("T1", "T2", "FLAIR", "DWI")]
        return named[0] if len(named) == 1 else ""
    return ""
