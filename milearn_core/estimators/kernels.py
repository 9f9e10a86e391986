"""Bag kernels: kernel ridge regression and classification on bags, with exact per-instance
contributions.

A bag is embedded as the sum of its instances (for in-parent fragment fingerprints: the
molecule's count fingerprint) and compared with the training bags by the MinMax kernel
(Tanimoto on counts, ``sum_k min(a_k, b_k) / sum_k max(a_k, b_k)``). The prediction is
``intercept + sum_n dual_n K(x_n, x)``; the kernel is a sum over features divided by a
per-pair normaliser, so the prediction splits exactly over features, and each feature's share
splits over the instances that hold it, in proportion to their counts. A bag's instance
contributions therefore add up to its prediction minus the intercept, although the model is
not additive over instances. The penalty is chosen by exact leave-one-out error from one
eigendecomposition of the training kernel, for all penalties at once.

Above ``exact_limit`` training bags (8 000) the models are fitted on landmarks
(:mod:`.approx`): seeded training bags stand in for the training bags in the sum above, so
memory stays bounded and all of the above still holds for the model fitted.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ..bags import BagError, check_bag_targets, check_finite_output, pack_bags
from ..kid import leave_one_out_weights, normalize_per_bag
from ..persist import PersistMixin
from ..progress import check_progress, show_progress
from ..safe_state import StateError, check_array, check_int, register_state
from .additive import _bag_sums, _check
from .approx import landmark_count, landmark_fit

__all__ = ["BagKernelClassifier", "BagKernelRegressor", "minmax_kernel"]

_BLOCK = 256  # rows of the second matrix expanded to dense at a time
_OFFSET = 100.0  # the linear kernel's constant: an intercept penalised 1/_OFFSET as much


def _nonnegative_csr(X, what: str, check: bool = True) -> sp.csr_matrix:
    """``X`` as float64 CSR; with ``check``, refuse negative values (the MinMax kernel's)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sum_duplicates()
    X.eliminate_zeros()
    if check and X.nnz and X.data.min() < 0:
        raise ValueError(f"the MinMax kernel needs nonnegative features; {what} has "
                         f"{X.data.min():g}")
    return X


def _level_expansion(A: sp.csr_matrix, B: sp.csr_matrix, shared_only: bool):
    """Indicator matrices over (feature, level) pairs with level weights, so that
    ``(UA * w) @ UB.T`` is ``sum_k min(a_k, b_k)`` for every pair of rows.

    Every value a feature takes in A or B is a level; a row holds level l of feature k when its
    value there reaches it, and the level's weight is its step above the level below. Levels
    held by one side only (``shared_only``: by fewer than two rows) add nothing to a sum of
    minima between different rows and are dropped.
    """
    cols = np.concatenate([A.indices, B.indices]).astype(np.int64)
    vals = np.concatenate([A.data, B.data])
    order = np.lexsort((vals, cols))
    cols, vals = cols[order], vals[order]
    keep = np.r_[True, (cols[1:] != cols[:-1]) | (vals[1:] != vals[:-1])]
    level_col, level_val = cols[keep], vals[keep]
    first = np.r_[True, level_col[1:] != level_col[:-1]]
    weight = level_val - np.where(first, 0.0, np.r_[0.0, level_val[:-1]])
    start = np.maximum.accumulate(np.where(first, np.arange(len(level_col)), 0))
    scale = level_val.max(initial=0.0) + 1.0
    keys = level_col * scale + level_val  # sorted, one per level

    def expand(M: sp.csr_matrix) -> sp.csr_matrix:
        top = np.searchsorted(keys, M.indices.astype(np.int64) * scale + M.data)
        low = start[top]
        reps = top - low + 1
        rows = np.repeat(np.repeat(np.arange(M.shape[0]), np.diff(M.indptr)), reps)
        offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        columns = np.repeat(low, reps) + offsets
        return sp.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(M.shape[0], len(keys)))

    UA = expand(A)
    held_a = np.bincount(UA.indices, minlength=len(keys))
    if shared_only:
        kept = np.flatnonzero(held_a > 1)
        UA = UA[:, kept]
        return UA, UA, weight[kept]
    UB = expand(B)
    kept = np.flatnonzero((held_a > 0) & (np.bincount(UB.indices, minlength=len(keys)) > 0))
    return UA[:, kept], UB[:, kept], weight[kept]


