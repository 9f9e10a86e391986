"""Bags of instances: validation, packing and bag-aware scalers.

A bag collection ``X`` is a sequence of 2-D arrays (instances x features), one per bag; estimators
that say so also take scipy sparse bags (e.g. wide count fingerprints), kept in CSR form.
Internally bags are *packed*: all instances stacked in one matrix plus a bag index, so every
computation runs on real instances only (no padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "BagError",
    "PackedBags",
    "check_bags",
    "check_bag_targets",
    "pack_bags",
    "BagTransformer",
    "BagStandardScaler",
    "BagMinMaxScaler",
]


class BagError(ValueError):
    """Invalid bag input; the message names the offending bag."""


def check_bags(
    X: Sequence[np.ndarray] | np.ndarray,
    n_features: int | None = None,
    dtype: type = np.float32,
    accept_sparse: bool = False,
) -> list[np.ndarray | sp.csr_matrix]:
    """Validate a bag collection and return it as a list of 2-D float arrays.

    Parameters
    ----------
    X : sequence of array-like of shape (n_instances_i, n_features)
        One 2-D array per bag. A 3-D array is read as bags of equal size.
    n_features : int, optional
        Expected number of features (e.g. ``n_features_in_`` of a fitted model).
    dtype : numpy dtype
        Output dtype.
    accept_sparse : bool
        Keep scipy sparse bags as CSR matrices; otherwise they are made dense.

    Returns
    -------
    list of ndarray (or CSR matrix where ``accept_sparse``)

    Raises
    ------
    BagError
        If there are no bags, a bag is empty, not 2-D, has another feature count, or holds
        NaN/inf. The message names the bag index.
    """
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim != 3:
        raise BagError(
            f"X must be a sequence of 2-D bags (or a 3-D array); got an array of shape {X.shape}"
        )
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise BagError(f"X must be a sequence of 2-D bags, got {type(X).__name__}")
    if len(X) == 0:
        raise BagError("X holds no bags")
    bags = []
    for i, bag in enumerate(X):
        if sp.issparse(bag) and accept_sparse:
            arr = _check_sparse_bag(bag, i, dtype)
            n_features = _check_shape(arr, i, n_features)
            bags.append(arr)
            continue
        if sp.issparse(bag):
            bag = bag.toarray()
        try:
            arr = np.asarray(bag, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise BagError(f"bag {i}: cannot be read as a numeric array ({exc})") from None
        if arr.ndim == 1:
            raise BagError(
                f"bag {i}: expected a 2-D array (instances x features), got 1-D of length "
                f"{arr.shape[0]}; use bag.reshape(1, -1) for a one-instance bag"
            )
        if arr.ndim != 2:
            raise BagError(f"bag {i}: expected a 2-D array, got {arr.ndim}-D")
        n_features = _check_shape(arr, i, n_features)
        if not np.isfinite(arr).all():
            row = int(np.argwhere(~np.isfinite(arr))[0, 0])
            raise BagError(f"bag {i}: instance {row} holds NaN or infinite values")
        bags.append(arr)
    return bags


def _check_shape(arr, i: int, n_features: int | None) -> int:
    if arr.shape[0] == 0:
        raise BagError(f"bag {i}: empty bag (no instances)")
    if n_features is not None and arr.shape[1] != n_features:
        raise BagError(f"bag {i}: has {arr.shape[1]} features, expected {n_features}")
    return arr.shape[1]


def _check_sparse_bag(bag, i: int, dtype) -> sp.csr_matrix:
    try:
        arr = sp.csr_matrix(bag, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BagError(f"bag {i}: cannot be read as a numeric sparse matrix ({exc})") from None
    if not np.isfinite(arr.data).all():
        row = int(np.searchsorted(arr.indptr, np.argmax(~np.isfinite(arr.data)), side="right") - 1)
        raise BagError(f"bag {i}: instance {row} holds NaN or infinite values")
    return arr


def check_bag_targets(y: np.ndarray | Sequence, n_bags: int) -> np.ndarray:
    """Check that there is one target per bag and return it as an array."""
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n_bags:
        got = 0 if y.ndim == 0 else y.shape[0]
        raise BagError(f"y has {got} labels but X has {n_bags} bags")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = int(np.argwhere(~np.isfinite(y.reshape(n_bags, -1)))[0, 0])
        raise BagError(f"bag {bad}: target is NaN or infinite")
    return y


@dataclass(frozen=True)
class PackedBags:
    """All instances of a bag collection in one matrix.

    Attributes
    ----------
    instances : ndarray or CSR matrix of shape (n_instances_total, n_features)
    bag_index : ndarray of shape (n_instances_total,)
        Bag number of every instance.
    offsets : ndarray of shape (n_bags + 1,)
        Bag ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
    """

    instances: np.ndarray
    bag_index: np.ndarray
    offsets: np.ndarray

    @property
    def n_bags(self) -> int:
        return len(self.offsets) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Split per-instance ``values`` back into one array per bag."""
        return np.split(np.asarray(values), self.offsets[1:-1])


def pack_bags(bags: Sequence[np.ndarray]) -> PackedBags:
    """Stack validated bags into a :class:`PackedBags`."""
    sizes = np.fromiter((b.shape[0] for b in bags), dtype=np.int64, count=len(bags))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    bag_index = np.repeat(np.arange(len(bags), dtype=np.int64), sizes)
    if any(sp.issparse(b) for b in bags):
        instances = sp.vstack(bags, format="csr")
    else:
        instances = np.concatenate(bags, axis=0)
    return PackedBags(instances, bag_index, offsets)


class BagTransformer(TransformerMixin, BaseEstimator):
    """Fit an instance-level scikit-learn transformer on all instances; keep the bags.

    Parameters
    ----------
    transformer : sklearn transformer
        Applied to the stacked instances of all bags.
    """

    def __init__(self, transformer=None):
        self.transformer = transformer

    def _make_transformer(self):
        return clone(self.transformer) if self.transformer is not None else StandardScaler()

    def fit(self, X, y=None):
        bags = check_bags(X, dtype=np.float64)
        self.transformer_ = self._make_transformer().fit(np.concatenate(bags, axis=0))
        self.n_features_in_ = bags[0].shape[1]
        return self

    def transform(self, X) -> list[np.ndarray]:
        check_is_fitted(self, "transformer_")
        bags = check_bags(X, n_features=self.n_features_in_, dtype=np.float64)
        packed = pack_bags(bags)
        return packed.split(self.transformer_.transform(packed.instances))

    def get_feature_names_out(self, input_features=None):
        return self.transformer_.get_feature_names_out(input_features)


class BagStandardScaler(BagTransformer):
    """Standardise features over all instances (zero mean, unit variance), per bag output."""

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _make_transformer(self):
        return StandardScaler(with_mean=self.with_mean, with_std=self.with_std)


class BagMinMaxScaler(BagTransformer):
    """Scale features to ``feature_range`` over all instances, per bag output."""

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), clip: bool = False):
        self.feature_range = feature_range
        self.clip = clip

    def _make_transformer(self):
        return MinMaxScaler(feature_range=self.feature_range, clip=self.clip)
