"""One plain PyTorch training loop for every MIL network.

Bags are moved to the device once per fit (:class:`~milearn_core.batching.DeviceBags`); a
minibatch of bags is gathered with vectorised index arithmetic, so no Python loop ever runs over
bags or instances.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .batching import DeviceBags, drop_instances
from .nn.networks import MILOutput

__all__ = ["TrainingDivergedError", "TrainingHistory", "resolve_device", "train_network",
           "predict_network"]


class TrainingDivergedError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite; no model of NaNs is ever returned."""


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) into a torch device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available here")
    return device


@dataclass
class TrainingHistory:
    """Loss per epoch and what early stopping chose."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = float("inf")
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
    lr_schedule: str = "constant",
    tol: float = 0.0,
    plateau_loss: float = math.inf,
    rng: np.random.RandomState,
    generator: torch.Generator,
) -> TrainingHistory:
    """Train ``network`` with AdamW on minibatches of bags; restore the best weights.

    With a validation set, the epoch of lowest validation loss wins and training stops after
    ``patience`` epochs without improvement; without one, the lowest training loss wins. Once
    the best loss is under ``plateau_loss`` (the run has learned something), an improvement
    resets the patience only when it is larger than ``tol`` times the best loss: a run that
    has converged stops instead of creeping down for many epochs. On the plateau every
    improvement counts, so a run that has not yet found its rule is not cut short.
    """
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                  fused=True)
    scheduler = make_schedule(optimizer, lr_schedule, max_epochs * math.ceil(train.n_bags / batch_size))
    history = TrainingHistory()
    best_state, waited = None, 0
    start = time.perf_counter()
    device = y_train.device
    for epoch in range(max_epochs):
        network.train()
        total = 0.0
        for ids in _batches(train.n_bags, batch_size, rng.permutation(train.n_bags), device):
            rows, bag_index = train.rows(ids)
            if instance_dropout > 0:
                keep = drop_instances(bag_index, len(ids), instance_dropout, generator)
                rows, bag_index = rows[keep], bag_index[keep]
            x = train.take(rows)
            loss = loss_fn(network(x, bag_index, len(ids)), y_train[ids])
            value = _finite_loss(loss.item(), epoch, "training", train, learning_rate)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += value * len(ids)
        history.train_loss.append(total / train.n_bags)
        if val is not None:
            with torch.no_grad():
                network.eval()
                out = _forward_all(network, val, batch_size=max(batch_size, 256))
                history.val_loss.append(
                    _finite_loss(loss_fn(out, y_val).item(), epoch, "validation", val, learning_rate))
        current = history.val_loss[-1] if val is not None else history.train_loss[-1]
        best = history.best_loss
        if current < best - 1e-7:
            significant = best >= plateau_loss or current < best * (1 - tol)
            waited = 0 if significant else waited + 1
            history.best_loss, history.best_epoch = current, epoch
            best_state = copy.deepcopy(network.state_dict())
        else:
            waited += 1
        if val is not None and waited >= patience:
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    if not all(torch.isfinite(p).all() for p in network.parameters()):
        raise TrainingDivergedError(
            f"training left non-finite network weights after {history.n_epochs} epochs; "
            f"{_advice(train, learning_rate)}")
    network.eval()
    history.seconds = time.perf_counter() - start
    return history


LR_SCHEDULES = ("onecycle", "cosine", "constant")


def make_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int):
    """The learning-rate schedule ``name`` over ``total_steps`` optimiser steps (None: constant).

    ``"onecycle"``: warm up over the first 30 % of the steps to the learning rate, then anneal
    (Smith & Topin, 2019); ``"cosine"``: cosine decay from the learning rate to zero.
    """
    if name == "constant":
        return None
    if name == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")


def _largest_feature(bags: DeviceBags) -> float:
    values = bags.values if bags.sparse else bags.instances
    return float(values.abs().max()) if values.numel() else 0.0


def _advice(bags: DeviceBags, learning_rate: float) -> str:
    return (f"check the feature scale (largest |feature| {_largest_feature(bags):.3g}; standardise "
            f"the instances, e.g. with BagStandardScaler) and the learning rate ({learning_rate:g})")


def _finite_loss(value: float, epoch: int, which: str, bags: DeviceBags, learning_rate: float) -> float:
    """``value``, or :class:`TrainingDivergedError` naming the epoch when it is NaN/inf."""
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"the {which} loss became {value} at epoch {epoch + 1}; training stopped: "
            f"{_advice(bags, learning_rate)}")
    return value


def _forward_all(network: nn.Module, bags: DeviceBags, batch_size: int) -> MILOutput:
    parts = []
    for ids in _batches(bags.n_bags, batch_size, None, bags.device):
        x, bag_index = bags.gather(ids)
        parts.append(network(x, bag_index, len(ids)))
    return MILOutput(*(None if p[0] is None else torch.cat(p) for p in zip(*parts)))


@torch.no_grad()
def predict_network(network: nn.Module, bags: DeviceBags, batch_size: int = 256) -> MILOutput:
    """Forward all bags in evaluation mode; outputs concatenated in bag order."""
    network.eval()
    return _forward_all(network, bags, batch_size)