def minmax_kernel(A, B=None) -> np.ndarray:
    """MinMax (count Tanimoto) kernel between the rows of nonnegative matrices.

    Parameters
    ----------
    A : array-like or sparse matrix of shape (n_a, n_features)
    B : array-like or sparse matrix of shape (n_b, n_features), optional
        Default: ``A``.

    Returns
    -------
    ndarray of shape (n_a, n_b)
        ``sum_k min(a_k, b_k) / sum_k max(a_k, b_k)``; 1 where both rows are all zero.
    """
    same = B is None
    A = _nonnegative_csr(A, "A")
    B = A if same else _nonnegative_csr(B, "B")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A has {A.shape[1]} features, B has {B.shape[1]}")
    UA, UB, w = _level_expansion(A, B, shared_only=same)
    UA = sp.csr_matrix(UA.multiply(w[None, :]))
    inter = np.empty((A.shape[0], B.shape[0]))
    for lo in range(0, B.shape[0], _BLOCK):
        hi = lo + _BLOCK
        if same:  # symmetric: the rows from lo down, mirrored into the rows above
            inter[lo:, lo:hi] = UA[lo:] @ UB[lo:hi].toarray().T
            inter[lo:hi, hi:] = inter[hi:, lo:hi].T
        else:
            inter[:, lo:hi] = UA @ UB[lo:hi].toarray().T
    sa, sb = np.asarray(A.sum(axis=1)).ravel(), np.asarray(B.sum(axis=1)).ravel()
    if same:  # levels held by one row only were dropped: the diagonal is the row's own sum
        inter[np.diag_indices_from(inter)] = sa
    union = sa[:, None] + sb[None, :] - inter
    empty = union <= 0  # both rows all zero
    union[empty] = 1.0
    inter /= union  # in place: these matrices are the largest this module makes
    inter[empty] = 1.0
    return inter


