"""Self-supervised link prediction: train a graph encoder so that a DistMult decoder recovers held-out relations.

Each step removes its target relations (and their inverses) from the message-passing graph, so the encoder learns
to *predict* a relation from the rest of the graph and the text, as it must for a concept a curator just added,
rather than to detect an edge it can see. Negatives are shared uniform nodes per step (one ``[B, K]`` product), and
the loss is cross-entropy of the true node against them, corrupting the tail and the head. Early stopping watches
filtered MRR on validation relations carved from the training relations.

Two paths: full-graph (every step encodes the whole graph; RadLex + Disease Ontology fit easily on a CPU) and
mini-batch (each step encodes only a sampled neighbourhood of its nodes, :func:`sample_subgraph`), for graphs too
large for that. Both are seeded and reproducible.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from kgclip.config import Config
from kgclip.errors import ConfigError
from kgclip.kg.encoders import ENCODERS, KGEncoder, build_encoder
from kgclip.kg.metrics import DistMultScorer, KnownTriples, filtered_ranks, rank_metrics

__all__ = ["KGTrainConfig", "DistMultDecoder", "TrainResult", "fit", "split_triples", "base_triples",
           "sample_subgraph", "embed", "resolve_device"]


@dataclasses.dataclass(frozen=True)
class KGTrainConfig(Config):
    """How to train the concept-graph encoder (saved beside the embeddings it produced)."""

    encoder: str = "rgcn"  # rgcn | attention | shallow (see kgclip.kg.encoders.ENCODERS)
    hidden_dim: int = 128  # embedding size
    num_layers: int = 2  # message-passing layers = hops a concept hears from
    num_bases: int = 4  # R-GCN basis matrices shared by all relation types
    heads: int = 4  # attention heads
    dropout: float = 0.1  # on each layer's output
    lr: float = 0.005  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    epochs: int = 40  # upper bound; early stopping usually ends sooner
    eval_every: int = 2  # epochs between validation MRR checks
    patience: int = 4  # validation checks without improvement before stopping
    batch_size: int = 16384  # target relations per step
    num_negatives: int = 512  # shared negative nodes per step
    val_fraction: float = 0.05  # relations carved from training for early stopping
    max_eval_triples: int = 1000  # validation relations ranked per check (a fixed random subset)
    mode: str = "auto"  # full | minibatch | auto (full-graph unless the graph is large)
    fanout: int = 15  # mini-batch: sampled in-neighbours per node and hop
    minibatch_threshold: int = 2_000_000  # auto: nodes + relations above which mini-batch is used
    seed: int = 0  # seeds weights, splits, negatives and dropout
    device: str = "cpu"  # cpu | cuda | auto

    def __post_init__(self) -> None:
        ENCODERS.resolve(self.encoder)  # unknown names fail here, listing the choices
        for name in ("hidden_dim", "num_layers", "num_bases", "heads", "epochs", "eval_every", "patience",
                     "batch_size", "num_negatives", "max_eval_triples", "fanout"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"KGTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"KGTrainConfig.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"KGTrainConfig.val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.lr <= 0:
            raise ConfigError(f"KGTrainConfig.lr must be > 0, got {self.lr}")
        if self.mode not in ("full", "minibatch", "auto"):
            raise ConfigError(f"KGTrainConfig.mode must be full, minibatch or auto, got {self.mode!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"KGTrainConfig.device must be cpu, cuda or auto, got {self.device!r}")

    def encoder_kwargs(self) -> dict[str, object]:
        return {"hidden_dim": self.hidden_dim, "num_layers": self.num_layers, "dropout": self.dropout,
                "num_bases": self.num_bases, "heads": self.heads}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class DistMultDecoder(nn.Module):
    """``score(h, r, t) = sum(e_h * w_r * e_t)``: one diagonal per base relation type. Shapes: ``w`` ``[R, D]``."""

    def __init__(self, num_relations: int, dim: int) -> None:
        super().__init__()
        shape = (max(1, num_relations), dim)
        self.relations = nn.Parameter(torch.ones(shape) + 0.1 * torch.randn(shape))

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Shapes: ``head``, ``tail`` ``[B, D]``, ``relation`` ``[B]`` -> ``[B]``."""
        return (head * self.relations[relation] * tail).sum(-1)


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        encoder: the trained encoder (best validation state), in eval mode.
        decoder: the trained DistMult decoder.
        config: the config used.
        history: one dict per validation check (epoch, loss, val_mrr, seconds).
        best_val_mrr: best validation filtered MRR (0 when there was no validation split).
        epochs_run: epochs actually run.
        epoch_seconds: mean wall time of a training epoch.
    """

    encoder: KGEncoder
    decoder: DistMultDecoder
    config: KGTrainConfig
    history: list[dict[str, float]]
    best_val_mrr: float
    epochs_run: int
    epoch_seconds: float


def base_triples(data: Data) -> Tensor:
    """The base (non-inverse) relations of converted data as ``[T, 3]`` (head, relation, tail)."""
    mask = data.edge_type < data.num_base_relations
    return torch.stack([data.edge_index[0, mask], data.edge_type[mask], data.edge_index[1, mask]], dim=1)


def split_triples(triples: Tensor, fractions: tuple[float, ...], seed: int) -> list[Tensor]:
    """Random disjoint splits: ``fractions`` of the triples each, then the rest last."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(triples.size(0), generator=g)
    out, start = [], 0
    for fraction in fractions:
        n = int(round(fraction * triples.size(0)))
        out.append(triples[perm[start:start + n]])
        start += n
    out.append(triples[perm[start:]])
    return out


