"""OWL ingest: kgclip's streaming RDF/XML readers vs ``rdflib.Graph().parse()`` of the same file, in one run.

Files: the Disease Ontology's ``DO_cancer_slim.owl`` (small, real) and a RadLex-scale OWL generated from
``Radlex.csv`` in RSNA's RadLex OWL shape (every RID a class with ``Preferred_name``, ``rdfs:label``, synonyms,
a ``Part_Of`` ``owl:Restriction`` and, for some, a direct ``Has_Part``, a ``UMLS_ID``, a definition and a later
``rdf:Description`` block). kgclip's time is the full reader (records out); rdflib's is ``parse`` alone (triples
only, before any interpretation), so the ratio understates kgclip's advantage.

It also checks that kgclip and an independent rdflib-based extraction (:func:`rdflib_extract`, here and not in the
library) yield the same concepts and relations on both files.

Usage: ``python benchmarks/bench_ontology_ingest.py [--data PATH] [--quick]``; prints one JSON line last with
``speedup_vs_rdflib_small``, ``speedup_vs_rdflib_radlex``, ``concepts``, ``relations``, ``same_as_rdflib``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

from kgclip.config import shared_data_dir
from kgclip.ontology.model import ConceptGraph, normalize_curie, normalize_relation_type
from kgclip.ontology.sources import read_records

OWL = "http://www.w3.org/2002/07/owl#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OBOINOWL = "http://www.geneontology.org/formats/oboInOwl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
RADLEX = "http://www.radlex.org/RID/"
# RO relation ids as the Relation Ontology labels them (the extraction below is independent of kgclip's tables).
RO_LABELS = {"RO_0001025": "located in", "RO_0004026": "disease has location", "RO_0002452": "has symptom",
             "RO_0002200": "has phenotype", "RO_0002573": "has modifier", "RO_0002202": "develops from",
             "RO_0002162": "in taxon", "IDO_0000664": "has material basis in", "BFO_0000050": "part of",
             "BFO_0000051": "has part"}


# ----------------------------------------------------------------------------------------- rdflib reference
def _local(iri: str) -> str:
    return re.split(r"[#/]", str(iri))[-1]


def _class_id(iri: str, flavor: str, namespace: str) -> str:
    local = _local(iri)
    if flavor == "radlex":
        return "RADLEX:" + local.upper()
    out = normalize_curie(local)
    return out if ":" in out else f"{namespace}:{local}"


def _xref(text: str) -> str | None:
    text = text.strip()
    if not text or " " in text or text.lower().startswith(("url:", "http:", "https:")):
        return None
    text = re.sub(r"^SNOMEDCT(?:_US)?(?:_\d{4}_\d{2}_\d{2})?:", "SNOMEDCT:", text, flags=re.IGNORECASE)
    out = normalize_curie(text)
    return out if ":" in out else None


def rdflib_extract(path: str | Path, flavor: str = "owl", namespace: str | None = None
                   ) -> tuple[dict[str, tuple], set[tuple[str, str, str]]]:
    """Concepts ``{id: (name, synonyms, definition, deprecated, xrefs)}`` and relations ``{(s, type, t)}`` of an
    OWL file, computed from rdflib's triples (the reference the fast reader is checked against)."""
    import rdflib
    from rdflib import BNode, Literal, URIRef
    from rdflib.namespace import OWL as O, RDF, RDFS as R

    path = Path(path)
    namespace = namespace or re.sub(r"[^0-9A-Za-z]+", "_", path.stem).upper()
    g = rdflib.Graph()
    g.parse(str(path), format="turtle" if path.suffix == ".ttl" else "xml")
    prop_labels = {str(s): str(o) for s, o in g.subject_objects(R.label)
                   if (s, RDF.type, O.ObjectProperty) in g or (s, RDF.type, O.AnnotationProperty) in g}

    def rel_type(prop: str) -> str:
        if flavor == "radlex":
            return normalize_relation_type(_local(prop))
        return normalize_relation_type(prop_labels.get(prop) or RO_LABELS.get(_local(prop)) or _local(prop))

    def texts(s, *preds) -> list[str]:
        out = []
        for p in preds:
            out += sorted(str(o).strip() for o in g.objects(s, URIRef(p)) if isinstance(o, Literal))
        return out

    classes = {s for s in g.subjects(RDF.type, O.Class) if isinstance(s, URIRef)}
    if flavor == "radlex":
        classes = {s for s in classes if re.fullmatch(r"RID\d+", _local(s), re.IGNORECASE)}
    concepts: dict[str, tuple] = {}
    relations: set[tuple[str, str, str]] = set()
    for s in classes:
        cid = _class_id(s, flavor, namespace)
        deprecated = any(str(o).lower() == "true" for o in g.objects(s, O.deprecated))
        if flavor == "radlex":
            preferred = texts(s, RADLEX + "Preferred_name") + texts(s, RADLEX + "Preferred_Name_for_Obsolete")
            labels = [t for t in texts(s, RDFS + "label") if not re.fullmatch(r"RID\d+", t)]
            name = preferred[0] if preferred else (labels[0] if labels else "")
            synonyms = set(texts(s, RADLEX + "Synonym")) | set(labels)
            definition = (texts(s, RADLEX + "Definition") or [""])[0]
            xrefs = {"UMLS:" + v for v in texts(s, RADLEX + "UMLS_ID")}
            deprecated = deprecated or bool(texts(s, RADLEX + "Preferred_Name_for_Obsolete"))
        else:
            names = texts(s, RDFS + "label") or texts(s, SKOS + "prefLabel")
            name = names[0] if names else ""
            synonyms = set(texts(s, OBOINOWL + "hasExactSynonym", OBOINOWL + "hasRelatedSynonym", SKOS + "altLabel"))
            definition = (texts(s, "http://purl.obolibrary.org/obo/IAO_0000115", SKOS + "definition") or [""])[0]
            xrefs = {x for x in map(_xref, texts(s, OBOINOWL + "hasDbXref", SKOS + "exactMatch")) if x} - {cid}
        for parent in g.objects(s, R.subClassOf):
            if isinstance(parent, URIRef) and parent != O.Thing:
                relations.add((cid, "is_a", _class_id(parent, flavor, namespace)))
                obsolete_parent = _local(parent).upper() == "RID15849" or "obsolete" in _local(parent).lower()
                if flavor == "radlex" and obsolete_parent:
                    deprecated = True
            elif isinstance(parent, BNode) and (parent, RDF.type, O.Restriction) in g:
                prop, filler = g.value(parent, O.onProperty), g.value(parent, O.someValuesFrom)
                if isinstance(prop, URIRef) and isinstance(filler, URIRef):
                    relations.add((cid, rel_type(str(prop)), _class_id(filler, flavor, namespace)))
        if flavor == "radlex":
            for p, o in g.predicate_objects(s):
                if (isinstance(o, URIRef) and str(p).startswith(RADLEX)
                        and re.fullmatch(r"RID\d+", _local(o), re.IGNORECASE)):
                    relations.add((cid, rel_type(str(p)), _class_id(o, flavor, namespace)))
        concepts[cid] = (name, tuple(sorted(synonyms - {name})), definition, deprecated, tuple(sorted(xrefs)))
    return concepts, relations


