"""Segment reductions over packed bags (instances of all bags stacked, plus a bag index).

Every reduction touches only the instances of its own bag, so a bag's result never depends on
which other bags share the batch.
"""

from __future__ import annotations

import torch

__all__ = ["segment_sum", "segment_mean", "segment_max", "segment_softmax", "segment_sizes"]


def segment_sizes(bag_index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Number of instances per bag, shape (n_bags,)."""
    return torch.bincount(bag_index, minlength=n_bags)


def segment_sum(x: torch.Tensor, bag_index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Sum of instance rows per bag: (N, ...) -> (n_bags, ...)."""
    out = x.new_zeros((n_bags, *x.shape[1:]))
    return out.index_add_(0, bag_index, x)


def segment_mean(x: torch.Tensor, bag_index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Mean of instance rows per bag."""
    sizes = segment_sizes(bag_index, n_bags).to(x.dtype).clamp_min(1)
    return segment_sum(x, bag_index, n_bags) / sizes.view(-1, *([1] * (x.dim() - 1)))


def segment_max(x: torch.Tensor, bag_index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Element-wise maximum of instance rows per bag."""
    out = x.new_full((n_bags, *x.shape[1:]), float("-inf"))
    index = bag_index.view(-1, *([1] * (x.dim() - 1))).expand_as(x)
    return out.scatter_reduce_(0, index, x, reduce="amax", include_self=True)


def segment_softmax(scores: torch.Tensor, bag_index: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Softmax of instance scores within each bag; scores of shape (N,) or (N, H)."""
    peak = segment_max(scores, bag_index, n_bags).detach()
    expd = torch.exp(scores - peak[bag_index])
    return expd / segment_sum(expd, bag_index, n_bags)[bag_index]
