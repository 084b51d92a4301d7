"""Text directory and binary cache round-trips, atomicity, RDF export round-trip, shipped ontologies."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from kgclip.errors import ArtifactCorruptError, InputFormatError
from kgclip.ontology.model import Concept, ConceptGraph, Relation
from kgclip.ontology import commit
from kgclip.ontology.store import (
    export_rdf,
    is_graph_dir,
    load_cache,
    load_graph_dir,
    load_ontologies,
    read_meta,
    save_cache,
    save_graph,
    shipped_ontology_dirs,
)
from kgclip.testing import tiny_graph


def with_dangling(graph: ConceptGraph, *relations: Relation) -> ConceptGraph:
    """``graph`` plus relations to ids it lacks (kept aside as dangling), through the public columnar API."""
    import dataclasses

    columns = graph.columns()
    return ConceptGraph.from_columns(dataclasses.replace(columns, dangling=[*columns.dangling, *relations]),
                                     name=graph.name)


def awkward_graph() -> ConceptGraph:
    """tiny_graph plus values that stress the escaping: tabs, newlines, pipes, backslashes, empty list items,
    non-ASCII text, and a dangling relation."""
    g = tiny_graph()
    g.add_concept(Concept("X:1", "we|ird\tna\\me", synonyms=("a|b", "", "c\\|d", "é ü 肺"),
                          semantic_types=("T047",), definition="line one\nline two\r\n", xrefs=("UMLS:C0000001",)))
    g.add_relation(Relation("X:1", "located_in", "RADLEX:RID1301", "curator"))
    return with_dangling(g, Relation("DOID:4", "is_a", "DOID:999999", "doid"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_text_round_trip_is_exact(tmp_path: Path) -> None:
    g = awkward_graph()
    save_graph(g, tmp_path / "g")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = load_graph_dir(tmp_path / "g")
    assert back.fingerprint() == g.fingerprint()
    assert back.concept("X:1") == g.concept("X:1")
    assert back.dangling == g.dangling  # dangling relations stay dangling
    assert {(r.source, r.type, r.target, r.origin) for r in back.relations()} == {
        (r.source, r.type, r.target, r.origin) for r in g.relations()}
    meta = read_meta(tmp_path / "g")
    assert meta["graph_fingerprint"] == g.fingerprint()
    assert meta["counts"]["concepts"] == len(g) and meta["counts"]["dangling"] == 1


def test_text_files_are_sorted_line_per_record(tmp_path: Path) -> None:
    save_graph(tiny_graph(), tmp_path)
    concepts = (tmp_path / "concepts.tsv").read_text(encoding="utf-8").splitlines()
    relations = (tmp_path / "relations.tsv").read_text(encoding="utf-8").splitlines()
    assert concepts[0].startswith("id\tname") and len(concepts) == 21
    assert concepts[1:] == sorted(concepts[1:])
    assert relations[1:] == sorted(relations[1:]) and len(relations) == 1 + tiny_graph().num_relations
    assert all(line.count("\t") == 7 for line in concepts)


def test_one_edit_is_a_one_line_diff(tmp_path: Path) -> None:
    g = tiny_graph()
    save_graph(g, tmp_path)
    before = (tmp_path / "concepts.tsv").read_text(encoding="utf-8").splitlines()
    g.replace_concept(Concept("DOID:1826", "epilepsy", synonyms=("seizure disorder", "epileptic syndrome"),
                              source="doid"))
    save_graph(g, tmp_path)
    after = (tmp_path / "concepts.tsv").read_text(encoding="utf-8").splitlines()
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after)) == 1


def test_save_is_stable_and_skips_unchanged_files(tmp_path: Path) -> None:
    g = tiny_graph()
    save_graph(g, tmp_path)
    first = snapshot(tmp_path)
    mtime = (tmp_path / "concepts.tsv").stat().st_mtime_ns
    save_graph(g, tmp_path)
    assert snapshot(tmp_path) == first
    assert (tmp_path / "concepts.tsv").stat().st_mtime_ns == mtime


def test_failed_save_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_graph(tiny_graph(), tmp_path)
    (tmp_path / "README.md").write_text("keep me\n", encoding="utf-8")
    before = snapshot(tmp_path)
    g = tiny_graph()
    g.add_concept(Concept("X:2", "new"))
    calls = {"n": 0}
    real_write = commit._write_synced

    def failing_write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second staged file: after one was complete, before any rename
            raise OSError("disk full (simulated)")
        real_write(path, data)

    monkeypatch.setattr(commit, "_write_synced", failing_write)
    with pytest.raises(OSError, match="simulated"):
        save_graph(g, tmp_path)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".new"))]  # no temporaries left behind


def test_hand_edit_is_detected(tmp_path: Path) -> None:
    save_graph(tiny_graph(), tmp_path)
    path = tmp_path / "concepts.tsv"
    path.write_text(path.read_text(encoding="utf-8").replace("epilepsy", "epilepsies"), encoding="utf-8")
    with pytest.warns(UserWarning, match="differs from the fingerprint"):
        assert load_graph_dir(tmp_path).name_of("DOID:1826") == "epilepsies"
    with pytest.raises(ArtifactCorruptError):
        load_graph_dir(tmp_path, strict=True)


@pytest.mark.parametrize("damage, match", [
    (lambda t: t.replace("\tdoid\t", "\tdoid\textra\t", 1), "fields"),
    (lambda t: "nonsense header\n" + t.split("\n", 1)[1], "header"),
])
def test_malformed_text_names_file_and_line(tmp_path: Path, damage, match: str) -> None:  # noqa: ANN001
    save_graph(tiny_graph(), tmp_path)
    path = tmp_path / "concepts.tsv"
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputFormatError, match=match) as info:
            load_graph_dir(tmp_path)
    assert "concepts.tsv:" in str(info.value)


def test_non_utf8_and_missing(tmp_path: Path) -> None:
    save_graph(tiny_graph(), tmp_path)
    path = tmp_path / "concepts.tsv"
    path.write_bytes(path.read_bytes() + b"X:9\tbad \xff byte\t0\t\t\t\t\t\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputFormatError, match="not UTF-8"):
            load_graph_dir(tmp_path)
    with pytest.raises(InputFormatError, match="import"):
        load_graph_dir(tmp_path / "nowhere")
    assert not is_graph_dir(tmp_path / "nowhere")


def test_cache_round_trip(tmp_path: Path) -> None:
    g = awkward_graph()
    path = save_cache(g, tmp_path / "g.safetensors")
    back = load_cache(path, verify=True)
    assert back.fingerprint() == g.fingerprint()
    assert back.concept("X:1") == g.concept("X:1")
    assert back.dangling == g.dangling
    assert back.relation_types == g.relation_types
    assert [tuple(a.tolist()) for a in back.edge_arrays()] == [tuple(a.tolist()) for a in g.edge_arrays()]
    # the rebuilt graph is a working graph: edits and neighbourhoods work
    back.add_concept(Concept("X:3", "more"))
    assert "RADLEX:RID1243" in back.neighborhood(["RADLEX:RID1301"], hops=1)


def test_cache_fingerprint_options_and_meta(tmp_path: Path) -> None:
    from kgclip.ontology.store import read_cache_meta

    g = tiny_graph()
    src = [{"format": "obo", "path": "x.obo", "fingerprint": "abc"}]
    path = save_cache(g, tmp_path / "a.safetensors", fingerprint=False, sources=src)
    meta = read_cache_meta(path)
    assert meta["sources"] == src and meta["graph_fingerprint"] == "" and meta["concepts"] == "20"
    assert load_cache(path).fingerprint() == g.fingerprint()
    with pytest.raises(ArtifactCorruptError, match="without a fingerprint"):
        load_cache(path, verify=True)
    path = save_cache(g, tmp_path / "b.safetensors", fingerprint="not-the-real-one")
    with pytest.raises(ArtifactCorruptError, match="does not match"):
        load_cache(path, verify=True)


def test_cache_empty_graph_and_corruption(tmp_path: Path) -> None:
    assert len(load_cache(save_cache(ConceptGraph("empty"), tmp_path / "e.safetensors"))) == 0
    path = save_cache(tiny_graph(), tmp_path / "t.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactCorruptError, match="rebuild"):
        load_cache(path)
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(ArtifactCorruptError):
        load_cache(tmp_path / "x.safetensors")


def _norm(g: ConceptGraph) -> tuple[set, set]:
    concepts = {(c.id, c.name, tuple(sorted(c.synonyms)), c.definition, c.deprecated, tuple(sorted(c.xrefs)))
                for c in g.concepts()}
    relations = {(r.source, r.type, r.target) for r in [*g.relations(), *g.dangling]}
    return concepts, relations


def rdflib_import(path: Path, fmt: str) -> ConceptGraph:
    """A minimal importer of kgclip's own export, by kgclip:conceptId (independent of the owl reader)."""
    import rdflib
    from rdflib.namespace import OWL, RDFS

    kg = rdflib.Namespace("https://kgclip.dev/schema#")
    oio = rdflib.Namespace("http://www.geneontology.org/formats/oboInOwl#")
    rdf = rdflib.Graph().parse(str(path), format=fmt)
    ids = {s: str(o) for s, o in rdf.subject_objects(kg.conceptId)}
    records: list[Concept | Relation] = []
    for node, cid in ids.items():
        records.append(Concept(
            cid, str(rdf.value(node, RDFS.label) or ""), tuple(str(x) for x in rdf.objects(node, oio.hasExactSynonym)),
            tuple(str(x) for x in rdf.objects(node, kg.semanticType)),
            str(rdf.value(node, rdflib.URIRef("http://purl.obolibrary.org/obo/IAO_0000115")) or ""),
            str(rdf.value(node, kg.source) or ""), bool(rdf.value(node, OWL.deprecated)),
            tuple(str(x) for x in rdf.objects(node, oio.hasDbXref))))
    from kgclip.ontology.store import concept_iri

    by_iri = {**{rdflib.URIRef(concept_iri(c)): c for c in ids.values()}, **ids}
    for s, o in rdf.subject_objects(RDFS.subClassOf):
        if isinstance(o, rdflib.BNode):
            prop = rdf.value(o, OWL.onProperty)
            target = rdf.value(o, OWL.someValuesFrom)
            records.append(Relation(by_iri.get(s, str(s)), str(rdf.value(prop, RDFS.label)),
                                    by_iri.get(target, str(target))))
        else:
            target = by_iri.get(o) or str(o).rsplit("/", 1)[-1].replace("_", ":")
            records.append(Relation(by_iri.get(s, str(s)), "is_a", target))
    return ConceptGraph.from_records(records, link_xrefs=False)


