"""One MIL network: instance encoder -> pooling -> head, pooling chosen by name."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..batching import SparseRows
from .pooling import POOLINGS, make_pooling
from .segment import segment_max, segment_mean, segment_sum

__all__ = ["ACTIVATIONS", "INSTANCE_POOLINGS", "InputLayer", "MILNetwork", "MILOutput", "pooling_names"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}

# Instance-level modes: the head scores every instance, and the scores are pooled.
INSTANCE_POOLINGS = {"instance_mean": segment_mean, "instance_max": segment_max,
                     "instance_sum": segment_sum}


def pooling_names() -> list[str]:
    """All pooling names accepted by :class:`MILNetwork`."""
    return [*POOLINGS, *INSTANCE_POOLINGS]


class MILOutput(NamedTuple):
    """Result of a forward pass over a packed batch.

    bag : (n_bags, n_outputs) bag-level outputs (logits or scaled regression targets).
    weights : (n_instances,) pooling weights, or None for instance-level modes.
    instance : (n_instances, n_outputs) instance-level outputs, or None for embedding poolings.
    """

    bag: torch.Tensor
    weights: torch.Tensor | None
    instance: torch.Tensor | None


class InputLayer(nn.Module):
    """First linear layer; takes dense rows or :class:`~milearn_core.batching.SparseRows`.

    Same maths as ``nn.Linear`` (and the same initialisation); the weight is stored
    (in_features, out_features) so that sparse rows are one ``embedding_bag`` sum.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def forward(self, x):
        if isinstance(x, SparseRows):
            summed = nn.functional.embedding_bag(x.indices, self.weight, x.offsets, mode="sum",
                                                 per_sample_weights=x.values)
            return summed + self.bias
        return x @ self.weight + self.bias


class MILNetwork(nn.Module):
    """Instance encoder (MLP) + pooling + linear head.

    Parameters
    ----------
    n_features : int
        Instance feature count.
    n_outputs : int
        Output size (classes or regression targets).
    hidden_layer_sizes : tuple of int
        Sizes of the instance encoder's hidden layers.
    activation : str
        One of ``ACTIVATIONS``.
    dropout : float
        Dropout after every hidden layer.
    pooling : str
        One of :func:`pooling_names`.
    pooling_kwargs : dict, optional
        Extra arguments of the pooling operator (``attention_dim``, ``n_heads``, ...).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_layer_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        pooling: str = "attention",
        pooling_kwargs: dict | None = None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if pooling not in POOLINGS and pooling not in INSTANCE_POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {pooling_names()}")
        layers: list[nn.Module] = []
        width = n_features
        for i, size in enumerate(hidden_layer_sizes):
            linear = InputLayer(width, size) if i == 0 else nn.Linear(width, size)
            layers += [linear, ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.encoder = nn.Sequential(*layers)
        self.pooling_name = pooling
        if pooling in INSTANCE_POOLINGS:
            self.pooling = None
            self.head = nn.Linear(width, n_outputs)
        else:
            self.pooling = make_pooling(pooling, width, **(pooling_kwargs or {}))
            self.head = nn.Linear(self.pooling.out_dim, n_outputs)

    @property
    def accepts_sparse(self) -> bool:
        """Whether inputs may come as SparseRows (needs at least one hidden layer)."""
        return len(self.encoder) > 0 and isinstance(self.encoder[0], InputLayer)

    def forward(self, x, bag_index: torch.Tensor, n_bags: int) -> MILOutput:
        h = self.encoder(x)
        if self.pooling is None:
            scores = self.head(h)
            bag = INSTANCE_POOLINGS[self.pooling_name](scores, bag_index, n_bags)
            return MILOutput(bag, None, scores)
        z, weights = self.pooling(h, bag_index, n_bags)
        return MILOutput(self.head(z), weights, None)
