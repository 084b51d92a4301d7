"""Run the conformance suite against every registered index backend, in each of its configurations."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from kgclip.index.base import INDEX_BACKENDS, create_index

from .conformance import IndexConformanceSuite

# backend name -> list of (configuration id, constructor kwargs, results exact on the suite's small data).
# A new backend registers here; one without configurations fails test_every_backend_has_configurations.
BACKEND_CONFIGS: dict[str, list[tuple[str, dict[str, Any], bool]]] = {
    "faiss": [
        ("flat", {"factory": "Flat"}, True),
        ("ivf-flat", {"factory": "IVF4,Flat", "nprobe": 4, "exact_filter_max": 20}, True),
        ("hnsw", {"factory": "HNSW16", "ef_search": 300, "exact_filter_max": 20}, True),
        ("ivf-pq", {"factory": "IVF2,PQ8", "nprobe": 2, "exact_filter_max": 20}, False),
        ("sq8", {"factory": "SQ8"}, False),
    ],
}

# The Milvus backend (optional extra `kgclip[milvus]`): Milvus Lite in a temporary database, FLAT index = exact.
HAVE_MILVUS = all(importlib.util.find_spec(m) is not None for m in ("pymilvus", "milvus_lite"))
if HAVE_MILVUS:
    import kgclip.index.milvus_index  # noqa: F401  (registers the milvus backend)
BACKEND_CONFIGS["milvus"] = [("lite-flat", {"index_type": "FLAT"}, True)]
_SKIP = {"milvus": pytest.mark.skipif(not HAVE_MILVUS, reason="needs pip install 'kgclip[milvus]'")}

CASES = [pytest.param((backend, kwargs, exact), id=f"{backend}-{name}", marks=_SKIP.get(backend, ()))
         for backend, configs in BACKEND_CONFIGS.items() for name, kwargs, exact in configs]


def test_every_backend_has_configurations() -> None:
    import kgclip.index.faiss_index  # noqa: F401  (registers the faiss backend)

    missing = sorted(set(INDEX_BACKENDS) - set(BACKEND_CONFIGS))
    assert not missing, f"add conformance configurations for index backends {missing} in {__file__}"


@pytest.mark.filterwarnings("ignore:training IVF with")
class TestConformance(IndexConformanceSuite):
    @pytest.fixture(params=CASES)
    def case(self, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], bool]:
        return request.param

    @pytest.fixture
    def make_index(self, case: tuple[str, dict[str, Any], bool]) -> Any:
        backend, kwargs, _ = case

        def make(dim: int, encoder_fingerprint: str | None = None) -> Any:
            return create_index(backend, dim=dim, encoder_fingerprint=encoder_fingerprint, **kwargs)

        return make

    @pytest.fixture
    def exact(self, case: tuple[str, dict[str, Any], bool]) -> bool:
        return case[2]
