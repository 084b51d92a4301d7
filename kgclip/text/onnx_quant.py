"""Int8 quantization of an exported text tower that keeps its outlier activation channels in float32.

ONNX Runtime's dynamic quantization gives each matrix product one int8 scale for its whole input (per batch).
BERT-like towers carry a few input channels that are 10 to 20 times larger than the rest (the [CLS] and [SEP]
tokens' "massive activations", e.g. channel 99 of MiniLM after each attention block, and a few GELU outputs), so
that one scale is coarse for every other channel. Short texts, where those tokens are a third of the positions,
lost the most (cosine 0.975 to the float32 tower for "count" or "TRUE").

The recipe, as LLM.int8() does per token but here per channel, fixed once from calibration texts:

1. ``channel_maxima``: run the float32 graph on :data:`CALIBRATION_TEXTS` and record each channel's largest
   ``|x|`` at the input of every matrix product with a constant weight.
2. ``split_outlier_channels``: for each product ``x @ W``, the channels whose maximum exceeds
   ``outlier_ratio`` times the median channel maximum are taken out: ``x @ W = (x * keep) @ W + x[:, out] @ W[out]``.
   The first product is quantized, the second (a handful of rows) stays float32. Exact in float32.
3. ``quantize``: ``quantize_dynamic``, int8 weights per output channel, on the first products only.

The calibration texts were written for this purpose (report-style sentences, questions and short phrases); none of
them is a concept text of the shipped graphs (``tests/text/test_onnx_encoder.py`` checks), so the benchmark over
concept texts measures texts the recipe never saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from kgclip.fingerprint import Hasher

__all__ = ["CALIBRATION_TEXTS", "QuantRecipe", "channel_maxima", "fuse_bert", "quantize", "split_outlier_channels"]

CALIBRATION_TEXTS: tuple[str, ...] = (
    "The heart is normal in size.", "Lungs are clear bilaterally.", "No acute cardiopulmonary abnormality.",
    "There is no focal airspace consolidation.", "No pleural effusion is seen.", "The mediastinum is unremarkable.",
    "Bony structures are intact.", "Stable appearance of the chest since the prior study.",
    "Mild degenerative changes are present in the spine.", "Low lung volumes with bibasilar opacities.",
    "A right-sided central venous catheter terminates in the superior vena cava.",
    "Interval removal of the endotracheal tube.", "Trace left effusion, unchanged.",
    "Findings may represent atelectasis or early infection; clinical correlation is advised.",
    "Compared with the radiograph of last week, the opacity has improved.",
    "Sternal wires and mediastinal clips from prior surgery.", "The trachea is midline.",
    "Hyperinflated lungs consistent with emphysema.", "Nodular density projecting over the right mid lung.",
    "Follow-up CT in three months is recommended.", "The cardiomediastinal silhouette is within normal limits.",
    "There are no acute fractures.", "Small calcified nodule, likely a healed granuloma.",
    "Patient rotated, limiting evaluation.", "Moderate hiatus hernia behind the heart.",
    "MRI of the brain shows a ring-enhancing lesion in the left parietal lobe.",
    "Axial CT image of the abdomen with contrast.", "Is there free air under the diaphragm?",
    "What organ system is shown?", "Is the liver enlarged?", "Where is the mass located?",
    "chest x-ray, two views", "frontal radiograph", "unchanged from prior", "no change", "within normal limits",
    "left lower lobe", "right upper quadrant", "mildly enlarged", "status post", "likely benign", "cannot exclude",
    "question of infiltrate", "increased density", "soft tissue swelling", "mass effect", "air fluid level",
    "lucent lesion", "seen", "worse", "both sides", "no longer visible", "heart ok", "lungs clear", "spine fine",
    "nil", "much better", "steady", "ok", "n/a", "CT", "MR", "AP film", "T12 level", "PA and lateral", "L5-S1",
    "2 cm", "3.5 mm", "Ill-defined opacity (arrow).", "History: cough and fever for 3 days.",
    "Indication: chest pain.", "IMPRESSION: No active disease.", "FINDINGS: Normal.",
)


@dataclasses.dataclass(frozen=True)
class QuantRecipe:
    """How the int8 tower is made from the float32 export; saved in ``meta.json`` beside the models."""

    # Bumped whenever the steps change; part of the cache key, so an older cached int8 model is rebuilt.
    version: str = "onnx-int8-v2"
    # An input channel whose calibration maximum |x| exceeds this many times the median channel maximum of that
    # input stays float32 (MiniLM: 289 of 13,824 input channels, ~10 % of the multiply-adds). Over the ~59k
    # concept texts, 3.0 left a minimum cosine of 0.9900 (no margin), 6.0 left 0.989 on short texts; 2.0 keeps
    # ~20 % of the work in float32 for +0.001.
    outlier_ratio: float = 2.5
    # Fuse attention, GELU and layer norms with ONNX Runtime's BERT optimizer before quantizing (faster).
    fuse: bool = True

    def __post_init__(self) -> None:
        if not self.outlier_ratio > 1.0:
            raise ValueError(f"outlier_ratio must be > 1 (a multiple of the median channel), got {self.outlier_ratio}")

    @property
    def key(self) -> str:
        """Short hash of the recipe and its calibration texts (cache directories and fingerprints)."""
        h = Hasher().update_json(dataclasses.asdict(self)).update_json(list(CALIBRATION_TEXTS))
        return f"{self.version}-{h.hexdigest()[:8]}"


def fuse_bert(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> bool:
    """ONNX Runtime's BERT fusions (attention, GELU, skip layer norm) of ``src`` into ``dst``.

    Returns whether attention was fused; when not (another architecture), ``dst`` is ``src`` unchanged.
    """
    import shutil

    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0)
    if not model.get_fused_operator_statistics().get("Attention", 0):
        shutil.copyfile(src, dst)
        return False
    model.save_model_to_file(str(dst))
    return True


def _products(graph) -> list:
    """Nodes multiplying an activation by a constant weight ``[in, out]``: ``MatMul``, and the fused ``Attention``
    (its query, key and value projections)."""
    constants = {i.name: i for i in graph.initializer}
    return [n for n in graph.node if n.op_type in ("MatMul", "Attention") and len(n.input) > 1
            and n.input[1] in constants and len(constants[n.input[1]].dims) == 2]


def channel_maxima(path: Path, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel maximum ``|x|`` at the input of every constant-weight product of ``path``.

    Shapes: ``{input name: [in_features]}``, over every position of every batch of ``feeds``.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    names = list(dict.fromkeys(n.input[0] for n in _products(model.graph)))
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the named tensors
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    maxima: dict[str, np.ndarray] = {}
    for feed in feeds:
        values = session.run(names, {k: v for k, v in feed.items() if k in wanted})
        for name, value in zip(names, values):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(0)
            maxima[name] = np.maximum(maxima[name], m) if name in maxima else m
    return maxima


def split_outlier_channels(src: Path, dst: Path, maxima: dict[str, np.ndarray], ratio: float) -> list[str]:
    """Rewrite each constant-weight ``x @ W`` of ``src`` as ``(x * keep) @ W + x[..., out] @ W[out]`` (into
    ``dst``), ``out`` the channels of ``x`` whose maximum exceeds ``ratio`` times the median channel maximum.

    A fused ``Attention`` cannot be split (the sum is inside the op): its outlier channels are scaled down to the
    threshold instead and its weight rows up (:func:`_smooth`).

    Returns the names of the ``MatMul`` nodes that stay float32 (the outlier products), for :func:`quantize`.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    constants = {i.name: i for i in graph.initializer}
    added, fp32_nodes = [], []
    for node in _products(graph):
        x, y, peak = node.input[0], node.output[0], maxima.get(node.input[0])
        if peak is None:
            continue
        out = np.flatnonzero(peak > ratio * np.median(peak))
        if not len(out):
            continue
        weight = numpy_helper.to_array(constants[node.input[1]])
        if node.op_type == "Attention":  # no sum to split inside the fused op: scale the outliers down instead
            _smooth(constants[node.input[1]], node, weight, peak, out, ratio * np.median(peak), added, graph)
            continue
        keep = np.ones(len(peak), dtype=np.float32)
        keep[out] = 0.0
        p = f"{node.name}/outliers"
        graph.initializer.extend([numpy_helper.from_array(keep, f"{p}/keep"),
                                  numpy_helper.from_array(out.astype(np.int64), f"{p}/channels"),
                                  numpy_helper.from_array(np.ascontiguousarray(weight[out]), f"{p}/weight")])
        node.input[0], node.output[0] = f"{p}/kept", f"{p}/int8_part"
        added += [helper.make_node("Mul", [x, f"{p}/keep"], [f"{p}/kept"], name=f"{p}/Mul"),
                  helper.make_node("Gather", [x, f"{p}/channels"], [f"{p}/x"], name=f"{p}/Gather", axis=-1),
                  helper.make_node("MatMul", [f"{p}/x", f"{p}/weight"], [f"{p}/fp32_part"], name=f"{p}/MatMul"),
                  helper.make_node("Add", [f"{p}/int8_part", f"{p}/fp32_part"], [y], name=f"{p}/Add")]
        fp32_nodes.append(f"{p}/MatMul")
    _insert_sorted(graph, added)
    onnx.save(model, str(dst))
    return fp32_nodes


