"""Property-based fuzzing of every ontology reader and of curation edit sequences (hypothesis).

Readers get files that look like their format (the right headers, tags, separators and id shapes) mixed with odd
text: line separators, NULs, BOMs, quotes, backslashes, invalid UTF-8, truncation. Whatever comes in, the only
exception allowed out is a :class:`~kgclip.errors.KgclipError`; a graph that is read must validate, fingerprint, and
survive a save and reload unchanged. Curation: random valid and invalid edits, then undo all, restores the original
fingerprint exactly, in memory and on disk.

The default run tries a few dozen examples per property (a few seconds each); ``--runslow`` tries ten times more,
with a random seed instead of the fixed one.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgclip.errors import KgclipError
from kgclip.ontology.curation import Curator
from kgclip.ontology.model import ConceptGraph
from kgclip.ontology.sources import read_records
from kgclip.ontology.store import load_graph_dir, save_graph
from kgclip.testing import tiny_graph


@pytest.fixture()
def fuzz(pytestconfig: pytest.Config) -> Callable[..., None]:
    """``fuzz(check, examples)`` runs a ``@given`` property with this run's budget (10x and random with --runslow)."""
    slow = bool(pytestconfig.getoption("--runslow"))

    def run(check: Callable[[], None], examples: int = 40) -> None:
        settings(max_examples=examples * 10 if slow else examples, deadline=None, database=None, derandomize=not slow,
                 suppress_health_check=list(HealthCheck))(check)()

    return run


# ---------------------------------------------------------------------------------------------- odd text
ODD = st.sampled_from(["", " ", "\t", "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\x1c", "\ufeff", "\r", "é", "中",
                       "\\", "\\t", "|", '"', "'", "#", ",", ":", ";", "!", "<", ">", "&", "&amp;", "]]>", "[]", "{",
                       "..", "/", "../../etc/x", "\U0001f600", "\ud7ff"])
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
IDS = st.sampled_from(["DOID:4", "DOID:552", "DOID:1324", "DOID:", "DOID_4", "RID1", "RID3", "RID0", "RID15849",
                       "RADLEX:RID1", "C0000001", "C0024115", "SYMP:0000614", "UMLS_CUI:C0000001", "MESH:D1", ":",
                       "X:1", "x", "", "disease"])


def _field(extra: st.SearchStrategy[str] = IDS) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(WORDS, ODD, extra), max_size=4).map("".join)


def _file_bytes(lines: st.SearchStrategy[list[str]]) -> st.SearchStrategy[bytes]:
    """Lines joined by a random line ending, UTF-8 encoded, sometimes with a BOM, bad bytes or a truncated end."""
    return st.tuples(lines, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans(), st.integers(0, 3),
                     st.floats(0.0, 1.0)).map(_assemble)


def _assemble(parts: tuple[list[str], str, bool, int, float]) -> bytes:
    lines, ending, bom, damage, cut = parts
    data = ("\ufeff" if bom else "").encode() + ending.join(lines).encode("utf-8", "surrogatepass") + b"\n"
    if damage == 1:
        data = data[: int(len(data) * cut)]  # truncated mid-way (possibly mid-character)
    elif damage == 2:
        at = int(len(data) * cut)
        data = data[:at] + b"\xff\xfe\xc3" + data[at:]  # bytes that are not UTF-8
    return data


