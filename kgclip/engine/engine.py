"""The :class:`Engine`: one workspace directory holding everything needed to ask a scan, search cases and draft a
report: the concept graph, the case collection and its vector tables, the trained VQA answerer, and a manifest of
fingerprints that ties them together.

Example:
    >>> engine = Engine.load("indexes/demo")                      # doctest: +SKIP
    >>> engine.ask("scan.dcm", "Is there a pleural effusion?")    # doctest: +SKIP
    >>> engine.draft_report("scan.dcm")                           # doctest: +SKIP
    >>> Engine.open("indexes/demo", model_dir="indexes/model")    # doctest: +SKIP

Staleness: the manifest records the fingerprints of the concept graph, the text encoder, the image featuriser and
each artifact. :meth:`Engine.load` refuses a workspace whose artifacts do not match (or whose text encoder differs
from the one asked for) with a message saying how to refresh it; :meth:`Engine.refresh` rebuilds what depends on a
changed ontology; :meth:`Engine.open` loads a workspace with the trained parts asked for, rebuilding it when it was
built with others. Building, loading and the checks live in :mod:`kgclip.engine.build`, :mod:`kgclip.engine.load`
and :mod:`kgclip.engine.open`; this module holds the queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgclip.engine.build import WorkspaceParts, build_workspace
from kgclip.engine.cases import Case
from kgclip.engine.concept_search import concept_search, negation_order, text_expansion
from kgclip.engine.config import EngineConfig
from kgclip.engine.limits import MAX_TEXT_CHARS, check_filters, check_k, check_text
from kgclip.engine.load import load_workspace
from kgclip.engine.manifest import read_manifest
from kgclip.engine.model_parts import NeighborConcepts
from kgclip.errors import ConfigError, InputFormatError, UnknownConceptError
from kgclip.fingerprint import features_fingerprint
from kgclip.index.base import SearchHit
from kgclip.models.image_input import ImageLike, LoadedImage, load_image
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.consensus import GraphExpander
from kgclip.rag.abstain import InputCheck, check_input, check_question, unreadable_question_reason
from kgclip.rag.evidence import CaseHit, Evidence, KGFact, QANeighbor, kg_facts
from kgclip.rag.grounding import asks_for_diagnosis, ground_answer, out_of_range_answer
from kgclip.rag.regions import BodyRegions, body_regions, check_region_label, regions_of_label
from kgclip.rag.report import DraftReport, draft_from_cases
from kgclip.rag.vqa import Answer, VQAAnswerer

if TYPE_CHECKING:
    from kgclip.rag.concept_prior import ConceptPrior
    from kgclip.display import SearchResults, Subgraph

__all__ = ["Engine", "EngineConfig"]

# A draft retrieves this many times draft_k cases, and drafts from the nearest draft_k of the image's region and
# modality among them (kgclip.rag.report_scope.scope_hits(max_cases=...)).
DRAFT_POOL_FACTOR = 10


class Engine:
    """Queries over one workspace. Create with :meth:`build` or :meth:`load`."""

    def __init__(self, directory: Path, config: EngineConfig, graph: ConceptGraph, cases: list[Case],
                 answerer: VQAAnswerer, image_table: Any, text_table: Any, text_encoder: Any,
                 manifest: dict[str, Any], *, featurizer: Any = None, table_text_encoder: Any = None,
                 neighbors: NeighborConcepts | None = None, metadata_heads: Any = None,
                 concept_prior: Any = None) -> None:
        self.directory = directory
        self.config = config
        self.graph = graph
        self.cases = cases
        self.case_index = {c.case_id: i for i, c in enumerate(cases)}
        self.answerer = answerer
        self.image_table = image_table  # a kgclip.index VectorIndex of the case images (ids: case positions)
        self.text_table = text_table  # the same over the case texts
        self.text_encoder = text_encoder
        # Image vectors: the KG-CLIP model's image tower when configured, else the thumbnail descriptor.
        self.featurizer = featurizer if featurizer is not None else ThumbnailFeaturizer()
        # Encoder of the case-text table and text search (the model's joint space when configured).
        self.table_text_encoder = table_text_encoder if table_text_encoder is not None else text_encoder
        self.neighbors = neighbors  # GNN nearest concepts, when configured
        # Modality / plane / region classifiers over the image vectors (kgclip.models.metadata_heads), or None.
        self.metadata_heads = metadata_heads
        # The findings-concept prior trained on this workspace's cases with findings (drafts), or None.
        self.concept_prior = concept_prior
        self.tagger = answerer.tagger or (ConceptTagger(graph) if config.use_kg else None)
        self.manifest = manifest
        self.llm = None  # a kgclip.rag.llm.LLMRewriter, set with use_llm()
        self._draft_expander: GraphExpander | None = None
        self._draft_regions: BodyRegions | None = None
        self._words: frozenset[str] = frozenset()  # the answerer's vocabulary (_known_words), and whose it is
        self._words_of: Any = None
        self.open_action: str | None = None  # set by open(): "loaded", "built" or "rebuilt"

    def __repr__(self) -> str:
        return (f"Engine({str(self.directory)!r}, cases={len(self.cases)}, concepts={len(self.graph)}, "
                f"answers={len(self.answerer.core.answers)}, index={self.config.index_backend})")

    # ------------------------------------------------------------------ build / load / open
    @classmethod
    def _from_parts(cls, parts: WorkspaceParts) -> "Engine":
        return cls(**vars(parts))

    @classmethod
    def build(cls, config: EngineConfig, workspace_dir: str | Path, *, vqa_rad: str | Path | None = None,
              graph: ConceptGraph | None = None, show_progress: bool = True,
              allow_burned_in: bool = False) -> "Engine":
        """Build a workspace from a VQA-RAD-style folder (JSON + ``images/``; default: the shipped sample).

        Cases are the images with statements from their training questions; the answerer trains on the training
        questions (``phrase_type`` freeform/para), so test questions stay unseen. Every input is read and every
        vector computed before the first write, so a bad input (e.g. a missing or corrupt ``model_dir``) leaves an
        existing workspace untouched. The build is one locked, atomic change of the workspace
        (:mod:`kgclip.engine.store`); cases added with :meth:`add_cases` are kept; images are stored as
        de-identified copies (:mod:`kgclip.engine.images`), ``allow_burned_in`` stores those whose header says
        ``BurnedInAnnotation=YES``.
        """
        return cls._from_parts(build_workspace(config, workspace_dir, vqa_rad=vqa_rad, graph=graph,
                                               show_progress=show_progress, allow_burned_in=allow_burned_in))

    @classmethod
    def load(cls, workspace_dir: str | Path, *, text_encoder: str | None = None,
             check_ontology_sources: bool = False) -> "Engine":
        """Open a workspace built by :meth:`build` (or ``kgclip demo``).

        Args:
            text_encoder: the text tower to query with (default: the one the workspace was built with); a
                different one is refused, since the stored vectors and answerer were made with the original.
            check_ontology_sources: also compare the graph with its source directories and refuse it if a curator
                changed them since (then call :meth:`refresh`).

        Raises:
            ArtifactCorruptError: not a workspace, or a file is missing / corrupt.
            EncoderMismatchError: built with another text encoder.
            StaleArtifactError: an artifact no longer matches the manifest, or the ontology changed.
        """
        return cls._from_parts(load_workspace(workspace_dir, text_encoder=text_encoder,
                                              check_ontology_sources=check_ontology_sources))

    @classmethod
    def open(cls, workspace_dir: str | Path, *, model_dir: str | Path | None = None,
             concept_embeddings_dir: str | Path | None = None, vqa_rad: str | Path | None = None,
             show_progress: bool = True, notify: Callable[[str], None] | None = None) -> "Engine":
        """Load a workspace with the trained parts asked for, building or rebuilding it first when needed.

        Without parts this is :meth:`load`. With a KG-CLIP model directory (``kgclip train``) and/or GNN concept
        embeddings (``kgclip kg train``), each part's fingerprint is compared with the workspace manifest's:

        - the workspace was built with exactly these parts: it is loaded as it is (a part found at another path
          with the same fingerprint is used from there, nothing is written);
        - it was built with other parts (or none): it is rebuilt in place with its saved :class:`EngineConfig` plus
          these parts (a part not given keeps the workspace's), on its own concept graph, from the data it was
          built from (or ``vqa_rad``). Cases added later with :meth:`add_cases` are not carried over;
        - there is no workspace yet: one is built with the defaults of ``kgclip demo`` plus these parts.

        A missing or corrupt part directory raises before anything is written. :attr:`open_action` tells which
        of ``"loaded"``, ``"built"``, ``"rebuilt"`` happened.

        Args:
            notify: receives the one line saying why a (re)build happens; default: printed to stderr when
                ``show_progress``.

        Raises:
            ModelNotFoundError, ArtifactCorruptError: a part directory is missing or not what it should be.
            StaleArtifactError: the embeddings describe another graph than the workspace's.
            ConfigError: ``workspace_dir`` exists but is not a workspace, or its build data is gone.
        """
        from kgclip.engine.open import open_workspace

        parts, action = open_workspace(workspace_dir, model_dir=model_dir,
                                       concept_embeddings_dir=concept_embeddings_dir, vqa_rad=vqa_rad,
                                       show_progress=show_progress, notify=notify)
        engine = cls._from_parts(parts)
        engine.open_action = action
        return engine

    @classmethod
    def refresh(cls, workspace_dir: str | Path, *, vqa_rad: str | Path | None = None,
                show_progress: bool = True) -> "Engine":
        """Rebuild the graph-dependent artifacts after an ontology edit (same data, same config)."""
        workspace = Path(workspace_dir)
        config = EngineConfig.load(workspace / "engine_config.json")
        source = vqa_rad or read_manifest(workspace)["config"].get("build", {}).get("source")
        return cls.build(config, workspace, vqa_rad=source, show_progress=show_progress)

    # ------------------------------------------------------------------ queries
    def image_path(self, case_or_path: str) -> Path:
        """Absolute path of a case image stored relative to the workspace."""
        path = Path(case_or_path)
        return path if path.is_absolute() else self.directory / path

    def _image_vector(self, image: ImageLike | LoadedImage) -> np.ndarray:
        return self.featurizer.embed_one(load_image(image))

    def _hit(self, hit: SearchHit, via: str) -> CaseHit:
        idx, meta = int(hit.id), hit.metadata
        case = self.cases[idx] if 0 <= idx < len(self.cases) else None
        return CaseHit(case_id=str(meta.get("case_id", idx)), score=float(hit.score), text=str(meta.get("text", "")),
                       image=str(self.image_path(case.image)) if case else "", via=via,
                       metadata={k: v for k, v in meta.items() if k not in ("text",)})

    def _search(self, table: Any, vector: np.ndarray, k: int, filters: Mapping[str, Any] | None = None
                ) -> list[SearchHit]:
        """Top-``k`` hits of one query vector ``[dim]`` in a vector table (``k`` capped, see
        :mod:`kgclip.engine.limits`)."""
        k = check_k(k, len(self.cases))
        return table.search(np.asarray(vector, np.float32)[None, :], k=k, filters=check_filters(filters))[0]

    def similar_cases(self, image: ImageLike | LoadedImage, k: int | None = None,
                      filters: Mapping[str, Any] | None = None) -> list[CaseHit]:
        k = check_k(self.config.k_cases if k is None else k, len(self.cases))
        filters = check_filters(filters)
        vec = self._image_vector(image)
        return [self._hit(h, "image") for h in self._search(self.image_table, vec, k, filters)]

    def ask(self, image: ImageLike | LoadedImage, question: str) -> Answer:
        """Answer a question about an image, with the evidence behind the answer.

        Raises:
            InputFormatError: the question is empty.
            ImageReadError: the image is missing or unreadable.
        """
        question = check_question(question)
        check = check_input(image)  # out-of-range inputs abstain with a reason; unreadable ones raise
        if not check.ok:
            linked = self.tagger.link(question) if self.tagger is not None else []
            evidence = Evidence(question=question, concepts=linked,
                                kg_facts=self._facts([m.concept_id for m in linked]) if self.config.use_kg else [])
            return out_of_range_answer(question, check, evidence)
        loaded = load_image(image)
        vec = self.featurizer.embed_one(loaded)
        pred = self.answerer.predict(question, vec)
        if unreadable := unreadable_question_reason(question, self._known_words(), bool(pred.concepts)):
            check = InputCheck(False, unreadable, check.header)
        # The nearest region_voters cases vote on the image's region as its draft's do; k_cases are the evidence.
        nearest = [self._hit(h, "image") for h in self._search(
            self.image_table, vec, max(self.config.k_cases, self.config.draft.region_voters))]
        cases = nearest[:self.config.k_cases]
        if self.config.model_dir is not None:  # joint space: the image also retrieves case texts (cross-modal)
            seen = {c.case_id for c in cases}
            cross = self._search(self.text_table, vec, self.config.k_cases)
            cases += [h for h in (self._hit(r, "image->text") for r in cross) if h.case_id not in seen]
        concept_ids = [m.concept_id for m in pred.concepts]
        evidence = Evidence(
            question=question, concepts=list(pred.concepts), similar_cases=cases,
            similar_questions=self._similar_questions(pred),
            kg_facts=self._facts(concept_ids, question=question) if self.config.use_kg else [])
        # By question kind: the DICOM header, the similar cases (the user's own included) and the answerer; then
        # calibrated abstention (kgclip.rag.grounding). The image hits carry their report sections: their
        # impressions are what a diagnosis question votes on.
        image_hits = [self._with_sections(c) for c in cases if c.via == "image"]
        diagnosis = (self._draft_diagnosis(loaded, vec) if self.config.use_kg and asks_for_diagnosis(question)
                     else None)
        answer = ground_answer(pred, question, check, image_hits, evidence, tagger=self.tagger,
                               graph=self.graph if self.config.use_kg else None,
                               image_threshold=self.answerer.meta.get("image_sim_threshold"),
                               min_confidence=self.answerer.min_confidence,
                               known_cases=frozenset(self.answerer.core.train_keys),
                               image_labels=self.image_labels(vec), diagnosis=diagnosis,
                               region_hits=nearest)
        if self.llm is not None and not answer.abstained:
            answer = self.llm.rewrite_answer(answer)
        return answer

    def _draft_diagnosis(self, image: LoadedImage, vec: np.ndarray) -> tuple[str, float, tuple[str, ...], str] | None:
        """The leading impression of the image's draft as a diagnosis answer (``(name, score, cases, concept)``), so
        that "What is the diagnosis?" and the draft never name two diagnoses; ``None`` when the draft has none. The
        image is not embedded again, and no LLM rewrites a report nobody reads."""
        report = self._draft(image, vec, k=check_k(self.config.draft_k, len(self.cases)))
        if not report.impression or not report.impression[0].concepts:
            return None
        lead = report.impression[0]
        return self.graph.name_of(lead.concepts[0]), float(lead.score), tuple(lead.cases), lead.concepts[0]

    def _known_words(self) -> frozenset[str]:
        """The words the linker's lexicon is made of (every concept name and synonym, plurals folded) and those of
        the answerer's training questions and answers (memoised per answerer; empty without a tagger: then no
        question is refused as unreadable)."""
        if self._words_of is not self.answerer:
            words: set[str] = set()
            if self.tagger is not None:
                from kgclip.text.lexicon import normalize_token

                words.update(self.tagger.linker.lexicon.vocabulary)
                text = " ".join(f"{e.question} {e.answer}" for e in getattr(self.answerer, "examples", []))
                words.update(normalize_token(w) for w in re.findall(r"[a-z]+", text.lower()))
            self._words, self._words_of = frozenset(words), self.answerer
        return self._words

    def _similar_questions(self, pred: Any) -> list[QANeighbor]:
        """The answerer's neighbour questions that were asked about a *similar image*: at least as similar to this
        one as the in-range threshold (``image_sim_threshold``, what abstention uses). Shown as "similar questions
        on similar images", so for an image unlike every memory image (one resembling only the user's cases) none
        is listed, rather than questions about unrelated images that merely read alike."""
        image_sims = pred.neighbor_image_similarity or [None] * len(pred.neighbors)
        threshold = self.answerer.meta.get("image_sim_threshold")
        return [QANeighbor(e.question, e.answer, e.image_key, s, image_score=i)
                for (e, s), i in zip(pred.neighbors, image_sims)
                if threshold is None or i is None or i >= float(threshold)]

    def image_labels(self, vector: np.ndarray) -> dict[str, dict[str, float]] | None:
        """The metadata classifiers' calibrated probabilities for one image vector ``[dim]``
        (``{"modality": {"CT": 0.93, ...}, "plane": ..., "region": ...}``); ``None`` without classifiers."""
        if self.metadata_heads is None:
            return None
        from kgclip.rag.image_metadata import answering_labels

        # Contrast / sequence heads answer only where they beat the majority class on their validation carve.
        return answering_labels(self.metadata_heads,
                                self.metadata_heads.predict(np.asarray(vector, np.float32)[None, :])[0])

    def fit_answerer(self, pairs: Sequence[Any], *, replace: bool = False, show_progress: bool = True
                     ) -> dict[str, Any]:
        """Refit the answerer on its questions plus the user's ``pairs`` (:func:`kgclip.rag.user_qa.read_qa_pairs`;
        only those with ``replace``), save it and the manifest. Returns the cross-validated figures."""
        from kgclip.engine.cases import load_cases
        from kgclip.engine.manifest import MANIFEST, write_engine_manifest
        from kgclip.engine.store import mutation
        from kgclip.rag.user_qa import refit_answerer

        answerer, val = refit_answerer(self.answerer, pairs, self.featurizer, graph=self.graph, replace=replace,
                                       show_progress=show_progress)  # all fitting before the workspace is touched
        answerer.tagger = self.tagger
        # One locked, atomic change: the new answerer and manifest swap in together (kgclip.engine.store).
        with mutation(self.directory, carry=lambda live: [p.name for p in live.iterdir()
                                                          if p.name not in ("answerer", MANIFEST)]) as staging:
            build = read_manifest(self.directory)["config"].get("build", {})
            answerer.save(staging / "answerer")
            config = EngineConfig.load(staging / "engine_config.json")
            self.manifest = write_engine_manifest(staging, config, self.graph, self.text_encoder, self.featurizer,
                                                  load_cases(staging / "cases.json"), build, self.neighbors)
        self.answerer = answerer
        return val

    def _facts(self, concept_ids: list[str], limit: int = 12, per_concept: int = 4, question: str = "") -> list[KGFact]:
        """Graph relations of the concepts, plus their nearest concepts by GNN embedding when configured."""
        facts = kg_facts(self.graph, concept_ids, limit=limit, per_concept=per_concept, question=question)
        if self.neighbors is not None:
            facts += self.neighbors.facts(self.graph, concept_ids, k=3, limit=limit)
        return facts

    def nearest_concepts(self, concept_id: str, k: int = 5) -> list[tuple[str, str, float]]:
        """``(id, name, cosine)`` of the concepts nearest to ``concept_id`` by GNN embedding.

        Raises:
            ConfigError: the workspace has no ``concept_embeddings_dir``.
        """
        if self.neighbors is None:
            raise ConfigError("nearest concepts need GNN embeddings: build the workspace with "
                              "EngineConfig(concept_embeddings_dir=...) (from `kgclip kg train`)")
        return [(cid, self.graph.name_of(cid) if cid in self.graph else cid, score)
                for cid, score in self.neighbors.nearest(concept_id, k)]

    def search(self, *, text: str | None = None, image: ImageLike | LoadedImage | None = None, k: int = 10,
               filters: Mapping[str, Any] | None = None, cross_modal: bool = False, concept: str | None = None,
               descendants: bool = True, expand: bool = False) -> "SearchResults":
        """Cases similar to a text (over case texts) or to an image (image to image), or cases of a concept.

        Args:
            filters: metadata filters, e.g. ``{"body_part": "CHEST"}``, ``{"modality": "CT"}``,
                ``{"concept": "RADLEX:RID4872"}`` (exact concept ids).
            cross_modal: with ``image=``, search the case texts instead (image->text in the KG-CLIP model's joint
                space; needs ``model_dir``).
            concept: only cases linked to this concept, its ``is_a`` descendants (``descendants``) or its
                ``same_as`` partners, ranked by ``text=`` / ``image=`` or else by the concept's name; each hit's
                ``metadata["matched_through"]`` says how (``"lobar pneumonia ⊂ pneumonia"``).
            expand: with ``text=``, link the text and rank cases of the concepts it names (and their descendants
                and ``same_as`` partners) first. ``results.expansion`` shows the expansion.

        A plain ``text=`` search puts cases that say the opposite of the text after the others ("No pleural
        effusion" for "pleural effusion"; :func:`~kgclip.engine.concept_search.negation_order`), marked in
        ``metadata["opposes_query"]``.
        """
        from kgclip.display import SearchResults

        if (text is not None and image is not None) or (text is None and image is None and concept is None):
            raise InputFormatError("pass exactly one of text= or image= to search (or concept= alone)")
        if cross_modal and (image is None or self.config.model_dir is None):
            raise ConfigError("cross_modal search takes image= and a workspace built with "
                              "EngineConfig(model_dir=...) (a KG-CLIP model from `kgclip train`)")
        k, filters = check_k(k, len(self.cases)), check_filters(filters)
        if text is not None:
            text = check_text(text, "search text", MAX_TEXT_CHARS, "pleural effusion")
        if image is None:
            query = text if text is not None else self.graph.name_of(concept)  # type: ignore[arg-type]
            table, vec, via = self.text_table, self.table_text_encoder.encode([query]).numpy()[0], "text"
        else:
            table, vec = (self.text_table, self._image_vector(image)) if cross_modal else (self.image_table,
                                                                                          self._image_vector(image))
            via = "image->text" if cross_modal else "image"

        def run(f: Mapping[str, Any] | None) -> list[CaseHit]:
            return [self._hit(r, via) for r in self._search(table, vec, k, f)]

        expansion = None
        if concept is not None:
            hits, expansion = concept_search(self.graph, concept, run, descendants=descendants, filters=filters)
        elif expand and text is not None:
            hits, expansion = text_expansion(self.graph, self.tagger.linker if self.tagger else None, text, run, k,
                                             descendants=descendants, filters=filters)
        elif text is not None and self.tagger is not None:
            # Twice as many, so cases saying the opposite of the query give way to the next ones that do not.
            more = [self._hit(r, via) for r in self._search(table, vec, 2 * k, filters)]
            hits = negation_order(more, text, self.tagger, k)
        else:
            hits = run(filters)
        # Hits are the same CaseHit records evidence uses; SearchResults adds the notebook rendering.
        results = SearchResults(hits)
        results.expansion = expansion
        return results

    def draft_report(self, image: ImageLike | LoadedImage, *, k: int | None = None,
                     filters: Mapping[str, Any] | None = None, exclude_identical: bool = True,
                     region: str | None = None, modality: str | None = None,
                     concept_prior: ConceptPrior | None = None, min_confidence: float | None = None) -> DraftReport:
        """Draft findings and an impression from the most similar cases of the image's body region, each sentence
        citing its case (only findings / impression text of the cases is drafted; see :mod:`kgclip.rag.report`).

        Args:
            k: cases that vote on the findings (default ``config.draft_k``).
            filters: case metadata the voting cases must share, e.g. ``{"modality": "CT"}``.
            exclude_identical: skip a case whose image is the query image itself (cosine >= 0.9999), so that a
                draft for an image already in the workspace is not a copy of its own case.
            region, modality: the query's body region and modality; default: the image header's
                ``BodyPartExamined`` / ``Modality``, else the workspace's metadata classifiers when they are sure
                (:data:`kgclip.rag.report_scope.REGION_THRESHOLD`), else the similar cases' own regions vote. With no
                similar case of that region, the draft is empty and ``report.notice`` says so.
            concept_prior: a :class:`~kgclip.rag.concept_prior.ConceptPrior` trained on this workspace's image
                features (:func:`~kgclip.rag.concept_prior.train_concept_prior`); its probabilities for the image
                are mixed into the similar cases' consensus with ``config.draft.prior_mix``. Default: the prior
                the build trained on the workspace's own cases with findings (``self.concept_prior``; none when
                fewer than :data:`~kgclip.rag.concept_prior.MIN_PRIOR_CASES` cases have findings text).
            min_confidence: decline to draft below this confidence (``report.confidence``, the similar cases'
                calibrated agreement: :mod:`kgclip.rag.draft_confidence`); the declined report has no sentences, a
                ``notice`` saying why, ``abstained=True`` and its similar cases. Default:
                ``config.draft.min_confidence``; 0: always draft.

        Raises:
            ConfigError: ``region`` names no body region (:func:`kgclip.rag.regions.regions_of_label`), before the
                image is read. A header's ``BodyPartExamined`` that names none is ignored instead.
        """
        k = check_k(self.config.draft_k if k is None else k, len(self.cases), "k (similar cases to draft from)")
        if region:
            check_region_label(region)
        loaded = load_image(image)
        report = self._draft(loaded, self._image_vector(loaded), k=k, filters=filters,
                             exclude_identical=exclude_identical, region=region, modality=modality,
                             concept_prior=concept_prior, min_confidence=min_confidence)
        if self.llm is not None:
            report = self.llm.rewrite_report(report)
        return report

    def _draft(self, loaded: LoadedImage, vec: np.ndarray, *, k: int, filters: Mapping[str, Any] | None = None,
               exclude_identical: bool = True, region: str | None = None, modality: str | None = None,
               concept_prior: ConceptPrior | None = None, min_confidence: float | None = None) -> DraftReport:
        """:meth:`draft_report` for an image already read and embedded (``vec``), its arguments checked; no LLM
        rewrite."""
        region = region or loaded.meta.get("body_part") or None
        if region and not regions_of_label(region):
            region = None  # a header term kgclip cannot place ("WHOLEBODY"): the classifiers and the vote decide
        modality = modality or loaded.meta.get("modality") or None
        labels = self.image_labels(vec) if not (region and modality) else None
        # Many more cases than are drafted from: the draft's scope keeps those of the image's region and modality
        # and drafts from the nearest k of them, not from what is left of the k nearest (MedPix val, 3 carve
        # seeds, 312 drafts, benchmarks/exp_engine_retrieval.py: concept F1 0.115 -> 0.128; kgclip eval report's
        # retrieval, filtered by the header's modality and category with a shared-field bonus, 0.134).
        k_hits = check_k(min(k * DRAFT_POOL_FACTOR + 1, len(self.cases)), len(self.cases))
        hits = [self._hit(h, "image") for h in self._search(self.image_table, vec, k_hits, check_filters(filters))]
        if exclude_identical:
            hits = [h for h in hits if h.score < 0.9999]
        hits = [self._with_sections(h) for h in hits]
        if self._draft_expander is None:  # built once: it memoises each concept's ancestors across drafts
            self._draft_expander = GraphExpander(self.graph, self.config.draft.graph_hops)
            self._draft_regions = body_regions(self.graph)  # shared with the answers' region check
        probs = self._prior_probabilities(concept_prior or self.concept_prior, vec, modality, region, labels)
        config = self.config.draft
        if min_confidence is not None:
            config = replace(config, min_confidence=min_confidence)  # checked by DraftConfig
        return draft_from_cases(hits, tagger=self.tagger, graph=self.graph, config=config,
                                use_kg=self.config.use_kg, expander=self._draft_expander,
                                regions=self._draft_regions, query_region=region, query_modality=modality,
                                image_labels=labels, concept_prior=probs, max_cases=k)

    def _prior_probabilities(self, prior: ConceptPrior | None, vec: np.ndarray, modality: str | None,
                             region: str | None, labels: Mapping[str, Any] | None) -> dict[str, float] | None:
        """``{concept: probability}`` of ``prior`` for the query image, or ``None`` without a prior."""
        if prior is None:
            return None
        prior.check_features(features_fingerprint(self.featurizer), where=" given",
                             fix=f"this workspace's are {self.featurizer.name!r}: retrain it on this workspace")
        if prior.meta.get("metadata_keys") == "normalized":  # a workspace prior: keyed in the shared vocabulary
            from kgclip.rag.concept_prior import metadata_keys
            from kgclip.rag.image_metadata import confident_label
            from kgclip.rag.report_scope import MODALITY_THRESHOLD, REGION_THRESHOLD

            modality, region = metadata_keys(modality, region)
            # Unknown from the caller and the header: the classifiers' label when they are as sure as the
            # report's scope requires; else the prior's region- / collection-wide rates.
            if not modality and (found := confident_label(labels, "modality", MODALITY_THRESHOLD)):
                modality = found[0]
            if not region and (found := confident_label(labels, "region", REGION_THRESHOLD)):
                region = found[0]
        return prior.predict_one(vec, modality, region)

    def _with_sections(self, hit: CaseHit) -> CaseHit:
        """The hit with its case's report sections; a case whose text was made from question/answer pairs is
        marked so that none of it is drafted (QA pairs are evidence for answers, not report sentences)."""
        i = self.case_index.get(hit.case_id)
        case = self.cases[i] if i is not None else None
        if case is None:
            return hit
        extra: dict[str, Any] = {"findings": case.findings, "impression": case.impression}
        if case.qa and not (case.findings or case.impression):
            extra["text_source"] = "qa"
        return replace(hit, metadata={**hit.metadata, **extra})

    def explain(self, concept: str, hops: int = 1, max_nodes: int = 40) -> "Subgraph":
        """A concept's neighbourhood in the graph (by id, or by a name the linker recognises)."""
        from kgclip.display import Subgraph

        cid = concept if concept in self.graph else None
        if cid is None and self.tagger is not None:
            ids = self.tagger.concept_ids(concept)
            cid = ids[0] if ids else None
        if cid is None:
            raise UnknownConceptError(f"{concept!r} is neither a concept id nor a name in the workspace graph; "
                                      "try an id like 'RADLEX:RID4872' or `kgclip ontology search`")
        ids = self.graph.neighborhood([cid], hops=hops)[:max_nodes]
        return Subgraph(cid, self.graph.name_of(cid), self.graph.subgraph_nx(ids),
                        self._facts([cid], limit=20, per_concept=20))

    def add_cases(self, cases: Sequence[Mapping[str, Any] | Case], *, copy_images: bool = True,
                  allow_burned_in: bool = False) -> int:
        """Add cases (``case_id``, ``image`` path, ``text``, optional ``modality`` / ``body_part``) to the
        search tables and the drafting pool, and save, as one locked, atomic change of the workspace
        (:mod:`kgclip.engine.adding`). Added cases vote in :meth:`ask` at once (presence of their findings, their
        modality / body part); the answerer's head is refit with :meth:`fit_answerer`; rebuilds keep added cases.
        New cases that state a modality / region / QA retrain the image metadata classifiers, and new cases with
        findings the findings-concept prior, on every case's stored vector (a few seconds).

        Args:
            copy_images: store a de-identified, content-addressed copy of each image in the workspace
                (:mod:`kgclip.engine.images`); ``False`` keeps the absolute path of the original.
            allow_burned_in: store images whose header says ``BurnedInAnnotation=YES`` (refused by default).

        Returns:
            How many cases were added or replaced.

        Raises:
            InputFormatError: a malformed case; ImageReadError: an image is missing or unreadable, or has burned-in
            annotation; StaleArtifactError: the workspace was rebuilt since this engine loaded it; LockedError:
            another writer held the workspace too long. Nothing is added then.
        """
        from kgclip.engine.adding import add_cases

        return add_cases(self, cases, copy_images=copy_images, allow_burned_in=allow_burned_in)

    def use_llm(self, chat_model: Any, *, timeout_s: float = 30.0) -> "Engine":
        """Let a langchain chat model rewrite answers and drafts (citations must survive; else the built-in
        result is kept and flagged). ``None`` switches it off."""
        from kgclip.rag.llm import LLMRewriter

        self.llm = None if chat_model is None else LLMRewriter(chat_model, timeout_s=timeout_s)
        return self