def kgclip_extract(fmt: str, path: str | Path) -> tuple[dict[str, tuple], set[tuple[str, str, str]]]:
    """The same view of kgclip's reader output (through ``ConceptGraph.from_records``, which merges repeats)."""
    graph = ConceptGraph.from_records(read_records(fmt, path), link_xrefs=False)
    concepts = {c.id: (c.name, tuple(sorted(c.synonyms)), c.definition, c.deprecated, tuple(sorted(c.xrefs)))
                for c in graph.concepts()}
    relations = {(r.source, r.type, r.target) for r in graph.relations()} | {
        (r.source, r.type, r.target) for r in graph.dangling}
    return concepts, relations


# ----------------------------------------------------------------------------------------- RadLex-scale file
def write_radlex_owl(radlex_csv: Path, out: Path, limit: int | None = None) -> int:
    """A RadLex-shaped OWL file with one class per ``Radlex.csv`` row; returns the number of classes."""
    with open(radlex_csv, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.reader(handle) if len(r) == 3]
    if limit:
        rows = rows[:limit]
    rids = [r[1] for r in rows]
    parts = [
        '<?xml version="1.0"?>\n<rdf:RDF xmlns="http://www.radlex.org/RID/"\n'
        '     xml:base="http://www.radlex.org/RID/"\n'
        '     xmlns:owl="http://www.w3.org/2002/07/owl#"\n'
        '     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"\n'
        '     xmlns:xml="http://www.w3.org/XML/1998/namespace"\n'
        '     xmlns:xsd="http://www.w3.org/2001/XMLSchema#"\n'
        '     xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">\n'
        '    <owl:Ontology rdf:about="http://www.radlex.org/RID/"/>\n'
        '    <owl:ObjectProperty rdf:about="http://www.radlex.org/RID/Part_Of"/>\n'
        '    <owl:ObjectProperty rdf:about="http://www.radlex.org/RID/Has_Part"/>\n'
        '    <owl:AnnotationProperty rdf:about="http://www.radlex.org/RID/Preferred_name"/>\n'
        '    <owl:AnnotationProperty rdf:about="http://www.radlex.org/RID/Synonym"/>\n'
    ]
    late = []
    for i, (term, rid, parent) in enumerate(rows):
        t = escape(term)
        other = rids[(i * 7919 + 13) % len(rids)]
        body = [f'    <!-- http://www.radlex.org/RID/{rid} -->\n\n'
                f'    <owl:Class rdf:about="http://www.radlex.org/RID/{rid}">\n']
        if parent != "RID0":
            body.append(f'        <rdfs:subClassOf rdf:resource="http://www.radlex.org/RID/{parent}"/>\n')
        body.append('        <rdfs:subClassOf>\n            <owl:Restriction>\n'
                    '                <owl:onProperty rdf:resource="http://www.radlex.org/RID/Part_Of"/>\n'
                    f'                <owl:someValuesFrom rdf:resource="http://www.radlex.org/RID/{other}"/>\n'
                    '            </owl:Restriction>\n        </rdfs:subClassOf>\n')
        body.append(f'        <Preferred_name xml:lang="en">{t}</Preferred_name>\n')
        body.append(f'        <Synonym xml:lang="en">{t} structure</Synonym>\n')
        if i % 3 == 0:
            body.append(f'        <Synonym xml:lang="en">{t} (RadLex)</Synonym>\n')
        if i % 4 == 0:
            body.append(f'        <Definition xml:lang="en">Definition of {t}.</Definition>\n')
        if i % 5 == 0:
            body.append(f'        <UMLS_ID>C{1000000 + i:07d}</UMLS_ID>\n')
        if i % 6 == 0:
            part = rids[(i * 31 + 7) % len(rids)]
            body.append(f'        <Has_Part rdf:resource="http://www.radlex.org/RID/{part}"/>\n')
        body.append(f'        <rdfs:label xml:lang="en">{t}</rdfs:label>\n    </owl:Class>\n\n')
        parts.append("".join(body))
        if i % 10 == 0:
            late.append(f'    <rdf:Description rdf:about="http://www.radlex.org/RID/{rid}">\n'
                        f'        <Synonym xml:lang="en">{t} (alternate)</Synonym>\n    </rdf:Description>\n')
    parts.extend(late)
    parts.append("</rdf:RDF>\n")
    out.write_text("".join(parts), encoding="utf-8")
    return len(rows)