def _read_and_round_trip(fmt: str, path: Path, **options: Any) -> None:
    """The property: reading raises nothing but KgclipError; what is read survives validate, save and reload."""
    for on_error in ("raise", "skip"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                graph = ConceptGraph.from_records(read_records(fmt, path, on_error=on_error, **options))
            except KgclipError:
                continue
        graph.validate()
        fingerprint = graph.fingerprint()
        with tempfile.TemporaryDirectory() as out:
            save_graph(graph, out)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                back = load_graph_dir(out, strict=True)
        assert back.fingerprint() == fingerprint


def _write(files: dict[str, bytes]) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    handle = tempfile.TemporaryDirectory()
    root = Path(handle.name)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return handle, root


# ---------------------------------------------------------------------------------------------- readers
OBO_TAGS = st.sampled_from(["id", "name", "synonym", "def", "is_a", "relationship", "xref", "is_obsolete",
                            "replaced_by", "alt_id", "namespace", "comment", "subset", "intersection_of", "consider",
                            "property_value", "format-version", "data-version", "default-namespace", "", "!"])
OBO_LINE = st.one_of(
    st.sampled_from(["[Term]", "[Typedef]", "[Instance]", "[Term", "", "format-version: 1.2", "is_obsolete: true"]),
    st.tuples(OBO_TAGS, _field()).map(lambda t: f"{t[0]}: {t[1]}"),
    st.tuples(st.sampled_from(["synonym", "def"]), _field(), st.sampled_from(["EXACT", "RELATED", "", "BROAD x"]),
              _field()).map(lambda t: f'{t[0]}: "{t[1]}" {t[2]} [{t[3]}]'),
    st.tuples(_field(st.sampled_from(["part_of", "has_part", "located_in", "is_a"])), IDS).map(
        lambda t: f"relationship: {t[0]} {t[1]} ! comment"),
    _field())


def test_obo_reader_fuzz(fuzz: Callable[..., None]) -> None:
    @given(_file_bytes(st.lists(OBO_LINE, max_size=30)))
    def check(data: bytes) -> None:
        handle, root = _write({"t.obo": data})
        with handle:
            _read_and_round_trip("obo", root / "t.obo")

    fuzz(check, 25)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


OWL_IRI = st.one_of(IDS.map(lambda i: f"http://purl.obolibrary.org/obo/{i.replace(':', '_')}"),
                    IDS.map(lambda i: f"http://www.radlex.org/RID/#{i}"), _field().map(_xml_text))
OWL_ELEMENT = st.one_of(
    st.tuples(OWL_IRI, _field(), st.booleans()).map(
        lambda t: f'<owl:Class rdf:about="{t[0]}"><rdfs:label>{_xml_text(t[1]) if t[2] else t[1]}</rdfs:label>'
                  "</owl:Class>"),
    st.tuples(OWL_IRI, OWL_IRI).map(
        lambda t: f'<owl:Class rdf:about="{t[0]}"><rdfs:subClassOf rdf:resource="{t[1]}"/></owl:Class>'),
    st.tuples(OWL_IRI, OWL_IRI, OWL_IRI).map(
        lambda t: f'<owl:Class rdf:about="{t[0]}"><rdfs:subClassOf><owl:Restriction><owl:onProperty '
                  f'rdf:resource="{t[1]}"/><owl:someValuesFrom rdf:resource="{t[2]}"/></owl:Restriction>'
                  "</rdfs:subClassOf></owl:Class>"),
    st.tuples(OWL_IRI, _field(), st.sampled_from(["hasExactSynonym", "hasRelatedSynonym", "hasDbXref", "id"])).map(
        lambda t: f'<owl:Class rdf:about="{t[0]}"><oboInOwl:{t[2]}>{_xml_text(t[1])}</oboInOwl:{t[2]}></owl:Class>'),
    st.tuples(OWL_IRI, st.sampled_from(["true", "false", "1", "yes", ""])).map(
        lambda t: f'<owl:Class rdf:about="{t[0]}"><owl:deprecated>{t[1]}</owl:deprecated></owl:Class>'),
    st.tuples(OWL_IRI, _field()).map(
        lambda t: f'<owl:ObjectProperty rdf:about="{t[0]}"><rdfs:label>{_xml_text(t[1])}</rdfs:label>'
                  "</owl:ObjectProperty>"),
    _field())
OWL_HEAD = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#" xmlns:owl="http://www.w3.org/2002/07/owl#" '
            'xmlns:oboInOwl="http://www.geneontology.org/formats/oboInOwl#">')


def test_owl_rdfxml_reader_fuzz(fuzz: Callable[..., None]) -> None:
    @given(_file_bytes(st.lists(OWL_ELEMENT, max_size=15).map(lambda els: [OWL_HEAD, *els, "</rdf:RDF>"])),
           st.sampled_from(["owl", "radlex-owl"]))
    def check(data: bytes, fmt: str) -> None:
        handle, root = _write({"t.owl": data})
        with handle:
            _read_and_round_trip(fmt, root / "t.owl")

    fuzz(check, 30)


