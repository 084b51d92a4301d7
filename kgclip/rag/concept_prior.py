"""A learned prior over the findings concepts of a query, for report drafting.

Retrieval consensus (:mod:`kgclip.rag.consensus`) says which concepts *similar cases* share; this module learns,
from any set of training cases with findings, how likely each frequent findings concept is for a query given what
is known about it before any text: its frozen image features and, when known, its modality and body region.

Model (one logistic head per concept, trained jointly):

    logit p(c | x, m, r) = w_c . x + b_c + logit(rate_c(m, r))

* ``rate_c(m, r)``: the share of training cases of modality ``m`` and region ``r`` whose findings assert ``c``,
  smoothed toward the region's share and that toward the overall share (``smoothing`` pseudo-cases at each level),
  so a small group borrows from its parent and an unknown modality / region falls back to it;
* ``w_c . x + b_c``: what the image adds on top (L2-penalised, so a weak image signal stays small);
* with ``ancestor_credit > 0`` a concept's is-a parents (through the graph) get that soft target too, so a general
  concept learns from its specific mentions.

Only concepts asserted (not negated) in at least ``min_cases`` training findings sections get a head: rarer ones
cannot be estimated and :meth:`ConceptPrior.predict` gives them nothing. Persisted as ``concept_prior.json``
(config, concept ids, group keys, fingerprints, versions) plus ``concept_prior.safetensors`` (weights); never
pickle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kgclip.artifacts import kgclip_version, read_json_header
from kgclip.atomic import atomic_directory, atomic_write_json
from kgclip.config import Config
from kgclip.errors import ArtifactCorruptError, ConfigError, ModelNotFoundError, StaleArtifactError
from kgclip.fingerprint import Hasher
from kgclip.ontology.model import IS_A, ConceptGraph

__all__ = ["ConceptPriorConfig", "ConceptPrior", "train_concept_prior", "fit_case_prior", "metadata_keys",
           "MIN_PRIOR_CASES"]

_EPS = 1e-3  # rates are clipped to [eps, 1 - eps] before the logit: a never-seen concept is unlikely, not impossible
_ANY = ""  # the group key of an unknown modality / region
# A workspace trains its own prior (fit_case_prior) only from at least this many cases with findings text: fewer
# cannot give any concept the ``min_cases`` it needs next to a useful number of others.
MIN_PRIOR_CASES = 20


@dataclass(frozen=True)
class ConceptPriorConfig(Config):
    """How the concept prior is trained (defaults: chosen on MedPix validation carved from train)."""

    min_cases: int = 5  # a concept gets a head when asserted in >= this many training findings sections
    smoothing: float = 3.0  # pseudo-cases pulling a (modality, region) group's rate toward its region's, and so on
    l2: float = 1.0  # L2 penalty on the image weights (on the mean per-case loss x 100): larger = trust images less
    use_image: bool = True  # learn image weights; False: the smoothed metadata rates alone
    ancestor_credit: float = 0.0  # soft target of a linked concept's is-a parents (0: exact concepts only)
    max_iter: int = 100  # L-BFGS iterations (full batch)
    seed: int = 0  # initialisation and torch's RNG (training is deterministic on one thread)

    def __post_init__(self) -> None:
        if self.min_cases < 1:
            raise ConfigError(f"min_cases must be >= 1, got {self.min_cases}")
        if self.smoothing <= 0 or self.l2 < 0:
            raise ConfigError(f"smoothing must be > 0 and l2 >= 0, got {self.smoothing}, {self.l2}")
        if not 0.0 <= self.ancestor_credit <= 1.0:
            raise ConfigError(f"ancestor_credit must be in [0, 1], got {self.ancestor_credit}")
        if self.max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {self.max_iter}")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


class ConceptPrior:
    """Per-concept probabilities for a query from image features and metadata (see module docstring).

    Attributes:
        concepts: the concept ids with a head, ``[C]``.
        groups: ``{"modality|region": row}`` of ``rates`` (``""`` parts: unknown); ``rates`` ``[G, C]``.
        weights: ``[D, C]`` image weights; ``bias``: ``[C]``.
        meta: fingerprints (features, graph, training data), versions, training counts.
    """

    def __init__(self, config: ConceptPriorConfig, concepts: list[str], groups: dict[str, int], rates: np.ndarray,
                 weights: np.ndarray, bias: np.ndarray, meta: dict[str, object]) -> None:
        self.config = config
        self.concepts = concepts
        self.groups = groups
        self.rates = rates.astype(np.float32)
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.meta = meta

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def _rate_rows(self, modalities: Sequence[str | None], regions: Sequence[str | None]) -> np.ndarray:
        rows = []
        for m, r in zip(modalities, regions):
            m, r = (m or _ANY).strip(), (r or _ANY).strip()
            # Most specific group the training data had: (modality, region), then region, then everything.
            for key in (f"{m}|{r}", f"{_ANY}|{r}", f"{_ANY}|{_ANY}"):
                if key in self.groups:
                    rows.append(self.groups[key])
                    break
        return self.rates[rows]

    def predict(self, features: np.ndarray | None, modalities: Sequence[str | None],
                regions: Sequence[str | None]) -> np.ndarray:
        """Probabilities of every concept for ``Q`` queries.

        Shapes:
            ``features`` ``[Q, D]`` (the training feature extractor's rows; ``None``: metadata only) -> ``[Q, C]``.
        """
        if len(modalities) != len(regions):
            raise ValueError(f"{len(modalities)} modalities for {len(regions)} regions: give one of each per query")
        logits = _logit(self._rate_rows(modalities, regions))
        if features is not None and self.config.use_image:
            x = np.asarray(features, dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] != len(regions):
                raise ValueError(f"features must be [{len(regions)}, {self.dim}] (the extractor the prior was trained "
                                 f"with: {self.meta.get('features', '?')}), got {list(x.shape)}")
            logits = logits + x @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def predict_one(self, feature: np.ndarray | None, modality: str | None = None,
                    region: str | None = None) -> dict[str, float]:
        """``{concept id: probability}`` for one query (``feature`` ``[D]``, or ``None`` for metadata only)."""
        x = None if feature is None else np.asarray(feature, dtype=np.float32)[None, :]
        return dict(zip(self.concepts, self.predict(x, [modality], [region])[0].tolist()))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``concept_prior.json`` and ``concept_prior.safetensors`` atomically into ``directory``."""
        from safetensors.torch import save_file

        with atomic_directory(directory) as tmp:
            save_file({"rates": torch.from_numpy(self.rates), "weights": torch.from_numpy(self.weights),
                       "bias": torch.from_numpy(self.bias)}, str(tmp / "concept_prior.safetensors"))
            atomic_write_json(tmp / "concept_prior.json", {
                "type": "ConceptPrior", "config": self.config.to_dict(), "concepts": self.concepts,
                "groups": self.groups, "meta": self.meta})

    @classmethod
    def load(cls, directory: str | Path, *, feature_fingerprint: str | None = None,
             graph: ConceptGraph | None = None) -> ConceptPrior:
        """Load a saved prior; refuses one trained on other image features or another version of the graph
        (pass the fingerprints to check; ``None`` skips that check)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        head = read_json_header(directory / "concept_prior.json",
                                missing=f"no concept prior in {directory}: train one with train_concept_prior(...) "
                                        "and .save() it", recover="retrain it with train_concept_prior",
                                missing_error=ModelNotFoundError)
        try:
            tensors = load_file(str(directory / "concept_prior.safetensors"))
            config = ConceptPriorConfig.from_dict(head["config"])
            prior = cls(config, list(head["concepts"]), {str(k): int(v) for k, v in head["groups"].items()},
                        tensors["rates"].numpy(), tensors["weights"].numpy(), tensors["bias"].numpy(),
                        dict(head["meta"]))
        except (OSError, KeyError, ValueError, TypeError, SafetensorError) as exc:
            raise ArtifactCorruptError(f"concept prior in {directory} is missing or corrupt ({exc}); retrain it with "
                                       "train_concept_prior") from exc
        if prior.rates.shape[1] != len(prior.concepts) or prior.weights.shape[1] != len(prior.concepts):
            raise ArtifactCorruptError(f"concept prior in {directory}: tensors do not match its {len(prior.concepts)} "
                                       "concepts; retrain it")
        if feature_fingerprint is not None:
            prior.check_features(feature_fingerprint, where=f" in {directory}")
        if graph is not None and prior.meta.get("graph_fingerprint") not in ("", None, graph.fingerprint()):
            raise StaleArtifactError(f"the concept prior in {directory} was trained with another version of the "
                                     "concept graph; retrain it after editing the ontology")
        return prior

    def check_features(self, feature_fingerprint: str, *, where: str = "",
                       fix: str = "use the same feature extractor or retrain it") -> None:
        """Refuse (``StaleArtifactError``) to be used with image features other than those it was trained on;
        ``where`` and ``fix`` complete the message."""
        want = self.meta.get("feature_fingerprint")
        if want and feature_fingerprint and want != feature_fingerprint:
            raise StaleArtifactError(f"the concept prior{where} was trained on image features "
                                     f"{self.meta.get('features')!r} with another fingerprint; {fix}")

    def __repr__(self) -> str:
        return (f"ConceptPrior({len(self.concepts)} concepts, {len(self.groups)} metadata groups, "
                f"image dim {self.dim}, trained on {self.meta.get('n_cases', '?')} cases)")


def _targets(concept_sets: Sequence[Iterable[str]], concepts: list[str], graph: ConceptGraph | None,
             credit: float) -> np.ndarray:
    index = {c: j for j, c in enumerate(concepts)}
    y = np.zeros((len(concept_sets), len(concepts)), dtype=np.float32)
    for i, cs in enumerate(concept_sets):
        cs = set(cs)
        if graph is not None and credit > 0:
            for c in cs:
                for p in (graph.parents(c, IS_A) if c in graph else []):
                    j = index.get(p)
                    if j is not None and p not in cs:
                        y[i, j] = max(y[i, j], credit)
        for c in cs:
            j = index.get(c)
            if j is not None:
                y[i, j] = 1.0
    return y


def _group_rates(y: np.ndarray, weights: np.ndarray, modalities: Sequence[str], regions: Sequence[str],
                 smoothing: float) -> tuple[dict[str, int], np.ndarray]:
    """Smoothed rates per ``"modality|region"``, ``"|region"`` and ``"|"`` (everything), weighted by ``weights``."""
    total = (weights[:, None] * y).sum(0) / max(float(weights.sum()), 1e-9)
    groups: dict[str, int] = {f"{_ANY}|{_ANY}": 0}
    rows = [total]

    def add(key: str, mask: np.ndarray, parent: np.ndarray) -> np.ndarray:
        w = weights * mask
        rate = ((w[:, None] * y).sum(0) + smoothing * parent) / (float(w.sum()) + smoothing)
        groups[key] = len(rows)
        rows.append(rate)
        return rate

    regs, mods = np.array(regions, dtype=object), np.array(modalities, dtype=object)
    for r in sorted(set(regions) - {_ANY}):
        region_rate = add(f"{_ANY}|{r}", regs == r, total)
        for m in sorted(set(mods[regs == r]) - {_ANY}):
            add(f"{m}|{r}", (regs == r) & (mods == m), region_rate)
    for m in sorted(set(modalities) - {_ANY}):  # a query whose region is unknown
        add(f"{m}|{_ANY}", mods == m, total)
    return groups, np.stack(rows).astype(np.float32)


def train_concept_prior(features: np.ndarray | None, modalities: Sequence[str | None], regions: Sequence[str | None],
                        concept_sets: Sequence[Iterable[str]], *, config: ConceptPriorConfig | None = None,
                        graph: ConceptGraph | None = None, case_ids: Sequence[str] | None = None,
                        feature_name: str = "", feature_fingerprint: str = "") -> ConceptPrior:
    """Fit the prior on training rows (one per image or per case).

    Args:
        features: ``[N, D]`` frozen image features (``None``: metadata rates only).
        modalities, regions: each row's modality and body region (``None`` / ``""``: unknown).
        concept_sets: each row's asserted findings concepts (e.g. ``ConceptTagger.concept_ids(findings,
            include_negated=False)``).
        case_ids: each row's case; rows of one case share one case's weight (several images per case), and
            ``min_cases`` counts cases, not rows. ``None``: every row is its own case.
        graph: for ``ancestor_credit`` and the stored graph fingerprint.
        feature_name, feature_fingerprint: stored, and checked by :meth:`ConceptPrior.load`.
    """
    cfg = config or ConceptPriorConfig()
    n = len(concept_sets)
    if n == 0:
        raise ValueError("no training rows: a concept prior needs cases with findings")
    if len(modalities) != n or len(regions) != n or (case_ids is not None and len(case_ids) != n):
        raise ValueError("modalities, regions, case_ids and concept_sets need one entry per training row")
    if features is not None and (np.ndim(features) != 2 or len(features) != n):
        raise ValueError(f"features must be [{n}, D], got {list(np.shape(features))}")
    cases = list(case_ids) if case_ids is not None else [str(i) for i in range(n)]
    per_case = Counter(cases)
    weights = np.array([1.0 / per_case[c] for c in cases], dtype=np.float64)
    sets = [set(cs) for cs in concept_sets]
    case_concepts: dict[str, set[str]] = {}
    for c, cs in zip(cases, sets):
        case_concepts.setdefault(c, set()).update(cs)
    counts = Counter(x for cs in case_concepts.values() for x in cs)
    concepts = sorted(c for c, k in counts.items() if k >= cfg.min_cases)
    if not concepts:
        raise ValueError(f"no concept is asserted in >= {cfg.min_cases} training findings; lower min_cases or "
                         "give more cases")
    y = _targets(sets, concepts, graph, cfg.ancestor_credit)
    mods = [(m or _ANY).strip() for m in modalities]
    regs = [(r or _ANY).strip() for r in regions]
    groups, rates = _group_rates(y, weights, mods, regs, cfg.smoothing)
    prior = ConceptPrior(cfg, concepts, groups, rates, np.zeros((0 if features is None else features.shape[1],
                                                                  len(concepts)), np.float32),
                         np.zeros(len(concepts), np.float32), {})
    if features is not None and cfg.use_image:
        # Offsets: each row's *leave-its-case-out* metadata rate would be cleaner; with smoothing the in-sample
        # rate is close, and the L2 penalty keeps the image weights from memorising the rest.
        offset = torch.from_numpy(_logit(prior._rate_rows(mods, regs)).astype(np.float32))
        prior.weights, prior.bias = _fit_heads(np.asarray(features, dtype=np.float32), y, weights, offset, cfg)
    h = Hasher().update_str("concept-prior-v1").update_json(cfg.to_dict()).update_json(concepts)
    h.update_json(sorted(zip(cases, mods, regs)))
    prior.meta = {"features": feature_name, "feature_fingerprint": feature_fingerprint,
                  "graph_fingerprint": graph.fingerprint() if graph is not None else "",
                  "training_fingerprint": h.hexdigest(), "n_cases": len(per_case), "n_rows": n,
                  "kgclip": kgclip_version(), "torch": torch.__version__}
    return prior


def _fit_heads(x: np.ndarray, y: np.ndarray, weights: np.ndarray, offset: torch.Tensor,
               cfg: ConceptPriorConfig) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS on the case-weighted binary cross-entropy plus ``l2`` on the image weights.

    Shapes:
        ``x`` ``[N, D]``, ``y`` ``[N, C]`` targets in [0, 1], ``weights`` ``[N]``, ``offset`` ``[N, C]`` logits.
    """
    torch.manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    wt = torch.from_numpy((weights / weights.sum()).astype(np.float32))[:, None]
    w = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
    b = torch.zeros(y.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=cfg.max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b + offset, yt, reduction="none")
        # Summed over concepts, averaged over cases: the penalty's scale does not depend on the vocabulary size.
        loss = (bce * wt).sum() + 0.5 * cfg.l2 * (w ** 2).sum() / 100.0
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()



