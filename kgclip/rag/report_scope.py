"""Which retrieved cases and sentences a draft may use: the case's report sections (:mod:`kgclip.data.sections`),
the query's body region and modality, and the regions of the cases (see :mod:`kgclip.rag.report`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgclip.data.sections import SectionSentence, report_sentences, split_sections
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import case_weights
from kgclip.rag.evidence import CaseHit
from kgclip.rag.image_metadata import ImageLabels, confident_label, normalize_modality
from kgclip.rag.regions import BodyRegions, limb_part_of_label, regions_of_label

__all__ = ["DraftQuery", "normalize_modality", "other_modality", "case_text_sentences", "link_sentence",
           "case_regions", "case_limb_part", "vote_region", "vote_modality", "scope_hits", "REGION_THRESHOLD",
           "MODALITY_THRESHOLD"]

# Below this calibrated probability the region classifier does not decide a query's region; the similar cases' vote
# does (chosen on the classifier's validation carve: benchmarks/bench_metadata_heads.py, "region_threshold").
REGION_THRESHOLD = 0.9
# The modality classifier decides from this calibrated probability on. MedPix val, 312 header-less queries
# (benchmarks/bench_draft_scope.py, the engine's path): at 0.9 the modality was right for 89 %, wrong for 3.2 %, and
# left to the similar cases' vote or unknown for the rest; at 0.6 right for 95 %, still wrong for 3.2 %.
MODALITY_THRESHOLD = 0.6


@dataclass(frozen=True)
class DraftQuery:
    """What a draft must keep to: the query's body regions and modality, and where each came from."""

    regions: frozenset[str]
    modality: str
    body: BodyRegions | None
    region_source: str = ""
    modality_source: str = ""
    limb_part: str = ""  # "upper limb" / "lower limb" (kgclip.rag.regions.LIMB_PARTS) of a limb query, when known
    limb_part_source: str = ""

    @property
    def named_regions(self) -> tuple[str, ...]:
        """The regions as a report names them: ``"lower limb"`` for ``"limb"`` when its part is known."""
        return tuple(sorted(self.limb_part if r == "limb" and self.limb_part else r for r in self.regions))


def case_text_sentences(hit: CaseHit) -> list[SectionSentence]:
    """The findings and impression sentences of a retrieved case (``.draftable`` tells which may be drafted).

    ``metadata["findings"]`` / ``metadata["impression"]`` (a case stored with sections) are used as they are;
    otherwise ``hit.text`` goes through :func:`~kgclip.data.sections.split_sections`. A case whose text was made
    from question/answer pairs (``metadata["text_source"] == "qa"``) has none.
    """
    md = hit.metadata or {}
    if md.get("text_source") == "qa":
        return []
    if md.get("findings") or md.get("impression"):
        return list(_sentences_of(str(md.get("findings") or ""), str(md.get("impression") or ""), True))
    return list(_sentences_of(hit.text, "", False))


@functools.lru_cache(maxsize=1 << 16)
def _sentences_of(findings: str, impression: str, sectioned: bool) -> tuple[SectionSentence, ...]:
    """Memoised: a drafting sweep reads the same cases thousands of times."""
    if not sectioned:
        sections = split_sections(findings)
        findings, impression = sections.findings, sections.impression
    return tuple(report_sentences(findings, section="findings") + report_sentences(impression, section="impression"))


def other_modality(sentence_modality: str | None, query_modality: str | None) -> bool:
    """Whether a sentence describes a study of another modality than the query's: both known and different once
    normalised (``"MR"`` and ``"MRI"`` agree). What the drafter drops (``DraftConfig.keep_modality``) and what
    ``kgclip eval report`` counts as ``modality_violations``."""
    said, asked = normalize_modality(sentence_modality), normalize_modality(query_modality)
    return bool(said and asked and said != asked)


