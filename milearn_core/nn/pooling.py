"""Pooling operators: instance embeddings of packed bags -> one embedding per bag.

Every operator maps ``(h, bag_index, n_bags)`` to ``(bag_embeddings, weights)`` where
``weights`` holds one non-negative number per instance, summing to 1 within each bag: the
operator's own account of how much each instance contributed (attention, routing coefficients,
share of max-pooled features, or uniform for mean and sum).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .segment import segment_max, segment_mean, segment_sizes, segment_softmax, segment_sum

__all__ = ["POOLINGS", "make_pooling"]


def _uniform_weights(bag_index: torch.Tensor, n_bags: int, dtype: torch.dtype) -> torch.Tensor:
    return 1.0 / segment_sizes(bag_index, n_bags).to(dtype)[bag_index]


class MeanPooling(nn.Module):
    """Average of instance embeddings."""

    def __init__(self, dim: int, **_):
        super().__init__()
        self.out_dim = dim

    def forward(self, h, bag_index, n_bags):
        return segment_mean(h, bag_index, n_bags), _uniform_weights(bag_index, n_bags, h.dtype)


class SumPooling(MeanPooling):
    """Sum of instance embeddings (keeps bag size information)."""

    def forward(self, h, bag_index, n_bags):
        return segment_sum(h, bag_index, n_bags), _uniform_weights(bag_index, n_bags, h.dtype)


class MaxPooling(MeanPooling):
    """Feature-wise maximum; an instance's weight is its share of the features it wins."""

    def forward(self, h, bag_index, n_bags):
        z = segment_max(h, bag_index, n_bags)
        wins = (h == z[bag_index]).to(h.dtype)
        # Ties share a feature's credit equally.
        wins = wins / segment_sum(wins, bag_index, n_bags)[bag_index].clamp_min(1)
        weights = wins.sum(dim=1) / h.shape[1]
        return z, weights


class AttentionPooling(nn.Module):
    """Attention-based MIL pooling (Ilse, Tomczak & Welling, 2018)."""

    def __init__(self, dim: int, attention_dim: int = 64, **_):
        super().__init__()
        self.out_dim = dim
        self.project = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def scores(self, h):
        return self.score(torch.tanh(self.project(h))).squeeze(-1)

    def forward(self, h, bag_index, n_bags):
        a = segment_softmax(self.scores(h), bag_index, n_bags)
        return segment_sum(a.unsqueeze(1) * h, bag_index, n_bags), a


class GatedAttentionPooling(AttentionPooling):
    """Gated attention pooling (Ilse et al., 2018): tanh branch gated by a sigmoid branch."""

    def __init__(self, dim: int, attention_dim: int = 64, **_):
        super().__init__(dim, attention_dim)
        self.gate = nn.Linear(dim, attention_dim)

    def scores(self, h):
        gated = torch.tanh(self.project(h)) * torch.sigmoid(self.gate(h))
        return self.score(gated).squeeze(-1)


