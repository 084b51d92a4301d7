"""MedPix 2.0 reader: ``cases.json`` (clinical cases), ``descriptions.json`` (one row per image), ``splits.json``.

>>> mp = read_medpix("path/to/medpix-2.0", split="train")        # doctest: +SKIP
>>> img = mp.images[0]; img.modality, img.plane, img.caption     # doctest: +SKIP
('CT', 'Axial', '...')
>>> mp.cases[img.case_id].findings                               # doctest: +SKIP

MedPix content comes from the NLM; its terms are unverified, so it is for development only and never shipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from kgclip.data._common import OnError, handle_bad_row, load_json, resolve_root
from kgclip.data.sections import Sections

__all__ = ["MedPixImage", "MedPixCase", "MedPix", "read_medpix", "medpix_pairs"]


@dataclasses.dataclass(frozen=True)
class MedPixImage:
    """One MedPix image with its caption and acquisition labels.

    Attributes:
        image_id: e.g. ``MPX1009_synpic46283`` (file ``images/<image_id>.jpg``).
        case_id: the case's ``U_id`` (``MPX1009``).
        image_path: absolute path of the JPEG.
        caption: the figure caption (whitespace collapsed).
        modality: ``CT`` or ``MR``.
        modality_detail: e.g. ``CT w/contrast (IV)``, ``MR - T2 weighted``.
        plane: e.g. ``Axial``, ``Coronal``, ``Sagittal``.
        location: body location, e.g. ``Brain and Neuro``.
        location_category: coarse location, e.g. ``Head``, ``Thorax``, ``Abdomen``.
        split: ``train`` or ``dev`` (the case's split), or ``""`` when the case is in no split.
        synpic_id: the MedPix picture id (``synpic46283``), shared with VQA-RAD image names.
    """

    image_id: str
    case_id: str
    image_path: Path
    caption: str
    modality: str
    modality_detail: str
    plane: str
    location: str
    location_category: str
    split: str
    synpic_id: str

    @property
    def text(self) -> str:
        """The caption (what image-text training pairs use by default)."""
        return self.caption


@dataclasses.dataclass(frozen=True)
class MedPixCase:
    """One MedPix clinical case (``cases.json``), fields whitespace-normalised, ``N/A`` as empty string."""

    case_id: str
    title: str
    history: str
    exam: str
    findings: str
    differential: str
    diagnosis: str
    discussion: str
    treatment: str
    topic_title: str
    topic_discussion: str
    category: str
    acr_code: str
    keywords: str
    image_ids: tuple[str, ...]
    split: str

    @property
    def sections(self) -> Sections:
        """The case as report sections: History and Exam are history, Findings the findings, the Case Diagnosis
        the impression; the discussion and differential are ``other`` (never drafted)."""
        return Sections(history=" ".join(p for p in (self.history, self.exam) if p), findings=self.findings,
                        impression=self.diagnosis, other=" ".join(p for p in (self.differential, self.discussion) if p),
                        headed=True)


@dataclasses.dataclass(frozen=True)
class MedPix:
    """A MedPix 2.0 dataset: images (in file order), cases by id, and the split of each case."""

    root: Path
    images: tuple[MedPixImage, ...]
    cases: dict[str, MedPixCase]

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[MedPixImage]:
        return iter(self.images)

    def images_of(self, case_id: str) -> list[MedPixImage]:
        return [img for img in self.images if img.case_id == case_id]


def _clean(value: object) -> str:
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return "" if text.upper() in ("N/A", "NA", "NONE", "NULL") else text


def read_medpix(
    root: str | Path | None = None,
    split: str | None = None,
    *,
    on_error: OnError = "raise",
    check_images: bool = True,
) -> MedPix:
    """Read MedPix 2.0 from its directory.

    Args:
        root: directory with ``cases.json``, ``descriptions.json``, ``splits.json`` and ``images/``
            (default: ``<shared data>/medpix-2.0``).
        split: keep only ``"train"`` or ``"dev"`` cases and their images; ``None`` keeps all.
        on_error: policy for a malformed row or a missing image file (``raise``/``warn``/``skip``).
        check_images: verify that each image file exists.

    Raises:
        InputFormatError: a malformed row (file and element number in the message) when ``on_error="raise"``.
        FileNotFoundError: the directory or one of its JSON files is missing.
    """
    base = resolve_root(root, "medpix-2.0", "MedPix 2.0")
    splits_raw = load_json(base / "splits.json")
    case_split: dict[str, str] = {}
    for name, ids in splits_raw.items():
        for case_id in ids:
            case_split[str(case_id)] = str(name)
    if split is not None and split not in splits_raw:
        raise ValueError(f"unknown MedPix split {split!r}; splits.json has {sorted(splits_raw)}")

    cases_path = base / "cases.json"
    cases: dict[str, MedPixCase] = {}
    for i, row in enumerate(load_json(cases_path), start=1):
        try:
            case_id = str(row["U_id"])
            c, t = row.get("Case") or {}, row.get("Topic") or {}
            image_ids = tuple(str(x) for x in (row.get("TAC") or []) + (row.get("MRI") or []))
        except (KeyError, TypeError, AttributeError) as exc:
            handle_bad_row(on_error, f"case without a usable U_id/Case ({exc!r})", cases_path, i)
            continue
        this_split = case_split.get(case_id, "")
        if split is not None and this_split != split:
            continue
        cases[case_id] = MedPixCase(
            case_id=case_id, title=_clean(c.get("Title")), history=_clean(c.get("History")),
            exam=_clean(c.get("Exam")), findings=_clean(c.get("Findings")),
            differential=_clean(c.get("Differential Diagnosis")), diagnosis=_clean(c.get("Case Diagnosis")),
            discussion=_clean(c.get("Discussion")), treatment=_clean(c.get("Treatment & Follow Up")),
            topic_title=_clean(t.get("Title")), topic_discussion=_clean(t.get("Disease Discussion")),
            category=_clean(t.get("Category")), acr_code=_clean(t.get("ACR Code")), keywords=_clean(t.get("Keywords")),
            image_ids=image_ids, split=this_split,
        )

    desc_path = base / "descriptions.json"
    images: list[MedPixImage] = []
    for i, row in enumerate(load_json(desc_path), start=1):
        try:
            image_id, case_id = str(row["image"]), str(row["U_id"])
            d = row.get("Description") or {}
            modality = str(row["Type"]).strip().upper()
        except (KeyError, TypeError, AttributeError) as exc:
            handle_bad_row(on_error, f"image row without image/U_id/Type ({exc!r})", desc_path, i)
            continue
        this_split = case_split.get(case_id, "")
        if split is not None and this_split != split:
            continue
        path = base / "images" / f"{image_id}.jpg"
        if check_images and not path.is_file():
            handle_bad_row(on_error, f"image file {path} is missing", desc_path, i)
            continue
        images.append(MedPixImage(
            image_id=image_id, case_id=case_id, image_path=path.resolve(), caption=_clean(d.get("Caption")),
            modality=modality, modality_detail=_clean(d.get("Modality")), plane=_clean(d.get("Plane")),
            location=_clean(row.get("Location")), location_category=_clean(row.get("Location Category")),
            split=this_split, synpic_id=image_id.rsplit("_", 1)[-1],
        ))
    return MedPix(root=base.resolve(), images=tuple(images), cases=cases)


def medpix_pairs(medpix: MedPix, text: str = "caption") -> list[tuple[Path, str]]:
    """Image-text pairs: ``text`` is ``"caption"``, ``"findings"`` (the case's) or ``"caption+findings"``.

    Images whose chosen text is empty are left out.
    """
    if text not in ("caption", "findings", "caption+findings"):
        raise ValueError(f"text must be 'caption', 'findings' or 'caption+findings', got {text!r}")
    pairs: list[tuple[Path, str]] = []
    for img in medpix.images:
        findings = medpix.cases[img.case_id].findings if img.case_id in medpix.cases else ""
        value = {"caption": img.caption, "findings": findings,
                 "caption+findings": f"{img.caption} {findings}".strip()}[text]
        if value:
            pairs.append((img.image_path, value))
    return pairs
