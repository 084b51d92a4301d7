"""Body regions: metadata labels, and where anatomy lies through the graph (is-a, "X of Y" names, anchors)."""

from __future__ import annotations

import pytest

from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation
from kgclip.errors import ConfigError
from kgclip.rag.regions import (BodyRegions, check_region_label, compatible, limb_part_of_label,
                                  regions_of_label)


@pytest.mark.parametrize("label, regions", [
    ("CHEST", {"chest"}), ("HEAD", {"head"}), ("ABD", {"abdomen"}), ("ABDOMENPELVIS", {"abdomen", "pelvis"}),
    ("LSPINE", {"spine"}), ("KNEE", {"limb"}), ("Brain and Neuro", {"head"}), ("Thorax", {"chest"}),
    ("Spine and Muscles", {"spine", "limb"}), ("Reproductive and Urinary System", {"abdomen", "pelvis"}),
    ("", set()), ("unknown part", set()),
    # Compound DICOM terms name every region they cover; short words match whole, not as a prefix of another word.
    ("NECKCHEST", {"neck", "chest"}), ("CHESTABDPELVIS", {"chest", "abdomen", "pelvis"}), ("TLSPINE", {"spine"}),
    ("Hippocampus", {"head"}), ("Facet joints", {"spine"}), ("Ribs", {"chest"}), ("elbowish", set()),
    ("Legacy", set()), ("hepatobiliary", {"abdomen"}),
])
def test_regions_of_label(label, regions):
    assert regions_of_label(label) == regions


def test_a_region_label_naming_no_region_is_refused_with_the_terms_to_use():
    with pytest.raises(ConfigError, match="CHEST or ABDOMENPELVIS"):
        check_region_label("elbowish", "--region")


def test_neighbouring_regions_are_compatible_distant_ones_not():
    assert compatible("abdomen", {"chest"}) and compatible("spine", {"abdomen"})
    assert not compatible("head", {"chest"}) and not compatible("chest", {"head"})
    assert not compatible("limb", {"head"})


def _graph() -> ConceptGraph:
    names = {"R:1": "anatomical entity", "R:2": "brain", "R:3": "lobe of cerebral hemisphere",
             "R:4": "cerebral hemisphere", "R:5": "right frontal lobe", "R:6": "lung", "R:7": "right lung",
             "R:8": "femur", "R:9": "head of femur", "R:10": "head", "R:11": "liver"}
    parents = {"R:2": "R:1", "R:3": "R:1", "R:4": "R:1", "R:5": "R:3", "R:6": "R:1", "R:7": "R:1", "R:8": "R:1",
               "R:9": "R:1", "R:10": "R:1", "R:11": "R:1"}
    return ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                     + [Relation(c, IS_A, p) for c, p in parents.items()])


def test_anatomy_reaches_its_region_through_is_a_and_its_name():
    regions = BodyRegions(_graph())
    assert regions.of_concept("R:2") == {"head"}  # an anchor
    assert regions.of_concept("R:5") == {"head"}  # is-a "lobe of cerebral hemisphere" -> cerebral hemisphere
    assert regions.of_concept("R:7") == {"chest"}  # "right lung" -> lung
    assert regions.of_concept("R:9") == {"limb"}  # "head of femur" is femur, not head
    assert regions.of_concept("R:1") == frozenset()  # no anchor reached: unknown, never outside
    assert regions.outside(["R:5", "R:11", "R:1"], {"chest"}) == ["R:5"]  # liver: upper abdomen, seen on chest CT
    assert regions.outside(["R:7", "R:11", "R:2"], {"head"}) == ["R:7", "R:11"]
    assert regions.outside(["R:10"], {"chest"}) == []  # a bare "head" is usually part of something else
    assert regions.outside(["R:5"], set()) == []


