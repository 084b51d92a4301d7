"""FAISS backend specifics: families, training errors, search parameters, config, filters' exact path, GPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kgclip.config import Config
from kgclip.errors import ConfigError, EncoderMismatchError, IndexError_, ResolutionError
from kgclip.index.base import INDEX_BACKENDS, SearchResults, create_index
from kgclip.index.faiss_index import FaissIndex, IndexConfig

from .conformance import brute_force, dataset, hit_ids


@pytest.mark.parametrize("factory, family", [("Flat", "idmap"), ("SQ8", "idmap"), ("IVF4,Flat", "ivf"),
                                             ("OPQ4,IVF4,PQ4", "ivf"), ("HNSW8", "graph"), ("HNSW8,SQ8", "graph")])
def test_families(factory: str, family: str) -> None:
    assert FaissIndex(dim=16, factory=factory).family == family


def test_registry_and_config() -> None:
    assert INDEX_BACKENDS.resolve("FAISS") is FaissIndex
    with pytest.raises(ResolutionError, match="faiss"):
        create_index("milvus-lite", dim=4)
    config = IndexConfig(dim=8, factory="HNSW32", ef_search=100)
    assert isinstance(config, Config) and IndexConfig.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dim = 9  # type: ignore[misc]
    for bad in ({"dim": 0}, {"factory": "IDMap,Flat"}, {"device": "tpu"}, {"nprobe": 0}):
        with pytest.raises(ConfigError):
            IndexConfig(**bad)
    with pytest.raises(ConfigError, match="cannot build"):
        FaissIndex(dim=8, factory="NotAnIndex42")


def test_ivf_training_needs_enough_vectors() -> None:
    index = FaissIndex(dim=16, factory="IVF64,Flat")
    ids, x, _ = dataset(n=40)
    with pytest.raises(IndexError_, match="at least 64 training vectors"):
        index.add(ids, x)
    assert len(index) == 0 and not index.is_trained
    pq = FaissIndex(dim=16, factory="PQ4")
    assert pq.min_training_vectors() == 256
    many_ids, many, _ = dataset(n=300)
    with pytest.warns(UserWarning, match="recommends"):
        index.train(many)
    index.add(ids, x)
    assert len(index) == 40


def test_search_params_change_results_and_speed_knobs() -> None:
    ids, x, meta = dataset(n=300)
    ivf = FaissIndex(dim=16, factory="IVF8,Flat", nprobe=1)
    with pytest.warns(UserWarning):
        ivf.add(ids, x, meta)
    q = x[:30] + 0.5 * np.random.default_rng(0).standard_normal((30, 16)).astype(np.float32)
    truth = brute_force(x, ids, q / np.linalg.norm(q, axis=1, keepdims=True), 10)
    low = np.mean([len(set(a) & set(b)) for a, b in zip(hit_ids(ivf.search(q, 10)), truth)])
    ivf.set_search_params(nprobe=8)
    full = np.mean([len(set(a) & set(b)) for a, b in zip(hit_ids(ivf.search(q, 10)), truth)])
    assert ivf.config.nprobe == 8 and full == 10 and low < full
    hnsw = FaissIndex(dim=16, factory="HNSW8")
    hnsw.add(ids, x, meta)
    hnsw.set_search_params(ef_search=300)
    assert hit_ids(hnsw.search(q, 10)) == truth


def test_exact_filter_path_and_selector_path_agree() -> None:
    ids, x, meta = dataset(n=300)
    exact = FaissIndex(dim=16, factory="Flat", exact_filter_max=10_000)
    selector = FaissIndex(dim=16, factory="Flat", exact_filter_max=0)
    for index in (exact, selector):
        index.add(ids, x, meta)
    q = x[:10]
    for filters in ({"modality": "CT"}, {"concept": "RADLEX:RID1"}):
        assert hit_ids(exact.search(q, 7, filters)) == hit_ids(selector.search(q, 7, filters))


def test_hnsw_short_filtered_results_fall_back_to_exact() -> None:
    # A tiny efSearch with a selective filter makes the graph search come back short; the fallback fills it in.
    ids, x, meta = dataset(n=300)
    index = FaissIndex(dim=16, factory="HNSW4", ef_search=1, ef_construction=40, exact_filter_max=0,
                       filter_boost=1.0)
    index.add(ids, x, meta)
    mask = np.array(["RADLEX:RID1" in m.get("concepts", []) for m in meta])
    got = hit_ids(index.search(x[:5], 10, {"concept": "RADLEX:RID1"}))
    assert got == brute_force(x, ids, x[:5], 10, mask)


def test_search_results_render_and_reconstruct() -> None:
    ids, x, meta = dataset(n=300)
    index = FaissIndex(dim=16)
    index.add(ids, x, meta)
    results = index.search(x[:2], 3)
    assert isinstance(results[0], SearchResults) and "<table>" in results[0]._repr_html_()
    assert np.allclose(index.reconstruct(ids[:3]), x[:3], atol=1e-6)
    with pytest.raises(IndexError_, match="not in the index"):
        index.reconstruct([1])
    with pytest.raises(IndexError_, match="k must be"):
        index.search(x[:1], 0)


def test_check_encoder() -> None:
    index = FaissIndex(dim=4, encoder_fingerprint="a")
    index.check_encoder("a")
    index.check_encoder(None)
    with pytest.raises(EncoderMismatchError):
        index.check_encoder("b")


def test_device_auto_falls_back_to_cpu_and_cuda_is_clear(tmp_path: Path) -> None:
    import faiss

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present; see test_gpu_search_matches_cpu")
    ids, x, meta = dataset(n=300)
    index = FaissIndex(dim=16, device="auto")
    index.add(ids, x, meta)
    assert not index.on_gpu and len(index.search(x[:1], 3)[0]) == 3
    with pytest.raises(IndexError_, match="faiss-gpu"):
        FaissIndex(dim=16, device="cuda").on_gpu  # noqa: B018


@pytest.mark.gpu
@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat"])
def test_gpu_search_matches_cpu(factory: str) -> None:
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        pytest.skip("needs faiss-gpu")
    ids, x, meta = dataset(n=300)
    cpu = FaissIndex(dim=16, factory=factory, nprobe=8)
    gpu = FaissIndex(dim=16, factory=factory, nprobe=8, device="cuda")
    for index in (cpu, gpu):
        index.add(ids, x, meta)
    assert gpu.on_gpu
    assert hit_ids(gpu.search(x[:20], 5)) == hit_ids(cpu.search(x[:20], 5))
    gpu.remove(ids[:10])  # the CPU master removes; the GPU copy is refreshed before the next search
    assert ids[0] not in hit_ids(gpu.search(x[:1], 5))[0]
    assert hit_ids(gpu.search(x[:5], 5, {"modality": "CT"})) == hit_ids(cpu.search(x[:5], 5, {"modality": "CT"}))


@pytest.mark.gpu
def test_gpu_top_k_above_faiss_gpu_limit_is_served_on_cpu() -> None:
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        pytest.skip("needs faiss-gpu")
    ids, x, meta = dataset(n=3000)
    gpu = FaissIndex(dim=16, device="cuda")
    gpu.add(ids, x, meta)
    assert gpu.on_gpu
    hits = gpu.search(x[:2], 2500)  # faiss-gpu refuses k > 2048
    assert [len(row) for row in hits] == [2500, 2500]
    assert [set(row) for row in hit_ids(hits)] == [set(row) for row in brute_force(x, ids, x[:2], 2500)]


@pytest.mark.filterwarnings("ignore:training IVF with")
@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat", "HNSW8"])
def test_dense_id_bitmap_selector_matches_brute_force(factory: str) -> None:
    _, x, meta = dataset(n=300)
    ids = np.arange(300, dtype=np.int64)  # dense ids take the bitmap selector
    index = FaissIndex(dim=16, factory=factory, nprobe=4, ef_search=300, exact_filter_max=0)
    index.add(ids, x, meta)
    index.remove(ids[:30])
    mask = np.array([m["modality"] == "MR" for m in meta])
    mask[:30] = False
    for _ in range(2):  # the second search reuses the cached selector
        assert hit_ids(index.search(x[:8], 10, {"modality": "MR"})) == brute_force(x, ids, x[:8], 10, mask)
    index.add(ids[:30], x[:30], meta[:30])  # a write invalidates the cached selector
    mask[:30] = [m["modality"] == "MR" for m in meta[:30]]
    assert hit_ids(index.search(x[:8], 10, {"modality": "MR"})) == brute_force(x, ids, x[:8], 10, mask)


@pytest.mark.filterwarnings("ignore:training IVF with")
@pytest.mark.parametrize("factory", ["HNSW8", "IVF4,Flat"])
def test_broad_filters_widen_the_search_by_inverse_selectivity(factory: str) -> None:
    ids, x, meta = dataset(n=300)
    index = FaissIndex(dim=16, factory=factory, ef_search=20, nprobe=1, exact_filter_max=0, filter_boost=8.0)
    index.add(ids, x, meta)
    mr = np.array([m["modality"] == "MR" for m in meta])
    assert index._filter_boost(index.metadata.match({"modality": "MR"})) == pytest.approx(300 / mr.sum())
    assert index._filter_boost(ids[:3]) == 8.0  # capped
    assert index._filter_boost(None) == 1.0
    if factory.startswith("HNSW"):
        assert hit_ids(index.search(x[:8], 10, {"modality": "MR"})) == brute_force(x, ids, x[:8], 10, mr)
    with pytest.raises(ConfigError, match="filter_boost"):
        IndexConfig(filter_boost=0.5)
