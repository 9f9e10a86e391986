"""Synthetic MIL benchmarks with ground-truth key instances.

Digit bags are built from scikit-learn's bundled ``load_digits`` (8x8 images, no download);
protein-pair bags (:func:`make_ppi_bags`) from seeded random sequences with planted motifs.
Every generator is seeded and returns the key instances, so KID can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

__all__ = ["MILDataset", "make_digit_bags", "DIGIT_TASKS", "make_ppi_bags", "ppi_window_features",
           "AMINO_ACIDS", "PPI_ENCODINGS"]

DIGIT_TASKS = ("or", "and", "xor", "mean")


@dataclass
class MILDataset:
    """Bags, labels and ground truth.

    Attributes
    ----------
    bags : list of ndarray of shape (n_instances_i, n_features)
        Digits: pixel intensities scaled to [0, 1] (64 features). Protein pairs: one row per
        sequence window (see :func:`ppi_window_features`).
    y : ndarray of shape (n_bags,)
    key_instances : list of bool ndarray
        Instances that decide the label (empty selection in negative bags).
    instance_values : list of ndarray
        Per-instance ground truth: the digit shown by each instance; for protein pairs, how
        many residues of a planted motif (or decoy half) the window covers.
    bag_info : list of dict, optional
        Per-bag extras where the generator has them (protein pairs: the two sequences, each
        window's protein and start, the planted motif positions). None for digit bags.
    """

    bags: list[np.ndarray]
    y: np.ndarray
    key_instances: list[np.ndarray]
    instance_values: list[np.ndarray]
    bag_info: list[dict] | None = None

    def subset(self, index) -> MILDataset:
        """The bags at ``index`` (e.g. a train/test split)."""
        index = np.asarray(index)
        info = None if self.bag_info is None else [self.bag_info[i] for i in index]
        return MILDataset([self.bags[i] for i in index], self.y[index],
                          [self.key_instances[i] for i in index],
                          [self.instance_values[i] for i in index], info)


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


# --------------------------------------------------------------------------- protein pairs

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

# Background amino-acid composition (%) of UniProtKB/Swiss-Prot, from the release statistics
# ("Amino acid composition", https://web.expasy.org/docs/relnotes/relstat.html; the figures of
# the 2020-2022 releases, which move in the second decimal between releases). Normalised below.
_SWISSPROT_PERCENT = {
    "A": 8.25, "R": 5.53, "N": 4.06, "D": 5.46, "C": 1.38, "Q": 3.93, "E": 6.72, "G": 7.07,
    "H": 2.27, "I": 5.91, "L": 9.65, "K": 5.80, "M": 2.41, "F": 3.86, "P": 4.74, "S": 6.64,
    "T": 5.35, "W": 1.10, "Y": 2.92, "V": 6.86,
}
BACKGROUND = np.array([_SWISSPROT_PERCENT[a] for a in AMINO_ACIDS]) / sum(_SWISSPROT_PERCENT.values())

# Kyte & Doolittle (1982) hydropathy index, and side-chain charge at pH 7 (His ~10 % protonated).
_KYTE_DOOLITTLE = {
    "A": 1.8, "R": -4.5, "N": -3.5, "D": -3.5, "C": 2.5, "Q": -3.5, "E": -3.5, "G": -0.4,
    "H": -3.2, "I": 4.5, "L": 3.8, "K": -3.9, "M": 1.9, "F": 2.8, "P": -1.6, "S": -0.8,
    "T": -0.7, "W": -0.9, "Y": -1.3, "V": 4.2,
}
_CHARGE = {"D": -1.0, "E": -1.0, "K": 1.0, "R": 1.0, "H": 0.1}
_HYDRO = np.array([_KYTE_DOOLITTLE[a] for a in AMINO_ACIDS])
_CHARGES = np.array([_CHARGE.get(a, 0.0) for a in AMINO_ACIDS])

PPI_ENCODINGS = ("aac", "aac_dpc", "aac_dpc_phys")


def ppi_window_features(window: str, encoding: str = "aac_dpc_phys") -> np.ndarray:
    """Features of one sequence window.

    Parameters
    ----------
    window : str
        Residues in the one-letter code of :data:`AMINO_ACIDS`.
    encoding : {"aac", "aac_dpc", "aac_dpc_phys"}
        ``"aac"``: amino-acid composition, the count of each of the 20 residues (20 features).
        ``"aac_dpc"``: plus dipeptide composition, the count of each of the 400 ordered
        residue pairs at neighbouring positions (420). ``"aac_dpc_phys"``: plus the window's
        summed Kyte-Doolittle hydropathy and net charge at pH 7, each divided by 10 (422).

    Returns
    -------
    ndarray of shape (n_features,), float32
    """
    if encoding not in PPI_ENCODINGS:
        raise ValueError(f"encoding must be one of {PPI_ENCODINGS}, got {encoding!r}")
    codes = np.array([AMINO_ACIDS.index(a) for a in window])
    parts = [np.bincount(codes, minlength=20)]
    if encoding != "aac":
        parts.append(np.bincount(codes[:-1] * 20 + codes[1:], minlength=400))
    if encoding == "aac_dpc_phys":
        parts.append([_HYDRO[codes].sum() / 10, _CHARGES[codes].sum() / 10])
    return np.concatenate(parts).astype(np.float32)


def _window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of the sliding windows; the last window ends at the sequence's end."""
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def _random_protein(length: int, motifs: tuple[str, ...], rng) -> str:
    """A background sequence that holds none of ``motifs`` by chance."""
    while True:
        seq = "".join(rng.choice(list(AMINO_ACIDS), length, p=BACKGROUND))
        if not any(m in seq for m in motifs):
            return seq


def _plant(seq: str, motif: str, mutation_rate: float, rng) -> tuple[str, int]:
    """``seq`` with ``motif`` written at a random position (each residue replaced by a
    background draw with probability ``mutation_rate``); returns the sequence and position."""
    copy = [rng.choice(list(AMINO_ACIDS), p=BACKGROUND) if rng.rand() < mutation_rate else a
            for a in motif]
    pos = rng.randint(len(seq) - len(motif) + 1)
    return seq[:pos] + "".join(copy) + seq[pos + len(motif):], pos


def make_ppi_bags(
    n_pairs: int = 1000,
    protein_length: int | tuple[int, int] = (60, 140),
    motif_length: int = 8,
    window: int = 15,
    stride: int = 5,
    mutation_rate: float = 0.0,
    decoy_fraction: float = 0.0,
    encoding: str = "aac_dpc_phys",
    random_state: int | None = 0,
) -> MILDataset:
    """Protein pairs as bags of sequence windows; a pair interacts when it carries a motif pair.

    Both proteins are drawn residue by residue from the UniProtKB/Swiss-Prot background
    composition (resampled if they hold a motif by chance). Two motifs, A and B, are drawn the
    same way once per data set. About half of the pairs are positive: motif A is planted in
    the first protein and motif B in the second. A bag holds the sliding windows of both
    proteins (first protein's windows first), each encoded by :func:`ppi_window_features`.
    Key instances: in positive pairs, the windows that overlap a planted motif.

    Parameters
    ----------
    n_pairs : int
    protein_length : int or (low, high)
        Residues per protein, fixed or an inclusive range.
    motif_length : int
        Residues per motif (shorter motifs are harder to tell from background).
    window, stride : int
        Sliding-window width and step, in residues.
    mutation_rate : float
        Probability that a planted motif residue is replaced by a background draw.
    decoy_fraction : float
        Share of the negative pairs that carry one half of the motif pair (motif A in the
        first protein, or motif B in the second, never both). Their motif windows are not key
        instances, but ``instance_values`` counts their motif residues.
    encoding : {"aac", "aac_dpc", "aac_dpc_phys"}
        Window features, see :func:`ppi_window_features`.
    random_state : int, optional

    Returns
    -------
    MILDataset
        ``bag_info[i]`` holds ``proteins`` (the two sequences), ``motifs`` (A and B),
        ``planted`` (``{"A": position or None, "B": position or None}``) and ``windows``
        (``(protein, start)`` per instance).
    """
    if not 1 <= motif_length <= window:
        raise ValueError(f"motif_length must be between 1 and window ({window}), got {motif_length}")
    if not 1 <= stride <= window - motif_length + 1:
        raise ValueError(f"stride must be between 1 and window - motif_length + 1 "
                         f"({window - motif_length + 1}) so that a window holds the whole motif, "
                         f"got {stride}")
    if not 0 <= mutation_rate <= 1 or not 0 <= decoy_fraction <= 1:
        raise ValueError(f"mutation_rate and decoy_fraction must be in [0, 1], got "
                         f"{mutation_rate} and {decoy_fraction}")
    if encoding not in PPI_ENCODINGS:
        raise ValueError(f"encoding must be one of {PPI_ENCODINGS}, got {encoding!r}")
    rng = check_random_state(random_state)
    lengths = _bag_sizes(2 * n_pairs, protein_length, rng).reshape(n_pairs, 2)
    if lengths.min() < window:
        raise ValueError(f"proteins must be at least one window ({window}) long, got {lengths.min()}")
    motif_a, motif_b = ("".join(rng.choice(list(AMINO_ACIDS), motif_length, p=BACKGROUND))
                        for _ in range(2))
    bags, labels, keys, values, info = [], [], [], [], []
    for pair_lengths in lengths:
        positive = bool(rng.rand() < 0.5)
        plant = {"A": positive, "B": positive}
        if not positive and rng.rand() < decoy_fraction:
            plant["AB"[rng.randint(2)]] = True
        proteins, planted = [], {}
        for side, motif, length in zip("AB", (motif_a, motif_b), pair_lengths):
            seq = _random_protein(length, (motif_a, motif_b), rng)
            planted[side] = None
            if plant[side]:
                seq, planted[side] = _plant(seq, motif, mutation_rate, rng)
            proteins.append(seq)
        rows, covered, windows = [], [], []
        for protein, (side, seq) in enumerate(zip("AB", proteins)):
            for start in _window_starts(len(seq), window, stride):
                rows.append(ppi_window_features(seq[start:start + window], encoding))
                pos = planted[side]
                overlap = 0 if pos is None else max(
                    0, min(start + window, pos + motif_length) - max(start, pos))
                covered.append(overlap)
                windows.append((protein, start))
        covered = np.array(covered, dtype=float)
        bags.append(np.vstack(rows))
        labels.append(int(positive))
        keys.append((covered > 0) & positive)
        values.append(covered)
        info.append({"proteins": tuple(proteins), "motifs": (motif_a, motif_b),
                     "planted": planted, "windows": windows})
    return MILDataset(bags, np.asarray(labels), keys, values, info)
