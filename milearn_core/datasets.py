"""Synthetic MIL benchmarks with ground-truth key instances.

Digit bags are built from scikit-learn's bundled ``load_digits`` (8x8 images, no download).
Every generator is seeded and returns the key instances, so KID can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

__all__ = ["MILDataset", "make_digit_bags", "DIGIT_TASKS"]

DIGIT_TASKS = ("or", "and", "xor", "mean")


@dataclass
class MILDataset:
    """Bags, labels and ground truth.

    Attributes
    ----------
    bags : list of ndarray of shape (n_instances_i, 64)
        Pixel intensities scaled to [0, 1].
    y : ndarray of shape (n_bags,)
    key_instances : list of bool ndarray
        Instances that decide the label (empty selection in negative bags).
    instance_values : list of ndarray
        Per-instance ground truth: the digit shown by each instance.
    """

    bags: list[np.ndarray]
    y: np.ndarray
    key_instances: list[np.ndarray]
    instance_values: list[np.ndarray]

    def subset(self, index) -> MILDataset:
        """The bags at ``index`` (e.g. a train/test split)."""
        index = np.asarray(index)
        return MILDataset([self.bags[i] for i in index], self.y[index],
                          [self.key_instances[i] for i in index],
                          [self.instance_values[i] for i in index])


def _bag_sizes(n_bags, bag_size, rng) -> np.ndarray:
    if isinstance(bag_size, (int, np.integer)):
        if bag_size < 1:
            raise ValueError(f"bag_size must be positive, got {bag_size}")
        return np.full(n_bags, int(bag_size))
    low, high = bag_size
    if not 1 <= low <= high:
        raise ValueError(f"bag_size range must satisfy 1 <= low <= high, got {bag_size}")
    return rng.randint(low, high + 1, size=n_bags)


def _draw_digits(task: str, positive: bool, size: int, rng) -> np.ndarray:
    """Digits of one bag that satisfy the task's rule for the wanted label."""
    if task == "or":
        if not positive:
            return rng.choice([d for d in range(10) if d != 3], size)
        digits = rng.randint(0, 10, size)
        digits[rng.randint(size)] = 3
        return digits
    others = [d for d in range(10) if d not in (3, 7)]
    digits = rng.choice(others, size)
    # Which of {3, 7} must appear: AND wants both, XOR exactly one; negatives get a decoy.
    if task == "and":
        need = ((3, 7),) if positive else ((), (3,), (7,))
    else:
        need = ((3,), (7,)) if positive else ((), (3, 7))
    if size < 2:
        need = tuple(n for n in need if len(n) <= size) or ((),)
    chosen = need[rng.randint(len(need))]
    slots = rng.choice(size, len(chosen), replace=False)
    digits[slots] = chosen
    return digits


def make_digit_bags(
    task: str = "or",
    n_bags: int = 1000,
    bag_size: int | tuple[int, int] = 10,
    random_state: int | None = 0,
) -> MILDataset:
    """Bags of handwritten-digit images with a known rule.

    Parameters
    ----------
    task : {"or", "and", "xor", "mean"}
        ``"or"``: positive when the bag holds a 3 (key instances: the 3s).
        ``"and"``: positive when it holds a 3 and a 7 (keys: the 3s and 7s of positive bags).
        ``"xor"``: positive when it holds exactly one of 3 and 7 (keys: the 3s or 7s present).
        ``"mean"``: regression, label = mean digit of the bag (keys: none; see
        ``instance_values``). Classification tasks are about half positive.
    n_bags : int
    bag_size : int or (low, high)
        Fixed size or an inclusive range.
    random_state : int, optional

    Returns
    -------
    MILDataset
    """
    if task not in DIGIT_TASKS:
        raise ValueError(f"task must be one of {DIGIT_TASKS}, got {task!r}")
    rng = check_random_state(random_state)
    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    by_digit = [np.flatnonzero(digits.target == d) for d in range(10)]
    sizes = _bag_sizes(n_bags, bag_size, rng)
    bags, labels, keys, values = [], [], [], []
    for size in sizes:
        if task == "mean":
            bag_digits = rng.randint(0, 10, size)
            label = bag_digits.mean()
            key = np.zeros(size, dtype=bool)
        else:
            positive = bool(rng.rand() < 0.5)
            bag_digits = _draw_digits(task, positive, size, rng)
            label = int(positive)
            key = np.isin(bag_digits, (3, 7) if task != "or" else (3,)) & positive
        rows = np.array([by_digit[d][rng.randint(len(by_digit[d]))] for d in bag_digits])
        bags.append(images[rows])
        labels.append(label)
        keys.append(key)
        values.append(bag_digits.astype(float))
    return MILDataset(bags, np.asarray(labels), keys, values)
