"""Int8 quantization of an exported text tower that keeps its outlier activation channels in float32.

ONNX Runtime's dynamic quantization gives each matrix product one int8 scale for its whole input (per batch).
BERT-like towers carry a few input channels that are 10 to 20 times larger than the rest (the [CLS] and [SEP]
tokens' "massive activations", e.g. channel 99 of MiniLM after each attention block, and a few GELU outputs), so
that one scale is coarse for every other channel. Short texts, where those tokens are a third of the positions,
lost the most (cosine 0.975 to the float32 tower for "count" or "TRUE").

The recipe, fixed once from calibration texts:

1. ``channel_maxima``: run the float32 graph on :data:`CALIBRATION_TEXTS` and record each channel's largest
   ``|x|`` at the input of every matrix product with a constant weight.
2. ``rewrite_outlier_channels``: for each product ``x @ W``, the channels whose maximum exceeds ``outlier_ratio``
   times the median channel maximum are taken out of the int8 scale, in the cheapest exact way that what makes
   ``x`` allows: GELU outputs are routed through a float32 side branch (the largest outliers, as LLM.int8() does
   per token but here per channel), attention contexts are rescaled inside the value projection (free), layer-norm
   outputs are scaled down by one ``Mul`` with the weight rows scaled up (SmoothQuant on those channels only).
   Exact in float32.
3. ``quantize``: ``quantize_dynamic``, int8 weights per output channel, on every product but the float32 branches.

Version 2 split every product as ``(x * keep) @ W + x[:, out] @ W[out]``: the same accuracy, but the extra
passes over the wide GELU output (``Mul``, a strided ``Gather``, an ``Add``) cost about 19 % of the run time.

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

__all__ = ["CALIBRATION_TEXTS", "QuantRecipe", "channel_maxima", "fuse_bert", "quantize", "rewrite_outlier_channels"]

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
    version: str = "onnx-int8-v3"
    # An input channel whose calibration maximum |x| exceeds this many times the median channel maximum of that
    # input is an outlier (MiniLM: 328 of the 16,128 input channels of its 24 products; 227 of them are GELU
    # outputs, routed in float32).
    # Chosen for version 2 (3.0 left a minimum cosine of 0.9900 over the ~59k concept texts, 6.0 left 0.989 on
    # short texts); version 3 keeps it: on 13,112 validation texts that are not concept texts (VQA-RAD train
    # questions and answers, IU X-ray MeSH terms and report sentences) its lowest cosine is 0.9921 (v2: 0.9918).
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
    """ONNX Runtime's BERT fusions (attention, bias + GELU, embedding layer norm) of ``src`` into ``dst``.

    The residual add and layer norm stay two standard ops (``Add``, ``LayerNormalization``): ONNX Runtime 1.32's
    fused ``SkipLayerNormalization`` CPU kernel took 4.6x their time on this machine (384 channels) and 15-20 % of
    the int8 tower's run time.

    Returns whether attention was fused; when not (another architecture), ``dst`` is ``src`` unchanged.
    """
    import shutil

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False
    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0,
                           optimization_options=options)
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


def rewrite_outlier_channels(src: Path, dst: Path, maxima: dict[str, np.ndarray], ratio: float) -> dict[str, list[str]]:
    """Take the outlier input channels of every constant-weight product ``x @ W`` of ``src`` out of its int8
    scale (into ``dst``). ``out``: the channels of ``x`` whose maximum exceeds ``ratio`` times the median channel
    maximum. Each product is rewritten by what makes ``x`` (all exact in float32):

    - a fused ``BiasGelu`` (the feed-forward's second product): the outlier channels are *routed*; the first
      product, the GELU and the second product run on them apart, in float32 (:func:`_route`). No extra pass over
      the wide GELU output.
    - a fused ``Attention`` (the attention output projection): the channels are scaled down inside the value
      projection's columns and the projection's rows up (:func:`_fold_into_values`). Costs nothing at run time.
    - a layer norm, or the product is the fused ``Attention`` itself: outliers scaled down by a ``Mul`` and the
      weight rows up (SmoothQuant on those channels only, :func:`_smooth`); a layer norm's outliers are moderate
      (at most ~20x the median in MiniLM) and the per-output-channel weight scales absorb them.
    - anything else (an unfused graph): ``(x * keep) @ W + x[..., out] @ W[out]``, the second part float32
      (:func:`_split`).

    Returns ``{how: [product names]}``; ``fp32`` lists the float32 products :func:`quantize` must leave alone.
    """
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    constants = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, int] = {}
    for n in graph.node:
        for name in n.input:
            consumers[name] = consumers.get(name, 0) + 1
    done: dict[str, list[str]] = {"routed": [], "folded": [], "smoothed": [], "split": [], "fp32": []}
    added: list = []
    products = _products(graph)
    # Route first: it narrows the first feed-forward product's weight, which that product's own rewrite then sees.
    products.sort(key=lambda n: getattr(producer.get(n.input[0]), "op_type", "") != "BiasGelu")
    for node in products:
        peak = maxima.get(node.input[0])
        if peak is None:
            continue
        target = ratio * float(np.median(peak))
        out = np.flatnonzero(peak > target)
        if not len(out):
            continue
        source = producer.get(node.input[0])
        made_by = source.op_type if source is not None else ""
        only_reader = consumers.get(node.input[0]) == 1
        if node.op_type == "Attention" or made_by.endswith("LayerNormalization"):
            _smooth(node, peak, out, target, constants, added, graph)
            done["smoothed"].append(node.name)
        elif made_by == "BiasGelu" and only_reader and _routable(source, producer, consumers, constants):
            done["fp32"] += _route(node, source, producer[source.input[0]], out, constants, added, graph)
            done["routed"].append(node.name)
        elif made_by == "Attention" and only_reader and len(source.input) > 2 and source.input[2] in constants:
            _fold_into_values(node, source, peak, out, target, constants)
            done["folded"].append(node.name)
        else:
            done["fp32"].append(_split(node, out, constants, added, graph))
            done["split"].append(node.name)
    _insert_sorted(graph, added)
    onnx.save(model, str(dst))
    return done


def _array(constants: dict, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(constants[name])


def _put(constants: dict, name: str, value: np.ndarray) -> None:
    """Rewrite initializer ``name`` in place (found through ``constants``, the name -> initializer map)."""
    from onnx import numpy_helper

    constants[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))


def _routable(gelu, producer: dict, consumers: dict, constants: dict) -> bool:
    """``gelu`` is ``BiasGelu(x @ W1, b1)`` with a constant ``W1``, ``b1`` and nothing else reading ``x @ W1``."""
    first = producer.get(gelu.input[0])
    return (first is not None and first.op_type == "MatMul" and first.input[1] in constants
            and gelu.input[1] in constants and consumers.get(gelu.input[0]) == 1)


def _route(node, gelu, first, out: np.ndarray, constants: dict, added: list, graph) -> list[str]:
    """``GELU(x @ W1 + b1) @ W2`` with the outlier channels ``out`` of the GELU output taken apart:
    ``GELU(x @ W1[:, in] + b1[in]) @ W2[in] + GELU(x @ W1[:, out] + b1[out]) @ W2[out]``. The first sum is the
    original (narrower) nodes, quantized; the second new float32 nodes. Returns the float32 products' names."""
    from onnx import helper, numpy_helper

    w1, b1, w2 = _array(constants, first.input[1]), _array(constants, gelu.input[1]), _array(constants, node.input[1])
    keep = np.setdiff1d(np.arange(w1.shape[1]), out)
    _put(constants, first.input[1], w1[:, keep])
    _put(constants, gelu.input[1], b1[keep])
    _put(constants, node.input[1], w2[keep])
    p = f"{node.name}/outliers"
    graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(w1[:, out]), f"{p}/w1"),
                              numpy_helper.from_array(np.ascontiguousarray(b1[out]), f"{p}/b1"),
                              numpy_helper.from_array(np.ascontiguousarray(w2[out]), f"{p}/w2")])
    y = node.output[0]
    node.output[0] = f"{p}/int8_part"
    added += [helper.make_node("MatMul", [first.input[0], f"{p}/w1"], [f"{p}/h"], name=f"{p}/MatMul1"),
              helper.make_node("BiasGelu", [f"{p}/h", f"{p}/b1"], [f"{p}/g"], name=f"{p}/BiasGelu",
                               domain=gelu.domain),
              helper.make_node("MatMul", [f"{p}/g", f"{p}/w2"], [f"{p}/fp32_part"], name=f"{p}/MatMul2"),
              helper.make_node("Add", [f"{p}/int8_part", f"{p}/fp32_part"], [y], name=f"{p}/Add")]
    return [f"{p}/MatMul1", f"{p}/MatMul2"]