def _loo_choice(K: np.ndarray, y: np.ndarray, alphas: Sequence[float],
                weights: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """Least exact leave-one-out mean squared error over ``alphas``, its penalty, and the
    leave-one-out residuals at that penalty.

    One eigendecomposition serves every penalty: with ``K = V diag(s) V'`` the hat matrix is
    ``V diag(s / (s + a)) V'`` and the leave-one-out residual ``(y - y_hat) / (1 - h_ii)``.
    With sample ``weights`` (weighted ridge, ``(K + a W^-1)^-1 y``) the same holds for
    ``W^1/2 K W^1/2``, and the error is the weighted mean.
    """
    root = None if weights is None else np.sqrt(weights)
    # One BLAS thread: on a busy 2-core machine two OpenBLAS threads made this 30x slower
    # (776 bags: 4.3 s against 0.16 s).
    with threadpool_limits(1):
        s, V = np.linalg.eigh(K if root is None else root[:, None] * K * root[None, :])
    s = np.clip(s, 0.0, None)
    Vy = V.T @ (y if root is None else root[:, None] * y)
    V2 = V * V
    best = (np.inf, None, None)
    for a in alphas:
        # Residuals and 1 - leverage from a / (s + a) directly: forming y - V (s / (s + a)) V'y
        # cancels when the penalty is small against the spectrum.
        keep = a / (s + a)
        loo = (V @ (keep[:, None] * Vy)) / np.clip(V2 @ keep, 1e-12, None)[:, None]
        if root is None:
            error = float(np.mean(loo ** 2))
        else:
            loo = loo / root[:, None]
            error = float(np.sum(weights[:, None] * loo ** 2) / (weights.sum() * loo.shape[1]))
        if error < best[0]:
            best = (error, float(a), loo)
    return best


def _solve(K: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None,
           loo: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Dual coefficients ``(K + alpha W^-1)^-1 y`` by Cholesky (one BLAS thread, as above),
    and with ``loo`` the exact leave-one-out residuals of the fit.

    With ``A = K + alpha W^-1`` and ``dual = A^-1 y``, the leave-one-out residual of row ``i``
    is ``dual_i / (A^-1)_ii`` (the ridge residual ``alpha dual_i / w_i`` over one minus the
    leverage, ``alpha (A^-1)_ii / w_i``), so the diagonal of the inverse is all it costs.
    """
    A = K + alpha * (np.eye(len(K)) if weights is None else np.diag(1.0 / weights))
    with threadpool_limits(1):
        factor = scipy.linalg.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
        dual = scipy.linalg.cho_solve(factor, y, check_finite=False)
        if not loo:
            return dual, None
        inverse, info = scipy.linalg.lapack.dpotri(factor[0], lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the regularised kernel matrix is not positive definite")
    diagonal = np.diag(inverse).copy()
    return dual, dual / diagonal.reshape(-1, *([1] * (dual.ndim - 1)))


KERNELS = {"minmax": (1.0, 0.0), "linear": (0.0, 1.0), "minmax+linear": (1.0, 1.0)}


def _kernel_parts(sums: sp.csr_matrix, kernels: Sequence[str], scale: float):
    """The MinMax and the linear kernel between the rows of ``sums``, each None where no
    kernel in ``kernels`` needs it. The linear kernel is divided by ``scale`` and offset."""
    K_mm = minmax_kernel(sums) if any(KERNELS[k][0] for k in kernels) else None
    K_lin = None
    if any(KERNELS[k][1] for k in kernels):
        # Not centred: centring by the mean of all training bags, the left-out one included,
        # leaks it into the others when features outnumber bags, and leave-one-out error then
        # reads 0.14 where refitting gives 1.04 (MoleculeACE CHEMBL2034_Ki).
        # A constant added to the kernel is an intercept, penalised 1/_OFFSET as much as the
        # features: the additive model's mean level is not shrunk towards the label mean.
        K_lin = (sums @ sums.T).toarray() / scale + _OFFSET
    return K_mm, K_lin


def _cross_kernel(name: str, scale: float, A: sp.csr_matrix, B: sp.csr_matrix) -> np.ndarray:
    """Kernel ``name`` between the rows of ``A`` and ``B`` (the linear part as in
    :func:`_kernel_parts`)."""
    w_mm, w_lin = KERNELS[name]
    K = minmax_kernel(A, B) if w_mm else np.zeros((A.shape[0], B.shape[0]))
    if w_lin:
        K += (A @ B.T).toarray() / scale + _OFFSET
    return K


def _unions(A: sp.csr_matrix, B: sp.csr_matrix, K: np.ndarray) -> np.ndarray:
    """``sum_k max(a_k, b_k)`` for every pair of rows, from their MinMax kernel ``K``
    (``K = i / (sa + sb - i)`` solved for the union); 0 where both rows are all zero."""
    sa, sb = np.asarray(A.sum(axis=1)).ravel(), np.asarray(B.sum(axis=1)).ravel()
    return (sa[:, None] + sb[None, :]) / (1.0 + K)


def _n_threads(n_jobs: int | None) -> int:
    """Threads for ``n_jobs`` (None: 1; -1: every core), as joblib counts them."""
    from joblib import effective_n_jobs

    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}")
    return effective_n_jobs(n_jobs)


@contextmanager
def _fit_progress(progress, n_bags: int, n_landmarks: int):
    """A bar over the landmark fit's two passes (2 n rows); yields its update function."""
    if not show_progress(progress):
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=2 * n_bags, unit="bag", unit_scale=True, file=sys.stderr,
              desc=f"kernel ridge on {n_landmarks} landmarks") as bar:
        yield bar.update


def _combined(name: str, K_mm, K_lin) -> np.ndarray:
    w_mm, w_lin = KERNELS[name]
    if w_mm and w_lin:
        return K_mm + K_lin
    return K_mm if w_mm else K_lin


def _check_state(model) -> None:
    """The stored training bags (CSR arrays) index the kernel and the contribution code: every
    pointer, column and size is checked against the others (run at save and load)."""
    n_features = check_int(model.n_features_in_, "n_features_in_", 1)
    if model.kernel_ not in KERNELS:
        raise StateError(f"unknown kernel_ {model.kernel_!r}")
    if not (isinstance(model.alpha_, float) and np.isfinite(model.alpha_) and model.alpha_ > 0):
        raise StateError("alpha_ is not a positive number")
    indptr = check_array(model.train_indptr_, "train_indptr_", "i", (None,))
    n_train = check_int(len(indptr) - 1, "number of training bags", 1)
    nnz = check_int(int(indptr[-1]), "train_indptr_[-1]")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise StateError("train_indptr_ is not a CSR row pointer")
    indices = check_array(model.train_indices_, "train_indices_", "i", (nnz,))
    data = check_array(model.train_data_, "train_data_", "f", (nnz,))
    if nnz and (indices.min() < 0 or indices.max() >= n_features):
        raise StateError("train_indices_ out of range")
    if not np.all(np.isfinite(data)) or (KERNELS[model.kernel_][0] and nnz and data.min() < 0):
        raise StateError("train_data_ must be finite, and nonnegative for the MinMax kernel")
    dual = check_array(model.dual_coef_, "dual_coef_", "f",
                       (n_train,) + (None,) * (np.ndim(model.dual_coef_) - 1))
    coef = check_array(model.linear_coef_, "linear_coef_", "f", (None,) * np.ndim(model.linear_coef_))
    outputs = () if dual.ndim == 1 else (dual.shape[1],)
    if dual.ndim not in (1, 2) or coef.shape != outputs[::-1] + (n_features,) \
            or np.shape(model.intercept_) != outputs:
        raise StateError("dual_coef_, linear_coef_ and intercept_ do not match")


class _BagKernelModel(PersistMixin, BaseEstimator):
    """Shared machinery: kernel and penalty chosen by exact leave-one-out error, the dual
    solve, and the split of a bag's score over its instances."""

    _predicts_from_bag_sums = True  # fit and predict see only the bags' summed instances

    def _checked_params(self) -> tuple[list[str], np.ndarray]:
        kernels = [self.kernels] if isinstance(self.kernels, str) else list(self.kernels)
        unknown = [k for k in kernels if k not in KERNELS]
        if not kernels or unknown:
            raise ValueError(f"kernels must be a non-empty selection of {sorted(KERNELS)}, "
                             f"got {self.kernels!r}")
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 0)):
            raise ValueError(f"alphas must be positive and finite, got {self.alphas!r}")
        return kernels, alphas

    def _fit_scores(self, bags: list, Y: np.ndarray, single: bool, weights: np.ndarray | None = None):
        """Fit the kernel ridge scores to the columns of ``Y`` (one per output), with optional
        sample weights (``single``: one output, stored 1-D); returns every training bag's exact
        leave-one-out scores, shape ``Y.shape`` (out-of-fold values for calibration)."""
        kernels, alphas = self._checked_params()
        minmax = any(KERNELS[k][0] for k in kernels)
        sums = _nonnegative_csr(_bag_sums(pack_bags(bags)), "the training bags", check=minmax)
        mean_y = (Y.mean(axis=0) if weights is None
                  else weights @ Y / weights.sum())
        # The linear kernel's scale: the mean squared norm of all training bags.
        scale = max(float(np.mean(sums.multiply(sums).sum(axis=1))), np.finfo(float).tiny)
        landmarks = self._landmarks(len(bags))
        subset = self._selection_subset(len(bags), approximate=landmarks is not None)
        selection = sums if len(subset) == len(bags) else sums[subset]
        parts = _kernel_parts(selection, kernels, scale)
        w_sub = None if weights is None else weights[subset]
        Y_sub = Y[subset]
        centre = Y_sub.mean(axis=0) if w_sub is None else w_sub @ Y_sub / w_sub.sum()
        best, self.loo_errors_ = None, {}
        for name in kernels:
            error, alpha, loo = _loo_choice(_combined(name, *parts), Y_sub - centre, alphas, w_sub)
            self.loo_errors_[name] = error
            if best is None or error < best[0]:
                best = (error, name, alpha, loo)
        _, self.kernel_, self.alpha_, loo = best
        if landmarks is not None:  # bounded memory: the landmarks stand for the training bags
            del parts
            train = sums[landmarks]
            with _fit_progress(self.progress, len(bags), len(landmarks)) as advance:
                dual, loo_residuals = landmark_fit(
                    sums, Y - mean_y, landmarks, self.alpha_,
                    functools.partial(_cross_kernel, self.kernel_, scale), weights,
                    n_threads=_n_threads(self.n_jobs), progress=advance)
            loo_scores = Y - loo_residuals
        else:
            train = sums
            full = len(subset) == len(bags)
            if not full:  # only the chosen kernel, now on every training bag
                parts = _kernel_parts(sums, [self.kernel_], scale)
            dual, loo_full = _solve(_combined(self.kernel_, *parts), Y - mean_y, self.alpha_,
                                    weights, loo=not full)
            # Leave-one-out scores of every training bag at the chosen kernel and penalty: from
            # the selection itself when it held every bag, else from the final fit's inverse
            # diagonal.
            loo_scores = Y - (loo if full else loo_full)
        w_mm, w_lin = KERNELS[self.kernel_]
        coef = (np.asarray(train.T @ dual).T * (w_lin / scale) if w_lin
                else np.zeros((Y.shape[1], sums.shape[1])))
        intercept = mean_y + (w_lin * _OFFSET * dual.sum(axis=0) if w_lin else 0.0)
        self._set_scores(dual * w_mm, coef, intercept, single)
        self.train_data_, self.train_indices_, self.train_indptr_ = (
            train.data, train.indices.astype(np.int64), train.indptr.astype(np.int64))
        self.n_landmarks_ = None if landmarks is None else len(landmarks)
        self.landmark_rows_ = landmarks
        self.n_features_in_ = bags[0].shape[1]
        return loo_scores

    def _landmarks(self, n_bags: int) -> np.ndarray | None:
        """Seeded landmark rows, or None where the exact model is fitted."""
        limit, count = self.exact_limit, self.n_landmarks
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                                  or limit < 2):
            raise ValueError(f"exact_limit must be an integer >= 2 or None, got {limit!r}")
        if count != "auto" and (isinstance(count, bool) or not isinstance(count, (int, np.integer))
                                or count < 1):
            raise ValueError(f"n_landmarks must be 'auto' or a positive integer, got {count!r}")
        check_progress(self.progress)
        _n_threads(self.n_jobs)
        if limit is None or n_bags <= limit:
            return None
        m = landmark_count(n_bags) if count == "auto" else min(int(count), n_bags)
        rng = np.random.RandomState(self.random_state)
        return np.sort(rng.choice(n_bags, m, replace=False))

    def _set_scores(self, dual, coef, intercept, single: bool) -> None:
        self.dual_coef_ = dual[:, 0] if single else dual
        self.linear_coef_ = coef[0] if single else coef
        self.intercept_ = float(intercept[0]) if single else intercept

    def _selection_subset(self, n_bags: int, approximate: bool = False) -> np.ndarray:
        size = self.selection_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                                 or size < 2):
            raise ValueError(f"selection_size must be an integer >= 2 or None, got {size!r}")
        if approximate and size is None:  # the selection's n x n kernel must fit too
            size = self.exact_limit
        if size is None or n_bags <= size:
            return np.arange(n_bags)
        return np.sort(np.random.RandomState(self.random_state).choice(n_bags, size, replace=False))

    def _train(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.train_data_, self.train_indices_, self.train_indptr_),
                             shape=(len(self.train_indptr_) - 1, self.n_features_in_))

    def _uses_minmax(self) -> bool:
        return bool(KERNELS[self.kernel_][0])

    def _bags(self, X) -> tuple[list, sp.csr_matrix]:
        check_is_fitted(self, "dual_coef_")
        bags = _check(X, self.n_features_in_)
        return bags, _nonnegative_csr(_bag_sums(pack_bags(bags)), "the bags", check=self._uses_minmax())

    def _scores(self, X) -> np.ndarray:
        """Bag scores: intercept + MinMax part + linear part."""
        _, sums = self._bags(X)
        pred = np.asarray(sums @ self.linear_coef_.T) + self.intercept_
        if self._uses_minmax():
            pred = pred + minmax_kernel(sums, self._train()) @ self.dual_coef_
        return check_finite_output(pred)

    def _score_contributions(self, X) -> list[np.ndarray]:
        """Each instance's exact share of its bag's score minus ``intercept_``.

        Linear part: ``x @ linear_coef_``. MinMax part: ``sum_n dual_n sum_k min(x_nk, x_k) /
        union_n``, where feature ``k``'s term goes to the bag's instances in proportion to
        their counts of ``k``.
        """
        bags, sums = self._bags(X)
        coef = self.linear_coef_.reshape(-1, self.n_features_in_)
        out = [np.asarray(sp.csr_matrix(bag) @ coef.T) for bag in bags]
        if self._uses_minmax():
            train = self._train()
            K = minmax_kernel(sums, train)
            union = _unions(sums, train, K)
            dual = self.dual_coef_.reshape(train.shape[0], -1)
            train_csc = train.tocsc()
            for k, bag in enumerate(bags):
                x = sums[k]
                weights = dual / np.where(union[k] > 0, union[k], 1.0)[:, None]
                block = train_csc[:, x.indices].tocoo()
                per_feature = np.zeros((x.indices.size, dual.shape[1]))
                np.add.at(per_feature, block.col,
                          np.minimum(block.data, x.data[block.col])[:, None] * weights[block.row])
                share = sp.csr_matrix(bag)[:, x.indices].toarray() / x.data[None, :]
                out[k] = out[k] + share @ per_feature
        return out

    def _score_difference(self, bag_a, bag_b) -> tuple[np.ndarray, np.ndarray]:
        """The features where the two bags' sums differ, and each one's exact share of
        ``score(a) - score(b)`` (one column per output); see :meth:`difference_contributions`."""
        _, sums = self._bags([bag_a, bag_b])
        a, b = sums[0].toarray().ravel(), sums[1].toarray().ravel()
        features = np.flatnonzero(a != b)
        coef = self.linear_coef_.reshape(-1, self.n_features_in_)
        out = (a[features] - b[features])[:, None] * coef[:, features].T
        if self._uses_minmax() and features.size:
            train = self._train()
            K = minmax_kernel(sums, train)
            union = _unions(sums, train, K)
            empty = (union <= 0).any(axis=0)  # an all-zero bag against an all-zero training bag
            union = np.where(union > 0, union, 1.0)
            T = train[:, features].toarray()
            d_inter = np.minimum(T, a[features]) - np.minimum(T, b[features])
            d_union = np.maximum(T, a[features]) - np.maximum(T, b[features])
            # K_a - K_b = (dI - K_b dU) / U_a = (dI - K_a dU) / U_b, both exact and linear in
            # the per-feature changes dI, dU; their mean treats a and b alike.
            share = 0.5 * ((d_inter - K[1][:, None] * d_union) / union[0][:, None]
                           + (d_inter - K[0][:, None] * d_union) / union[1][:, None])
            # Two all-zero bags have similarity 1 by convention, outside that identity: there
            # the difference is spread evenly over the features.
            share[empty] = ((K[0] - K[1])[empty] / features.size)[:, None]
            out = out + share.T @ self.dual_coef_.reshape(train.shape[0], -1)
        return features, out

    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Per-instance weights, each bag summing to 1.

        ``"auto"``/``"native"``: absolute contributions (summed over outputs), normalised;
        ``"loo"``: leave-one-instance-out change of the prediction.
        """
        if method not in ("auto", "native", "loo"):
            raise ValueError(f"method must be 'auto', 'native' or 'loo', got {method!r}")
        if method == "loo":
            check_is_fitted(self, "dual_coef_")
            return leave_one_out_weights(self._loo_target, _check(X, self.n_features_in_))
        magnitude = [np.abs(c).reshape(len(c), -1).sum(axis=1) for c in self.instance_contributions(X)]
        return normalize_per_bag(magnitude)


_SCORE_FIELDS = ("alpha_", "dual_coef_", "intercept_", "kernel_", "linear_coef_", "loo_errors_",
                 "n_features_in_", "n_landmarks_", "landmark_rows_", "train_data_", "train_indices_",
                 "train_indptr_")
_ADDED_PARAMS = ("exact_limit", "n_landmarks", "n_jobs", "progress")  # files of 2026-11 lack them


def _n_bags(model) -> int | None:
    """Training bags behind the leave-one-out values: the stored bags, or with landmarks any
    number (None) from the landmarks up."""
    n_stored = len(model.train_indptr_) - 1
    landmarks = getattr(model, "n_landmarks_", None)
    if landmarks is None:
        return n_stored
    if check_int(landmarks, "n_landmarks_", 1) != n_stored:
        raise StateError("n_landmarks_ does not match the stored landmarks")
    return None


def _check_landmark_rows(model, n_bags: int) -> None:
    """``landmark_rows_``: None for the exact model, else the landmarks' training rows,
    strictly increasing below ``n_bags``, one per stored landmark."""
    rows = getattr(model, "landmark_rows_", None)
    if rows is None:
        if getattr(model, "n_landmarks_", None) is not None:
            raise StateError("landmark_rows_ missing for a model fitted on landmarks")
        return
    rows = check_array(rows, "landmark_rows_", "i", (getattr(model, "n_landmarks_", None) or 0,))
    if len(rows) and (rows[0] < 0 or rows[-1] >= n_bags or np.any(np.diff(rows) <= 0)):
        raise StateError("landmark_rows_ must be increasing training rows")


def _check_regressor_state(model) -> None:
    """The score part, plus one leave-one-out prediction per training bag and output."""
    _check_state(model)
    loo = check_array(model.loo_predictions_, "loo_predictions_", "f",
                      (_n_bags(model),) + np.shape(model.dual_coef_)[1:])
    _check_landmark_rows(model, len(loo))


@register_state("milearn_core.BagKernelRegressor", check=_check_regressor_state,
                fields=_SCORE_FIELDS + ("loo_predictions_",), added_params=_ADDED_PARAMS)
class BagKernelRegressor(RegressorMixin, _BagKernelModel):
    """Kernel ridge regression on bags: MinMax and/or linear kernel between summed instances.

    Parameters
    ----------
    kernels : sequence of {"minmax", "linear", "minmax+linear"}
        Candidate kernels; the one with the least leave-one-out error is kept. ``"linear"`` is
        ridge regression on the summed instances (the additive model: every instance scores
        ``x @ linear_coef_``); ``"minmax"`` compares bags by count Tanimoto similarity (a
        non-additive model whose predictions still split exactly over instances, see the
        module docstring); ``"minmax+linear"`` adds the two (the linear kernel scaled to the
        same mean diagonal).
    alphas : sequence of float
        Ridge penalties to choose from, for each kernel, by exact leave-one-out error.
    selection_size : int or None
        Above this many bags, the kernel and penalty are chosen on a seeded subset of this
        size; the final fit uses every bag.
    random_state : int or None
        Seeds that subset and the landmarks.
    exact_limit : int or None
        Above this many training bags the model is fitted on landmarks
        (:mod:`milearn_core.estimators.approx`): seeded training bags stand for all of them,
        memory stays O(landmarks^2) and the fit O(n); None: always exact (memory O(n^2)).
    n_landmarks : int or "auto"
        Landmarks above ``exact_limit``; "auto": :func:`~milearn_core.estimators.approx.landmark_count`.
    n_jobs : int or None
        Threads making kernel blocks on the landmark path (None: 1; -1: every core).
    progress : bool or "auto"
        A bar over the landmark fit (``"auto"``: where someone watches).

    Attributes
    ----------
    kernel_ : str
        The chosen kernel.
    alpha_ : float
        The chosen penalty.
    dual_coef_ : ndarray of shape (n_train,) or (n_train, n_outputs)
        Weights of the training bags (or landmarks) in the MinMax part (zero when
        ``kernel_`` is "linear").
    linear_coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        Score of one unit of each feature in the linear part (zero for "minmax").
    intercept_ : float or ndarray of shape (n_outputs,)
        The prediction minus the instance contributions: for "minmax", the mean training label
        (also the prediction far from every training bag); with a linear part, a fitted,
        nearly unpenalised intercept.
    loo_errors_ : dict
        Least leave-one-out mean squared error of each candidate kernel.
    loo_predictions_ : ndarray of shape (n_bags,) or (n_bags, n_outputs)
        Each training bag's exact leave-one-out prediction at the chosen kernel and penalty
        (out-of-fold values for prediction intervals, :mod:`milearn_core.uncertainty`).
    train_data_, train_indices_, train_indptr_ : ndarray
        The training bags' summed instances as CSR arrays (the MinMax kernel needs them); the
        landmarks' on the landmark path.
    n_landmarks_ : int or None
        Landmarks the model was fitted on; None for the exact model.
    landmark_rows_ : ndarray of int or None
        Their training rows. A landmark's leave-one-out value keeps its own basis function and
        is pessimistic; the other rows' are ordinary leave-one-out values.
    n_features_in_ : int

    Notes
    -----
    The MinMax kernel needs nonnegative features (counts); the linear kernel takes any. With
    the MinMax kernel, predictions far from the
    training data return to the mean instead of growing with the counts.
    """

    def __init__(self, kernels: Sequence[str] = ("minmax", "linear"),
                 alphas: Sequence[float] = tuple(np.logspace(-6, 2, 25)),
                 selection_size: int | None = 1000, random_state: int | None = 0,
                 exact_limit: int | None = 8000, n_landmarks: int | str = "auto",
                 n_jobs: int | None = None, progress="auto"):
        self.kernels = kernels
        self.alphas = alphas
        self.selection_size = selection_size
        self.random_state = random_state
        self.exact_limit = exact_limit
        self.n_landmarks = n_landmarks
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, X, y):
        """Fit on bags ``X`` (dense or scipy sparse, nonnegative) and labels ``y``."""
        self._checked_params()
        bags = _check(X)
        if len(bags) < 2:
            raise BagError(f"need at least 2 bags to choose alpha; got {len(bags)}")
        y = check_bag_targets(y, len(bags), "regression")
        loo = self._fit_scores(bags, y.reshape(len(y), -1), single=y.ndim == 1)
        self.loo_predictions_ = loo[:, 0] if y.ndim == 1 else loo
        return self

    def predict(self, X) -> np.ndarray:
        """Bag predictions: intercept + MinMax part + linear part."""
        return self._scores(X)

    _loo_target = predict

    def instance_contributions(self, X) -> list[np.ndarray]:
        """Each instance's exact share of its bag's prediction minus ``intercept_``.

        Linear part: ``x @ linear_coef_``. MinMax part: ``sum_n dual_n sum_k min(x_nk, x_k) /
        union_n``, where feature ``k``'s term goes to the bag's instances in proportion to
        their counts of ``k``.
        """
        out = self._score_contributions(X)
        return [c[:, 0] if self.linear_coef_.ndim == 1 else c for c in out]

    def difference_contributions(self, bag_a, bag_b) -> tuple[np.ndarray, np.ndarray]:
        """The prediction difference of two bags split exactly over the features their sums differ in.

        Returns ``features`` (indices) and ``values`` with ``predict(a) - predict(b) =
        values.sum()`` (per output). Features the two bags hold alike get nothing: a feature's
        share is its own change to the linear part and to the MinMax similarities (its change
        to their intersections and unions), so what the bags share is not credited with
        their difference.
        """
        features, out = self._score_difference(bag_a, bag_b)
        return features, (out[:, 0] if self.linear_coef_.ndim == 1 else out)


def _check_classifier_state(model) -> None:
    """The score part as the regressor's, plus classes and a calibration that match them."""
    _check_state(model)
    classes = model.classes_
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2:
        raise StateError("classes_ must list at least two classes")
    n_scores = 1 if len(classes) == 2 else len(classes)  # one logit per score, too
    if np.ndim(model.dual_coef_) != (1 if n_scores == 1 else 2) or (
            n_scores > 1 and np.shape(model.dual_coef_)[1] != n_scores):
        raise StateError("dual_coef_ does not match classes_")
    coef = check_array(model.calibration_coef_, "calibration_coef_", "f", (n_scores, n_scores))
    offset = check_array(model.calibration_intercept_, "calibration_intercept_", "f", (n_scores,))
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(offset))):
        raise StateError("the calibration must be finite")
    loo = check_array(model.loo_proba_, "loo_proba_", "f", (_n_bags(model), len(classes)))
    _check_landmark_rows(model, len(loo))