TTL_LINE = st.one_of(
    st.sampled_from(["@prefix owl: <http://www.w3.org/2002/07/owl#> .",
                     "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
                     "@prefix obo: <http://purl.obolibrary.org/obo/> ."]),
    st.tuples(IDS, IDS).map(lambda t: f"obo:{t[0].replace(':', '_')} rdfs:subClassOf obo:{t[1].replace(':', '_')} ."),
    st.tuples(IDS, _field()).map(lambda t: f'obo:{t[0].replace(":", "_")} a owl:Class ; rdfs:label "{t[1]}" .'),
    _field())


def test_owl_turtle_reader_fuzz(fuzz: Callable[..., None]) -> None:
    @given(_file_bytes(st.lists(TTL_LINE, max_size=12)))
    def check(data: bytes) -> None:
        handle, root = _write({"t.ttl": data})
        with handle:
            _read_and_round_trip("owl", root / "t.ttl")

    fuzz(check, 20)


RRF_ROW = {
    "MRCONSO.RRF": st.tuples(IDS, st.sampled_from(["ENG", "FRE", ""]), st.sampled_from(["P", "S", ""]), _field(),
                             st.sampled_from(["MSH", "RADLEX", "SNOMEDCT_US", ""]), st.sampled_from(["", "O", "N"]),
                             st.integers(14, 20)).map(
        lambda t: "|".join([t[0], t[1], t[2], "L1", "PF", "S1", "Y", "A1", "", "", "", t[4], "PT", "D1", t[3], "0",
                            t[5], ""][: t[6] - 1] + [""])),
    "MRSTY.RRF": st.tuples(IDS, _field(), _field()).map(lambda t: f"{t[0]}|T047|A1|{t[1]}|{t[2]}||"),
    "MRDEF.RRF": st.tuples(IDS, _field()).map(lambda t: f"{t[0]}|A1|AT1||MSH|{t[1]}|N||"),
    "MRREL.RRF": st.tuples(IDS, st.sampled_from(["PAR", "CHD", "RB", "RN", "RO", "RQ", "SY", ""]), IDS,
                           _field(st.sampled_from(["part_of", "isa", "has_finding_site"]))).map(
        lambda t: f"{t[0]}|A1|SCUI|{t[1]}|{t[2]}|A2|SCUI|{t[3]}|R1||MSH||||N||"),
}


def test_umls_rrf_reader_fuzz(fuzz: Callable[..., None]) -> None:
    files = st.fixed_dictionaries({name: _file_bytes(st.lists(st.one_of(row, _field()), max_size=12))
                                   for name, row in RRF_ROW.items()})

    @given(files, st.sets(st.sampled_from(list(RRF_ROW)[1:])))
    def check(contents: dict[str, bytes], left_out: set[str]) -> None:
        handle, root = _write({k: v for k, v in contents.items() if k not in left_out})
        with handle:
            _read_and_round_trip("umls-rrf", root)

    fuzz(check, 25)


def test_radlex_csv_reader_fuzz(fuzz: Callable[..., None]) -> None:
    row = st.tuples(_field(), IDS, IDS, st.integers(1, 4), st.booleans()).map(
        lambda t: ",".join([f'"{t[0]}"' if t[4] else t[0], t[1], t[2], "extra"][: t[3]]))

    @given(_file_bytes(st.lists(st.one_of(row, _field()), max_size=30)))
    def check(data: bytes) -> None:
        handle, root = _write({"Radlex.csv": data})
        with handle:
            _read_and_round_trip("radlex-csv", root / "Radlex.csv")

    fuzz(check, 30)


DO_HEADERS = {"HumanDO.tsv": '"id"\t"label"\t"subClassOf"', "allXREFinDO.tsv": "id\tlabel\txrefs",
              "disease-symptom.tsv": "disease_id\tdisease_label\tsymptom_id\tsymptom_label",
              "DO-ICDO-anatomy.tsv": "id\tlabel\txrefs\tanatomy_id\tanatomy_label"}