def link_sentence(tagger: ConceptTagger | None, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if tagger is None:
        return (), ()
    mentions = tagger.link(text)
    # Uncertain mentions ("suspicious for pneumonia") are reported findings too.
    return (tuple(dict.fromkeys(m.concept_id for m in mentions if not m.negated)),
            tuple(dict.fromkeys(m.concept_id for m in mentions if m.negated)))


def case_regions(hit: CaseHit, body: BodyRegions | None, concepts: Sequence[str]) -> frozenset[str]:
    """A case's regions: its metadata label, else where most of the anatomy its text names lies."""
    found = _first_label(hit, ("region", "body_part", "location_category"), regions_of_label)
    if found:
        return found
    if body is None:
        return frozenset()
    counts = _tally(concepts, body.of_concept)
    top = max(counts.values(), default=0)
    return frozenset(r for r, n in counts.items() if n * 2 >= top and top)


def case_limb_part(hit: CaseHit, body: BodyRegions | None, concepts: Sequence[str]) -> str:
    """A limb case's part (``"upper limb"`` / ``"lower limb"``): its metadata label when it names one ("KNEE"), else
    the part most of the limb anatomy its text names lies in (``concepts``); ``""`` when neither tells or it is a
    tie."""
    found = _first_label(hit, ("body_part", "region", "location"), limb_part_of_label)
    if found:
        return found
    if body is None:
        return ""
    ranked = sorted(_tally(concepts, body.limb_parts).items(), key=lambda t: -t[1])
    return ranked[0][0] if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]) else ""


def _first_label(hit: CaseHit, keys: Sequence[str], read: Callable[[str], Any]) -> Any:
    """What ``read`` makes of the first of the hit's metadata ``keys`` it reads something from (else ``read("")``)."""
    md = hit.metadata or {}
    for key in keys:
        found = read(str(md.get(key) or ""))
        if found:
            return found
    return read("")


def _tally(concepts: Sequence[str], place: Callable[[str], frozenset[str]]) -> dict[str, int]:
    """How many of ``concepts`` ``place`` puts in each region (or limb part)."""
    counts: dict[str, int] = {}
    for c in concepts:
        for r in place(c):
            counts[r] = counts.get(r, 0) + 1
    return counts


def vote_region(regions: Sequence[frozenset[str]], weights: np.ndarray,
                share: float) -> frozenset[str]:
    """Every region that at least ``share`` of the weighted vote supports (a case votes for each of its regions).

    Every region reaching the share stands, not only the best: cases labelled with two regions ("Spine and
    Muscles": spine and limb) vote for both, and picking one of a tie by name made a foot MR a "spine" query whose
    ankle and knee findings were then removed as outside its region.
    """
    total: dict[str, float] = {}
    for r, w in zip(regions, weights.tolist()):
        for x in r:
            total[x] = total.get(x, 0.0) + w
    need = share * float(np.sum(weights))
    return frozenset(x for x, t in total.items() if t >= need and t > 0.0)


def vote_modality(hits: Sequence[CaseHit], weights: np.ndarray, share: float) -> str:
    """The modality at least ``share`` of the similar cases' weighted vote gives (their stored ``modality``), else
    ``""``. Cases without a modality count against every modality (they weigh in the total)."""
    total: dict[str, float] = {}
    for h, w in zip(hits, weights.tolist()):
        m = normalize_modality((h.metadata or {}).get("modality"))
        if m:
            total[m] = total.get(m, 0.0) + w
    best = max(total, key=lambda m: (total[m], m), default="")
    return best if best and total[best] >= share * float(np.sum(weights)) and total[best] > 0.0 else ""


def image_regions(header: dict | None, image_labels: ImageLabels | None, hits: Sequence[CaseHit],
                  body: BodyRegions | None, *, temperature: float, share: float,
                  region_threshold: float = REGION_THRESHOLD) -> tuple[frozenset[str], str]:
    """``(regions, source)``: the body regions an image shows, as a draft's scope decides them without a caller's
    region: the DICOM header's ``BodyPartExamined``, else the region classifier when sure, else the weighted vote of
    the similar ``hits`` (``share`` of the vote). ``(frozenset(), "")`` when none decides."""
    found_label = regions_of_label(str((header or {}).get("body_part") or ""))
    if found_label:
        return found_label, "the DICOM header"
    found = confident_label(image_labels, "region", region_threshold)
    if found:
        return frozenset({found[0]}), f"the region classifier ({found[0]} {found[1]:.2f})"
    if not hits:
        return frozenset(), ""
    voted = vote_region([case_regions(h, body, ()) for h in hits], case_weights([h.score for h in hits], temperature),
                        share)
    return voted, ("the similar cases' regions" if voted else "")


# A draft is made from the cases lying wholly in the query's regions when there are at least this many among the hits
# (an abdomen CT is not drafted from "Reproductive and Urinary System" cases, labelled pelvis and abdomen), else from
# every case sharing one of them (a "SPINE" header and cases labelled "Spine and Muscles", spine and limb). MedPix
# val, 3 carve seeds, 312 drafts, the nearest 160 kept (benchmarks/exp_engine_retrieval.py): concept F1 0.1231
# sharing a region, 0.1281 wholly inside.
SCOPE_MIN_CASES = 20