def _smooth(constant, node, weight: np.ndarray, peak: np.ndarray, out: np.ndarray, target: float,
            added: list, graph) -> None:
    """``x @ W == (x / s) @ (s W)``: divide outlier channels ``out`` of the input by ``s`` (down to ``target``) and
    multiply the matching weight rows by ``s`` (SmoothQuant, on the outliers only). ``constant``: the initializer
    of ``W``, rewritten in place."""
    from onnx import helper, numpy_helper

    scale = np.ones(len(peak), dtype=np.float32)
    scale[out] = peak[out] / target
    weight = weight * scale[:, None]
    constant.CopyFrom(numpy_helper.from_array(weight.astype(np.float32), node.input[1]))
    p = f"{node.name}/outliers"
    graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{p}/inverse_scale"))
    added.append(helper.make_node("Mul", [node.input[0], f"{p}/inverse_scale"], [f"{p}/scaled"], name=f"{p}/Mul"))
    node.input[0] = f"{p}/scaled"


def _insert_sorted(graph, added: list) -> None:
    """Append ``added`` and put the nodes back in topological order (ONNX requires it)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node) + added, []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input at {rest[0].name}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def quantize(src: Path, dst: Path, *, keep_fp32: Iterable[str] = ()) -> None:
    """Dynamic int8 quantization of ``src``'s products and fused attention (int8 weights per output channel),
    except the nodes named in ``keep_fp32``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = set(keep_fp32)
    names = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
             if n.op_type in ("MatMul", "Attention") and n.name not in keep]
    # DefaultTensorType: the fused graph leaves some shapes untyped, which the quantizer otherwise refuses.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=names,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
