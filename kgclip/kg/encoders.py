"""Graph encoders over the typed concept graph, chosen by name (:data:`ENCODERS`).

- ``"rgcn"``: R-GCN (Schlichtkrull et al. 2018) with basis decomposition, :class:`BasisRGCNConv`;
- ``"attention"``: relational graph attention: :class:`torch_geometric.nn.TransformerConv` with a learned
  relation embedding as edge feature (added to keys and values, so messages depend on the relation);
- ``"shallow"``: one free vector per node, no graph and no text (the PyKEEN-style baseline; cannot embed new
  concepts).

Every graph encoder projects the text features into the hidden space and adds each layer's output to a residual
stream, so a concept without relations (isolated, or just added by a curator) still gets an embedding from its
text, and one with relations gets its text moved towards what its neighbours say.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv

from kgclip.errors import ConfigError
from kgclip.resolver import Registry

__all__ = ["ENCODERS", "BasisRGCNConv", "KGEncoder", "RGCNEncoder", "AttentionEncoder", "ShallowEncoder",
           "build_encoder"]

ENCODERS: Registry[type["KGEncoder"]] = Registry("KG encoder")


class BasisRGCNConv(nn.Module):
    r"""Relational graph convolution with basis decomposition and per-relation mean aggregation.

    .. math::
        h_i' = W_0 h_i + b + \sum_r \frac{1}{|N_r(i)|} \sum_{j \in N_r(i)} \Big(\sum_b a_{rb} V_b\Big) h_j

    The same function as ``torch_geometric.nn.RGCNConv(num_bases=B, aggr="mean")`` (the tests check this), but
    computed edge-wise per relation: PyG's version multiplies the whole ``[N, in]`` aggregate by every relation's
    weight (``R * N * in * out``), which with explicit inverse types dominated an epoch on RadLex + DO; this one
    multiplies each relation's source features by its weight (``E * in * out`` in total) and never materialises
    a per-edge weight tensor as ``FastRGCNConv`` does.

    Shapes:
        ``x``: ``[N, in]``; ``edge_index``: ``[2, E]``; ``edge_type``: ``[E]``; returns ``[N, out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_relations: int, num_bases: int) -> None:
        super().__init__()
        if num_bases < 1 or num_relations < 1:
            raise ConfigError(f"num_bases and num_relations must be >= 1, got {num_bases}, {num_relations}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_relations, self.num_bases = num_relations, num_bases
        self.weight = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))  # the bases V_b
        self.comp = nn.Parameter(torch.empty(num_relations, num_bases))  # a_rb
        self.root = nn.Linear(in_channels, out_channels, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        nn.init.xavier_uniform_(self.comp)
        self.root.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        n, e = x.size(0), edge_index.size(1)
        out = self.root(x)
        if e == 0:
            return out
        src, dst = edge_index
        # Mean over each (target, relation) group, as RGCNConv(aggr="mean") does.
        group = dst * self.num_relations + edge_type
        count = torch.bincount(group, minlength=n * self.num_relations).clamp_(min=1)
        norm = count[group].to(x.dtype).reciprocal().unsqueeze(-1)  # [E, 1]
        weight = (self.comp @ self.weight.reshape(self.num_bases, -1)).reshape(
            self.num_relations, self.in_channels, self.out_channels)  # W_r = sum_b a_rb V_b
        # One dense product per relation over its edges only: E * in * out in total, whatever R and N are.
        order = torch.argsort(edge_type, stable=True)
        sizes = torch.bincount(edge_type, minlength=self.num_relations).tolist()
        x_src = x[src[order]]
        dst_sorted, norm_sorted = dst[order], norm[order]
        agg = torch.zeros(n, self.out_channels, dtype=out.dtype, device=out.device)
        start = 0
        for r, size in enumerate(sizes):
            if size:
                end = start + size
                agg.index_add_(0, dst_sorted[start:end], (x_src[start:end] @ weight[r]) * norm_sorted[start:end])
                start = end
        return out + agg


class KGEncoder(nn.Module):
    """Base class: ``forward(x, edge_index, edge_type, n_id=None) -> [N, hidden_dim]`` concept embeddings.

    Args:
        in_dim: text feature size.
        num_relations: relation types including the ``_inv`` ones.
        num_nodes: number of nodes (used by the shallow encoder only).
        hidden_dim: embedding size.
        num_layers: message-passing layers (the receptive field in hops).
        dropout: dropout on each layer's output.
        num_bases: R-GCN bases.
        heads: attention heads.
    """

    name = "base"
    inductive = True  # can embed a node it never saw in training

    def __init__(self, in_dim: int, num_relations: int, *, num_nodes: int = 0, hidden_dim: int = 128,
                 num_layers: int = 2, dropout: float = 0.1, num_bases: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.in_dim, self.num_relations, self.hidden_dim = in_dim, num_relations, hidden_dim
        self.num_layers = num_layers
        self.input = nn.Linear(in_dim, hidden_dim)
        self.convs = nn.ModuleList(self._make_conv() for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def _make_conv(self) -> nn.Module:
        raise NotImplementedError

    def _conv(self, i: int, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        return self.convs[i](h, edge_index, edge_type)

    def layer(self, i: int, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Layer ``i``: ``h^(i+1) = LayerNorm(h^(i) + dropout(act(conv_i(h^(i)))))``; local to each node's in-edges.

        Shapes: ``h`` ``[N, hidden_dim]`` -> ``[N, hidden_dim]``.
        """
        message = self._conv(i, h, edge_index, edge_type)
        if i < self.num_layers - 1:
            message = torch.relu(message)
        return self.norms[i](h + self.dropout(message))  # residual stream: text features survive every layer

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, n_id: Tensor | None = None) -> Tensor:
        """Shapes: ``x`` ``[N, in_dim]``, ``edge_index`` ``[2, E]``, ``edge_type`` ``[E]`` -> ``[N, hidden_dim]``.

        ``n_id`` (global node ids of the rows, for mini-batches) is ignored by graph encoders.
        """
        h = self.input(x)
        for i in range(self.num_layers):
            h = self.layer(i, h, edge_index, edge_type)
        return h

    @torch.no_grad()
    def hidden_states(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> list[Tensor]:
        """Every layer's node states ``[h^(0), ..., h^(L)]`` in eval mode (``h^(L)`` is the embedding).

        Stored beside the embeddings so that a refresh recomputes layer ``l`` only for nodes within ``l`` hops
        of a changed concept (:meth:`kgclip.kg.embeddings.ConceptEmbeddings.refresh`).
        """
        was_training = self.training
        self.eval()
        states = [self.input(x)]
        for i in range(self.num_layers):
            states.append(self.layer(i, states[-1], edge_index, edge_type))
        self.train(was_training)
        return states


@ENCODERS.register("rgcn")
class RGCNEncoder(KGEncoder):
    """R-GCN with basis decomposition (see :class:`BasisRGCNConv`)."""

    name = "rgcn"

    def __init__(self, in_dim: int, num_relations: int, **kwargs: object) -> None:
        self._num_bases = min(int(kwargs.get("num_bases", 4)), num_relations)  # type: ignore[arg-type]
        super().__init__(in_dim, num_relations, **kwargs)  # type: ignore[arg-type]

    def _make_conv(self) -> nn.Module:
        return BasisRGCNConv(self.hidden_dim, self.hidden_dim, self.num_relations, self._num_bases)


@ENCODERS.register("attention")
class AttentionEncoder(KGEncoder):
    """Relational attention: TransformerConv whose keys and values get a learned relation embedding.

    Shapes: as :class:`KGEncoder`; the relation table is ``[num_relations, hidden_dim // 4]``.
    """

    name = "attention"

    def __init__(self, in_dim: int, num_relations: int, **kwargs: object) -> None:
        hidden = int(kwargs.get("hidden_dim", 128))  # type: ignore[arg-type]
        self._heads = int(kwargs.get("heads", 4))  # type: ignore[arg-type]
        if hidden % self._heads:
            raise ConfigError(f"hidden_dim ({hidden}) must be divisible by heads ({self._heads})")
        self._rel_dim = max(8, hidden // 4)  # small: TransformerConv projects it per edge
        super().__init__(in_dim, num_relations, **kwargs)  # type: ignore[arg-type]
        self.relation_embedding = nn.Embedding(num_relations, self._rel_dim)

    def _make_conv(self) -> nn.Module:
        return TransformerConv(self.hidden_dim, self.hidden_dim // self._heads, heads=self._heads,
                               edge_dim=self._rel_dim, root_weight=True)

    def _conv(self, i: int, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        return self.convs[i](h, edge_index, edge_attr=self.relation_embedding(edge_type))


@ENCODERS.register("shallow")
class ShallowEncoder(KGEncoder):
    """A free vector per node (no text, no graph): the shallow KG-embedding baseline. Not inductive."""

    name = "shallow"
    inductive = False

    def __init__(self, in_dim: int, num_relations: int, *, num_nodes: int = 0, hidden_dim: int = 128,
                 **kwargs: object) -> None:
        nn.Module.__init__(self)
        if num_nodes < 1:
            raise ConfigError("the shallow encoder needs num_nodes >= 1")
        self.in_dim, self.num_relations, self.hidden_dim, self.num_layers = in_dim, num_relations, hidden_dim, 0
        self.embedding = nn.Embedding(num_nodes, hidden_dim)
        nn.init.normal_(self.embedding.weight, std=hidden_dim ** -0.5)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, n_id: Tensor | None = None) -> Tensor:
        if n_id is None:
            if x.size(0) != self.embedding.num_embeddings:
                raise ConfigError(f"shallow encoder was built for {self.embedding.num_embeddings} nodes, got "
                                  f"{x.size(0)}; shallow embeddings cannot embed new concepts - retrain")
            return self.embedding.weight
        return self.embedding(n_id)


def build_encoder(name: str, *, in_dim: int, num_relations: int, num_nodes: int = 0, hidden_dim: int = 128,
                  num_layers: int = 2, dropout: float = 0.1, num_bases: int = 4, heads: int = 4) -> KGEncoder:
    """Instantiate an encoder by name (``rgcn``, ``attention``, ``shallow``); unknown names list the choices."""
    cls = ENCODERS.resolve(name)
    return cls(in_dim, max(1, num_relations), num_nodes=num_nodes, hidden_dim=hidden_dim, num_layers=num_layers,
               dropout=dropout, num_bases=num_bases, heads=heads)