def _cases_in_scope(hits: Sequence[CaseHit], region_of: Callable[[int], frozenset[str]], regions: frozenset[str],
                    modality: str, max_cases: int | None) -> list[CaseHit]:
    """The nearest ``max_cases`` hits (all: ``None``) of the query's modality (or none stored) and regions (see
    :data:`SCOPE_MIN_CASES`)."""
    sharing: list[int] = []
    inside: list[int] = []
    enough = None if max_cases is None else max(max_cases, SCOPE_MIN_CASES)
    for i, h in enumerate(hits):
        if modality and normalize_modality(h.metadata.get("modality")) not in ("", modality):
            continue
        found = region_of(i)
        if found & regions:
            sharing.append(i)
            if found <= regions:
                inside.append(i)
                if enough is not None and len(inside) >= enough:
                    break  # regions are only worked out as far as needed: hits may be many times max_cases
    chosen = inside if len(inside) >= SCOPE_MIN_CASES else sharing
    return [hits[i] for i in chosen[:max_cases]]


# A limb query's part is the one holding at least LIMB_PART_SHARE of the weighted vote of those of the nearest
# LIMB_PART_VOTERS in-scope cases whose part is known. MedPix val, 3 carve seeds, 34 limb queries whose own findings
# name one part (benchmarks/exp_limb_parts.py): 26 decided, 25 rightly. Chosen on the same carves (weights at
# temperature 0.05, 53 limb queries): the nearest 16 at 0.8 decided 43, wrong for 1 of 27 checkable; at 0.6, 52
# with 4 wrong.
LIMB_PART_VOTERS = 16
LIMB_PART_SHARE = 0.8


def _keep_limb_part(kept: list[CaseHit], query: DraftQuery, query_region: str | Sequence[str] | None,
                    tagger: ConceptTagger | None, body: BodyRegions | None,
                    temperature: float) -> tuple[list[CaseHit], DraftQuery]:
    """A limb query's cases of its part of the limb, and the query with that part: the part its label names
    ("KNEE"), else the similar cases' vote (:data:`LIMB_PART_SHARE`; :func:`case_limb_part`). Cases of the other
    part are dropped, those of no known part kept; nothing changes when no part decides. Why: "Musculoskeletal"
    places a shoulder MR and a knee MR in one region, and shoulder drafts took knee sentences.
    ``benchmarks/exp_limb_parts.py`` (MedPix val, 3 carve seeds, the 170 drafted sentences of limb queries whose
    findings name one part): with a label naming the part, sentences of the other part 13 -> 1 (concept F1
    -0.0003 [-0.0022, 0.0012]); MedPix's own labels name none, and the vote alone changes neither (it decides 26
    of 34 such queries, 1 wrongly, but the shoulder queries whose drafts took knee sentences stay undecided: their
    nearest cases are knees)."""
    labels = [query_region] if isinstance(query_region, str) else list(query_region or ())
    named = {p for p in (limb_part_of_label(x) for x in labels) if p}
    parts = [case_limb_part(h, body, tuple(h.metadata.get("concepts", []) or ()) or link_sentence(tagger, h.text)[0])
             for h in kept]
    if len(named) == 1:
        part, source = next(iter(named)), "query"
    else:
        weights = case_weights([h.score for h in kept[:LIMB_PART_VOTERS]], temperature)
        total: dict[str, float] = {}
        for p, w in zip(parts, weights.tolist()):
            if p:
                total[p] = total.get(p, 0.0) + w
        part = max(total, key=lambda x: (total[x], x), default="")
        if not part or total[part] < LIMB_PART_SHARE * sum(total.values()):
            return kept, query
        source = "similar cases' anatomy (weighted vote)"
    kept = [h for h, p in zip(kept, parts) if p in ("", part)]
    return kept, dataclasses.replace(query, limb_part=part, limb_part_source=source)


