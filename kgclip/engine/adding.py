"""Adding cases to a workspace (:meth:`kgclip.engine.Engine.add_cases`) as one locked, atomic mutation.

Under the workspace's writer lock the current version is read again from disk (another process may have added
cases since this engine loaded it), the new cases' images are stored as de-identified, content-addressed copies,
the vector tables are updated, the parts trained on the cases (the image metadata classifiers, the findings-concept
prior) are retrained on every case when the new cases bring what they learn from, and the new version (cases,
tables, parts, manifest) is swapped in (:func:`kgclip.engine.store.mutation`). Two processes adding at once are
serialised by the lock and both keep every case; a crash at any point leaves the previous version or the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgclip.engine.build import CONCEPT_PRIOR, METADATA_HEADS
from kgclip.engine.cases import Case, case_from_row, case_meta, load_cases, save_cases
from kgclip.engine.config import EngineConfig
from kgclip.engine.images import ensure_uid_salt, store_image
from kgclip.engine.limits import MAX_CASES_PER_ADD
from kgclip.engine.manifest import MANIFEST, read_manifest, write_engine_manifest
from kgclip.engine.store import mutation
from kgclip.engine.tables import backend_class, keeps_external_store, load_table
from kgclip.errors import ImageReadError, InputFormatError, StaleArtifactError
from kgclip.fingerprint import features_fingerprint

__all__ = ["add_cases", "checked_cases"]

# Parts of the workspace that adding cases rebuilds; everything else is carried over unchanged.
_REWRITTEN = {"cases.json", MANIFEST}
_TABLES = ("index_image", "index_text")
_SAME_BUILD = ("graph", "text_encoder", "image_featurizer", "answerer", "config")


def checked_cases(rows: Sequence[Mapping[str, Any] | Case], where: str = "case") -> list[Case]:
    """The rows as new :class:`Case` objects (the last of equal ``case_id`` wins), each image checked to exist.

    Raises:
        InputFormatError: a malformed row, or more than ``MAX_CASES_PER_ADD`` rows.
        ImageReadError: an image file is missing.
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise InputFormatError("add_cases takes a list of cases (mappings with case_id, image and text)")
    if len(rows) > MAX_CASES_PER_ADD:
        raise InputFormatError(f"{len(rows):,} cases in one call, above the limit of {MAX_CASES_PER_ADD:,}; add "
                               "them in batches")
    cases: dict[str, Case] = {}
    for i, row in enumerate(rows, start=1):
        case = case_from_row(row, f"{where} {i}")
        path = Path(case.image).expanduser()
        if not path.is_file():
            raise ImageReadError(f"{where} {i} ({case.case_id!r}): image {str(path)!r} does not exist; nothing "
                                 "was added")
        case.image, case.origin = str(path.resolve()), "added"
        cases.pop(case.case_id, None)
        cases[case.case_id] = case
    return list(cases.values())


def _check_same_build(engine: Any, current: Mapping[str, Any]) -> None:
    mine, theirs = engine.manifest["fingerprints"], current["fingerprints"]
    changed = [k for k in _SAME_BUILD if mine.get(k) != theirs.get(k)]
    if changed:
        raise StaleArtifactError(f"workspace {engine.directory} was rebuilt since this engine loaded it "
                                 f"({', '.join(changed)} changed); load it again with Engine.load, then add the cases")


