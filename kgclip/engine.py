"""The :class:`Engine`: one workspace directory holding everything needed to ask a scan, search cases and draft a
report: the concept graph, the case collection and its vector tables, the trained VQA answerer, and a manifest of
fingerprints that ties them together.

Example:
    >>> engine = Engine.load("indexes/demo")                      # doctest: +SKIP
    >>> engine.ask("scan.dcm", "Is there a pleural effusion?")    # doctest: +SKIP
    >>> engine.draft_report("scan.dcm")                           # doctest: +SKIP

Staleness: the manifest records the fingerprints of the concept graph, the text encoder, the image featuriser and
each artifact. :meth:`Engine.load` refuses a workspace whose artifacts do not match (or whose text encoder differs
from the one asked for) with a message saying how to refresh it; :meth:`Engine.refresh` rebuilds what depends on a
changed ontology.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgclip.config import Config
from kgclip.errors import (ConfigError, EncoderMismatchError, InputFormatError, ModelNotFoundError,
                           StaleArtifactError, UnknownConceptError)
from kgclip.fingerprint import fingerprint_file, fingerprint_json
from kgclip.ontology.model import ConceptGraph
from kgclip.rag.answerer import AnswererConfig
from kgclip.rag.cases import Case, VectorTable, load_cases, save_cases
from kgclip.rag.concepts import ConceptTagger
from kgclip.rag.evidence import CaseHit, Evidence, KGFact, QANeighbor, kg_facts
from kgclip.rag.inputs import ImageLike, LoadedImage, ThumbnailFeaturizer, load_image
from kgclip.rag.model_parts import NeighborConcepts
from kgclip.rag.report import DraftReport, draft_from_cases
from kgclip.rag.vqa import Answer, VQAAnswerer
from kgclip.rag.workspace import cases_from_vqa_rad, qa_examples, read_manifest, write_manifest

if TYPE_CHECKING:
    from kgclip.display import SearchResults, Subgraph

__all__ = ["Engine", "EngineConfig"]


@dataclass(frozen=True)
class EngineConfig(Config):
    """How a workspace is built."""

    text_encoder: str = "minilm"  # name or local directory of the text tower (questions and case texts)
    ontology_dirs: tuple[str, ...] = ()  # graph directories; empty: the ontologies kgclip ships
    use_kg: bool = True  # link questions and case texts to the graph; dedupe/contradictions in drafts
    answerer: AnswererConfig = field(default_factory=AnswererConfig)
    k_cases: int = 5  # similar cases shown as evidence and used for drafting
    max_findings: int = 6  # sentences in a drafted findings section
    # Vector tables: "faiss" (in-process, saved in the workspace) or "milvus" (a Milvus collection per table).
    index_backend: str = "faiss"
    # milvus only: a Milvus Lite file ("x.db") or a server ("http://host:19530"), shared by both tables (each in a
    # new unique collection). None: a Milvus Lite file inside each table's directory (<workspace>/index_*/milvus.db),
    # so the workspace stays self-contained and movable.
    index_uri: str | None = None
    # A KGClipModel directory (kgclip train): its image tower gives the image vectors (image table, image search,
    # evidence, answerer) and its text side the case-text table, so image->text search works in the joint space.
    # None: the training-free thumbnail descriptor and the text encoder above (the default).
    model_dir: str | None = None
    # GNN concept embeddings (kgclip kg train): explain() and evidence KG facts add the nearest concepts.
    concept_embeddings_dir: str | None = None

    def __post_init__(self) -> None:
        if self.k_cases < 1 or self.max_findings < 1:
            raise ConfigError("k_cases and max_findings must be >= 1")
        if self.index_backend not in ("faiss", "milvus"):
            raise ConfigError(f"index_backend must be 'faiss' or 'milvus', got {self.index_backend!r}")
        if self.index_uri is not None and self.index_backend != "milvus":
            raise ConfigError("index_uri applies to index_backend='milvus' only; remove it or set the backend")
        if self.index_uri is not None and (not isinstance(self.index_uri, str) or not self.index_uri.strip()):
            raise ConfigError("index_uri must be a Milvus Lite file (x.db) or http://host:19530, or None")
        if not self.text_encoder:
            raise ConfigError("text_encoder must name a text tower, e.g. 'minilm' or a local directory")
        for name in ("model_dir", "concept_embeddings_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a directory path or None, got {value!r}")
        if self.model_dir is not None and Path(self.model_dir).exists() and not Path(self.model_dir).is_dir():
            raise ConfigError(f"model_dir {self.model_dir!r} is a file; pass the directory `kgclip train` wrote")
        if (self.concept_embeddings_dir is not None and Path(self.concept_embeddings_dir).exists()
                and not Path(self.concept_embeddings_dir).is_dir()):
            raise ConfigError(f"concept_embeddings_dir {self.concept_embeddings_dir!r} is a file; pass the "
                              "directory `kgclip kg train` wrote")


def _check_question(question: object) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InputFormatError("the question is empty; ask something like 'Is there a pleural effusion?'")
    return question.strip()


class Engine:
    """Queries over one workspace. Create with :meth:`build` or :meth:`load`."""

    def __init__(self, directory: Path, config: EngineConfig, graph: ConceptGraph, cases: list[Case],
                 answerer: VQAAnswerer, image_table: VectorTable, text_table: VectorTable, text_encoder: Any,
                 manifest: dict[str, Any], *, featurizer: Any = None, table_text_encoder: Any = None,
                 neighbors: NeighborConcepts | None = None) -> None:
        self.directory = directory
        self.config = config
        self.graph = graph
        self.cases = cases
        self.case_index = {c.case_id: i for i, c in enumerate(cases)}
        self.answerer = answerer
        self.image_table = image_table
        self.text_table = text_table
        self.text_encoder = text_encoder
        # Image vectors: the KG-CLIP model's image tower when configured, else the thumbnail descriptor.
        self.featurizer = featurizer if featurizer is not None else ThumbnailFeaturizer()
        # Encoder of the case-text table and text search (the model's joint space when configured).
        self.table_text_encoder = table_text_encoder if table_text_encoder is not None else text_encoder
        self.neighbors = neighbors  # GNN nearest concepts, when configured
        self.tagger = answerer.tagger or (ConceptTagger(graph) if config.use_kg else None)
        self.manifest = manifest
        self.llm = None  # a kgclip.rag.llm.LLMRewriter, set with use_llm()

    def __repr__(self) -> str:
        return (f"Engine({str(self.directory)!r}, cases={len(self.cases)}, concepts={len(self.graph)}, "
                f"answers={len(self.answerer.core.answers)}, index={self.image_table.backend})")

    # ------------------------------------------------------------------ build / load
    @classmethod
    def build(cls, config: EngineConfig, workspace_dir: str | Path, *, vqa_rad: str | Path | None = None,
              graph: ConceptGraph | None = None, show_progress: bool = True) -> "Engine":
        """Build a workspace from a VQA-RAD-style folder (JSON + ``images/``; default: the shipped sample).

        Cases are the images with statements from their training questions; the answerer trains on the training
        questions (``phrase_type`` freeform/para), so test questions stay unseen.
        """
        from tqdm.auto import tqdm

        from kgclip.eval.vqa import load_vqa_rad_rows
        from kgclip.ontology.store import load_ontologies, save_cache
        from kgclip.rag.workspace import shipped_demo_dir
        from kgclip.text.encoders import load_text_encoder

        if vqa_rad is None:
            vqa_rad = shipped_demo_dir()
            if vqa_rad is None:
                raise ConfigError("no data to build from: pass vqa_rad=PATH (a folder with the VQA-RAD JSON and "
                                  "images/); the shipped sample kgclip/demo_data/vqa-rad is missing")
        # Trained parts are referenced by absolute path so the workspace loads from any working directory.
        for name in ("model_dir", "concept_embeddings_dir"):
            if getattr(config, name) is not None:
                config = replace(config, **{name: str(Path(getattr(config, name)).expanduser().resolve())})
        steps = tqdm(total=6, desc="building workspace", disable=not show_progress)
        rows, image_dir = load_vqa_rad_rows(vqa_rad)
        if graph is None:
            graph = load_ontologies(list(config.ontology_dirs) or None)
        steps.update()
        encoder = load_text_encoder(config.text_encoder, device="cpu")
        featurizer, table_encoder, neighbors = cls._parts(config, encoder, graph)
        workspace = Path(workspace_dir)
        workspace.mkdir(parents=True, exist_ok=True)
        (workspace / "images").mkdir(exist_ok=True)
        cases = cases_from_vqa_rad(rows, image_dir)
        for case in cases:  # the workspace owns copies of its images (thumbnails, re-embedding)
            src = Path(case.image)
            dst = workspace / "images" / src.name
            if src.is_file() and not dst.exists():
                shutil.copyfile(src, dst)
            case.image = f"images/{src.name}"
        tagger = ConceptTagger(graph) if config.use_kg else None
        for case in cases:
            case.concepts = tagger.concept_ids(case.text, include_negated=False) if tagger else []
        steps.update()
        img = featurizer.embed([workspace / c.image for c in cases], show_progress=show_progress)
        txt = table_encoder.encode([c.text or c.case_id for c in cases], show_progress=show_progress).numpy()
        steps.update()
        examples = qa_examples(rows)
        answerer, val = VQAAnswerer.fit(examples, {c.case_id: v for c, v in zip(cases, img)},
                                        graph=graph if config.use_kg else None, text_encoder=encoder,
                                        config=replace(config.answerer, use_kg=config.use_kg),
                                        image_featurizer=featurizer.name, show_progress=show_progress)
        answerer.tagger = tagger
        steps.update()
        image_table = cls._new_table(config, workspace, "image", featurizer.dim, featurizer.fingerprint)
        text_table = cls._new_table(config, workspace, "text", table_encoder.dim, table_encoder.fingerprint)
        meta = [cls._case_meta(c) for c in cases]
        image_table.add(list(range(len(cases))), img, meta)
        text_table.add(list(range(len(cases))), txt, meta)
        steps.update()
        save_cache(graph, workspace / "graph.safetensors")
        save_cases(workspace / "cases.json", cases)
        answerer.save(workspace / "answerer")
        image_table.save(workspace / "index_image")
        text_table.save(workspace / "index_text")
        config.save(workspace / "engine_config.json")
        manifest = cls._write_manifest(workspace, config, graph, encoder, featurizer, cases,
                                       {"val_acc": val["val_acc"], "source": str(vqa_rad)}, neighbors)
        steps.update()
        steps.close()
        return cls(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                   featurizer=featurizer, table_text_encoder=table_encoder, neighbors=neighbors)

    @staticmethod
    def _parts(config: EngineConfig, encoder: Any, graph: ConceptGraph, *, model_fp: str | None = None,
               embeddings: Any = None) -> tuple[Any, Any, NeighborConcepts | None]:
        """The image featuriser, the case-text table encoder and the concept neighbours the config asks for.

        ``model_fp`` / ``embeddings``: already computed / loaded (and checked against ``graph``) by the caller, so
        the weights are not hashed and the embeddings not read a second time.
        """
        featurizer: Any = ThumbnailFeaturizer()
        table_encoder: Any = encoder
        if config.model_dir is not None:
            from kgclip.rag.model_parts import ModelImageFeaturizer, ModelTextEncoder, load_model, model_fingerprint

            fp = model_fp or model_fingerprint(config.model_dir)
            model = load_model(config.model_dir, text_encoder=encoder)
            featurizer = ModelImageFeaturizer(model, config.model_dir, fingerprint=fp)
            table_encoder = ModelTextEncoder(model, fp)
        neighbors = None
        if config.concept_embeddings_dir is not None:
            neighbors = (NeighborConcepts(embeddings, config.concept_embeddings_dir) if embeddings is not None
                         else NeighborConcepts.load(config.concept_embeddings_dir, graph))
        return featurizer, table_encoder, neighbors

    @staticmethod
    def _new_table(config: EngineConfig, workspace: Path, name: str, dim: int, fingerprint: str) -> VectorTable:
        """An empty vector table ``index_<name>`` with the configured backend (FAISS: unchanged default)."""
        if config.index_backend == "faiss":
            return VectorTable(dim, fingerprint)
        if config.index_uri is None:  # own Lite file in the table directory, fixed collection: rebuilds replace it
            uri, collection = str(workspace / f"index_{name}" / "milvus.db"), f"kgclip_{name}"
            if Path(uri).exists():  # the workspace's own earlier collection, perhaps of another encoder / dim
                from kgclip.index.milvus_support import drop_collection

                drop_collection(uri, collection)
            return VectorTable(dim, fingerprint, backend="milvus", uri=uri, collection=collection)
        return VectorTable(dim, fingerprint, backend="milvus", uri=config.index_uri)

    @staticmethod
    def _case_meta(case: Case) -> dict[str, Any]:
        return {"kind": "case", "case_id": case.case_id, "modality": case.modality, "body_part": case.body_part,
                "text": case.text, "concepts": list(case.concepts), "source": case.split}

    @staticmethod
    def _write_manifest(workspace: Path, config: EngineConfig, graph: ConceptGraph, encoder: Any,
                        featurizer: Any, cases: Sequence[Case], extra: dict[str, Any],
                        neighbors: NeighborConcepts | None = None) -> dict[str, Any]:
        fingerprints = {
            "graph": graph.fingerprint(),
            "text_encoder": encoder.fingerprint,
            "image_featurizer": featurizer.fingerprint,
            "cases": fingerprint_file(workspace / "cases.json"),
            "answerer": fingerprint_file(workspace / "answerer" / "answerer.safetensors"),
            "config": fingerprint_json(config.to_dict()),
        }
        counts = {"cases": len(cases), "concepts": len(graph), "relations": graph.num_relations,
                  "qa": sum(len(c.qa) for c in cases)}
        parts = {"text_encoder": encoder.name, "image_featurizer": featurizer.name}
        # Optional trained parts: recorded only when configured, so a default manifest is unchanged.
        if config.model_dir is not None:
            fingerprints["model"] = featurizer.fingerprint
            parts["model_dir"] = str(config.model_dir)
        if neighbors is not None:
            fingerprints["concept_embeddings"] = neighbors.fingerprint
            parts["concept_embeddings_dir"] = str(config.concept_embeddings_dir)
        write_manifest(workspace, config.to_dict() | {"build": extra}, fingerprints, counts, parts)
        return read_manifest(workspace)

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
        from kgclip.ontology.store import load_cache, load_ontologies
        from kgclip.text.encoders import load_text_encoder

        workspace = Path(workspace_dir)
        manifest = read_manifest(workspace)
        config = EngineConfig.load(workspace / "engine_config.json")
        fps = manifest["fingerprints"]
        encoder = load_text_encoder(text_encoder or config.text_encoder, device="cpu")
        if encoder.fingerprint != fps["text_encoder"]:
            raise EncoderMismatchError(
                f"workspace {workspace} was built with text encoder {manifest['parts']['text_encoder']!r}, not "
                f"{encoder.name!r}; query it with the encoder it was built with, or rebuild it with Engine.build")
        for name, path in (("cases", workspace / "cases.json"),
                           ("answerer", workspace / "answerer" / "answerer.safetensors")):
            if not path.is_file() or fingerprint_file(path) != fps[name]:
                raise StaleArtifactError(f"{path} does not match the workspace manifest (changed or missing "
                                         "since the build); rebuild the workspace with Engine.build / kgclip demo")
        graph = load_cache(workspace / "graph.safetensors")
        if graph.fingerprint() != fps["graph"]:
            raise StaleArtifactError(f"the concept graph in {workspace} does not match its manifest; rebuild")
        if check_ontology_sources:
            current = load_ontologies(list(config.ontology_dirs) or None)
            if current.fingerprint() != fps["graph"]:
                raise StaleArtifactError(
                    f"the ontology changed since workspace {workspace} was built (curation edits?); call "
                    "Engine.refresh(workspace) to re-link cases and retrain the answerer on the new graph")
        cases = load_cases(workspace / "cases.json")
        tagger = ConceptTagger(graph) if config.use_kg else None
        answerer = VQAAnswerer.load(workspace / "answerer", graph=graph if config.use_kg else None,
                                    text_encoder=encoder, tagger=tagger)
        featurizer, table_encoder, neighbors = cls._load_parts(workspace, config, encoder, graph, fps)
        image_table = VectorTable.load(workspace / "index_image", featurizer.fingerprint)
        text_table = VectorTable.load(workspace / "index_text", table_encoder.fingerprint)
        return cls(workspace, config, graph, cases, answerer, image_table, text_table, encoder, manifest,
                   featurizer=featurizer, table_text_encoder=table_encoder, neighbors=neighbors)

    @classmethod
    def _load_parts(cls, workspace: Path, config: EngineConfig, encoder: Any, graph: ConceptGraph,
                    fps: Mapping[str, str]) -> tuple[Any, Any, NeighborConcepts | None]:
        """Reload the configured model / embeddings, refusing ones that changed since the build."""
        from kgclip.kg.embeddings import ConceptEmbeddings
        from kgclip.rag.model_parts import check_fingerprint, model_fingerprint

        rebuild = "rebuild the workspace with Engine.build (or Engine.refresh)"
        current = emb = None
        if config.model_dir is not None:
            try:
                current = model_fingerprint(config.model_dir)
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(f"workspace {workspace} was built with the KG-CLIP model at "
                                         f"{config.model_dir}, which is gone ({exc}); restore that directory or "
                                         f"{rebuild}") from exc
            check_fingerprint("KG-CLIP model", config.model_dir, fps.get("model"), current, workspace,
                              f"its image and text vectors came from the old model: {rebuild}, or restore the "
                              "model directory it was built with")
        if config.concept_embeddings_dir is not None:
            emb = ConceptEmbeddings.load(config.concept_embeddings_dir)
            if emb.graph_fingerprint != graph.fingerprint():
                raise StaleArtifactError(
                    f"the concept embeddings at {config.concept_embeddings_dir} describe another version of the "
                    f"graph than workspace {workspace}; run `kgclip kg refresh --embeddings "
                    f"{config.concept_embeddings_dir}` on the workspace's ontology, then Engine.refresh")
            check_fingerprint("concept embeddings", config.concept_embeddings_dir, fps.get("concept_embeddings"),
                              emb.fingerprint, workspace, f"{rebuild} to record the new embeddings")
        return cls._parts(config, encoder, graph, model_fp=current, embeddings=emb)

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

    def _hit(self, row: tuple[int, float, dict[str, Any]], via: str) -> CaseHit:
        idx, score, meta = row
        case = self.cases[idx] if 0 <= idx < len(self.cases) else None
        return CaseHit(case_id=str(meta.get("case_id", idx)), score=score, text=str(meta.get("text", "")),
                       image=str(self.image_path(case.image)) if case else "", via=via,
                       metadata={k: v for k, v in meta.items() if k not in ("text",)})

    def similar_cases(self, image: ImageLike | LoadedImage, k: int | None = None,
                      filters: Mapping[str, Any] | None = None) -> list[CaseHit]:
        vec = self._image_vector(image)
        return [self._hit(r, "image") for r in self.image_table.search(vec, k or self.config.k_cases, filters)]

    def ask(self, image: ImageLike | LoadedImage, question: str) -> Answer:
        """Answer a question about an image, with the evidence behind the answer.

        Raises:
            InputFormatError: the question is empty.
            ImageReadError: the image is missing or unreadable.
        """
        question = _check_question(question)
        loaded = load_image(image)
        vec = self.featurizer.embed_one(loaded)
        pred = self.answerer.predict(question, vec)
        cases = [self._hit(r, "image") for r in self.image_table.search(vec, self.config.k_cases)]
        if self.config.model_dir is not None:  # joint space: the image also retrieves case texts (cross-modal)
            seen = {c.case_id for c in cases}
            cross = self.text_table.search(vec, self.config.k_cases)
            cases += [h for h in (self._hit(r, "image->text") for r in cross) if h.case_id not in seen]
        concept_ids = [m.concept_id for m in pred.concepts]
        evidence = Evidence(
            question=question, concepts=list(pred.concepts), similar_cases=cases,
            similar_questions=[QANeighbor(e.question, e.answer, e.image_key, s) for e, s in pred.neighbors],
            kg_facts=self._facts(concept_ids) if self.config.use_kg else [])
        answer = Answer(text=pred.text, confidence=pred.confidence, kind=pred.kind, evidence=evidence,
                        question=question, candidates=pred.candidates)
        if self.llm is not None:
            answer = self.llm.rewrite_answer(answer)
        return answer

    def _facts(self, concept_ids: list[str], limit: int = 12, per_concept: int = 4) -> list[KGFact]:
        """Graph relations of the concepts, plus their nearest concepts by GNN embedding when configured."""
        facts = kg_facts(self.graph, concept_ids, limit=limit, per_concept=per_concept)
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
               filters: Mapping[str, Any] | None = None, cross_modal: bool = False) -> "SearchResults":
        """Cases similar to a text (over case texts) or to an image (image to image).

        Args:
            filters: metadata filters, e.g. ``{"body_part": "CHEST"}``, ``{"modality": "CT"}``,
                ``{"concept": "RADLEX:RID4872"}``.
            cross_modal: with ``image=``, search the case texts instead (image->text in the KG-CLIP model's joint
                space; needs ``model_dir``).
        """
        from kgclip.display import SearchResults

        if (text is None) == (image is None):
            raise InputFormatError("pass exactly one of text= or image= to search")
        if cross_modal and (image is None or self.config.model_dir is None):
            raise ConfigError("cross_modal search takes image= and a workspace built with "
                              "EngineConfig(model_dir=...) (a KG-CLIP model from `kgclip train`)")
        if text is not None:
            if not text.strip():
                raise InputFormatError("the search text is empty")
            vec = self.table_text_encoder.encode([text]).numpy()[0]
            rows, via = self.text_table.search(vec, k, filters), "text"
        elif cross_modal:
            rows, via = self.text_table.search(self._image_vector(image), k, filters), "image->text"
        else:
            rows, via = self.image_table.search(self._image_vector(image), k, filters), "image"
        # Hits are the same CaseHit records evidence uses; SearchResults adds the notebook rendering.
        return SearchResults(self._hit(r, via) for r in rows)

    def draft_report(self, image: ImageLike | LoadedImage, *, k: int | None = None,
                     exclude_identical: bool = True) -> DraftReport:
        """Draft findings and an impression from the most similar cases, each sentence citing its case.

        Args:
            exclude_identical: skip a case whose image is the query image itself (cosine >= 0.9999), so that a
                draft for an image already in the workspace is not a copy of its own case.
        """
        k = k or self.config.k_cases
        hits = self.similar_cases(image, k + 1)
        if exclude_identical:
            hits = [h for h in hits if h.score < 0.9999]
        hits = hits[:k]
        report = draft_from_cases(hits, tagger=self.tagger, graph=self.graph, max_findings=self.config.max_findings,
                                  use_kg=self.config.use_kg)
        if self.llm is not None:
            report = self.llm.rewrite_report(report)
        return report

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

    def add_cases(self, cases: Sequence[Mapping[str, Any] | Case], *, copy_images: bool = True) -> int:
        """Add cases (``case_id``, ``image`` path, ``text``, optional ``modality`` / ``body_part``) to the
        search tables and the drafting pool, and save. The answerer is not retrained (rebuild for that).

        Returns:
            How many cases were added or replaced.
        """
        new: list[Case] = []
        for raw in cases:
            case = raw if isinstance(raw, Case) else Case(**{k: raw[k] for k in raw if k in Case.__dataclass_fields__})
            src = Path(case.image)
            if not src.is_file():
                from kgclip.errors import ImageReadError

                raise ImageReadError(f"case {case.case_id!r}: image {str(src)!r} does not exist; nothing was added")
            load_image(src)  # fail before touching the workspace
            if copy_images:
                dst = self.directory / "images" / src.name
                if not dst.exists():
                    shutil.copyfile(src, dst)
                case.image = f"images/{src.name}"
            case.concepts = self.tagger.concept_ids(case.text, include_negated=False) if self.tagger else []
            new.append(case)
        if not new:
            return 0
        ids = []
        for case in new:
            if case.case_id in self.case_index:
                i = self.case_index[case.case_id]
                self.cases[i] = case
            else:
                i = len(self.cases)
                self.cases.append(case)
                self.case_index[case.case_id] = i
            ids.append(i)
        img = self.featurizer.embed([self.image_path(c.image) for c in new])
        txt = self.table_text_encoder.encode([c.text or c.case_id for c in new]).numpy()
        meta = [self._case_meta(c) for c in new]
        self.image_table.add(ids, img, meta)
        self.text_table.add(ids, txt, meta)
        save_cases(self.directory / "cases.json", self.cases)
        self.image_table.save(self.directory / "index_image")
        self.text_table.save(self.directory / "index_text")
        self.manifest = self._write_manifest(self.directory, self.config, self.graph, self.text_encoder,
                                             self.featurizer, self.cases, self.manifest["config"].get("build", {}),
                                             self.neighbors)
        return len(new)

    def use_llm(self, chat_model: Any, *, timeout_s: float = 30.0) -> "Engine":
        """Let a langchain chat model rewrite answers and drafts (citations must survive; else the built-in
        result is kept and flagged). ``None`` switches it off."""
        from kgclip.rag.llm import LLMRewriter

        self.llm = None if chat_model is None else LLMRewriter(chat_model, timeout_s=timeout_s)
        return self