def _scales(peak: np.ndarray, out: np.ndarray, target: float) -> np.ndarray:
    """Per-channel divisors bringing the outlier channels' calibration maxima down to ``target`` (1 elsewhere)."""
    scale = np.ones(len(peak), dtype=np.float32)
    scale[out] = peak[out] / target
    return scale


def _fold_into_values(node, attention, peak: np.ndarray, out: np.ndarray, target: float, constants: dict) -> None:
    """``context @ Wo`` where ``context = softmax(QK') V`` is linear in each value channel: dividing value columns
    (weight and bias) by ``s`` divides the context channels by ``s``; ``Wo``'s rows are multiplied by ``s``.
    ORT's ``Attention`` stacks the Q, K and V projections as ``[hidden, 3 * hidden]``; V is the last third."""
    scale = _scales(peak, out, target)
    w, b, wo = (_array(constants, attention.input[1]), _array(constants, attention.input[2]),
                _array(constants, node.input[1]))
    v = w.shape[1] - len(scale)
    w, b = w.copy(), b.copy()
    w[:, v:] /= scale
    b[v:] /= scale
    _put(constants, attention.input[1], w)
    _put(constants, attention.input[2], b)
    _put(constants, node.input[1], wo * scale[:, None])


def _smooth(node, peak: np.ndarray, out: np.ndarray, target: float, constants: dict, added: list, graph) -> None:
    """``x @ W == (x / s) @ (s W)``: divide outlier channels ``out`` of the input by ``s`` (down to ``target``) and
    multiply the matching weight rows by ``s`` (SmoothQuant, on the outliers only)."""
    from onnx import helper, numpy_helper

    scale = _scales(peak, out, target)
    _put(constants, node.input[1], _array(constants, node.input[1]) * scale[:, None])
    p = f"{node.name}/outliers"
    graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{p}/inverse_scale"))
    added.append(helper.make_node("Mul", [node.input[0], f"{p}/inverse_scale"], [f"{p}/scaled"], name=f"{p}/Mul"))
    node.input[0] = f"{p}/scaled"