@register_state("milearn_core.BagKernelClassifier", check=_check_classifier_state,
                fields=_SCORE_FIELDS + ("classes_", "calibration_coef_", "calibration_intercept_",
                                        "loo_proba_"), added_params=_ADDED_PARAMS)
class BagKernelClassifier(ClassifierMixin, _BagKernelModel):
    """Kernel classification on bags: the bag-kernel regressor's scores, calibrated.

    Each class is scored one-vs-rest by weighted kernel ridge regression on +-1 targets (a
    least-squares SVM) on the bags' summed instances, with the MinMax and/or linear kernel;
    the kernel and penalty are chosen by exact leave-one-out error. The leave-one-out scores,
    out-of-fold for every training bag, are then calibrated by logistic regression (Platt
    scaling; multinomial over the one-vs-rest scores for three or more classes), so
    probabilities need no second fit.

    The calibration is affine in the scores, so a bag's log-odds split exactly over its
    instances: ``decision_function(X) = contribution_intercept_ + sum of
    instance_contributions(X)`` (log-odds of ``classes_[1]`` for two classes; the multinomial
    logits, one column per class, for more).

    Parameters
    ----------
    kernels : sequence of {"minmax", "linear", "minmax+linear"}
        Candidate kernels (see :class:`BagKernelRegressor`).
    alphas : sequence of float
        Ridge penalties to choose from by exact leave-one-out error.
    class_weight : {"balanced"} or None
        "balanced": each class weighs the same in the ridge fit (rare actives are not
        ignored); probabilities are calibrated without weights, to the real class frequencies.
    selection_size : int or None
        Above this many bags, the kernel and penalty are chosen on a seeded subset of this
        size; the final solve uses every bag, and the calibration every bag's exact
        leave-one-out score.
    random_state : int or None
        Seeds that subset and the landmarks.
    exact_limit, n_landmarks, n_jobs, progress :
        The landmark fit above ``exact_limit`` bags (see :class:`BagKernelRegressor`).

    Attributes
    ----------
    classes_ : ndarray
    kernel_, alpha_, dual_coef_, linear_coef_, intercept_, loo_errors_ :
        The one-vs-rest score model, as in :class:`BagKernelRegressor` (one column per class
        for three or more classes, one score for two).
    calibration_coef_ : ndarray of shape (n_logits, n_scores)
    calibration_intercept_ : ndarray of shape (n_logits,)
        Log-odds (or logits) = scores @ calibration_coef_.T + calibration_intercept_.
    loo_proba_ : ndarray of shape (n_train, n_classes)
        Calibrated probabilities of each training bag's leave-one-out scores (out-of-fold
        values for conformal prediction sets).
    contribution_intercept_ : float or ndarray of shape (n_classes,)
        The log-odds of a bag whose instances contribute nothing.
    """

    def __init__(self, kernels: Sequence[str] = ("minmax", "linear"),
                 alphas: Sequence[float] = tuple(np.logspace(-6, 2, 25)),
                 class_weight: str | None = "balanced", selection_size: int | None = 1000,
                 random_state: int | None = 0,
                 exact_limit: int | None = 8000, n_landmarks: int | str = "auto",
                 n_jobs: int | None = None, progress="auto"):
        self.kernels = kernels
        self.alphas = alphas
        self.class_weight = class_weight
        self.selection_size = selection_size
        self.random_state = random_state
        self.exact_limit = exact_limit
        self.n_landmarks = n_landmarks
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, X, y):
        """Fit on bags ``X`` (dense or scipy sparse, nonnegative) and class labels ``y``."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.class_weight import compute_sample_weight

        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        self._checked_params()
        bags = _check(X)
        y = check_bag_targets(y, len(bags), "classification")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"y holds a single class ({self.classes_[0]!r}); need at least two")
        codes = encoder.transform(y)
        counts = np.bincount(codes)
        if counts.min() < 2:
            raise BagError(f"class {self.classes_[counts.argmin()].item()!r} has {counts.min()} bag; "
                           "leave-one-out calibration needs at least 2 bags of each class")
        binary = len(self.classes_) == 2
        Y = np.where(codes[:, None] == (np.array([1]) if binary else np.arange(len(self.classes_))),
                     1.0, -1.0)
        weights = None if self.class_weight is None else compute_sample_weight("balanced", codes)
        loo_scores = self._fit_scores(bags, Y, single=binary, weights=weights)
        # Platt scaling on out-of-fold scores; a mild penalty keeps it finite when they separate.
        calibrator = LogisticRegression(C=100.0, max_iter=1000).fit(loo_scores, codes)
        self.calibration_coef_ = np.asarray(calibrator.coef_, dtype=np.float64)
        self.calibration_intercept_ = np.asarray(calibrator.intercept_, dtype=np.float64)
        self.loo_proba_ = self._probabilities(loo_scores @ self.calibration_coef_.T
                                              + self.calibration_intercept_)
        return self

    @property
    def contribution_intercept_(self):
        check_is_fitted(self, "calibration_coef_")
        logits = np.atleast_1d(self.intercept_) @ self.calibration_coef_.T + self.calibration_intercept_
        return float(logits[0]) if len(self.classes_) == 2 else logits

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of ``classes_[1]`` (two classes) or multinomial logits."""
        check_is_fitted(self, "calibration_coef_")
        scores = self._scores(X).reshape(len(X), -1)
        logits = scores @ self.calibration_coef_.T + self.calibration_intercept_
        return logits[:, 0] if len(self.classes_) == 2 else logits

    _loo_target = decision_function

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, columns ordered as ``classes_``."""
        return self._probabilities(self.decision_function(X).reshape(len(X), -1))

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        from scipy.special import expit, softmax

        if len(self.classes_) == 2:
            p = expit(logits[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(logits, axis=1)

    def predict(self, X) -> np.ndarray:
        """The most probable class."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def instance_contributions(self, X) -> list[np.ndarray]:
        """Each instance's exact share of its bag's log-odds (two classes: of ``classes_[1]``,
        1-D) or logits (one column per class) minus ``contribution_intercept_``."""
        check_is_fitted(self, "calibration_coef_")
        out = [c @ self.calibration_coef_.T for c in self._score_contributions(X)]
        return [c[:, 0] if len(self.classes_) == 2 else c for c in out]

    def difference_contributions(self, bag_a, bag_b) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`BagKernelRegressor.difference_contributions` for the log-odds (two classes)
        or logits: ``decision_function(a) - decision_function(b) = values.sum()``."""
        check_is_fitted(self, "calibration_coef_")
        features, out = self._score_difference(bag_a, bag_b)
        out = out @ self.calibration_coef_.T
        return features, (out[:, 0] if len(self.classes_) == 2 else out)
