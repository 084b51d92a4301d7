"""Image-text pairs for training and their precomputed features (images at training size, caption vectors, links).

Readers here turn a dataset into :class:`ImageTextPair` records (MedPix 2.0 captions, VQA-RAD questions, a generic
CSV/JSONL manifest); :func:`prepare_features` decodes every image once (grayscale, padded to a square, resized,
uint8) and encodes every caption once with the frozen text tower, caching both on disk by content fingerprint.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.config import kgclip_home
from kgclip.errors import ConfigError, ImageReadError
from kgclip.fingerprint import Hasher

__all__ = ["ImageTextPair", "PairFeatures", "medpix_pairs", "vqa_rad_pairs", "manifest_pairs", "prepare_features",
           "load_concept_graph", "concept_table",
           "load_gray"]

_RASTER = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


@dataclasses.dataclass(frozen=True)
class ImageTextPair:
    """One training pair.

    Attributes:
        image: path of the image file (JPEG / PNG / DICOM).
        text: the caption (or question) describing it.
        group: what must stay on one side of a split (the case id; the image itself when unknown).
        meta: labels for zero-shot evaluation (``modality``, ``plane``, ``location_category``...).
    """

    image: str
    text: str
    group: str
    meta: dict[str, str] = dataclasses.field(default_factory=dict)


def medpix_pairs(root: str | os.PathLike[str] | None = None, split: str | None = "train") -> list[ImageTextPair]:
    """MedPix 2.0 image captions of one split (``train``, ``dev``; ``None`` = all); group = case id.

    Reads with :func:`kgclip.data.medpix.read_medpix`; ``meta`` carries modality, plane and location labels.
    """
    from kgclip.data.medpix import read_medpix

    out = []
    for img in read_medpix(root, split=split):
        if img.caption:
            out.append(ImageTextPair(str(img.image_path), img.caption, img.case_id, {
                "modality": img.modality, "plane": img.plane, "location_category": img.location_category,
                "location": img.location, "image_id": img.image_id}))
    return out


def vqa_rad_pairs(root: str | os.PathLike[str] | None = None, split: str = "train") -> list[ImageTextPair]:
    """VQA-RAD images paired with ``question + answer`` (:func:`kgclip.data.vqa_rad.read_vqa_rad`); group = image."""
    from kgclip.data.vqa_rad import read_vqa_rad

    return [ImageTextPair(str(item.image_path), f"{item.question} {item.answer}", item.image_name,
                          {"organ": item.organ}) for item in read_vqa_rad(root, split=split)]


def manifest_pairs(path: str | os.PathLike[str]) -> list[ImageTextPair]:
    """A CSV / TSV / JSONL manifest (:func:`kgclip.data.manifest.read_manifest`: ``image`` and ``text`` columns);
    an optional ``group`` column keeps related images on one side of the validation split."""
    from kgclip.data.manifest import read_manifest

    return [ImageTextPair(str(item.image_path), item.text, str(item.metadata.get("group") or item.image_path),
                          {k: str(v) for k, v in item.metadata.items() if k != "group"})
            for item in read_manifest(path)]


def load_gray(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Decode an image (raster or DICOM) as grayscale, pad to a square (black), resize to ``size``.

    Shapes: -> ``[size, size]`` uint8.
    """
    from PIL import Image

    path = Path(path)
    try:
        if path.suffix.lower() in _RASTER:
            with Image.open(path) as im:
                im.draft("L", (size, size))  # JPEG: decode at reduced scale when much larger than needed
                gray = im.convert("L")
        else:
            from kgclip.imaging.io import read_image  # DICOM: windowing, LUTs, photometric handling live there

            pixels = np.asarray(read_image(path).pixels, dtype=np.float32)
            pixels = pixels if pixels.ndim == 2 else pixels.reshape(-1, *pixels.shape[-2:])[0] \
                if pixels.shape[-1] not in (3, 4) else pixels[..., :3].mean(-1)
            lo, hi = float(pixels.min()), float(pixels.max())
            gray = Image.fromarray(((pixels - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8))
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types; name the file and what to do
        raise ImageReadError(f"cannot read image {path}: {exc}. Remove it from the dataset or convert it to PNG")\
            from exc
    w, h = gray.size
    side = max(w, h)
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(gray, ((side - w) // 2, (side - h) // 2))
    return np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.uint8)


@dataclasses.dataclass
class PairFeatures:
    """Precomputed features of a list of pairs.

    Attributes:
        texts, groups, meta: per pair.
        images: ``[N, 1, S, S]`` uint8.
        text_emb: ``[N, Dt]`` float32 frozen text-tower vectors.
        links: ``(affirmed, negated)`` concept ids per pair.
        link_idx, link_mask: ``[N, K]`` affirmed concepts as indices into a vocabulary of all linked concepts
            (for the concept-overlap soft targets, whatever the model's concept table).
        concepts: the model's ``(idx, mask, neg_idx, neg_mask)`` ``[N, K]`` tensors (empty when not enriched).
        fingerprint: of the pairs, image size, text tower and links.
        image_feats: cached outputs of a frozen pretrained tower (pooled ``[N, D]`` or a block input
            ``[N, C, h, w]``) when training runs on features instead of pixels; ``images`` is then empty ``[N, 0]``.
    """

    texts: list[str]
    groups: list[str]
    meta: list[dict[str, str]]
    images: torch.Tensor
    text_emb: torch.Tensor
    links: list[tuple[list[str], list[str]]]
    link_idx: torch.Tensor
    link_mask: torch.Tensor
    concepts: tuple[torch.Tensor, ...] = ()
    fingerprint: str = ""
    image_feats: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def with_concepts(self, model: Any) -> "PairFeatures":
        """A copy whose ``concepts`` index ``model``'s concept table."""
        return dataclasses.replace(self, concepts=tuple(model.concept_indices(self.links)))

    def linked_concepts(self) -> list[str]:
        """Every concept id linked (affirmed or negated) in any pair, in first-seen order."""
        return list(dict.fromkeys(c for pos, neg in self.links for c in (*pos, *neg)))


def _cached_tensor(path: Path, build: Any) -> torch.Tensor:
    from safetensors.torch import load_file, save_file

    from kgclip.atomic import atomic_path

    if path.is_file():
        try:
            return load_file(str(path))["data"]
        except Exception:  # noqa: BLE001 - a broken cache file is rebuilt
            pass
    value = build()
    try:
        with atomic_path(path) as tmp:
            save_file({"data": value.contiguous()}, str(tmp))
    except OSError:
        pass  # read-only cache: only costs the rebuild next time
    return value


def prepare_features(pairs: Sequence[ImageTextPair], *, image_size: int, text_encoder: Any, linker: Any = None,
                     max_link_concepts: int = 16, cache_dir: str | os.PathLike[str] | None = None,
                     progress: bool = True, image_features: Any = None, image_part: str = "pooled") -> PairFeatures:
    """Decode, resize and encode ``pairs`` once (cached under ``cache_dir``, default ``kgclip_home()/cache``).

    Args:
        pairs: the pairs.
        image_size: training side in pixels.
        text_encoder: frozen text tower (``encode(texts) -> [N, Dt]`` and ``fingerprint``).
        linker: a ConceptLinker (``None``: no links, so no soft targets and no enrichment).
        max_link_concepts: affirmed concepts per pair kept for the soft targets.
        cache_dir: cache root; ``False``-like empty string disables the disk cache.
        progress: show progress bars.
        image_features: a :class:`kgclip.models.features.TowerFeatures`: images are not decoded at ``image_size``;
            its cached ``image_part`` (``"pooled"``, ``"tap<k>"``) becomes ``image_feats``.
        image_part: which tower output to keep (see :meth:`kgclip.models.kgclip.KGClipModel.frozen_features_part`).
    """
    from tqdm.auto import tqdm

    from kgclip.models.kgclip_text import link_texts

    if not pairs:
        raise ConfigError("no image-text pairs to prepare (empty dataset or split)")
    root = Path(cache_dir) if cache_dir else kgclip_home() / "cache"
    h = Hasher().update_str(f"images-v1-{image_size}")
    for p in pairs:
        try:
            st = os.stat(p.image)
        except OSError as exc:
            raise ImageReadError(f"cannot read image {p.image}: {exc}") from exc
        h.update_str(str(Path(p.image).resolve())).update_str(f"{st.st_size}:{st.st_mtime_ns}")
    image_fp = h.hexdigest()

    def build_images() -> torch.Tensor:
        arr = np.stack([load_gray(p.image, image_size) for p in tqdm(
            pairs, desc=f"decoding images at {image_size} px", disable=not progress, leave=False)])
        return torch.from_numpy(arr).unsqueeze(1)

    image_feats = None
    if image_features is not None:
        image_feats = image_features.features([p.image for p in pairs], (image_part,), show_progress=progress)[
            image_part]
        image_fp = Hasher().update_str(image_fp).update_str(image_features.fingerprint).update_str(
            image_part).hexdigest()
        images = torch.zeros(len(pairs), 0, dtype=torch.uint8)
    else:
        images = _cached_tensor(root / "pairs" / f"images-{image_fp}.safetensors", build_images)
    texts = [p.text for p in pairs]
    text_fp = Hasher().update_str(str(text_encoder.fingerprint)).update_json(texts).hexdigest()
    text_emb = _cached_tensor(root / "pairs" / f"text-{text_fp}.safetensors",
                              lambda: text_encoder.encode(texts, batch_size=64, show_progress=progress).float())
    links = link_texts(linker, texts) if linker is not None else [([], []) for _ in texts]
    vocab: dict[str, int] = {}
    link_idx = torch.zeros(len(pairs), max_link_concepts, dtype=torch.long)
    link_mask = torch.zeros(len(pairs), max_link_concepts, dtype=torch.bool)
    for row, (pos, _) in enumerate(links):
        ids = [vocab.setdefault(c, len(vocab)) for c in pos][:max_link_concepts]
        if ids:
            link_idx[row, :len(ids)] = torch.tensor(ids)
            link_mask[row, :len(ids)] = True
    fp = Hasher().update_str(image_fp).update_str(text_fp).update_json(links).hexdigest()
    return PairFeatures(texts=texts, groups=[p.group for p in pairs], meta=[dict(p.meta) for p in pairs],
                        images=images, text_emb=text_emb, links=links, link_idx=link_idx, link_mask=link_mask,
                        fingerprint=fp, image_feats=image_feats)


def load_concept_graph() -> Any:
    """The shipped ontologies (RadLex + Disease Ontology) as one graph: the one recipe training, the engine and
    the demo share. ``ontologies/build.py`` decides what goes into them; this only loads what it wrote.

    Raises:
        InputFormatError: the shipped ontologies are not built (the message names ``python ontologies/build.py``).
    """
    from kgclip.ontology.store import load_ontologies

    return load_ontologies()


def concept_table(enrichment: str, ids: Sequence[str], *, graph: Any = None, text_encoder: Any = None,
                  kg_dir: str | os.PathLike[str] | None = None,
                  progress: bool = True) -> tuple[list[str], torch.Tensor, str]:
    """Rows of the model's concept table: ``(ids, vectors [N, Dc], fingerprint)``.

    Args:
        enrichment: ``"gnn"``: the GNN concept embeddings saved by ``kgclip kg train`` in ``kg_dir``;
            ``"text"``: the text tower's features of each concept's name, synonyms and definition (the GNN's input,
            :func:`kgclip.kg.convert.concept_features`, cached on disk).
        ids: the concepts wanted (those without an embedding are left out).
        graph: the concept graph (``"text"``).
        text_encoder: the text tower (``"text"``).
        kg_dir: directory of the saved concept embeddings (``"gnn"``).
    """
    if enrichment == "gnn":
        from kgclip.kg.embeddings import ConceptEmbeddings

        emb = ConceptEmbeddings.load(kg_dir)
        known = set(emb.ids)
        keep = [c for c in dict.fromkeys(ids) if c in known]
        fp = emb.fingerprint
        return keep, emb.get(keep).float(), str(fp() if callable(fp) else fp)
    if enrichment == "text":
        from kgclip.kg.convert import concept_features

        keep = [c for c in dict.fromkeys(ids) if c in graph]
        vectors = concept_features(graph, text_encoder, ids=keep, show_progress=progress)
        fp = Hasher().update_str("text-features").update_str(str(text_encoder.fingerprint)).update_json(keep)
        return keep, vectors.float(), fp.update_array(vectors.numpy()).hexdigest()
    raise ConfigError(f"concept_table needs enrichment 'gnn' or 'text', got {enrichment!r}")