def test_doid_tsv_reader_fuzz(fuzz: Callable[..., None]) -> None:
    row = st.tuples(st.lists(st.one_of(IDS, _field()), min_size=1, max_size=6), st.booleans()).map(
        lambda t: "\t".join(f'"{f}"' if t[1] else f for f in t[0]))
    files = st.dictionaries(st.sampled_from(list(DO_HEADERS)), st.tuples(st.booleans(), st.lists(row, max_size=15)),
                            min_size=1)

    @given(files, st.booleans())
    def check(contents: dict[str, tuple[bool, list[str]]], one_file: bool) -> None:
        handle, root = _write({name: _assemble((([DO_HEADERS[name]] if header else []) + rows, "\n", False, 0, 1.0))
                               for name, (header, rows) in contents.items()})
        with handle:
            _read_and_round_trip("doid-tsv", root / next(iter(contents)) if one_file else root)

    fuzz(check, 30)


def test_slake_kg_reader_fuzz(fuzz: Callable[..., None]) -> None:
    attribute = st.sampled_from(["location", "symptom", "description", "alias", "chunk", "belong to", "cause",
                                 "treatment", "locate in", "", "#"])
    row = st.tuples(_field(st.sampled_from(["Pneumonia", "Lung", "Heart"])), attribute, _field(),
                    st.booleans()).map(lambda t: f'{t[0]}#{t[1]}#"{t[2]}"' if t[3] else f"{t[0]}#{t[1]}#{t[2]}")
    names = ["en_disease.csv", "en_disease_rel.csv", "en_organ_rel.csv"]
    files = st.dictionaries(st.sampled_from(names), st.tuples(st.booleans(), st.lists(st.one_of(row, _field()),
                                                                                      max_size=15)), min_size=1)

    @given(files, st.booleans())
    def check(contents: dict[str, tuple[bool, list[str]]], one_file: bool) -> None:
        header = {"en_disease.csv": "disease#attribute#value", "en_disease_rel.csv": "disease#attribute#value",
                  "en_organ_rel.csv": "organ#attribute#value"}
        handle, root = _write({name: _assemble((([header[name]] if h else []) + rows, "\n", False, 0, 1.0))
                               for name, (h, rows) in contents.items()})
        with handle:
            _read_and_round_trip("slake-kg", root / next(iter(contents)) if one_file else root)

    fuzz(check, 30)


# ---------------------------------------------------------------------------------------------- curation
_TINY = tiny_graph()
_IDS = [*_TINY.ids, "DOID:9000001", "DOID:9000002", "X:1", "../../etc/x", ""]
EDIT = st.one_of(
    st.tuples(st.just("add_concept"), st.sampled_from(_IDS), _field(), st.lists(st.sampled_from(_IDS), max_size=2)),
    st.tuples(st.just("update_concept"), st.sampled_from(_IDS), st.one_of(st.none(), _field()),
              st.lists(_field(), max_size=2)),
    st.tuples(st.just("add_relation"), st.sampled_from(_IDS), st.sampled_from(
        ["is_a", "part_of", "located_in", "has_symptom", "bogus_rel", "", "Has Symptom", "../../etc/x"]),
        st.sampled_from(_IDS)),
    st.tuples(st.just("remove_relation"), st.integers(0, 40)),
    st.tuples(st.just("deprecate"), st.sampled_from(_IDS), st.one_of(st.none(), st.sampled_from(_IDS))),
    st.tuples(st.just("merge"), st.sampled_from(_IDS), st.sampled_from(_IDS)),
    st.tuples(st.just("declare_relation_type"), st.sampled_from(["treated_by", "is_a", "Bad Type", "", "x/y"])),
    st.tuples(st.just("undo"), st.integers(-1, 3)),
)


def _apply(cur: Curator, edit: tuple[Any, ...]) -> None:
    op, *args = edit
    if op == "add_concept":
        cur.add_concept(args[0], args[1], parents=args[2])
    elif op == "update_concept":
        cur.update_concept(args[0], name=args[1], add_synonyms=args[2])
    elif op == "add_relation":
        cur.add_relation(*args)
    elif op == "remove_relation":
        relations = cur.graph.relations()
        if relations:
            r = relations[args[0] % len(relations)]
            cur.remove_relation(r.source, r.type, r.target)
    elif op == "deprecate":
        cur.deprecate(args[0], replaced_by=args[1])
    elif op == "merge":
        cur.merge(*args)
    elif op == "declare_relation_type":
        cur.declare_relation_type(args[0])
    else:
        cur.undo(args[0])


