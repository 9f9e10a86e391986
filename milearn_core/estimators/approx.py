"""Bounded-memory kernel ridge: training bags as landmarks (Nystroem, subset of regressors).

Above a size threshold the bag-kernel models cannot hold the n x n training kernel (16 000
bags: 9.4 GB; 32 000: a 7.6 GiB allocation fails). There the model keeps ``m`` seeded training
bags as landmarks and fits ``f(x) = intercept + sum_j beta_j K(x, l_j)`` to every training bag:

    minimise  sum_i w_i (y_i - k_i beta)^2 + alpha beta' K_mm beta,

whose solution is ``beta = (K_nm' W K_nm + alpha K_mm)^-1 K_nm' W y``. The n x m kernel is
made block by block and only its m x m Gram matrix is kept, so memory is O(m^2) whatever n.
The fitted model has the exact model's form with the landmarks as its training bags, so the
prediction splits over instances exactly as before (:mod:`.kernels`) and the saved state is
the same.

Leave-one-out values stay exact for this fitted model: the hat matrix is
``H = W^1/2 K_nm A^-1 K_nm' W^1/2`` with ``A`` the matrix above, and a second pass over the
blocks gives each bag's leverage ``w_i k_i' A^-1 k_i`` and residual, hence its leave-one-out
prediction ``y_i - r_i / (1 - h_ii)``, for intervals and calibration.

The landmark budget grows with the data (:func:`landmark_count`) so that the error keeps
falling as n grows: chosen by measurement against the exact model (benchmarks/scale.py).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg
import scipy.sparse as sp

__all__ = ["landmark_count", "landmark_fit"]

_ROWS_PER_BLOCK = 2048


def landmark_count(n_bags: int, base: int = 3000, at: int = 16000) -> int:
    """The automatic landmark budget: ``base`` at ``at`` bags, growing as ``n_bags ** 0.25``
    (4 743 at 100 000 bags), never more than half the bags.

    The cost is O(n m) kernel values and O(n m^2) arithmetic; a fourth root keeps 100 000
    bags within minutes on two cores while the error still falls as n grows.
    """
    return int(min(n_bags // 2, round(base * (n_bags / at) ** 0.25)))


def _in_threads(make: Callable[[int, int], np.ndarray], blocks: list[tuple[int, int]],
                n_threads: int) -> Iterator[np.ndarray]:
    """``make(lo, hi)`` for each block, in order, at most ``n_threads + 1`` blocks in memory
    (the sparse kernel code releases the GIL: two threads made it 1.9x faster here)."""
    if n_threads <= 1:
        yield from (make(lo, hi) for lo, hi in blocks)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        pending: deque = deque()
        for lo, hi in blocks:
            pending.append(pool.submit(make, lo, hi))
            if len(pending) > n_threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _cholesky(A: np.ndarray, jitter: float) -> np.ndarray:
    """Lower Cholesky factor of ``A`` plus the least ``jitter * 10^k`` on its diagonal that
    makes it positive definite in floating point.

    ``A = K'WK + alpha K_mm`` squares the kernel's condition number: with a small penalty, or
    duplicate landmarks, it is singular to working precision. The jitter starts at 1e-9 of the
    penalty term's mean diagonal (a fixed ridge does not depend on any one training bag, so
    leave-one-out values stay exact for the model fitted) and grows tenfold until the
    factorisation succeeds, at most to 1e-6 of ``A``'s mean diagonal.
    """
    scale = float(np.trace(A)) / len(A)
    jitter = max(jitter, 1e-15 * scale)
    while True:
        B = A.copy()
        B[np.diag_indices_from(B)] += jitter
        try:
            return scipy.linalg.cholesky(B, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            if jitter > 1e-6 * scale:
                raise
            jitter *= 10.0


def landmark_fit(sums: sp.csr_matrix, Y: np.ndarray, landmarks: np.ndarray, alpha: float,
                 kernel: Callable[[sp.csr_matrix, sp.csr_matrix], np.ndarray],
                 weights: np.ndarray | None = None, n_threads: int = 1,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Landmark ridge weights and every row's exact leave-one-out residual.

    Parameters
    ----------
    sums : sparse matrix of shape (n, n_features)
        The training bags' summed instances.
    Y : ndarray of shape (n, n_outputs)
        Centred targets.
    landmarks : ndarray of int
        Rows of ``sums`` used as landmarks.
    alpha : float
        Ridge penalty.
    kernel : callable
        ``kernel(A, B)`` -> dense kernel between the rows of ``A`` and ``B``.
    weights : ndarray of shape (n,), optional
        Sample weights.
    n_threads : int
        Threads making kernel blocks.
    progress : callable, optional
        Called with the number of rows done after each block (two passes: 2n in all).

    Returns
    -------
    beta : ndarray of shape (m, n_outputs)
    loo_residuals : ndarray of shape (n, n_outputs)
        ``y_i`` minus its leave-one-out prediction.
    """
    n, m = sums.shape[0], len(landmarks)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    L = sums[landmarks]
    gram = np.zeros((m, m))
    target = np.zeros((m, Y.shape[1]))
    blocks = [(lo, min(lo + _ROWS_PER_BLOCK, n)) for lo in range(0, n, _ROWS_PER_BLOCK)]
    # The blocks go to an anonymous temporary file (removed when closed, whatever happens) for
    # the second pass: making them again would double the kernel time, keeping them would
    # take n x m memory.
    with tempfile.TemporaryFile() as spill:
        for (lo, hi), K in zip(blocks, _in_threads(lambda lo, hi: kernel(sums[lo:hi], L),
                                                   blocks, n_threads)):
            weighted = K * w[lo:hi, None]
            gram += weighted.T @ K
            target += weighted.T @ Y[lo:hi]
            K.tofile(spill)
            if progress is not None:
                progress(hi - lo)
        K_mm = kernel(L, L)
        factor = _cholesky(gram + alpha * K_mm, 1e-9 * alpha * float(np.trace(K_mm)) / m)
        del gram, K_mm
        beta = scipy.linalg.cho_solve((factor, True), target, check_finite=False)
        loo = np.empty(Y.shape, dtype=np.float64)
        spill.seek(0)
        for lo, hi in blocks:
            K = np.fromfile(spill, dtype=np.float64, count=(hi - lo) * m).reshape(hi - lo, m)
            residual = Y[lo:hi] - K @ beta
            half = scipy.linalg.solve_triangular(factor, K.T, lower=True, check_finite=False)
            leverage = w[lo:hi] * np.einsum("ij,ij->j", half, half)
            loo[lo:hi] = residual / np.clip(1.0 - leverage, 1e-12, None)[:, None]
            if progress is not None:
                progress(hi - lo)
    return beta, loo
