from __future__ import annotations

import dataclasses

import pytest
import torch

from kgclip.testing import tiny_graph
from kgclip.text.encoders import load_text_encoder
from kgclip.text.enrich import ConceptFusion, EnrichedText, TextEnricher
from kgclip.text.linker import ConceptLinker, LinkerConfig


@dataclasses.dataclass
class StandInEmbeddings:
    """The slice of kgclip.kg.embeddings.ConceptEmbeddings the enricher uses."""

    vectors: torch.Tensor
    ids: list[str]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    fingerprint: str = "stand-in"


@pytest.fixture(scope="module")
def enricher() -> TextEnricher:
    graph = tiny_graph()
    torch.manual_seed(0)
    concepts = StandInEmbeddings(torch.randn(len(graph), 16), list(graph.ids))
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    return TextEnricher(load_text_encoder("hashing-64"), linker, concepts)


def test_fusion_shapes_gradients_and_padding() -> None:
    torch.manual_seed(0)
    fusion = ConceptFusion(text_dim=32, concept_dim=8)
    text = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1).requires_grad_()
    concepts = torch.randn(3, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    neg, neg_mask = torch.randn(3, 2, 8), torch.tensor([[1, 0], [0, 0], [1, 1]], dtype=torch.bool)
    out = fusion(text, concepts, mask, neg, neg_mask)
    assert out.shape == (3, 32) and torch.isfinite(out).all()
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    # a text without concepts (row 1) comes out as itself
    assert torch.allclose(out[1], text[1], atol=1e-5)
    # padded slots do not matter
    concepts2 = concepts.clone()
    concepts2[0, 2:] = 100.0
    assert torch.allclose(fusion(text, concepts2, mask, neg, neg_mask)[0], out[0], atol=1e-5)
    out.sum().backward()
    assert fusion.concept_proj.weight.grad is not None and fusion.negated_proj.weight.grad is not None
    assert text.grad is not None


def test_fusion_untrained_default_stays_close_to_text() -> None:
    torch.manual_seed(1)
    fusion = ConceptFusion(text_dim=64, concept_dim=16)
    text = torch.nn.functional.normalize(torch.randn(5, 64), dim=-1)
    out = fusion(text, torch.randn(5, 3, 16), torch.ones(5, 3, dtype=torch.bool))
    cos = (out * text).sum(-1)
    assert (cos > 0.9).all() and (cos < 0.9999).all()  # close to the text, but the concepts do move it
    with pytest.raises(ValueError):
        fusion(text[:, :10], torch.randn(5, 3, 16), torch.ones(5, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        fusion(text, torch.randn(5, 3, 16), torch.ones(5, 2, dtype=torch.bool))


def test_fusion_is_reproducible_and_handles_dim_orders() -> None:
    a, b = ConceptFusion(8, 32, seed=3), ConceptFusion(8, 32, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    out = a(torch.nn.functional.normalize(torch.randn(2, 8), dim=-1), torch.randn(2, 1, 32),
            torch.ones(2, 1, dtype=torch.bool))
    assert out.shape == (2, 8)


def test_collate_concepts(enricher: TextEnricher) -> None:
    batch = enricher.collate_concepts(["No pleural effusion. Cardiomegaly and pneumonia.", "", "PTX"])
    index, mask, neg_index, neg_mask = batch
    ids = enricher.concepts.ids
    assert index.dtype == torch.long and mask.dtype == torch.bool and index.shape == mask.shape
    assert [ids[i] for i, m in zip(index[0].tolist(), mask[0].tolist()) if m] == ["RADLEX:RID1392", "DOID:552"]
    assert [ids[i] for i, m in zip(neg_index[0].tolist(), neg_mask[0].tolist()) if m] == ["RADLEX:RID4872"]
    assert not mask[1].any() and not neg_mask[1].any()
    assert [ids[i] for i, m in zip(index[2].tolist(), mask[2].tolist()) if m] == ["RADLEX:RID5352"]
    empty = enricher.collate_concepts([])
    assert empty.concept_index.shape == (0, 1)


def test_encode_returns_enriched_texts(enricher: TextEnricher) -> None:
    texts = ["No pleural effusion. Cardiomegaly.", "Nothing to link here"]
    out = enricher.encode(texts)
    assert all(isinstance(e, EnrichedText) for e in out)
    assert out[0].concept_ids == ["RADLEX:RID1392"] and out[0].negated_ids == ["RADLEX:RID4872"]
    assert out[0].embedding.shape == (64,) and abs(float(out[0].embedding.norm()) - 1) < 1e-5
    plain = enricher.encoder.encode(texts)
    assert torch.allclose(out[1].embedding, plain[1], atol=1e-5)  # nothing linked: the text vector itself
    tensor = enricher.encode_tensor(texts)
    assert tensor.shape == (2, 64) and torch.allclose(tensor[0], out[0].embedding, atol=1e-6)
    assert enricher.encode([]) == [] and enricher.encode_tensor([]).shape == (0, 64)
    assert "RADLEX:RID1392" in out[0]._repr_html_()


def test_negation_moves_texts_apart(enricher: TextEnricher) -> None:
    a, b, c = enricher.encode_tensor(["pleural effusion present", "no pleural effusion present",
                                      "pleural effusion present"])
    plain = enricher.encoder.encode(["pleural effusion present", "no pleural effusion present"])
    assert torch.allclose(a, c)
    assert float(a @ b) < float(plain[0] @ plain[1])  # the negated concept pushes the texts apart


def test_shared_concepts_pull_texts_together(enricher: TextEnricher) -> None:
    texts = ["cardiomegaly", "enlarged heart", "epilepsy"]
    plain = enricher.encoder.encode(texts)
    fused = enricher.encode_tensor(texts)
    assert float(fused[0] @ fused[1]) > float(plain[0] @ plain[1])


def test_fuse_is_differentiable_end_to_end(enricher: TextEnricher) -> None:
    texts = ["Cardiomegaly.", "No pneumothorax. Pneumonia."]
    text_emb = enricher.encoder.encode(texts).requires_grad_()
    batch = enricher.collate_concepts(texts)
    out = enricher.fuse(text_emb, batch)
    out.sum().backward()
    assert text_emb.grad is not None and enricher.fusion.concept_proj.weight.grad is not None
    enricher.fusion.zero_grad()


def test_fingerprint_changes_with_fusion_weights(enricher: TextEnricher) -> None:
    before = enricher.fingerprint
    assert before == enricher.fingerprint
    with torch.no_grad():
        enricher.fusion.scale.add_(0.1)
    try:
        assert enricher.fingerprint != before
    finally:
        with torch.no_grad():
            enricher.fusion.scale.sub_(0.1)


def test_mismatched_inputs_raise() -> None:
    graph = tiny_graph()
    linker = ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False))
    with pytest.raises(ValueError):
        TextEnricher(load_text_encoder("hashing-64"), linker, StandInEmbeddings(torch.zeros(3, 4), ["a", "b"]))
    with pytest.raises(ValueError):
        TextEnricher(load_text_encoder("hashing-64"), linker,
                     StandInEmbeddings(torch.zeros(len(graph), 4), list(graph.ids)), fusion=ConceptFusion(32, 4))


def test_works_with_the_kg_concept_embeddings_class() -> None:
    embeddings_module = pytest.importorskip("kgclip.kg.embeddings")
    graph = tiny_graph()
    emb = embeddings_module.ConceptEmbeddings(torch.randn(len(graph), 12), list(graph.ids), {})
    enricher = TextEnricher(load_text_encoder("hashing-32"),
                            ConceptLinker.from_graph(graph, LinkerConfig(disk_cache=False)), emb)
    (out,) = enricher.encode(["Lung cancer without pneumothorax"])
    assert out.concept_ids == ["DOID:1324"] and out.negated_ids == ["RADLEX:RID5352"]
    assert isinstance(enricher.fingerprint, str)