@pytest.mark.parametrize("fmt, parse_as", [("turtle", "turtle"), ("xml", "xml")])
def test_rdf_export_reimports_to_same_graph(tmp_path: Path, fmt: str, parse_as: str) -> None:
    g = awkward_graph()
    g.add_relation(Relation("RADLEX:RID1392", "replaced_by", "RADLEX:RID5"))
    path = export_rdf(g, tmp_path / f"g.{fmt}", fmt)
    assert _norm(rdflib_import(path, parse_as)) == _norm(g)
    # and through kgclip's own owl reader (ids in OBO / RadLex / UMLS / kgclip IRIs map back). The reader strips
    # literals and drops empty ones, so this graph's texts are already clean.
    from kgclip.ontology.sources import load_graph

    clean = tiny_graph()
    clean.add_concept(Concept("CURATOR:lesion-1", "focal lesion", synonyms=("lesion | focal",), xrefs=("MESH:D1",),
                              definition="A lesion.\nSecond line."))
    clean.add_relation(Relation("CURATOR:lesion-1", "is_a", "RADLEX:RID5"))
    clean.add_relation(Relation("RADLEX:RID1392", "replaced_by", "RADLEX:RID5"))
    clean = with_dangling(clean, Relation("DOID:4", "part_of", "DOID:999999", "doid"))
    path = export_rdf(clean, tmp_path / f"clean.{fmt}", fmt)
    assert _norm(load_graph("owl", path, syntax=fmt)) == _norm(clean)


