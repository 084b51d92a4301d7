"""One call from a concept graph to saved-ready :class:`ConceptEmbeddings`: features, training, final encode."""

from __future__ import annotations

import os
import platform

import torch

from kgclip.kg.convert import concept_features, text_encoder_fingerprint, to_pyg
from kgclip.kg.embeddings import ConceptEmbeddings
from kgclip.kg.train import KGTrainConfig, TrainResult, fit
from kgclip.ontology.model import ConceptGraph
from kgclip.text.encoders import TextEncoder, fast_text_encoder_name, load_text_encoder

__all__ = ["train_embeddings", "embeddings_from_result"]


def embeddings_from_result(graph: ConceptGraph, result: TrainResult, x: torch.Tensor, text: TextEncoder,
                           text_name: str) -> ConceptEmbeddings:
    """Encode the *whole* graph (every relation, not only the training split) with a trained encoder.

    Shapes:
        ``x``: ``[N, F]`` text features of ``graph.ids``.
    """
    import torch_geometric

    from kgclip.kg.embeddings import _state_fingerprint

    data = to_pyg(graph, x)
    encoder = result.encoder.eval()
    if encoder.inductive:
        states = encoder.hidden_states(x, data.edge_index, data.edge_type)
        vectors, layer_states = states[-1], states[:-1]
    else:
        with torch.no_grad():
            vectors, layer_states = encoder(x, data.edge_index, data.edge_type).detach(), []
    encoder_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    meta = {
        "graph_fingerprint": graph.fingerprint(),
        "graph_name": graph.name,
        "text_encoder": text_name,
        "text_encoder_fingerprint": text_encoder_fingerprint(text),
        "text_dim": int(x.size(1)),
        "encoder_fingerprint": _state_fingerprint(encoder_state),
        "config": result.config.to_dict(),
        "relation_types": list(data.relation_types[: data.num_base_relations]),
        "metrics": {"best_val_mrr": round(result.best_val_mrr, 4), "epochs_run": result.epochs_run,
                    "epoch_seconds": round(result.epoch_seconds, 3)},
        "versions": {"torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
                     "python": platform.python_version()},
    }
    return ConceptEmbeddings(vectors=vectors.float(), ids=list(graph.ids), meta=meta, encoder_state=encoder_state,
                             decoder_state={"relations": result.decoder.relations.detach().clone()},
                             states=[s.float() for s in layer_states])


def train_embeddings(
    graph: ConceptGraph,
    config: KGTrainConfig | None = None,
    *,
    text_encoder: str | TextEncoder = "minilm",
    cache_dir: str | os.PathLike[str] | None | bool = None,
    show_progress: bool = True,
    fast_text: bool = True,
) -> ConceptEmbeddings:
    """Featurise, train by link prediction (validation carved from the relations) and encode the whole graph.

    Args:
        graph: the concept graph (e.g. RadLex + Disease Ontology).
        config: training config (default :class:`KGTrainConfig`).
        text_encoder: text tower or its name / local directory.
        cache_dir: text feature cache root (``None`` -> ``kgclip_home()``, ``False`` -> no disk cache).
        show_progress: progress bars.
        fast_text: featurise with the ONNX int8 variant of a named text tower when ``kgclip[fast]`` is installed
            (``"minilm"`` -> ``"onnx-int8:minilm"``, about 3x faster, cosine ~0.99 to float32); the name recorded
            in the embeddings' meta is the variant used, so a refresh featurises the same way.
    """
    config = config or KGTrainConfig()
    if fast_text and isinstance(text_encoder, str):
        text_encoder = fast_text_encoder_name(text_encoder)
    text = load_text_encoder(text_encoder) if isinstance(text_encoder, str) else text_encoder
    text_name = text_encoder if isinstance(text_encoder, str) else text.name
    x = concept_features(graph, text, cache_dir=cache_dir, show_progress=show_progress)
    result = fit(to_pyg(graph, x), config, show_progress=show_progress)
    return embeddings_from_result(graph, result, x, text, text_name)