def test_a_disease_no_anchor_places_lies_where_its_name_says():
    """Disease Ontology diseases rarely reach an anchor organ through is-a: the organ their own name
    names places them (not their ancestors' names), an anchored ancestor still wins, and ambiguous words place
    nothing."""
    names = {"D:0": "disease", "D:1": "vascular disease", "D:2": "pulmonary artery disease",
             "D:3": "pulmonary embolism", "D:4": "brain cancer", "D:5": "brain disease",
             "D:6": "hepatic encephalopathy", "D:7": "head injury", "D:8": "hemorrhage", "D:9": "brain",
             "D:10": "lung", "D:11": "liver", "D:12": "vertebral artery", "D:13": "vertebra", "D:14": "T2",
             "D:15": "spinal segment descriptor", "D:16": "spinal cord"}
    parents = {"D:1": "D:0", "D:2": "D:1", "D:3": "D:2", "D:4": "D:0", "D:5": "D:0", "D:6": "D:5", "D:7": "D:0",
               "D:8": "D:0", "D:14": "D:15"}
    regions = BodyRegions(ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                                    + [Relation(c, IS_A, p) for c, p in parents.items()]))
    assert regions.of_concept("D:3") == {"chest"}  # "pulmonary" -> lung
    assert regions.of_concept("D:4") == {"head"}  # "brain" in the name
    assert regions.of_concept("D:6") == {"head"}  # the anchored ancestor "brain disease" wins over "hepatic"
    assert regions.of_concept("D:7") == frozenset()  # "head" alone is ambiguous
    assert regions.of_concept("D:8") == frozenset() and regions.of_concept("D:0") == frozenset()
    assert regions.of_concept("D:12") == frozenset()  # vertebral arteries are seen on head and neck scans
    assert regions.of_concept("D:15") == {"spine"} and regions.of_concept("D:14") == frozenset()  # a sequence
    assert regions.outside(["D:3"], {"head"}) == ["D:3"] and regions.outside(["D:3"], {"abdomen"}) == []


@pytest.mark.parametrize("label, part", [
    ("KNEE", "lower limb"), ("ANKLE", "lower limb"), ("HIP", "lower limb"), ("LEG", "lower limb"),
    ("SHOULDER", "upper limb"), ("HAND", "upper limb"), ("ARM", "upper limb"), ("Upper extremity", "upper limb"),
    ("EXTREMITY", ""), ("Musculoskeletal", ""), ("CHEST", ""), ("", ""), ("shoulder and knee", ""),
    ("FINGER", "upper limb"), ("PATELLA", "lower limb"), ("Hippocampus", ""), ("armchair", ""),
])
def test_limb_part_of_label(label, part):
    assert limb_part_of_label(label) == part


def test_limb_anatomy_lies_in_its_part_of_the_limb():
    names = {"R:1": "anatomical entity", "R:2": "knee joint", "R:3": "left knee joint", "R:4": "shoulder",
             "R:5": "acromion of shoulder", "R:6": "femur", "R:7": "femoral", "R:8": "lung", "R:9": "hand"}
    parents = {c: "R:1" for c in names if c != "R:1"} | {"R:3": "R:2"}
    regions = BodyRegions(ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                                    + [Relation(c, IS_A, p) for c, p in parents.items()]))
    assert regions.limb_parts("R:3") == {"lower limb"}  # is-a knee joint
    assert regions.limb_parts("R:5") == {"upper limb"}  # "X of shoulder"
    assert regions.limb_parts("R:7") == {"lower limb"}  # an organ word alone ("femoral condyle" links as it)
    assert regions.of_concept("R:7") == frozenset()  # ... which places no region (a bare "pulmonary" neither)
    assert regions.limb_parts("R:8") == frozenset() and regions.limb_parts("R:9") == frozenset()  # ambiguous hand
    assert regions.of_concept("R:3") == {"limb"} and regions.of_concept("R:5") == {"limb"}


def test_limb_anatomy_on_a_neighbouring_scan_is_the_part_next_to_it():
    names = {"R:1": "anatomical entity", "R:2": "femur", "R:3": "humerus", "R:4": "knee joint"}
    regions = BodyRegions(ConceptGraph.from_records([Concept(i, n) for i, n in names.items()]
                                                    + [Relation(c, IS_A, "R:1") for c in names if c != "R:1"]))
    assert regions.outside(["R:2", "R:3", "R:4"], {"chest"}) == ["R:2", "R:4"]  # the humerus is on a chest film
    assert regions.outside(["R:2", "R:3", "R:4"], {"pelvis"}) == ["R:3"]  # the femur on a pelvis
    assert regions.outside(["R:2", "R:3", "R:4"], {"limb"}) == []
    assert regions.outside(["R:2"], {"head"}) == ["R:2"]
