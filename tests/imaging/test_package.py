"""Importing kgclip.imaging / kgclip.data is free (no torch, pydicom or Pillow) and the lazy names resolve."""

from __future__ import annotations

import subprocess
import sys


def test_packages_import_nothing_heavy() -> None:
    code = ("import sys, kgclip.imaging, kgclip.data; "
            "print(sorted(m for m in ('torch', 'pydicom', 'PIL', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_lazy_names() -> None:
    import kgclip.data
    import kgclip.imaging
    from kgclip.data.vqa_rad import read_vqa_rad
    from kgclip.imaging.io import read_image

    assert kgclip.imaging.read_image is read_image and kgclip.data.read_vqa_rad is read_vqa_rad
    assert all(hasattr(kgclip.imaging, n) for n in kgclip.imaging.__all__)
    assert all(hasattr(kgclip.data, n) for n in kgclip.data.__all__)
