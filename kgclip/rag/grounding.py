"""Answers grounded in what can know them: the DICOM header, and the user's own similar cases.

:func:`ground_answer` turns the trained answerer's :class:`~kgclip.rag.vqa.Prediction` into an
:class:`~kgclip.rag.vqa.Answer`, by question kind (:mod:`kgclip.rag.router`):

- **contrast / MR sequence** (router topics): the header's Contrast/Bolus and sequence fields, else the contrast /
  sequence classifiers (:mod:`kgclip.rag.acquisition_qa`), else the answerer;
- **modality / plane / body region**: the DICOM header when it has the field (``Modality``, ``ImageOrientationPatient``
  or ``ViewPosition``, ``BodyPartExamined``), which always wins; otherwise the image metadata classifiers' calibrated
  probabilities (:func:`kgclip.rag.image_metadata.classifier_answer`: only labels of the question's kind) when the
  caller gives them; otherwise, for yes/no questions that name one, the similarity-weighted vote of the most similar
  cases' stored ``modality`` / ``body_part`` (a nearest-neighbour classifier over the metadata of the collection's
  images, so cases added with ``Engine.add_cases`` count at once);
- **presence of a finding**: the similar cases' findings vote: a case whose text affirms the asked concept, or a
  concept below it in the is-a hierarchy (a case with lobar pneumonia supports pneumonia), votes yes; one that
  negates it votes no; an uncertain mention counts half; cases that do not mention it do not vote. Only the
  question's findings vote, and only where the anatomy it names is ("Is there bone marrow edema?" is not answered by
  another patient's talus edema; :func:`presence_targets`). The votes are weighted by image similarity and blended
  with the answerer's probability, more as more cases vote. MedPix val (``benchmarks/bench_presence_medpix.py``,
  1,357 questions from the query cases' own findings): counting a silent case as a weak "no" only trades "yes"
  accuracy for "no" accuracy (balanced accuracy 0.552 without, 0.541 / 0.538 / 0.522 at weights 0.05 / 0.25 / 1),
  so silent cases still do not vote;
- **"What is the diagnosis?"**: the similar cases' own diagnoses, reasoned as a draft's impression, given as a
  declined guess with the cases it rests on (:data:`DIAGNOSIS_CONFIDENCE`: such answers were right for 2 % of
  MedPix val images);
- everything else: the answerer (its open answers are already restricted to the question's kind).

A question about anatomy or a finding that lies only in a body region the image does not show ("Is the brain
normal?" on a pelvis CT) is declined, saying which region the image shows and how that was decided
(:func:`question_elsewhere`); questions about the image itself (modality, plane, organ) are not.

Then abstention (:mod:`kgclip.rag.abstain`): an image is in range when it is like one of the answerer's memory
images or one of the workspace's cases; like only the cases (ones a user added), only answers grounded in them
(:data:`CASE_SOURCES`) stand. The evidence always lists the cases and facts used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kgclip.ontology.model import ConceptGraph
from kgclip.rag.abstain import InputCheck, answer_abstain_reason
from kgclip.rag.acquisition_qa import HEADER_CONFIDENCE, acquisition_answer, header_acquisition_labels
from kgclip.rag.concepts import ConceptTagger, expand_concepts
from kgclip.rag.image_metadata import (
    ImageLabels,
    KIND_FIELD,
    asks_about_metadata,
    asks_for_field,
    classifier_answer,
)
from kgclip.rag.router import HEADER_MODALITY, route_question
from kgclip.rag.vqa import Answer, Prediction

__all__ = ["ground_answer", "out_of_range_answer", "header_answer", "case_presence_vote", "case_metadata_vote",
           "blend_presence", "case_concept_answer", "asks_for_finding", "mentioned", "presence_targets",
           "CASE_WEIGHT", "OPEN_FROM_CASES", "CASE_SOURCES"]

CASE_WEIGHT = 1.0  # weight of the similar cases' finding votes against the answerer (selected on --split val)
# Answers that rest on the workspace's cases: the similar cases' findings and metadata, and the metadata classifiers
# (trained on every case's stored metadata, retrained when cases are added). They stand for an image that is like
# the workspace's cases but unlike every image the answerer was trained on (kgclip.rag.abstain.answer_abstain_reason).
CASE_SOURCES = frozenset({"case-votes+answerer", "case-metadata", "case-concepts", "case-diagnoses",
                          "image-classifier"})
# Presence votes: the question's findings vote, in the anatomy it names (presence_targets), and a similar case silent
# on the finding votes no with this weight (see case_presence_vote; chosen on MedPix val,
# benchmarks/bench_presence_medpix.py).
PRESENCE_SPLIT = True
PRESENCE_SILENCE = 0.0
# "What is the diagnosis?": the similar cases' diagnoses vote (case_diagnosis_answer) with this temperature (the
# drafter's), and the answer's confidence is at most DIAGNOSIS_CONFIDENCE, the accuracy such answers had on MedPix
# val (benchmarks/bench_presence_medpix.py, "diagnosis": 7 of 291 queries, 0.024 [0.007, 0.041], the case's own
# diagnosis or an is-a relative within 3 levels): below any workspace's threshold, so it is given as a declined guess
# with the cases it rests on, never as a diagnosis.
DIAGNOSIS_TEMPERATURE = 0.2
DIAGNOSIS_CONFIDENCE = 0.04
# Questions about the image itself ("Is this an MRI of the brain?"): naming another region is what they ask.
_ABOUT_THE_IMAGE = frozenset({"modality", "organ", "plane"})
# Abstain on a question about anatomy or a finding that lies only in a region the image does not show ("Is there a
# midline shift?" on an abdominal CT); see question_elsewhere.
REGION_CHECK = True
# Open questions: below this calibrated answerer confidence, the similar cases' shared finding answers instead
# (0 turns it off; selected on --split val).
OPEN_FROM_CASES = 0.2

# How questions and case metadata name modalities and body regions (normalised answer text -> canonical).
_MODALITY_WORDS = {"ct": "ct", "cat scan": "ct", "computed tomography": "ct", "mri": "mri", "mr": "mri",
                   "magnetic resonance": "mri", "x ray": "x ray", "xray": "x ray", "radiograph": "x ray",
                   "cr": "x ray", "dx": "x ray", "xr": "x ray", "film": "x ray", "ultrasound": "ultrasound",
                   "us": "ultrasound", "sonogram": "ultrasound", "pet": "pet", "mammogram": "mammography",
                   "mammography": "mammography"}
_REGION_WORDS = {"chest": "chest", "thorax": "chest", "thoracic": "chest", "lung": "chest", "lungs": "chest",
                 "cxr": "chest", "head": "head", "brain": "head", "skull": "head", "cranial": "head",
                 "abdomen": "abdomen", "abdominal": "abdomen", "abd": "abdomen", "pelvis": "pelvis",
                 "pelvic": "pelvis", "spine": "spine", "neck": "neck", "knee": "knee", "hand": "hand",
                 "breast": "breast", "foot": "foot", "shoulder": "shoulder"}
_PLANE_WORDS = {"axial": "axial", "transverse": "axial", "coronal": "coronal", "sagittal": "sagittal",
                "pa": "pa", "posteroanterior": "pa", "ap": "ap", "anteroposterior": "ap", "lateral": "lateral",
                "ll": "lateral", "rl": "lateral"}
_DISPLAY = {"ct": "CT", "mri": "MRI", "x ray": "X-ray", "ultrasound": "Ultrasound", "pet": "PET",
            "pa": "PA", "ap": "AP"}


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("-", " "))) + " "


def mentioned(text: str, table: dict[str, str]) -> list[str]:
    """Canonical values ``table`` finds in ``text`` (whole words), in order, without repeats."""
    words = _words(text)
    return list(dict.fromkeys(v for k, v in table.items() if f" {k} " in words))


def _header_values(header: dict[str, Any]) -> dict[str, str]:
    """Canonical modality / region / plane from a DICOM header ("" where it does not say)."""
    modality = HEADER_MODALITY.get(str(header.get("modality") or "").upper(), "")
    regions = mentioned(str(header.get("body_part") or ""), _REGION_WORDS)
    planes = mentioned(str(header.get("view_position") or ""), _PLANE_WORDS) or (
        [str(header["plane"])] if header.get("plane") else [])
    return {"modality": modality, "organ": regions[0] if regions else "", "plane": planes[0] if planes else ""}


def _yes_no_about(question: str, values: dict[str, str]) -> tuple[str, float] | None:
    """Answer a yes/no question that names modalities / regions / planes from known ``values``; ``None`` when the
    question names one whose value is unknown, or asks about a finding rather than the image itself ("Is there
    blood on this head CT?": :func:`~kgclip.rag.image_metadata.asks_about_metadata`)."""
    if not asks_about_metadata(question):
        return None
    checks = [("modality", mentioned(question, _MODALITY_WORDS)), ("organ", mentioned(question, _REGION_WORDS)),
              ("plane", mentioned(question, _PLANE_WORDS))]
    named = [(field, names) for field, names in checks if names]
    if not named or any(not values.get(field) for field, _ in named):
        return None
    ok = all(values[field] in names for field, names in named)
    return ("yes" if ok else "no"), HEADER_CONFIDENCE


def header_answer(question: str, header: dict[str, Any]) -> tuple[str, float] | None:
    """``(answer, confidence)`` from the DICOM header for modality / plane / body-region questions, else ``None``."""
    if not header.get("source_format", "").startswith("dicom"):
        return None
    route = route_question(question)
    if route.kind not in ("modality", "plane", "organ"):
        return None
    if route.topic:  # contrast / MR sequence: the header's Contrast/Bolus and sequence fields, never its Modality
        return acquisition_answer(question, header_acquisition_labels(header), from_header=True)
    values = _header_values(header)
    if route.form == "yes/no":
        return _yes_no_about(question, values)
    value = values.get(route.kind, "")
    if not value:
        return None
    if route.form == "choice":
        table = {"modality": _MODALITY_WORDS, "organ": _REGION_WORDS, "plane": _PLANE_WORDS}[route.kind]
        if value not in mentioned(question, table):
            return None
    return _DISPLAY.get(value, value), HEADER_CONFIDENCE


def case_metadata_vote(question: str, hits: Sequence[Any], temperature: float = 0.05) -> tuple[str, float] | None:
    """For a yes/no question naming a modality / region: the similarity-weighted vote of similar cases' stored
    ``modality`` / ``body_part`` (only cases that have the named fields vote). ``(answer, P(answer))`` or ``None``."""
    if route_question(question).form != "yes/no":
        return None
    votes, weights = [], []
    top = max((h.score for h in hits), default=0.0)
    for hit in hits:
        meta = hit.metadata or {}
        regions = mentioned(str(meta.get("body_part") or ""), _REGION_WORDS)
        values = {"modality": mentioned(str(meta.get("modality") or ""), _MODALITY_WORDS)[:1],
                  "organ": regions[:1], "plane": []}
        answer = _yes_no_about(question, {k: (v[0] if v else "") for k, v in values.items()})
        if answer is not None:
            votes.append(answer[0] == "yes")
            weights.append(float(np.exp((hit.score - top) / temperature)))
    if not votes:
        return None
    p_yes = float(np.dot(weights, votes) / np.sum(weights))
    n = len(votes)
    p_yes = (p_yes * n + 0.5) / (n + 1)  # one pseudo-vote at 0.5: few voting cases cannot give certainty
    return ("yes", p_yes) if p_yes >= 0.5 else ("no", 1.0 - p_yes)


# Roots of the concepts a presence question names that say *where* or *how*, not *what* is present: "lung" in
# "Is there a lung nodule?", "enlarged" in "Is the heart enlarged?", "midline" in "Is there a midline shift?".
_ANATOMY_ROOTS = frozenset({"anatomical entity", "anatomical set"})
_DESCRIPTOR_ROOTS = frozenset({"radlex descriptor", "property", "modifier", "qualifier value"})


def presence_targets(concept_ids: Sequence[str], graph: ConceptGraph,
                     cache: dict | None = None) -> tuple[list[str], list[str]]:
    """``(findings, anatomy)``: the question's concepts split into the findings it asks about and the anatomy they
    must lie in; descriptors are dropped. A question naming no finding ("Is the heart enlarged?": anatomy and a
    descriptor) gets no case vote."""
    from kgclip.rag.impression import root_path

    cache = {} if cache is None else cache
    findings, anatomy = [], []
    for cid in dict.fromkeys(concept_ids):
        if ("roots", cid) not in cache:
            cache[("roots", cid)] = frozenset(root_path(graph, cid)[-2:]) if cid in graph else frozenset()
        roots = cache[("roots", cid)]
        if roots & _ANATOMY_ROOTS:
            anatomy.append(cid)
        elif not roots & _DESCRIPTOR_ROOTS:
            findings.append(cid)
    return findings, anatomy


_CLAUSE = re.compile(r"[^.;\n]+")


def case_presence_vote(question_concepts: Sequence[str], hits: Sequence[Any], tagger: ConceptTagger,
                       graph: ConceptGraph, temperature: float = 0.05, hops: int = 3,
                       cache: dict | None = None, *, anatomy: Sequence[str] = (),
                       silence: float = 0.0) -> tuple[float, int]:
    """``(P(yes), number of voting cases)`` for "is <concept> present?" from the similar cases' findings.

    A case votes yes when its text affirms a question concept or a concept whose is-a ancestors (up to ``hops``)
    include it; no when it negates one; an uncertain mention counts half. With ``anatomy`` (the question's "lung" in
    "lung nodule"), only a mention in a sentence that also names that anatomy, or a part or kind of it, counts: a
    talus edema does not answer "Is there bone marrow edema?". A case that does not mention the finding at all votes
    no with weight ``silence`` (reports name what they see; 0: it does not vote). Weights: ``exp((score - best) /
    T)``. ``cache`` (any dict kept by the caller) memoises the linking of case texts and the graph expansions.
    """
    targets = set(question_concepts)
    if not targets or not hits:
        return 0.5, 0
    cache = {} if cache is None else cache
    where = set(anatomy)
    top = max(h.score for h in hits)
    num = den = 0.0
    voters = 0
    for hit in hits:
        text = hit.text or ""
        if ("link", text) not in cache:
            clauses = [(m.start(), m.end()) for m in _CLAUSE.finditer(text)]
            cache[("link", text)] = [
                (m.concept_id, m.negated, m.uncertain,
                 next((i for i, (a, b) in enumerate(clauses) if a <= m.start < b), -1)) for m in tagger.link(text)]
        mentions = cache[("link", text)]
        placed: set[int] = set()  # clauses naming the asked anatomy
        if where:
            for cid, _, _, clause in mentions:
                if ("within", cid) not in cache:
                    cache[("within", cid)] = _within(graph, cid)
                if where & cache[("within", cid)]:
                    placed.add(clause)
        vote = None
        for cid, negated, uncertain, clause in mentions:
            if ("up", cid) not in cache:
                cache[("up", cid)] = expand_concepts(graph, [cid], hops=hops)
            if not targets & cache[("up", cid)] or (where and clause not in placed):
                continue
            value, weight = (0.0 if negated else 1.0), (0.5 if uncertain else 1.0)
            vote = (value, weight) if vote is None or weight > vote[1] else vote
        if vote is None:
            if silence <= 0:
                continue
            vote = (0.0, silence)
        w = float(np.exp((hit.score - top) / temperature)) * vote[1]
        num += w * vote[0]
        den += w
        voters += 1
    return ((num / den) if den else 0.5), voters


def _within(graph: ConceptGraph, cid: str, hops: int = 8) -> set[str]:
    """``cid`` and what it is a kind or a part of, up to ``hops`` levels (talus -> ... -> bone)."""
    from kgclip.ontology.model import IS_A, PART_OF

    out, frontier = {cid}, [cid]
    for _ in range(hops):
        frontier = [p for c in frontier if c in graph for p in graph.parents(c, IS_A) + graph.parents(c, PART_OF)
                    if p not in out]
        out.update(frontier)
        if not frontier:
            break
    return out


def blend_presence(p_model_yes: float, p_cases: float, voters: int, case_weight: float) -> float:
    """P(yes) from the answerer and the voting cases: the cases' share grows with their number,
    ``case_weight * n / (n + 2)`` (capped at 1); ``case_weight`` 0 ignores them."""
    share = min(1.0, case_weight * voters / (voters + 2.0))
    return share * p_cases + (1.0 - share) * p_model_yes


def case_concept_answer(question: str, hits: Sequence[Any], tagger: ConceptTagger, temperature: float = 0.05,
                        cache: dict | None = None, keep: Callable[[str], bool] | None = None
                        ) -> tuple[str, float] | None:
    """An open answer from the similar cases' vocabulary: the affirmed concept mention the cases share most
    (similarity-weighted), among concepts the question does not already name (and, with ``keep``, only concepts
    it keeps: findings for "What is the pathology?"). ``(mention as written, weight share)`` or ``None``. This is
    how an answer outside the training answers can be given."""
    if not hits:
        return None
    cache = {} if cache is None else cache
    if ("asked", question) not in cache:
        cache[("asked", question)] = {m.concept_id for m in tagger.link(question)}
    asked = cache[("asked", question)]
    top = max(h.score for h in hits)
    scores: dict[str, float] = {}
    written: dict[str, str] = {}
    for hit in hits:
        text = hit.text or ""
        if ("mentions", text) not in cache:
            cache[("mentions", text)] = [(m.concept_id, m.matched, m.negated or m.uncertain) for m in tagger.link(text)]
        w = float(np.exp((hit.score - top) / temperature))
        for cid, matched, unsure in dict.fromkeys(cache[("mentions", text)]):
            if unsure or cid in asked or (keep is not None and not keep(cid)):
                continue
            scores[cid] = scores.get(cid, 0.0) + w
            written.setdefault(cid, str(matched).lower())
    if not scores:
        return None
    best = max(scores, key=lambda c: (scores[c], c))
    return written[best], scores[best] / sum(scores.values())


# "What is the most likely diagnosis?", "What condition does the patient have?", "What is on the differential?";
# not "What test might reveal the diagnosis?".
_ASKS_DIAGNOSIS = re.compile(r"\b(diagnos[ie]s|disease|differential|condition)\b")
_NOT_DIAGNOSIS = re.compile(r"\b(test|procedure|done|get to|reveal|make|origin)\b")


# "What is the pathology?", "What does the blunting indicate?", "... consistent with what?": a finding or disease is
# asked for, and an answer from the similar cases' words must be one ("abdomen" is not what a hypodensity suggests).
_ASKS_FINDING = re.compile(r"\b(patholog\w*|abnormalit\w*|findings?|suggest\w*|indicat\w*|consistent with|going on"
                           r"|wrong|diagnos[ie]s|disease|condition|process)\b")


# ... unless it asks how to reach a diagnosis, or about a property of the finding ("What density is the abnormality?").
_NOT_FINDING = re.compile(r"\b(test|procedure|done|get to|reveal|make|origin|density|intensit\w*|size|shape|signal"
                          r"|location|where)\b")


def asks_for_finding(question: str) -> bool:
    """Whether an open question asks for a finding or disease (see :data:`_ASKS_FINDING`)."""
    q = question.lower()
    return bool(_ASKS_FINDING.search(q)) and not _NOT_FINDING.search(q) and route_question(question).form == "open"


def asks_for_diagnosis(question: str) -> bool:
    """Whether an open question asks what the patient has (see :data:`_ASKS_DIAGNOSIS`)."""
    q = question.lower()
    return bool(_ASKS_DIAGNOSIS.search(q)) and not _NOT_DIAGNOSIS.search(q) and route_question(question).form == "open"


def case_diagnosis_answer(hits: Sequence[Any], tagger: ConceptTagger, graph: ConceptGraph, *,
                          temperature: float = DIAGNOSIS_TEMPERATURE,
                          cache: dict | None = None) -> tuple[str, float, tuple[str, ...], str] | None:
    """``(diagnosis, support, citing cases, concept id)``: the disease the similar cases' own diagnoses support best,
    as a draft's impression reasons it (:func:`kgclip.rag.impression.reason_impression`: a case votes for its
    diagnoses and, with half a vote, their is-a parents; weights ``exp((score - best) / T)`` over *all* hits, so
    cases without a diagnosis dilute it). A case's diagnoses: its ``metadata["diagnosis"]``, else its impression
    section.
    ``None`` when no similar case names a disease."""
    from kgclip.rag.consensus import ConceptSupport, case_weights
    from kgclip.rag.impression import reason_impression

    if not hits:
        return None
    cache = {} if cache is None else cache
    diagnoses = []
    for hit in hits:
        md = hit.metadata or {}
        text = str(md.get("diagnosis") or md.get("impression") or "")
        if ("dx", text) not in cache:
            cache[("dx", text)] = [m.concept_id for m in tagger.link(text) if not (m.negated or m.uncertain)]
        diagnoses.append(cache[("dx", text)])
    if not any(diagnoses):
        return None
    expander = _expander(graph, cache)
    weights = case_weights([h.score for h in hits], temperature)
    lines = reason_impression([], [h.case_id for h in hits], diagnoses, weights, ConceptSupport(), expander, set(), 1)
    if not lines:
        return None
    return graph.name_of(lines[0].concept), float(lines[0].score), lines[0].cases, lines[0].concept


def ground_answer(pred: Prediction, question: str, check: InputCheck, hits: Sequence[Any], evidence: Any, *,
                  tagger: ConceptTagger | None, graph: ConceptGraph | None, image_threshold: float | None,
                  min_confidence: float, case_weight: float = CASE_WEIGHT, open_from_cases: float = OPEN_FROM_CASES,
                  known_cases: set[str] | frozenset[str] = frozenset(), cache: dict | None = None,
                  image_labels: ImageLabels | None = None, presence_split: bool = PRESENCE_SPLIT,
                  silence: float = PRESENCE_SILENCE, region_check: bool = REGION_CHECK,
                  diagnosis: tuple[str, float, tuple[str, ...], str] | None = None,
                  region_hits: Sequence[Any] | None = None) -> Answer:
    """The answer to give: header / classifiers / case-vote / answerer by kind, then abstention (module docstring).

    ``image_labels``: the query image's metadata classifier probabilities (``{"modality": {"CT": 0.9, ...},
    "plane": ..., "region": ...}``, :meth:`kgclip.models.metadata_heads.MetadataHeads.predict`); ``None``: none.

    ``diagnosis``: for a diagnosis question, the answer already reasoned (as :func:`case_diagnosis_answer` returns
    it; ``Engine.ask`` gives its draft's leading impression, so the page never shows two diagnoses); ``None``: the
    ``hits`` vote.

    ``region_hits``: the similar cases whose regions vote on the body region the image shows (when neither the
    header nor a sure classifier says), best first: the image's draft votes among its ``DraftConfig.region_voters``
    nearest, and an answer should decide the region as its draft does. ``None``: ``hits`` vote.

    ``known_cases``: case ids the answerer was trained on (its memory images). They do not vote on presence: the
    answerer already weighs what their questions say, and counting them twice made validation answers worse
    (VQA-RAD ``--split val``: closed 0.640 without their votes, 0.612 with them). Cases added since vote.
    """
    route = route_question(question)
    text, confidence, flags = pred.text, pred.confidence, {}
    asks_diagnosis = graph is not None and tagger is not None and route.kind == "open" and asks_for_diagnosis(question)
    from_header = header_answer(question, check.header)
    if from_header is not None:
        (text, confidence), flags = from_header, {"source": "dicom-header"}
    elif route.topic and (said := acquisition_answer(question, image_labels)):
        (text, confidence), flags = said, {"source": "image-classifier", "field": route.topic}
    elif route.topic:
        pass  # contrast / sequence: neither the modality classifier nor the cases' modality know it; the answerer
    elif route.kind in ("modality", "organ", "plane") and (
            said := classifier_answer(question, image_labels, pred.candidates)):
        (text, confidence), flags = said, {"source": "image-classifier"}
        if route.form == "open" and not asks_for_field(question, KIND_FIELD[route.kind]):
            # The head only narrows the answerer's candidates to the image's region ("What organ is enlarged?"):
            # it cannot make the answerer surer than its calibrated confidence. The product of the head's label
            # probability and the answerer's raw candidate probability said "Spleen (0.97)" where the answer was
            # "Pancreas" (VQA-RAD val: such answers at >= 0.9 were right half the time).
            confidence = min(confidence, pred.confidence)
    elif route.kind in ("modality", "organ", "plane") and (vote := case_metadata_vote(question, hits)):
        (text, confidence), flags = vote, {"source": "case-metadata", "cases": str(len(hits))}
    elif route.kind == "presence" and tagger is not None and graph is not None and case_weight > 0:
        ids = [m.concept_id for m in pred.concepts if not m.negated]
        anatomy: list[str] = []
        if presence_split:
            ids, anatomy = presence_targets(ids, graph, cache)
        new_hits = [h for h in hits if h.case_id not in known_cases]
        p_cases, voters = case_presence_vote(ids, new_hits, tagger, graph, cache=cache, anatomy=anatomy,
                                             silence=silence)
        if voters and pred.normalized in ("yes", "no"):
            p_model = pred.confidence if pred.normalized == "yes" else 1.0 - pred.confidence
            p_yes = blend_presence(p_model, p_cases, voters, case_weight)
            text, confidence = ("yes", p_yes) if p_yes >= 0.5 else ("no", 1.0 - p_yes)
            flags = {"source": "case-votes+answerer", "voting_cases": str(voters)}
    elif asks_diagnosis and (dx := diagnosis or case_diagnosis_answer(hits, tagger, graph, cache=cache)):
        # What the similar cases were diagnosed with, as a draft's impression; its confidence is what such an answer
        # proved to be worth (DIAGNOSIS_CONFIDENCE), not the share of the vote.
        text, confidence = dx[0], min(dx[1], DIAGNOSIS_CONFIDENCE)
        flags = {"source": "case-diagnoses", "cases": ",".join(dx[2]), "support": f"{dx[1]:.2f}"}
    elif (route.kind == "open" and route.form == "open" and tagger is not None and pred.confidence < open_from_cases
          and (found := case_concept_answer(question, hits, tagger, cache=cache,
                                            keep=_finding_filter(question, graph, cache)))):
        # The answerer is unsure and the similar cases name a finding: answer with the cases' own words.
        text, confidence = found[0], min(pred.confidence, found[1])
        flags = {"source": "case-concepts"}
    answer = Answer(text=text, confidence=float(confidence), kind=pred.kind, evidence=evidence, question=question,
                    candidates=_final_candidates(pred, text, float(confidence), bool(flags)), flags=flags,
                    route=route.kind)
    elsewhere = (question_elsewhere([m.concept_id for m in pred.concepts], check.header, image_labels,
                                    hits if region_hits is None else region_hits, graph)
                 if region_check and graph is not None and route.kind not in _ABOUT_THE_IMAGE else "")
    reason = check.reason or elsewhere or ("" if flags.get("source") == "dicom-header" else answer_abstain_reason(
        _with_confidence(pred, answer.confidence), image_threshold=image_threshold, min_confidence=min_confidence,
        nearest_case=max((float(h.score) for h in hits), default=None),
        from_cases=flags.get("source") in CASE_SOURCES))
    if reason and flags.get("source") == "case-diagnoses" and not (check.reason or elsewhere):
        reason = (f"kgclip does not diagnose from the image: the similar cases were diagnosed with {text} "
                  f"({flags['cases'].replace(',', ', ')}; such answers named the case's own diagnosis for at most "
                  f"{DIAGNOSIS_CONFIDENCE:.0%} of MedPix validation images); read them as evidence")
    if (not reason and asks_diagnosis and flags.get("source", "") in ("", "case-concepts")
            and not _names_disease(text, tagger, graph)):
        # "What is the most likely diagnosis?" -> "heart": no similar case has a diagnosis, and the guess is none.
        reason = (f"no similar case names a diagnosis, and the guess ({text!r}) is not a disease; add cases with an "
                  "impression or diagnosis to answer such questions")
    if reason:
        answer.abstained, answer.abstain_reason = True, reason
    return answer


def _finding_filter(question: str, graph: ConceptGraph | None, cache: dict | None) -> Callable[[str], bool] | None:
    """For a question asking for a finding or disease (:func:`asks_for_finding`): which concepts may answer it
    (diseases and findings, :func:`~kgclip.rag.consensus.is_finding`, memoised on the ``cache``'s expander); else
    ``None`` (any concept)."""
    if graph is None or not asks_for_finding(question):
        return None
    return _expander(graph, {} if cache is None else cache).is_finding


def _expander(graph: ConceptGraph, cache: dict) -> Any:
    """The :class:`~kgclip.rag.consensus.GraphExpander` (one is-a level) kept in ``cache`` for ``graph``: its memo
    of ancestors serves every question answered with that cache."""
    from kgclip.rag.consensus import GraphExpander

    expander = cache.get(("expander", id(graph)))
    if expander is None:
        expander = cache[("expander", id(graph))] = GraphExpander(graph, 1)
    return expander


def _names_disease(text: str, tagger: ConceptTagger, graph: ConceptGraph) -> bool:
    """Whether an answer links to a disease concept (:func:`kgclip.rag.impression.is_disease`)."""
    from kgclip.rag.impression import is_disease

    return any(is_disease(graph, m.concept_id) for m in tagger.link(text) if not m.negated)


def question_elsewhere(concept_ids: Sequence[str], header: dict[str, Any] | None, image_labels: ImageLabels | None,
                       hits: Sequence[Any], graph: ConceptGraph) -> str:
    """Why a question cannot be about this image, or ``""``: it names anatomy or findings that lie only in body
    regions (:class:`~kgclip.rag.regions.BodyRegions`, through the graph) other than the ones the image shows
    (:func:`~kgclip.rag.report_scope.image_regions`: header, sure region classifier, or the similar cases' vote).
    Nothing is decided when the image's region is unknown or a named concept lies in it."""
    from kgclip.rag.regions import body_regions
    from kgclip.rag.report import DraftConfig
    from kgclip.rag.report_scope import image_regions

    if not concept_ids:
        return ""
    body = body_regions(graph)
    # The vote a draft's scope takes (DraftConfig's defaults), among as many nearest cases.
    shown, source = image_regions(header, image_labels, list(hits)[:DraftConfig.region_voters], body,
                                  temperature=DraftConfig.temperature, share=DraftConfig.region_vote)
    if not shown:
        return ""
    outside = body.outside(concept_ids, shown)
    if not outside or any(body.of_concept(c) and c not in outside for c in concept_ids):
        return ""  # nothing it names is placed elsewhere, or something it names lies in the image's region
    # "the lower limb (femur)" where the part decided it (a chest film shows the upper limb's shoulder)
    where = sorted({p for c in outside for r in body.of_concept(c)
                    for p in ((body.limb_parts(c) or {r}) if r == "limb" else {r})})
    names = ", ".join(dict.fromkeys(graph.name_of(c) for c in outside))
    return (f"the question is about the {'/'.join(where)} ({names}), and this image shows the "
            f"{'/'.join(sorted(shown))} ({source}); ask about what the image shows, or pass an image of the "
            f"{'/'.join(where)}")


def _final_candidates(pred: Prediction, text: str, confidence: float, grounded: bool) -> list[tuple[str, float]]:
    """The candidates shown beside the answer, on its calibrated scale: the answer at its confidence; for yes / no
    the other side at the rest; for an answer of the answerer, its other candidates in its own proportions, sharing
    the rest but never above the answer (scaled as the answer was: "Normal (30 %)" for "Is the heart enlarged or
    normal in size?" stood beside "enlarged 70 %", the rest of a confidence that option answers rarely earn); for one
    from the header, the classifiers or the cases, nothing else (the answerer's distribution it overrode, "yes
    (0.58)" beside "No 0.85, Yes 0.15", read as a contradiction). The answerer's raw distribution beside a
    calibrated confidence read as one too: "No (78 %)" beside "Yes 1 %"."""
    said = text.strip().lower()
    if said in ("yes", "no"):
        other = "no" if said == "yes" else "yes"
        return [(text, confidence), (other.capitalize() if text.strip()[:1].isupper() else other, 1.0 - confidence)]
    others = [] if grounded else [(c, p) for c, p in pred.candidates if c.strip().lower() != said and p > 0]
    total = sum(p for _, p in others)
    own = next((p for c, p in pred.candidates if c.strip().lower() == said), 0.0) or max(
        (p for _, p in others), default=0.0)
    return [(text, confidence)] + [(c, min((1.0 - confidence) * p / total, confidence * p / own)) for c, p in others]


def _with_confidence(pred: Prediction, confidence: float) -> Prediction:
    from dataclasses import replace

    return replace(pred, confidence=confidence)


def out_of_range_answer(question: str, check: InputCheck, evidence: Any) -> Answer:
    """The answer for an input :func:`kgclip.rag.abstain.check_input` rejected: abstained, with its reason."""
    return Answer(text="", confidence=0.0, kind="", evidence=evidence, question=question, abstained=True,
                  abstain_reason=check.reason, route=route_question(question).kind)