def _split(node, out: np.ndarray, constants: dict, added: list, graph) -> str:
    """``x @ W == (x * keep) @ W + x[..., out] @ W[out]``; returns the float32 product's name."""
    from onnx import helper, numpy_helper

    weight = _array(constants, node.input[1])
    keep = np.ones(weight.shape[0], dtype=np.float32)
    keep[out] = 0.0
    x, y, p = node.input[0], node.output[0], f"{node.name}/outliers"
    graph.initializer.extend([numpy_helper.from_array(keep, f"{p}/keep"),
                              numpy_helper.from_array(out.astype(np.int64), f"{p}/channels"),
                              numpy_helper.from_array(np.ascontiguousarray(weight[out]), f"{p}/weight")])
    node.input[0], node.output[0] = f"{p}/kept", f"{p}/int8_part"
    added += [helper.make_node("Mul", [x, f"{p}/keep"], [f"{p}/kept"], name=f"{p}/Mul"),
              helper.make_node("Gather", [x, f"{p}/channels"], [f"{p}/x"], name=f"{p}/Gather", axis=-1),
              helper.make_node("MatMul", [f"{p}/x", f"{p}/weight"], [f"{p}/fp32_part"], name=f"{p}/MatMul"),
              helper.make_node("Add", [f"{p}/int8_part", f"{p}/fp32_part"], [y], name=f"{p}/Add")]
    return f"{p}/MatMul"


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