def _pad_positions(bag_index: torch.Tensor, n_bags: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each instance's position in its bag, and a (n_bags, longest bag) mask of real slots."""
    sizes = segment_sizes(bag_index, n_bags)
    starts = torch.cumsum(sizes, 0) - sizes
    position = torch.arange(bag_index.shape[0], device=bag_index.device) - starts[bag_index]
    longest = int(sizes.max()) if bag_index.numel() else 0
    valid = torch.arange(longest, device=bag_index.device) < sizes.unsqueeze(1)
    return position, valid


def bag_self_attention(q, k, v, bag_index, n_bags) -> torch.Tensor:
    """Multi-head attention of every instance over the instances of its own bag.

    ``q``, ``k``, ``v`` are (n_instances, n_heads, head_dim). Bags are padded to a batch of
    (n_bags, longest bag) with the padding masked, so the cost is the sum of squared bag sizes,
    not the square of the batch, and bags never see each other.
    """
    n, heads, head_dim = q.shape
    position, valid = _pad_positions(bag_index, n_bags)
    padded = q.new_zeros(3, n_bags, valid.shape[1], heads, head_dim)
    padded[:, bag_index, position] = torch.stack((q, k, v))
    q, k, v = padded.transpose(2, 3).unbind(0)  # each (n_bags, heads, longest, head_dim)
    mixed = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
    return mixed.transpose(1, 2)[bag_index, position]


class SelfAttentionPooling(nn.Module):
    """Multi-head self-attention among the instances of each bag, then attention pooling.

    Instances attend only to instances of their own bag (:func:`bag_self_attention`).
    """

    def __init__(self, dim: int, n_heads: int = 4, attention_dim: int = 64, **_):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"self_attention: embedding size {dim} not divisible by {n_heads} heads")
        self.out_dim = dim
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.pool = AttentionPooling(dim, attention_dim)

    def forward(self, h, bag_index, n_bags):
        n, dim = h.shape
        q, k, v = self.qkv(h).view(n, 3, self.n_heads, dim // self.n_heads).unbind(dim=1)
        mixed = bag_self_attention(q, k, v, bag_index, n_bags).reshape(n, dim)
        return self.pool(self.norm(h + self.out(mixed)), bag_index, n_bags)


class HopfieldPooling(nn.Module):
    """Hopfield pooling (Ramsauer et al., 2021): learned state patterns retrieve from instances.

    One update step of a modern Hopfield network with learned query patterns (one per head) and
    the bag's instances as stored patterns; ``beta`` defaults to 1/sqrt(head size).
    """

    def __init__(self, dim: int, n_heads: int = 4, beta: float | None = None, **_):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hopfield: embedding size {dim} not divisible by {n_heads} heads")
        self.out_dim = dim
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.query = nn.Parameter(torch.randn(n_heads, self.head_dim) / math.sqrt(self.head_dim))
        self.keys = nn.Linear(dim, dim)
        self.values = nn.Linear(dim, dim)
        self.beta = beta if beta is not None else 1.0 / math.sqrt(self.head_dim)

    def forward(self, h, bag_index, n_bags):
        n = h.shape[0]
        keys = self.keys(h).view(n, self.n_heads, self.head_dim)
        values = self.values(h).view(n, self.n_heads, self.head_dim)
        scores = self.beta * (keys * self.query).sum(-1)  # (N, H)
        a = segment_softmax(scores, bag_index, n_bags)
        z = segment_sum(a.unsqueeze(-1) * values, bag_index, n_bags).reshape(n_bags, -1)
        return z, a.mean(dim=1)


class DynamicPooling(nn.Module):
    """Dynamic pooling by routing (Yan et al., 2018), as in the milearn paper.

    Routing logits start at zero; each iteration pools with their softmax, squashes the bag
    vector and raises the logits of instances that agree with it. No learned parameters.
    """

    def __init__(self, dim: int, n_iterations: int = 3, **_):
        super().__init__()
        self.out_dim = dim
        self.n_iterations = n_iterations

    @staticmethod
    def squash(s):
        norm2 = (s * s).sum(dim=-1, keepdim=True)
        return norm2 / (1 + norm2) * s / torch.sqrt(norm2 + 1e-9)

    def forward(self, h, bag_index, n_bags):
        logits = h.new_zeros(h.shape[0])
        for _ in range(self.n_iterations):
            c = segment_softmax(logits, bag_index, n_bags)
            z = self.squash(segment_sum(c.unsqueeze(1) * h, bag_index, n_bags))
            logits = logits + (h * z[bag_index]).sum(dim=1)
        return z, c


POOLINGS: dict[str, type[nn.Module]] = {
    "mean": MeanPooling,
    "max": MaxPooling,
    "sum": SumPooling,
    "attention": AttentionPooling,
    "gated_attention": GatedAttentionPooling,
    "self_attention": SelfAttentionPooling,
    "hopfield": HopfieldPooling,
    "dynamic": DynamicPooling,
}


def make_pooling(name: str, dim: int, **kwargs) -> nn.Module:
    """Build a pooling operator by name (see ``POOLINGS``)."""
    if name not in POOLINGS:
        raise ValueError(f"unknown pooling {name!r}; choose one of {sorted(POOLINGS)}")
    return POOLINGS[name](dim, **kwargs)