def message_graph(triples: Tensor, num_base_relations: int) -> tuple[Tensor, Tensor]:
    """Edges (with inverses) for message passing from base triples. Shapes: ``[2, 2T]``, ``[2T]``."""
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    return torch.stack([torch.cat([h, t]), torch.cat([t, h])]), torch.cat([r, r + num_base_relations])


def sample_subgraph(seeds: Tensor, edge_index: Tensor, num_nodes: int, num_hops: int, fanout: int,
                    generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Sample the ``num_hops`` in-neighbourhood of ``seeds``, at most ``fanout`` incoming edges per node and hop.

    The same frontier expansion as :func:`torch_geometric.utils.k_hop_subgraph` (boolean node masks over the edge
    list, plain torch), with a random cap per target node so that hubs (the root of RadLex has thousands of
    children) do not pull in the whole graph.

    Returns:
        ``(nodes, edge_ids, seed_pos)``: global ids of the subgraph's nodes ``[M]``, ids of its sampled edges
        ``[E']`` (into ``edge_index``), and the row of each seed in ``nodes`` ``[S]``.
    """
    src, dst = edge_index
    in_frontier = torch.zeros(num_nodes, dtype=torch.bool)
    in_subgraph = torch.zeros(num_nodes, dtype=torch.bool)
    in_frontier[seeds] = True
    in_subgraph[seeds] = True
    chosen: list[Tensor] = []
    for _ in range(num_hops):
        candidates = torch.nonzero(in_frontier[dst], as_tuple=False).view(-1)
        if candidates.numel() == 0:
            break
        # Random priority, then keep the first `fanout` edges of every target node.
        priority = torch.rand(candidates.numel(), generator=generator)
        order = torch.argsort(priority)
        order = order[torch.argsort(dst[candidates][order], stable=True)]
        ordered = candidates[order]
        targets = dst[ordered]
        starts = torch.ones_like(targets, dtype=torch.bool)
        starts[1:] = targets[1:] != targets[:-1]
        group_start = torch.cummax(torch.where(starts, torch.arange(targets.numel()), 0), 0).values
        kept = ordered[(torch.arange(targets.numel()) - group_start) < fanout]
        chosen.append(kept)
        new = src[kept]
        in_frontier = torch.zeros(num_nodes, dtype=torch.bool)
        in_frontier[new[~in_subgraph[new]]] = True
        in_subgraph[new] = True
    edge_ids = torch.unique(torch.cat(chosen)) if chosen else torch.zeros(0, dtype=torch.long)
    nodes = torch.nonzero(in_subgraph, as_tuple=False).view(-1)
    position = torch.full((num_nodes,), -1, dtype=torch.long)
    position[nodes] = torch.arange(nodes.numel())
    return nodes, edge_ids, position[seeds]


@torch.no_grad()
def embed(encoder: KGEncoder, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
    """Full-graph inference in eval mode. Shapes: ``x`` ``[N, F]`` -> ``[N, D]``."""
    was_training = encoder.training
    encoder.eval()
    out = encoder(x, edge_index, edge_type)
    encoder.train(was_training)
    return out


def _loss(decoder: DistMultDecoder, eh: Tensor, r: Tensor, et: Tensor, eneg: Tensor) -> Tensor:
    # Scaled by 1/sqrt(D): LayerNorm'd embeddings make raw DistMult logits O(D), which made the attention encoder's
    # first steps diverge; ranking is unaffected by the scale.
    w = decoder.relations[r] * eh.size(-1) ** -0.5
    pos = (eh * w * et).sum(-1, keepdim=True)
    tail_logits = torch.cat([pos, (eh * w) @ eneg.T], dim=1)  # corrupt the tail
    head_logits = torch.cat([pos, (et * w) @ eneg.T], dim=1)  # corrupt the head
    zeros = torch.zeros(eh.size(0), dtype=torch.long, device=eh.device)
    return 0.5 * (F.cross_entropy(tail_logits, zeros) + F.cross_entropy(head_logits, zeros))


def _without(triples: Tensor, drop: Tensor) -> Tensor:
    keep = torch.ones(triples.size(0), dtype=torch.bool)
    keep[drop] = False
    return triples[keep]


def fit(
    data: Data,
    config: KGTrainConfig,
    *,
    train: Tensor | None = None,
    val: Tensor | None = None,
    known: KnownTriples | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train an encoder + DistMult decoder by link prediction on converted data (:func:`kgclip.kg.convert.to_pyg`).

    Args:
        data: converted graph with ``x`` (text features) and the relation vocabulary.
        config: hyper-parameters.
        train: training triples ``[T, 3]`` (default: all base relations minus the validation split).
        val: validation triples (default: ``config.val_fraction`` of the base relations).
        known: every true triple, for filtered validation ranks (default: train + val).
        show_progress: tqdm progress bar over epochs.

    Only ``train`` triples (and their inverses) are ever used for message passing.
    """
    from tqdm.auto import tqdm

    if getattr(data, "x", None) is None:
        raise ConfigError("data has no node features; convert with to_pyg(graph, x=concept_features(graph))")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    nb = int(data.num_base_relations)
    if train is None:
        val_split, train = split_triples(base_triples(data), (config.val_fraction,), config.seed)
        val = val_split if val is None else val
    val = torch.zeros(0, 3, dtype=torch.long) if val is None else val
    known = known or KnownTriples([train, val], int(data.num_nodes), nb)
    n = int(data.num_nodes)
    x = data.x.float().to(device)
    encoder = build_encoder(config.encoder, in_dim=x.size(1), num_relations=max(1, 2 * nb), num_nodes=n,
                            **config.encoder_kwargs()).to(device)  # type: ignore[arg-type]
    decoder = DistMultDecoder(nb, config.hidden_dim).to(device)
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    minibatch = config.mode == "minibatch" or (config.mode == "auto" and n + train.size(0) > config.minibatch_threshold)
    eval_val = val[torch.randperm(val.size(0), generator=gen)[:config.max_eval_triples]] if val.numel() else val
    full_ei, full_et = message_graph(train, nb)

    history: list[dict[str, float]] = []
    best_mrr, best_state, bad_checks, epoch_times = -1.0, None, 0, []
    epochs_run = 0
    bar = tqdm(range(1, config.epochs + 1), desc=f"training {config.encoder}", disable=not show_progress)
    for epoch in bar:
        start = time.perf_counter()
        encoder.train()
        decoder.train()
        perm = torch.randperm(train.size(0), generator=gen)
        step_size = config.batch_size if not minibatch else min(config.batch_size, 2048)
        losses = []
        for s in range(0, max(1, train.size(0)), step_size):
            batch_ids = perm[s:s + step_size]
            if batch_ids.numel() == 0:
                break
            batch = train[batch_ids]
            # The targets leave the message graph: predict them, do not detect them.
            ei, et = message_graph(_without(train, batch_ids), nb)
            negatives = torch.randint(0, n, (config.num_negatives,), generator=gen)
            if minibatch:
                seeds = torch.cat([batch[:, 0], batch[:, 2], negatives])
                nodes, edge_ids, pos = sample_subgraph(seeds, ei, n, max(1, encoder.num_layers), config.fanout, gen)
                position = torch.full((n,), -1, dtype=torch.long)
                position[nodes] = torch.arange(nodes.numel())
                sub_ei = position[ei[:, edge_ids]]
                out = encoder(x[nodes.to(device)], sub_ei.to(device), et[edge_ids].to(device), n_id=nodes.to(device))
                b = batch.size(0)
                eh, etl, eneg = out[pos[:b]], out[pos[b:2 * b]], out[pos[2 * b:]]
            else:
                out = encoder(x, ei.to(device), et.to(device))
                eh, etl, eneg = out[batch[:, 0].to(device)], out[batch[:, 2].to(device)], out[negatives.to(device)]
            loss = _loss(decoder, eh, batch[:, 1].to(device), etl, eneg)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        epoch_times.append(time.perf_counter() - start)
        epochs_run = epoch
        record = {"epoch": float(epoch), "loss": sum(losses) / max(1, len(losses)), "seconds": epoch_times[-1]}
        if eval_val.numel() and (epoch % config.eval_every == 0 or epoch == config.epochs):
            emb = embed(encoder, x, full_ei.to(device), full_et.to(device))
            ranks = filtered_ranks(DistMultScorer(emb, decoder.relations.detach()), eval_val.to(device), known)
            record["val_mrr"] = rank_metrics(ranks.cpu())["mrr"]
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", val_mrr=f"{record['val_mrr']:.3f}")
            if record["val_mrr"] > best_mrr + 1e-4:
                best_mrr, bad_checks = record["val_mrr"], 0
                best_state = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(decoder.state_dict()))
            else:
                bad_checks += 1
                if bad_checks >= config.patience:
                    break
        else:
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
    bar.close()
    if best_state is not None:
        encoder.load_state_dict(best_state[0])
        decoder.load_state_dict(best_state[1])
    encoder.eval()
    decoder.eval()
    mean_epoch = sum(epoch_times) / len(epoch_times) if epoch_times else math.nan
    return TrainResult(encoder=encoder.cpu(), decoder=decoder.cpu(), config=config, history=history,
                       best_val_mrr=max(best_mrr, 0.0), epochs_run=epochs_run, epoch_seconds=mean_epoch)
