"""Dataset readers returning typed records: MedPix 2.0 (:mod:`.medpix`), VQA-RAD (:mod:`.vqa_rad`), IU X-ray
reports (:mod:`.iu_xray`), generic CSV/JSONL image-text manifests (:mod:`.manifest`), the shipped demo sample
(:mod:`.demo`) and a torch ``ImageTextDataset`` (:mod:`.dataset`).

Every reader takes the dataset's path (default: the development data folder) and a bad-row policy ``on_error``
(``"raise"``, ``"warn"`` or ``"skip"``). Names are imported lazily: importing this package imports no torch.
"""

from __future__ import annotations

from kgclip._lazy import lazy_exports


__all__ = ["read_medpix", "medpix_pairs", "read_vqa_rad", "read_iu_xray", "read_manifest", "write_manifest",
           "ImageTextDataset", "collate_image_text", "demo_vqa_rad_dir"]

_WHERE = {"read_medpix": "medpix", "medpix_pairs": "medpix", "read_vqa_rad": "vqa_rad", "read_iu_xray": "iu_xray",
          "read_manifest": "manifest", "write_manifest": "manifest", "ImageTextDataset": "dataset",
          "collate_image_text": "dataset", "demo_vqa_rad_dir": "demo"}

__getattr__, __dir__ = lazy_exports(__name__, {name: f"kgclip.data.{module}" for name, module in _WHERE.items()})
