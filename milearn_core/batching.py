"""Bags on a device, and vectorised minibatch gathering (no Python loop over bags).

Dense instance matrices stay dense. Sparse ones (e.g. Morgan count fingerprints, mostly zeros)
are held in CSR form and reach the network as :class:`SparseRows`, which its input layer
multiplies with ``embedding_bag``: the cost follows the non-zeros, not the feature count.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from .bags import PackedBags

__all__ = ["SparseRows", "DeviceBags", "drop_instances", "SPARSE_DENSITY"]

# Hold instances sparse when at most this share of entries is non-zero (and there are many
# features): below it, embedding_bag beat a dense matmul in benchmarks/speed.py.
SPARSE_DENSITY = 0.1
SPARSE_MIN_FEATURES = 256


class SparseRows(NamedTuple):
    """Rows of a sparse matrix in embedding_bag form: row ``r`` owns
    ``indices[offsets[r]:offsets[r + 1]]`` with ``values`` at the same positions."""

    indices: torch.Tensor
    values: torch.Tensor
    offsets: torch.Tensor


def _ranges(starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated ``range(start, start + length)`` for every pair, and the pair of each item."""
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    position = torch.arange(int(lengths.sum()), device=lengths.device) - first[owner]
    return starts[owner] + position, owner


class DeviceBags:
    """Packed bags on a device.

    Parameters
    ----------
    packed : PackedBags
    device : torch.device
    sparse : bool or None
        Hold instances in CSR form; None decides by density (see ``SPARSE_DENSITY``); sparse
        input stays sparse unless ``sparse=False``.
    """

    def __init__(self, packed: PackedBags, device: torch.device, sparse: bool | None = None):
        x = packed.instances
        if sparse is None:
            sparse = sp.issparse(x) or (x.shape[1] >= SPARSE_MIN_FEATURES
                                        and np.count_nonzero(x) <= SPARSE_DENSITY * x.size)
        self.sparse = sparse
        if sparse:
            x = sp.csr_matrix(x)
            x.sum_duplicates()
            self.crow = torch.as_tensor(x.indptr.astype(np.int64), device=device)
            self.cols = torch.as_tensor(x.indices.astype(np.int64), device=device)
            self.values = torch.as_tensor(x.data, dtype=torch.float32, device=device)
        else:
            if sp.issparse(x):
                x = x.toarray()
            self.instances = torch.as_tensor(x, dtype=torch.float32, device=device)
        self.offsets = torch.as_tensor(packed.offsets, dtype=torch.long, device=device)
        self.sizes = self.offsets[1:] - self.offsets[:-1]
        self.n_bags = packed.n_bags
        self.device = device

    def rows(self, bag_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Instance rows of the bags ``bag_ids`` and their batch-local bag index."""
        return _ranges(self.offsets[bag_ids], self.sizes[bag_ids])

    def take(self, rows: torch.Tensor) -> torch.Tensor | SparseRows:
        """The instances at ``rows``: a dense tensor, or :class:`SparseRows`."""
        if not self.sparse:
            return self.instances[rows]
        lengths = self.crow[rows + 1] - self.crow[rows]
        items, _ = _ranges(self.crow[rows], lengths)
        return SparseRows(self.cols[items], self.values[items], torch.cumsum(lengths, 0) - lengths)

    def gather(self, bag_ids: torch.Tensor):
        """``(instances, bag_index)`` of the bags ``bag_ids``."""
        rows, bag_index = self.rows(bag_ids)
        return self.take(rows), bag_index


def drop_instances(
    bag_index: torch.Tensor, n_bags: int, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """Boolean mask that drops instances at ``rate``, keeping at least one per bag."""
    keep = torch.rand(bag_index.shape[0], generator=generator, device="cpu") >= rate
    keep = keep.to(bag_index.device)
    kept = torch.zeros(n_bags, dtype=torch.long, device=bag_index.device)
    kept.index_add_(0, bag_index, keep.long())
    first = torch.ones_like(keep)
    first[1:] = bag_index[1:] != bag_index[:-1]
    return keep | (first & (kept[bag_index] == 0))