def scope_hits(hits: Sequence[CaseHit], tagger: ConceptTagger | None, body: BodyRegions | None, *,
               temperature: float, region_vote: float, query_region: str | Sequence[str] | None,
               region_voters: int | None = None,
               query_modality: str | None, image_labels: ImageLabels | None = None,
               region_threshold: float = REGION_THRESHOLD,
               modality_threshold: float = MODALITY_THRESHOLD,
               max_cases: int | None = None) -> tuple[list[CaseHit], DraftQuery, str]:
    """The hits of the query's region and modality, the query, and a notice when nothing can be drafted.

    The query's regions come from ``query_region`` (labels, see :func:`~kgclip.rag.regions.regions_of_label`: the
    caller's or the DICOM header's), else from the image's region classifier (``image_labels["region"]``, the
    calibrated probabilities of :mod:`kgclip.rag.image_metadata`) when its best region reaches
    ``region_threshold``, else from a weighted vote of the similar cases' regions (their metadata label, else the
    anatomy their text names) among the ``region_voters`` nearest (all when ``None``; hits come best first);
    ``DraftQuery.region_source`` says which, and why the classifier did not decide. The modality likewise:
    ``query_modality``, else the modality classifier from ``modality_threshold``, else a weighted vote of the similar
    cases' stored modalities (``DraftQuery.modality_source`` says which). A case counts only if it lies wholly in the
    regions, or shares one of them when fewer than :data:`SCOPE_MIN_CASES` do. Never a draft from another region:
    when no case is left, or none has findings text, the notice says so. ``max_cases``: at most that many of the
    kept cases, the nearest (``None``: all), so a caller can pass many more hits than it drafts from and still draft
    from as many cases of the query's kind.
    """
    modality = normalize_modality(query_modality)
    if isinstance(query_region, str):
        q_regions = regions_of_label(query_region)
    else:
        q_regions = frozenset(r for x in (query_region or ()) for r in regions_of_label(x))
    source = "query" if q_regions else ""
    unsure = ""
    if not q_regions and image_labels and image_labels.get("region"):
        found = confident_label(image_labels, "region", 0.0)
        if found and found[1] >= region_threshold:
            q_regions, source = frozenset({found[0]}), f"region classifier ({found[0]} {found[1]:.2f})"
        elif found:
            unsure = f"; the region classifier was unsure ({found[0]} {found[1]:.2f} < {region_threshold:.2f})"
    # The nearest region_voters cases vote on what neither the caller, the header nor a sure classifier gives. All
    # of them vote, whatever their modality: voting among those of the query's modality only decided 8 % more
    # MedPix val queries, more than half of them wrongly (wrong region 8.7 % -> 12.8 %).
    voters = hits[:region_voters]
    voter_weights = case_weights([h.score for h in voters], temperature)
    modality_source = "query" if modality else ""
    if not modality and (found := confident_label(image_labels, "modality", modality_threshold)):
        modality, modality_source = found[0], f"modality classifier ({found[0]} {found[1]:.2f})"
    if not modality and voters:
        modality = vote_modality(voters, voter_weights, region_vote)
        modality_source = "similar cases' modalities (weighted vote)" if modality else ""
    memo: dict[int, frozenset[str]] = {}

    def region_of(i: int) -> frozenset[str]:
        """Hit ``i``'s regions, worked out once and only when asked: its own region label decides; only a case
        without one is read for the anatomy it names (the caller may pass far more hits than are drafted from)."""
        if i not in memo:
            h = hits[i]
            memo[i] = case_regions(h, body, ()) or case_regions(
                h, body, link_sentence(tagger, h.text)[0] + tuple(h.metadata.get("concepts", []) or ()))
        return memo[i]

    if not q_regions and voters:
        q_regions = vote_region([region_of(i) for i in range(len(voters))], voter_weights, region_vote)
        source = f"similar cases' regions (weighted vote{unsure})" if q_regions else ""
    query = DraftQuery(q_regions, modality, body, source, modality_source)
    if not q_regions:
        return [], query, ("no body region for this image: its metadata names none, the similar cases do not "
                           f"agree on one{unsure}; pass the region (e.g. region='chest') or a DICOM with "
                           "BodyPartExamined")
    # A limb query may lose the other part's cases, so it looks further for as many of its own.
    widen = 3 if "limb" in q_regions else 1
    kept = _cases_in_scope(hits, region_of, q_regions, modality, None if max_cases is None else widen * max_cases)
    if "limb" in q_regions:
        kept, query = _keep_limb_part(kept, query, query_region, tagger, body, temperature)
    kept = kept[:max_cases]
    name, mod = "/".join(query.named_regions), f"{modality} " if modality else ""
    if not kept:
        return [], query, f"no similar {name} {mod}cases to draft from"
    if not any(s.draftable for h in kept for s in case_text_sentences(h)):
        return kept, query, (f"no similar {name} {mod}cases with findings text to draft from ({len(kept)} similar "
                             "cases have no findings section; add cases with findings to the workspace)")
    return kept, query, ""