# ----------------------------------------------------------------------------------------- timing
def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _rdflib_parse(path: Path) -> None:
    import rdflib

    rdflib.Graph().parse(str(path), format="xml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data dir (default: ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="a 5,000-class RadLex file, one repeat")
    args = parser.parse_args(argv)
    data = args.data or shared_data_dir()
    if data is None:
        print("needs ../shared/data (or --data PATH)", file=sys.stderr)
        return 2
    small = data / "ontologies" / "doid" / "subsets" / "DO_cancer_slim.owl"
    radlex_csv = data / "ontologies" / "radlex" / "Radlex.csv"
    repeats = 1 if args.quick else 3
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "RadLex_generated.owl"
        classes = write_radlex_owl(radlex_csv, big, limit=5000 if args.quick else None)
        t_small = _best(lambda: list(read_records("owl", small)), repeats * 3)
        r_small = _best(lambda: _rdflib_parse(small), repeats)
        t_big = _best(lambda: list(read_records("radlex-owl", big)), repeats)
        r_big = _best(lambda: _rdflib_parse(big), 1)
        k_small, k_big = kgclip_extract("owl", small), kgclip_extract("radlex-owl", big)
        same = k_small == rdflib_extract(small, "owl") and k_big == rdflib_extract(big, "radlex")
        result.update({
            "speedup_vs_rdflib_small": round(r_small / t_small, 2),
            "speedup_vs_rdflib_radlex": round(r_big / t_big, 2),
            "concepts": len(k_big[0]),
            "relations": len(k_big[1]),
            "same_as_rdflib": bool(same),
            "radlex_classes": classes,
            "radlex_file_mb": round(big.stat().st_size / 2**20, 1),
            "kgclip_s_radlex": round(t_big, 3),
            "rdflib_s_radlex": round(r_big, 3),
            "kgclip_s_small": round(t_small, 4),
            "rdflib_s_small": round(r_small, 4),
            "small_concepts": len(k_small[0]),
            "small_relations": len(k_small[1]),
            "goal_speedup_radlex": 10,
            "quick": bool(args.quick),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
