"""Body regions: what region a scan shows (from its metadata) and where a concept lies (through the graph), so that
a draft keeps to the query's region.

Regions are coarse and few: ``head, neck, chest, abdomen, pelvis, spine, limb, breast``. A metadata label (a DICOM
``BodyPartExamined`` such as ``CHEST`` or ``ABDOMENPELVIS``, a dataset's organ or location label such as ``ABD`` or
``Brain and Neuro``) maps to a set of them (:func:`regions_of_label`). The limb has two parts (:data:`LIMB_PARTS`,
upper and lower), placed the same way (:meth:`BodyRegions.limb_parts`, :func:`limb_part_of_label`), so a knee scan
is not drafted from shoulder cases.

Where an anatomy concept lies comes from the graph, never from a word list over report text: a concept lies in the
regions of the *anchor* organs it reaches through ``part_of`` (when the graph has it), through ``is_a`` (a "right
frontal lobe" is a "lobe of cerebral hemisphere"), and through the part-of its ontology name states ("lobe *of
cerebral hemisphere*", "head *of pancreas*"). Anchors are a few dozen organ names per region, resolved in the graph
by name or synonym. A concept that reaches no anchor has no known region and never counts as outside.

Neighbouring regions are compatible (a chest CT shows the upper abdomen and the spine; an abdominal CT the lung
bases), so what counts as outside is anatomy a radiologist would never describe on that scan: brain on a chest film,
liver on a head MR.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable

from kgclip.errors import ConfigError
from kgclip.ontology.model import IS_A, PART_OF, ConceptGraph

__all__ = ["REGIONS", "LIMB_PARTS", "regions_of_label", "limb_part_of_label", "check_region_label", "compatible",
           "BodyRegions", "body_regions"]

REGIONS = ("head", "neck", "chest", "abdomen", "pelvis", "spine", "limb", "breast")

# Which regions a scan of one region also shows.
_ADJACENT: dict[str, frozenset[str]] = {
    "head": frozenset({"neck"}),
    "neck": frozenset({"head", "chest", "spine"}),
    "chest": frozenset({"neck", "abdomen", "spine", "breast", "limb"}),
    "abdomen": frozenset({"chest", "pelvis", "spine"}),
    "pelvis": frozenset({"abdomen", "spine", "limb"}),
    "spine": frozenset({"neck", "chest", "abdomen", "pelvis", "head"}),
    "limb": frozenset({"pelvis", "chest"}),
    "breast": frozenset({"chest"}),
}

# Metadata labels -> regions: words looked up in a lower-cased label (DICOM BodyPartExamined defined terms, common
# dataset organ / location labels). Order matters only for readability; every matching word adds its regions. A word
# matches whole (a plural "s" / "es" allowed): "hip" is not in "Hippocampus", nor "face" in "Facet joints", nor
# "elbow" in "elbowish". Stems that take endings say so with ``[a-z]*`` ("hepat[a-z]*": hepatic, hepatobiliary).
_LABEL_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"head and neck|head & neck|headneck", ("head", "neck")),
    (r"abdomenpelvis|abdpelv[a-z]*|abdomen and pelvis|abd/pel[a-z]*", ("abdomen", "pelvis")),
    (r"chestabdomen|thoracoabdominal", ("chest", "abdomen")),
    (r"chestabdpelv[a-z]*", ("chest", "abdomen", "pelvis")),
    (r"neckchest", ("neck", "chest")),
    (r"neckchestabdomen", ("neck", "chest", "abdomen")),
    (r"neckchestabdpelv[a-z]*", ("neck", "chest", "abdomen", "pelvis")),
    (r"[ctls]-?spine|tlspine|spine|spinal|vertebra[a-z]*|lumbar|sacrum|sacral|coccyx|back|facet", ("spine",)),
    (r"head|brain[a-z]*|skull|neuro[a-z]*|cranial|intracranial|cranium|cerebr[a-z]*|cerebell[a-z]*|hippocamp[a-z]*"
     r"|circleofwillis|orbit[a-z]*|eye|eyelid|cornea|sclera|ear|nose|mouth|tongue|face|facial|cheek|scalp|maxilla"
     r"|zygoma|parotid|sinus|iac|ophthalm[a-z]*|dental|tooth|teeth|jaw|tmj", ("head",)),
    (r"neck|thyroid|laryn[a-z]*|pharyn[a-z]*|carotid|submandibular|trachea", ("neck",)),
    (r"chest|thorax|thoracic|lung|pulmonary|cardiac|heart|cardio[a-z]*|mediastin[a-z]*|rib|trachea|bronch[a-z]*"
     r"|thymus|sternum|clavicle|scapula|axilla|esophag[a-z]*|coronaryartery|aort[a-z]*", ("chest",)),
    (r"abd[a-z]*|gastro[a-z]*|liver|hepat[a-z]*|pancrea[a-z]*|spleen|kidney|renal|adrenal|bowel|colon[a-z]*"
     r"|stomach|gallbladder|duoden[a-z]*|jejun[a-z]*|ileum|ureter|aort[a-z]*", ("abdomen",)),
    (r"pelvi[a-z]*|genitourinary|urinary|reproductive|bladder|prostate|uter[a-z]*|ovar[a-z]*|rectum|rectal|hip"
     r"|ilium|iliac|ureter|urethra|cervix|vagina|vulva|penis|scrotum|testis|testes|buttock", ("pelvis",)),
    (r"genitourinary|urinary|reproductive", ("abdomen",)),
    (r"extremit[a-z]*|limb|arm|forearm|leg|thigh|calf|knee|patella|shoulder|elbow|wrist|hand|finger|thumb|foot"
     r"|toe|ankle|calcaneus|femur|tibia|fibula|humerus|musculoskeletal|muscle|hip", ("limb",)),
    (r"breast|mammo[a-z]*", ("breast",)),
)
_LABEL_RE = [(re.compile(r"(?<![a-z])(?:" + words + r")(?:s|es)?(?![a-z])"), regions)
             for words, regions in _LABEL_WORDS]


def regions_of_label(label: str | None) -> frozenset[str]:
    """The regions a metadata label names (``"CHEST"`` -> chest; ``"ABDOMENPELVIS"`` -> abdomen, pelvis;
    ``"Spine and Muscles"`` -> spine, limb); empty when the label is empty or unknown."""
    text = (label or "").strip().lower()
    out: set[str] = set(r for r in REGIONS if r == text)
    for pattern, regions in _LABEL_RE:
        if pattern.search(text):
            out.update(regions)
    return frozenset(out)


# The limb region's two parts. A limb scan shows one of them: a shoulder MR is never drafted from knee sentences.
# Labels rarely say which ("Musculoskeletal"), so a draft learns the part from its header when it names a joint,
# else from the similar cases' anatomy (kgclip.rag.report_scope).
LIMB_PARTS = ("upper limb", "lower limb")
_LIMB_PART_LABELS = (
    ("upper limb", re.compile(r"(?<![a-z])(?:upper (?:extremit[a-z]*|limb)|shoulder|elbow|wrist|hand|finger|thumb"
                              r"|humer[a-z]*|forearm|arm)(?:s|es)?(?![a-z])")),
    ("lower limb", re.compile(r"(?<![a-z])(?:lower (?:extremit[a-z]*|limb)|knee|ankle|foot|feet|toe|femur|femoral"
                              r"|tibia[a-z]*|fibula[a-z]*|hip|leg|thigh|patella[a-z]*|calcane[a-z]*)(?:s|es)?(?![a-z])")),
)


# The regions whose scans show each limb part (those _ADJACENT makes compatible with "limb").
_PART_NEIGHBOURS = {"upper limb": frozenset({"chest"}), "lower limb": frozenset({"pelvis"})}


def limb_part_of_label(label: str | None) -> str:
    """The limb part a metadata label names (``"KNEE"`` -> ``"lower limb"``), ``""`` when it names none or both."""
    text = (label or "").strip().lower()
    found = [part for part, pattern in _LIMB_PART_LABELS if pattern.search(text)]
    return found[0] if len(found) == 1 else ""


def check_region_label(label: str, name: str = "region") -> frozenset[str]:
    """The regions a caller's label names (:func:`regions_of_label`).

    Raises:
        ConfigError: the label names none (``name`` is how the caller calls it: ``region``, ``--region``).
    """
    found = regions_of_label(label)
    if not found:
        raise ConfigError(f"{name} {label!r} names no body region kgclip can place; pass one of "
                          f"{', '.join(REGIONS)} or a DICOM BodyPartExamined term such as CHEST or ABDOMENPELVIS")
    return found


def compatible(region: str, query: Iterable[str]) -> bool:
    """Whether anatomy of ``region`` may appear in a report of a scan showing ``query`` regions."""
    q = set(query)
    return region in q or any(region in _ADJACENT.get(r, ()) for r in q)


# Anchor organs per region, by ontology name or synonym (RadLex anatomy, DO organ-disease classes).
_ANCHORS: dict[str, tuple[str, ...]] = {
    "head": ("head", "brain", "skull", "orbit", "eye", "face", "cerebral hemisphere", "cerebellum", "brainstem",
             "pituitary gland", "paranasal sinus", "temporal bone", "nasal cavity", "mandible", "maxilla", "scalp",
             "lateral ventricle", "corpus callosum", "thalamus", "basal ganglia", "brain disease",
             "central nervous system disease"),
    "neck": ("neck", "thyroid gland", "larynx", "pharynx", "parotid gland", "oral cavity", "tongue"),
    "chest": ("thorax", "lung", "heart", "mediastinum", "pleura", "chest wall", "bronchus", "pericardium",
              "thoracic aorta", "trachea", "lung disease", "heart disease", "lower respiratory tract disease"),
    "abdomen": ("abdomen", "liver", "gallbladder", "pancreas", "spleen", "kidney", "adrenal gland", "stomach",
                "small intestine", "large intestine", "colon", "duodenum", "jejunum", "ileum", "appendix",
                "retroperitoneum", "bile duct", "abdominal aorta", "mesentery", "liver disease", "kidney disease",
                "pancreas disease", "intestinal disease"),
    "pelvis": ("pelvis", "urinary bladder", "prostate", "uterus", "ovary", "rectum", "vagina", "testis", "scrotum",
               "prostate disease", "ovarian disease", "uterine disease"),
    "spine": ("spine", "spinal cord", "vertebra", "intervertebral disk", "sacrum", "coccyx", "spinal canal",
              "spinal cord disease"),
    "limb": ("knee", "shoulder", "elbow", "wrist", "hand", "foot", "ankle", "femur", "tibia", "fibula", "humerus",
             "radius", "ulna", "thigh", "leg", "arm", "forearm", "knee joint", "hip joint"),
    "breast": ("breast", "breast disease"),
}
# Anchor organs of the limb's parts (LIMB_PARTS), resolved and walked like the regions' (BodyRegions.limb_parts).
_LIMB_PART_ANCHORS: dict[str, tuple[str, ...]] = {
    "upper limb": ("shoulder", "elbow", "wrist", "hand", "humerus", "radius", "ulna", "arm", "forearm",
                   "shoulder joint", "elbow joint", "wrist joint", "finger", "thumb"),
    "lower limb": ("knee", "foot", "ankle", "femur", "tibia", "fibula", "thigh", "leg", "knee joint", "hip joint",
                   "ankle joint", "patella", "calcaneus", "toe"),
}
# Anchors whose bare mention in a report is usually part of another organ ("femoral head", "neck of the pancreas",
# "hand-foot"): they place descendants and "X of <anchor>" names, but a mention of the word alone places nothing.
_AMBIGUOUS = frozenset({"head", "neck", "face", "leg", "arm", "hand", "foot", "spine", "eye"})
# Organ adjectives of ontology names -> the anchor organ they name; read from concept names only (never from report
# text), for concepts no anchored ancestor places (BodyRegions._organ_in_name). Not "vertebral": the vertebral
# arteries are named on head and neck scans (VQA-RAD val: 5 head-CT questions about them read as spine); not
# "thoracic", which names the thorax, the thoracic spine or the thoracic aorta.
_ORGAN_ADJECTIVES: dict[str, str] = {
    "cerebral": "brain", "intracranial": "brain", "encephalic": "brain", "cerebellar": "cerebellum",
    "pituitary": "pituitary gland", "orbital": "orbit", "sinonasal": "nasal cavity", "nasal": "nasal cavity",
    "thyroid": "thyroid gland", "laryngeal": "larynx", "pharyngeal": "pharynx", "parotid": "parotid gland",
    "pulmonary": "lung", "bronchial": "bronchus", "tracheal": "trachea", "pleural": "pleura",
    "cardiac": "heart", "myocardial": "heart", "pericardial": "pericardium", "mediastinal": "mediastinum",
    "hepatic": "liver", "biliary": "bile duct", "pancreatic": "pancreas", "splenic": "spleen", "renal": "kidney",
    "adrenal": "adrenal gland", "gastric": "stomach", "duodenal": "duodenum", "colonic": "colon",
    "appendiceal": "appendix", "intestinal": "small intestine", "retroperitoneal": "retroperitoneum",
    "mesenteric": "mesentery", "abdominal": "abdomen", "pelvic": "pelvis", "ovarian": "ovary", "uterine": "uterus",
    "endometrial": "uterus", "prostatic": "prostate", "testicular": "testis",
    "scrotal": "scrotum", "rectal": "rectum", "vaginal": "vagina", "bladder": "urinary bladder",
    "spinal": "spinal cord", "femoral": "femur", "tibial": "tibia", "humeral": "humerus", "fibular": "fibula",
    "ulnar": "ulna", "patellar": "patella", "calcaneal": "calcaneus",
    "mammary": "breast",
}
_NAME_WORD = re.compile(r"[a-z]+")
# Words of a name that never place it ("head", "neck" of an organ; "cervical" is the neck or the uterine cervix).
_AMBIGUOUS_NAMES = _AMBIGUOUS | {"cervical"}
_SIDE = re.compile(r"^(?:left|right|bilateral|both)\s+")
_OF = re.compile(r"^.+?\s+of\s+(?:the\s+)?(?:left\s+|right\s+)?(.+)$")


class BodyRegions:
    """Regions of concepts through the graph (see module docstring), memoised per concept.

    Args:
        graph: the concept graph.
        max_hops: is-a / part-of levels walked up from a concept.
    """

    def __init__(self, graph: ConceptGraph | None, *, max_hops: int = 10,
                 _anchors: dict[str, tuple[str, ...]] = _ANCHORS, _by_name: dict[str, str] | None = None,
                 _bare_organ_words: bool = False) -> None:
        self.graph = graph
        self.max_hops = max_hops
        self._by_name: dict[str, str] = {} if _by_name is None else _by_name
        self._anchor: dict[str, frozenset[str]] = {}
        self._memo: dict[str, frozenset[str]] = {}
        self._ambiguous: set[str] = set()
        self._parts: BodyRegions | None = None
        self._bare_organ_words = _bare_organ_words  # a name that is only an organ word places it (limb parts)
        if graph is None:
            return
        if _by_name is None:
            for concept in graph.concepts(include_deprecated=False):
                for name in concept.all_names:
                    key = " ".join(name.lower().split())
                    self._by_name.setdefault(key, concept.id)
        for region, names in _anchors.items():
            for n in names:
                cid = self._by_name.get(n)
                if cid is not None:
                    self._anchor[cid] = self._anchor.get(cid, frozenset()) | {region}
                    if n in _AMBIGUOUS:
                        self._ambiguous.add(cid)

    def limb_parts(self, concept_id: str) -> frozenset[str]:
        """The limb parts (:data:`LIMB_PARTS`) a concept lies in, through the graph as :meth:`of_concept` places
        regions ("lateral femoral condyle" -> lower limb); empty when it names neither, or only an ambiguous anchor
        ("hand" alone)."""
        if self._parts is None:
            self._parts = BodyRegions(self.graph, max_hops=self.max_hops, _anchors=_LIMB_PART_ANCHORS,
                                      _by_name=self._by_name, _bare_organ_words=True)
        return frozenset() if concept_id in self._parts._ambiguous else self._parts.of_concept(concept_id)

    def of_concept(self, concept_id: str) -> frozenset[str]:
        """The regions a concept lies in (empty: not anatomy the graph places, or unknown)."""
        hit = self._memo.get(concept_id)
        if hit is not None:
            return hit
        self._memo[concept_id] = frozenset()  # guards against cycles while walking
        out = self._walk(concept_id)
        self._memo[concept_id] = out
        return out

    def _walk(self, concept_id: str) -> frozenset[str]:
        g = self.graph
        if g is None or concept_id not in g:
            return frozenset()
        frontier, seen = [concept_id], {concept_id}
        for _ in range(self.max_hops + 1):
            found: set[str] = set()
            nxt: list[str] = []
            for c in frontier:
                found |= self._anchor.get(c, frozenset()) | self._named(c)
                for p in g.parents(c, IS_A) + g.parents(c, PART_OF):
                    if p not in seen:
                        seen.add(p)
                        nxt.append(p)
            if found:  # the nearest anchors win: a "head of femur" is limb, not head
                return frozenset(found)
            frontier = nxt
            if not frontier:
                break
        # No ancestor is anchored (most DO diseases: "pulmonary embolism" is a "pulmonary artery disease" is a
        # "vascular disease"...): the organ its own name names. Not its ancestors' names: RadLex's "T2" (the MR
        # sequence in a report) is a "thoracic spine descriptor" under a "spinal segment descriptor".
        return self._organ_in_name(concept_id)

    def _organ_in_name(self, concept_id: str) -> frozenset[str]:
        """Regions of the anchor organs a name mentions by a word or two ("brain cancer", "lung abscess") or by
        an organ adjective ("pulmonary embolism", "renal cell carcinoma"); ambiguous anchors ("head", "neck")
        place nothing."""
        words = _NAME_WORD.findall(self.graph.name_of(concept_id).lower())
        out: set[str] = set()
        for i in range(len(words)):
            for n in (3, 2, 1):
                span = " ".join(words[i:i + n])
                # A name that is only the organ word ("pulmonary") places nothing as a region; a limb part takes it
                # ("femoral", "tibial": how reports name where in the limb a finding lies).
                whole = n == len(words) and not self._bare_organ_words
                if len(words[i:i + n]) < n or whole or span in _AMBIGUOUS_NAMES:
                    continue
                cid = self._by_name.get(_ORGAN_ADJECTIVES.get(span, span))
                if cid is not None and cid != concept_id and cid not in self._ambiguous:
                    out |= self._anchor.get(cid, frozenset())
        return frozenset(out)

    def _named(self, concept_id: str) -> frozenset[str]:
        """The part-of a name states: "lobe of cerebral hemisphere" -> cerebral hemisphere; "right lung" -> lung."""
        name = " ".join(self.graph.name_of(concept_id).lower().split())
        out: set[str] = set()
        for target in (_SIDE.sub("", name), *(m.group(1) for m in [_OF.match(name)] if m)):
            if target == name:
                continue
            cid = self._by_name.get(target)
            if cid is not None and cid != concept_id:
                out |= self._anchor.get(cid, frozenset()) or self.of_concept(cid)
        return frozenset(out)

    def outside(self, concept_ids: Iterable[str], query: Iterable[str]) -> list[str]:
        """The concepts that lie only in regions incompatible with the ``query`` regions (empty query: none)."""
        q = frozenset(query)
        if not q:
            return []
        out = []
        for cid in concept_ids:
            regions = frozenset() if cid in self._ambiguous else self.of_concept(cid)
            if regions and not any(compatible(r, q) for r in regions):
                out.append(cid)
            elif regions == {"limb"} and "limb" not in q:
                # Limb anatomy seen on a neighbouring region's scan is the part next to it: the shoulder and
                # humerus on a chest film, the hip and femur on a pelvis; never a femur on a chest film.
                parts = self.limb_parts(cid)
                if parts and not any(_PART_NEIGHBOURS[p] & q for p in parts):
                    out.append(cid)
        return out


_BY_GRAPH: "weakref.WeakKeyDictionary[ConceptGraph, BodyRegions]" = weakref.WeakKeyDictionary()


def body_regions(graph: ConceptGraph) -> BodyRegions:
    """The :class:`BodyRegions` of ``graph``, built once per graph object (building reads every concept name) and
    shared by whoever asks: the engine's drafts and the answers' region checks."""
    body = _BY_GRAPH.get(graph)
    if body is None:
        body = _BY_GRAPH[graph] = BodyRegions(graph)
    return body
