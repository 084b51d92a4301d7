"""Image inputs (through kgclip.imaging.io), the thumbnail descriptor, the concept tagger, and the HTML renderings."""

from __future__ import annotations

import numpy as np
import pytest

from kgclip.display import subgraph_html, thumbnail_data_uri
from kgclip.errors import ImageReadError
from kgclip.engine.cases import qa_statement
from kgclip.models.image_input import grey_luma, load_image
from kgclip.models.thumbnail import ThumbnailFeaturizer
from kgclip.rag.concepts import ConceptTagger, expand_concepts
from kgclip.testing import tiny_graph


def test_load_image_from_array_png_and_errors(tmp_path):
    from PIL import Image

    arr = (np.arange(64 * 48).reshape(48, 64) % 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.pixels.shape == (48, 64) and img.pixels.min() >= 0 and img.pixels.max() <= 1
    assert load_image(arr).pixels.shape == (48, 64)
    with pytest.raises(ImageReadError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)  # truncated
    with pytest.raises(ImageReadError):
        load_image(tmp_path / "t.png")
    with pytest.raises(ImageReadError, match="2-D"):
        load_image(np.zeros((2, 3, 4, 5)))


def test_colour_jpeg_and_png_match_pillows_grey(tmp_path):
    """Colour images become Pillow's own ``convert("L")`` values (the descriptor's figures rest on them)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for name in ("c.png", "c.jpg"):
        Image.fromarray(rgb).save(tmp_path / name)
        with Image.open(tmp_path / name) as img:
            want = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        assert np.array_equal(load_image(tmp_path / name).pixels, want)
        assert np.array_equal(load_image((tmp_path / name).read_bytes()).pixels, want)
    assert np.array_equal(grey_luma(rgb.astype(np.float32) / 255.0),
                          np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255.0)
    with pytest.raises(ImageReadError, match="dict"):
        load_image({"not": "an image"})


def test_real_dicom_reads():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    img = load_image(path)
    assert img.pixels.shape == (128, 128) and 0.0 <= float(img.pixels.mean()) <= 1.0
    assert pydicom is not None


def test_thumbnail_descriptor_same_image_closest(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.random((40, 40)), rng.random((40, 40))
    f = ThumbnailFeaturizer()
    v = f.embed([a, a * 0.5 + 0.1, b])
    assert v.shape == (3, f.dim) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.99 > v[0] @ v[2]  # contrast / brightness changes do not matter, content does


def test_tagger_and_statements():
    tagger = ConceptTagger(tiny_graph())
    mentions = tagger.link("No pleural effusion. Enlarged heart, possible pneumonia.")
    names = {m.name: m for m in mentions}
    assert names["pleural effusion"].negated and not names["cardiomegaly"].negated
    assert names["pneumonia"].uncertain
    assert tagger.link("") == [] and tagger.link(None) == []
    assert tagger.link("What is shown in the left image?") == []  # question words are not findings
    assert "DOID:4" in expand_concepts(tiny_graph(), ["DOID:552"])
    assert qa_statement("Is there a pleural effusion?", "No") == "There is no pleural effusion."
    assert qa_statement("Are the lungs normal appearing?", "No") == "The lungs are not normal."
    assert qa_statement("What organ is shown?", "Lung") == "What organ is shown: Lung."


def test_html_renderings_escape_and_inline(tmp_path):
    uri = thumbnail_data_uri(np.eye(20))
    assert uri.startswith("data:image/png;base64,")
    assert thumbnail_data_uri(tmp_path / "missing.png") == ""
    g = tiny_graph()
    html = subgraph_html(g.subgraph_nx(["RADLEX:RID4872"], hops=1), highlight=["RADLEX:RID4872"])
    assert "<svg" in html and "pleural effusion" in html and "located_in" in html