def test_curation_edit_sequences_undo_to_the_original(fuzz: Callable[..., None]) -> None:
    original = _TINY.fingerprint()

    @given(st.lists(EDIT, max_size=12), st.booleans())
    def check(edits: list[tuple[Any, ...]], on_disk: bool) -> None:
        with tempfile.TemporaryDirectory() as d:
            if on_disk:
                save_graph(_TINY, d)
                cur = Curator.open(d, author="fuzz")
            else:
                cur = Curator(_TINY.copy(), author="fuzz")
            for edit in edits:
                before = cur.graph.fingerprint()
                try:
                    _apply(cur, edit)
                except KgclipError:
                    assert cur.graph.fingerprint() == before  # a refused edit changes nothing
            undoable = len(cur.changelog.undoable())
            if undoable:
                cur.undo(undoable)
            assert cur.graph.fingerprint() == original
            cur.graph.validate()
            if on_disk:
                assert load_graph_dir(d, strict=True).fingerprint() == original
                assert Curator.open(d).graph.fingerprint() == original

    fuzz(check, 40)


# ---------------------------------------------------------------------------------------------- stored directories
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), _field(), st.floats(allow_nan=False)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(_field(st.sampled_from(["undone", "seq", "op"])), inner,
                                                            max_size=3)), max_leaves=8)
ENTRY = st.fixed_dictionaries(
    {"seq": st.one_of(st.integers(0, 5), JSON), "op": st.sampled_from(["undo", "add_concept", "import", "x"]),
     "args": st.one_of(st.fixed_dictionaries({"undone": JSON}), st.fixed_dictionaries({"full_refresh": JSON}), JSON),
     "concept_ids": st.one_of(st.lists(IDS, max_size=3), JSON), "timestamp": _field(),
     "revert": st.one_of(st.none(), st.fixed_dictionaries({"remove_concepts": JSON}),
                         st.fixed_dictionaries({"add_relations": JSON}), JSON)},
    optional={"author": JSON, "reason": JSON, "extra": JSON})


def test_hand_edited_changelog_fuzz(fuzz: Callable[..., None]) -> None:
    import json

    from kgclip.cli.main import main

    @given(st.lists(st.one_of(ENTRY.map(json.dumps), _field()), max_size=6), st.sampled_from(["log", "info", "undo"]))
    def check(lines: list[str], command: str) -> None:
        with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_graph(_TINY, d)
            (Path(d) / "changelog.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
            try:
                cur = Curator.open(d)
                log = cur.changelog
                log.undoable(), log.changed_ids(), log.full_refresh_needed(), [e.describe() for e in log]
                log._repr_html_()
            except KgclipError:
                pass
            assert main(["ontology", command, d]) in (0, 1)

    fuzz(check, 20)


def test_hand_edited_graph_files_fuzz(fuzz: Callable[..., None]) -> None:
    concept_row = st.lists(_field(), min_size=1, max_size=9).map("\t".join)
    relation_row = st.lists(_field(), min_size=1, max_size=5).map("\t".join)
    header_c = "id\tname\tdeprecated\tsource\tsemantic_types\tsynonyms\txrefs\tdefinition"
    header_r = "source\ttype\ttarget\torigin"

    @given(st.lists(concept_row, max_size=8), st.lists(relation_row, max_size=8),
           st.one_of(st.none(), JSON.map(lambda j: __import__("json").dumps(j))), st.booleans())
    def check(concepts: list[str], relations: list[str], meta: str | None, headers: bool) -> None:
        with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = Path(d)
            (root / "concepts.tsv").write_bytes(_assemble((([header_c] if headers else []) + concepts, "\n", False,
                                                            0, 1.0)))
            (root / "relations.tsv").write_bytes(_assemble((([header_r] if headers else []) + relations, "\n", False,
                                                             0, 1.0)))
            if meta is not None:
                (root / "meta.json").write_text(meta, encoding="utf-8", errors="surrogatepass")
            try:
                graph = load_graph_dir(root)
            except KgclipError:
                return
            graph.validate()
            fingerprint = graph.fingerprint()
            save_graph(graph, root)
            assert load_graph_dir(root, strict=True).fingerprint() == fingerprint

    fuzz(check, 40)
