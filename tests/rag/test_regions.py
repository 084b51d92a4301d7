"""Body regions: metadata labels, and where anatomy lies through the graph (is-a, "X of Y" names, anchors)."""

from __future__ import annotations

import pytest

from kgclip.ontology.model import IS_A, Concept, ConceptGraph, Relation
from kgclip.rag.regions import BodyRegions, compatible, regions_of_label


@pytest.mark.parametrize("label, regions", [
    ("CHEST", {"chest"}), ("HEAD", {"head"}), ("ABD", {"abdomen"}), ("ABDOMENPELVIS", {"abdomen", "pelvis"}),
    ("LSPINE", {"spine"}), ("KNEE", {"limb"}), ("Brain and Neuro", {"head"}), ("Thorax", {"chest"}),
    ("Spine and Muscles", {"spine", "limb"}), ("Reproductive and Urinary System", {"abdomen", "pelvis"}),
    ("", set()), ("unknown part", set()),
])
def test_regions_of_label(label, regions):
    assert regions_of_label(label) == regions


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
