"""One plain PyTorch training loop for every MIL network.

Bags are moved to the device once per fit as one packed instance matrix; a minibatch of bags is
gathered with vectorised index arithmetic, so no Python loop ever runs over bags or instances.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .bags import PackedBags
from .nn.networks import MILOutput

__all__ = ["DeviceBags", "TrainingHistory", "resolve_device", "train_network", "predict_network"]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) into a torch device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available here")
    return device


class DeviceBags:
    """Packed bags held on a device, with vectorised minibatch gathering."""

    def __init__(self, packed: PackedBags, device: torch.device):
        self.instances = torch.as_tensor(packed.instances, dtype=torch.float32, device=device)
        self.offsets = torch.as_tensor(packed.offsets, dtype=torch.long, device=device)
        self.sizes = self.offsets[1:] - self.offsets[:-1]
        self.n_bags = packed.n_bags

    def gather(self, bag_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows of the bags ``bag_ids`` and their batch-local bag index.

        Returns ``(instances, bag_index, rows)``.
        """
        sizes = self.sizes[bag_ids]
        local_bag = torch.repeat_interleave(torch.arange(len(bag_ids), device=sizes.device), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        position = torch.arange(int(sizes.sum()), device=sizes.device) - starts[local_bag]
        rows = self.offsets[bag_ids][local_bag] + position
        return self.instances[rows], local_bag, rows


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


@dataclass
class TrainingHistory:
    """Loss per epoch and what early stopping chose."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)


def _batches(n: int, batch_size: int, order: np.ndarray | None, device) -> list[torch.Tensor]:
    ids = order if order is not None else np.arange(n)
    return [torch.as_tensor(ids[i : i + batch_size], device=device) for i in range(0, n, batch_size)]


def train_network(
    network: nn.Module,
    train: DeviceBags,
    y_train: torch.Tensor,
    loss_fn: Callable[[MILOutput, torch.Tensor], torch.Tensor],
    *,
    val: DeviceBags | None = None,
    y_val: torch.Tensor | None = None,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 32,
    max_epochs: int = 100,
    patience: int = 10,
    instance_dropout: float = 0.0,
    rng: np.random.RandomState,
    generator: torch.Generator,
) -> TrainingHistory:
    """Train ``network`` with AdamW on minibatches of bags; restore the best weights.

    With a validation set, the epoch of lowest validation loss wins and training stops after
    ``patience`` epochs without improvement; without one, the lowest training loss wins.
    """
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                  foreach=True)
    history = TrainingHistory()
    best_loss, best_state, waited = float("inf"), None, 0
    start = time.perf_counter()
    device = y_train.device
    for epoch in range(max_epochs):
        network.train()
        total = 0.0
        for ids in _batches(train.n_bags, batch_size, rng.permutation(train.n_bags), device):
            x, bag_index, _ = train.gather(ids)
            if instance_dropout > 0:
                keep = drop_instances(bag_index, len(ids), instance_dropout, generator)
                x, bag_index = x[keep], bag_index[keep]
            loss = loss_fn(network(x, bag_index, len(ids)), y_train[ids])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(ids)
        history.train_loss.append(total / train.n_bags)
        if val is not None:
            with torch.no_grad():
                network.eval()
                out = _forward_all(network, val, batch_size=max(batch_size, 256))
                history.val_loss.append(loss_fn(out, y_val).item())
        current = history.val_loss[-1] if val is not None else history.train_loss[-1]
        if current < best_loss - 1e-7:
            best_loss, waited, history.best_epoch = current, 0, epoch
            best_state = copy.deepcopy(network.state_dict())
        else:
            waited += 1
            if val is not None and waited >= patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    history.seconds = time.perf_counter() - start
    return history


def _forward_all(network: nn.Module, bags: DeviceBags, batch_size: int) -> MILOutput:
    parts = []
    for ids in _batches(bags.n_bags, batch_size, None, bags.instances.device):
        x, bag_index, _ = bags.gather(ids)
        parts.append(network(x, bag_index, len(ids)))
    return MILOutput(*(None if p[0] is None else torch.cat(p) for p in zip(*parts)))


@torch.no_grad()
def predict_network(network: nn.Module, bags: DeviceBags, batch_size: int = 256) -> MILOutput:
    """Forward all bags in evaluation mode; outputs concatenated in bag order."""
    network.eval()
    return _forward_all(network, bags, batch_size)