def test_load_ontologies_unions(tmp_path: Path) -> None:
    g = tiny_graph()
    radlex = ConceptGraph.from_records([c for c in g.concepts() if c.id.startswith("RADLEX")], name="r")
    rest = ConceptGraph.from_records([*[c for c in g.concepts() if not c.id.startswith("RADLEX")], *g.relations()],
                                     name="d")
    assert rest.dangling  # relations into RadLex are dangling in the DO-side graph alone
    save_graph(radlex, tmp_path / "r")
    save_graph(rest, tmp_path / "d")
    merged = load_ontologies([tmp_path / "r", tmp_path / "d"])
    assert merged.fingerprint() == g.fingerprint()
    assert not merged.dangling


def test_shipped_ontologies_load(repo_root: Path) -> None:
    dirs = shipped_ontology_dirs()
    assert [d.name for d in dirs] == ["radlex", "doid"]
    assert all(d.parent == repo_root / "ontologies" for d in dirs)
    for d in dirs:
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        graph = load_graph_dir(d, strict=True)
        assert graph.fingerprint() == meta["graph_fingerprint"]
        assert len(graph) > 10_000
        assert not graph.validate().is_a_cycles


def test_shipped_cache_matches_text(repo_root: Path, tmp_path: Path) -> None:
    graph = load_graph_dir(repo_root / "ontologies" / "radlex")
    cached = load_cache(save_cache(graph, tmp_path / "radlex.safetensors"), verify=True)
    assert cached.fingerprint() == graph.fingerprint() and cached.dangling == graph.dangling


@pytest.mark.data
@pytest.mark.slow
def test_shipped_ontologies_rebuild_identically(shared_data: Path, repo_root: Path, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kgclip_ontologies_build", repo_root / "ontologies" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.main(["--data", str(shared_data), "--out", str(tmp_path)]) == 0
    for name in ("radlex", "doid"):
        for file in ("concepts.tsv", "relations.tsv", "changelog.jsonl", "meta.json"):
            assert (tmp_path / name / file).read_bytes() == (repo_root / "ontologies" / name / file).read_bytes(), \
                f"ontologies/{name}/{file} differs from a rebuild: re-run python ontologies/build.py"


def test_text_load_keeps_type_order_and_drops_repeated_lines(tmp_path: Path) -> None:
    g = awkward_graph()
    save_graph(g, tmp_path / "g")
    back = load_graph_dir(tmp_path / "g")
    # relation types are interned in order of first appearance in the sorted file, as a fresh build would
    first_seen = list(dict.fromkeys(r.type for r in sorted(g.relations(), key=lambda r: (r.source, r.type, r.target))))
    assert back.relation_types == first_seen
    rel = tmp_path / "g" / "relations.tsv"
    lines = rel.read_text(encoding="utf-8").splitlines(keepends=True)
    rel.write_text("".join(lines + lines[1:3]), encoding="utf-8")  # a git merge that kept both sides
    with pytest.warns(UserWarning, match="differs from the fingerprint"):
        again = load_graph_dir(tmp_path / "g")
    assert again.num_relations == back.num_relations and again.fingerprint() == back.fingerprint()