def add_cases(engine: Any, rows: Sequence[Mapping[str, Any] | Case], *, copy_images: bool = True,
              allow_burned_in: bool = False) -> int:
    """Add or replace cases in ``engine``'s workspace and in ``engine`` itself; returns how many."""
    new = checked_cases(rows)
    if not new:
        return 0
    workspace = Path(engine.directory)
    backend = backend_class(engine.config.index_backend)
    external = keeps_external_store(backend)
    retrain = _parts_to_retrain(engine, new, backend)
    rewritten = _REWRITTEN | (set() if external else set(_TABLES)) | set(retrain)
    with mutation(workspace, carry=lambda live: [p.name for p in live.iterdir() if p.name not in rewritten]
                  ) as staging:
        current = read_manifest(workspace)
        _check_same_build(engine, current)
        cases = load_cases(workspace / "cases.json")
        tables = [load_table(workspace / "index_image", engine.featurizer.fingerprint),
                  load_table(workspace / "index_text", engine.table_text_encoder.fingerprint)]
        salt = ensure_uid_salt(staging)
        for case in new:
            if copy_images:
                case.image = store_image(staging, case.image, uid_salt=salt, allow_burned_in=allow_burned_in)
            case.concepts = engine.tagger.concept_ids(case.text, include_negated=False) if engine.tagger else []
        positions = _merge(cases, new)
        img = engine.featurizer.embed([staging / c.image if copy_images else Path(c.image) for c in new])
        txt = engine.table_text_encoder.encode([c.text or c.case_id for c in new]).numpy()
        meta = [case_meta(c) for c in new]
        for table, vectors, name in zip(tables, (img, txt), _TABLES):
            table.add(positions, vectors, meta)
            if not external:
                table.save(staging / name)
        parts = _retrained(engine, cases, tables[0], retrain)
        for name, part in parts.items():
            if part is not None:
                part.save(staging / name)
        save_cases(staging / "cases.json", cases)
        config = EngineConfig.load(staging / "engine_config.json")
        manifest = write_engine_manifest(staging, config, engine.graph, engine.text_encoder, engine.featurizer,
                                         cases, current["config"].get("build", {}), engine.neighbors)
    engine.cases, engine.case_index = cases, {c.case_id: i for i, c in enumerate(cases)}
    engine.image_table, engine.text_table = tables
    engine.manifest = manifest
    if METADATA_HEADS in parts:
        engine.metadata_heads = parts[METADATA_HEADS]
    if CONCEPT_PRIOR in parts:
        engine.concept_prior = parts[CONCEPT_PRIOR]
    return len(new)


def _parts_to_retrain(engine: Any, new: Sequence[Case], backend: type) -> list[str]:
    """The workspace parts that the new cases change: the metadata classifiers when a new case states its modality,
    region or QA; the concept prior when one has findings text. None when the index cannot give back its vectors
    (an external store): those parts are retrained at the next build / ``Engine.refresh``."""
    from kgclip.rag.concept_prior import case_findings

    if not hasattr(backend, "reconstruct"):
        return []
    parts = []
    if any(c.modality or c.body_part or c.qa for c in new):
        parts.append(METADATA_HEADS)
    if engine.tagger is not None and any(case_findings(c).strip() for c in new):
        parts.append(CONCEPT_PRIOR)
    return parts


def _retrained(engine: Any, cases: list[Case], image_table: Any, parts: Sequence[str]) -> dict[str, Any]:
    """``{part folder: the part trained on every case (None: the cases cannot train it)}`` for ``parts``.

    Every case's image vector is read back from the image table (ids are case positions), so nothing is
    re-embedded: a few seconds for the classifiers' penalty search, less for the prior."""
    if not parts:
        return {}
    from kgclip.rag.concept_prior import fit_case_prior
    from kgclip.rag.image_metadata import fit_case_heads

    vectors = image_table.reconstruct(list(range(len(cases))))
    fp = features_fingerprint(engine.featurizer)
    out: dict[str, Any] = {}
    if METADATA_HEADS in parts:
        out[METADATA_HEADS] = fit_case_heads(cases, vectors, feature_fingerprint=fp)
    if CONCEPT_PRIOR in parts:
        out[CONCEPT_PRIOR] = fit_case_prior(cases, vectors, tagger=engine.tagger, graph=engine.graph,
                                            feature_name=engine.featurizer.name, feature_fingerprint=fp)
    return out


def _merge(cases: list[Case], new: list[Case]) -> list[int]:
    """Put ``new`` into ``cases`` (replacing equal ``case_id``s in place); returns their positions (table ids)."""
    index = {c.case_id: i for i, c in enumerate(cases)}
    positions = []
    for case in new:
        i = index.get(case.case_id)
        if i is None:
            i = index[case.case_id] = len(cases)
            cases.append(case)
        else:
            cases[i] = case
        positions.append(i)
    return positions