def metadata_keys(modality: str | None, region: str | None) -> tuple[str, str]:
    """The shared vocabulary a workspace prior is keyed by: ``("CT", "chest")`` for ``("ct", "CHEST")``; several
    regions join with ``+`` (``"abdomen+pelvis"``); unknown values give ``""``."""
    from kgclip.rag.image_metadata import normalize_modality
    from kgclip.rag.regions import regions_of_label

    return normalize_modality(modality or ""), "+".join(sorted(regions_of_label(region or "")))


def case_findings(case: object) -> str:
    """A case's findings text: its ``findings`` section, else the findings section of its ``text``; empty for a
    case whose text was made from question/answer pairs (those describe no findings)."""
    from kgclip.data.sections import split_sections

    findings = str(getattr(case, "findings", "") or "")
    if findings or getattr(case, "impression", ""):
        return findings
    if getattr(case, "qa", None):
        return ""
    return split_sections(str(getattr(case, "text", "") or "")).findings


def fit_case_prior(cases: Sequence[object], vectors: np.ndarray, *, tagger: object, graph: ConceptGraph | None,
                   feature_name: str, feature_fingerprint: str, config: ConceptPriorConfig | None = None,
                   min_training_cases: int = MIN_PRIOR_CASES) -> ConceptPrior | None:
    """A prior trained on a workspace's own cases with findings, or ``None`` when they cannot train one.

    Each case with findings text (:func:`case_findings`) is one row: its image vector, its modality and body
    region in the shared vocabulary (:func:`metadata_keys`, stored as ``meta["metadata_keys"] = "normalized"`` so
    queries are keyed the same way) and the concepts its findings assert (``tagger.concept_ids(...,
    include_negated=False)``). ``None`` when fewer than ``min_training_cases`` cases have findings or no concept
    reaches ``config.min_cases``. Shapes: ``vectors [len(cases), D]``.
    """
    rows = [(i, text) for i, c in enumerate(cases) if (text := case_findings(c).strip())]
    if tagger is None or len(rows) < min_training_cases:
        return None
    keys = [metadata_keys(getattr(cases[i], "modality", ""), getattr(cases[i], "body_part", "")) for i, _ in rows]
    concept_sets = [tagger.concept_ids(text, include_negated=False) for _, text in rows]  # type: ignore[attr-defined]
    try:
        prior = train_concept_prior(np.asarray(vectors, np.float32)[[i for i, _ in rows]], [k[0] for k in keys],
                                    [k[1] for k in keys], concept_sets, config=config, graph=graph,
                                    case_ids=[str(getattr(cases[i], "case_id", i)) for i, _ in rows],
                                    feature_name=feature_name, feature_fingerprint=feature_fingerprint)
    except ValueError:  # no concept asserted often enough
        return None
    prior.meta["metadata_keys"] = "normalized"
    return prior
