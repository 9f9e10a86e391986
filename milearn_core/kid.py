"""Key instance detection (KID): instance weights, attribution and KID metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from .bags import check_bags

__all__ = [
    "instance_weights",
    "leave_one_out_weights",
    "normalize_per_bag",
    "top_instances",
    "kid_accuracy",
    "kid_spearman",
]


def normalize_per_bag(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scale non-negative weights to sum to 1 per bag; an all-zero bag becomes uniform."""
    out = []
    for w in weights:
        w = np.clip(np.asarray(w, dtype=np.float64), 0, None)
        total = w.sum()
        out.append(w / total if total > 0 else np.full(len(w), 1.0 / len(w)))
    return out


def leave_one_out_weights(
    score_bags: Callable[[list[np.ndarray]], np.ndarray], bags: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Model-agnostic instance weights: how much the bag's scores move without each instance.

    Every leave-one-out bag of every bag is scored in one call of ``score_bags`` (bags -> 2-D
    array of per-bag scores, e.g. ``predict_proba``). An instance's weight is the summed absolute
    change of the scores when it is removed, normalised per bag. One-instance bags get weight 1.

    Parameters
    ----------
    score_bags : callable
        Maps a list of bags to per-bag scores, shape (n_bags,) or (n_bags, n_scores).
    bags : sequence of 2-D arrays (dense or scipy sparse)

    Returns
    -------
    list of ndarray
    """
    bags = list(bags)
    sizes = np.array([b.shape[0] for b in bags])
    # Row masks rather than np.delete, so that scipy sparse bags work too.
    reduced = [bag[np.arange(n) != i] for bag, n in zip(bags, sizes) if n > 1 for i in range(n)]
    full = np.asarray(score_bags(bags), dtype=np.float64).reshape(len(bags), -1)
    left_out = (
        np.asarray(score_bags(reduced), dtype=np.float64).reshape(len(reduced), -1)
        if reduced else np.empty((0, full.shape[1]))
    )
    owner = np.repeat(np.flatnonzero(sizes > 1), sizes[sizes > 1])
    change = np.abs(left_out - full[owner]).sum(axis=1)
    weights, start = [], 0
    for size in sizes:
        if size == 1:
            weights.append(np.ones(1))
        else:
            weights.append(change[start : start + size])
            start += size
    return normalize_per_bag(weights)


def instance_weights(model, X, method: str = "auto") -> list[np.ndarray]:
    """Instance weights of any fitted bag model, one 1-D array per bag summing to 1.

    Uses the model's own ``instance_weights`` where it has one; otherwise leave-one-instance-out
    attribution over ``predict_proba`` (classifiers) or ``predict``.
    """
    if hasattr(model, "instance_weights"):
        return model.instance_weights(X, method=method)
    bags = check_bags(X)
    if hasattr(model, "predict_proba"):
        return leave_one_out_weights(model.predict_proba, bags)
    return leave_one_out_weights(model.predict, bags)


def top_instances(weights: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the ``k`` largest weights, largest first (ties: lower index first)."""
    return np.argsort(-np.asarray(weights), kind="stable")[:k]


def kid_accuracy(
    weights: Sequence[np.ndarray],
    key_instances: Sequence[np.ndarray],
    top_k: int = 1,
    bags: Sequence[int] | None = None,
) -> float:
    """Share of bags whose ``top_k`` highest-weighted instances are all key instances.

    Parameters
    ----------
    weights : list of 1-D arrays
        Instance weights per bag.
    key_instances : list of 1-D bool arrays
        Ground-truth key instances per bag.
    top_k : int
        1 for the usual KID accuracy; 2 for rules that need two key instances (AND).
    bags : sequence of int, optional
        Bags to score (e.g. the positive ones). Default: every bag holding at least ``top_k``
        key instances.
    """
    if len(weights) != len(key_instances):
        raise ValueError(f"{len(weights)} weight arrays but {len(key_instances)} key arrays")
    if bags is None:
        bags = [i for i, keys in enumerate(key_instances) if np.sum(keys) >= top_k]
    if len(bags) == 0:
        raise ValueError("no bag to score: none holds enough key instances")
    hits = []
    for i in bags:
        keys = np.asarray(key_instances[i], dtype=bool)
        if len(keys) != len(weights[i]):
            raise ValueError(f"bag {i}: {len(weights[i])} weights but {len(keys)} key flags")
        hits.append(keys[top_instances(weights[i], top_k)].all())
    return float(np.mean(hits))


def kid_spearman(
    weights: Sequence[np.ndarray], instance_values: Sequence[np.ndarray]
) -> float:
    """Mean Spearman correlation between each bag's weights and its instances' true values.

    Bags where either side is constant (correlation undefined) count as 0.
    """
    if len(weights) != len(instance_values):
        raise ValueError(f"{len(weights)} weight arrays but {len(instance_values)} value arrays")
    scores = []
    for i, (w, v) in enumerate(zip(weights, instance_values)):
        if len(w) != len(v):
            raise ValueError(f"bag {i}: {len(w)} weights but {len(v)} values")
        if len(w) < 2 or np.ptp(w) == 0 or np.ptp(v) == 0:
            scores.append(0.0)
        else:
            scores.append(float(spearmanr(w, v).statistic))
    return float(np.mean(scores))
