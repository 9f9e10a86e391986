"""Bags of instances: validation, packing and bag-aware scalers.

A bag collection ``X`` is a sequence of 2-D arrays (instances x features), one per bag; estimators
that say so also take scipy sparse bags (e.g. wide count fingerprints), kept in CSR form.
Internally bags are *packed*: all instances stacked in one matrix plus a bag index, so every
computation runs on real instances only (no padding).
"""

from __future__ import annotations

import numbers
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
    "check_finite_output",
    "FLOAT64_MAX_ABS",
    "pack_bags",
    "predicts_from_bag_sums",
    "BagTransformer",
    "BagStandardScaler",
    "BagMinMaxScaler",
]


class BagError(ValueError):
    """Invalid bag input; the message names the offending bag."""


# The float64 models (additive, wrappers, mi-SVM, scalers) refuse feature values beyond this
# magnitude: their sums over instances, squares (Gram matrices, variances, RBF distances) and
# products with fitted weights would overflow float64 (max ~1.8e308). Regression targets too.
FLOAT64_MAX_ABS = 1e100
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def predicts_from_bag_sums(estimator) -> bool:
    """Whether an estimator sees each bag only through the sum of its instances.

    Such an estimator (the additive and bag-kernel regressors, a consensus of them) predicts
    the same for any bag with the same summed instances, e.g. a one-instance bag holding the
    sum; only its instance contributions need the instances themselves. Featurisers use this
    to skip building instances that only prediction needs (see ``qsarmil``'s summed bags).
    """
    return bool(getattr(estimator, "_predicts_from_bag_sums", False))


def check_bags(
    X: Sequence[np.ndarray] | np.ndarray,
    n_features: int | None = None,
    dtype: type = np.float32,
    accept_sparse: bool = False,
    max_abs: float | None = None,
) -> list[np.ndarray | sp.csr_matrix]:
    """Validate a bag collection and return it as a list of 2-D float arrays.

    Parameters
    ----------
    X : sequence of array-like of shape (n_instances_i, n_features)
        One 2-D array per bag. A 3-D array is read as bags of equal size.
    n_features : int, optional
        Expected number of features (e.g. ``n_features_in_`` of a fitted model).
    dtype : numpy dtype
        Output dtype. Values too large for it (e.g. 1e308 for float32) are refused.
    accept_sparse : bool
        Keep scipy sparse bags as CSR matrices; otherwise they are made dense.
    max_abs : float, optional
        Refuse values of larger magnitude (the float64 models pass :data:`FLOAT64_MAX_ABS`).

    Returns
    -------
    list of ndarray (or CSR matrix where ``accept_sparse``)

    Raises
    ------
    BagError
        If there are no bags, a bag is empty, not 2-D, has another feature count, holds
        NaN/inf or values too large for ``dtype`` or ``max_abs``. The message names the bag
        index and the instance.
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
            arr = _check_sparse_bag(bag, i, dtype, max_abs)
        else:
            arr = _check_dense_bag(bag.toarray() if sp.issparse(bag) else bag, i, dtype, max_abs)
        n_features = _check_shape(arr, i, n_features)
        bags.append(arr)
    return bags


def _check_dense_bag(bag, i: int, dtype, max_abs: float | None) -> np.ndarray:
    try:
        raw = np.asarray(bag)
        if raw.dtype.kind == "c":
            raise TypeError("complex values are not supported")
        with np.errstate(over="ignore"):
            arr = raw.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise BagError(f"bag {i}: cannot be read as a numeric array ({exc})") from None
    if arr.ndim == 1:
        raise BagError(
            f"bag {i}: expected a 2-D array (instances x features), got 1-D of length "
            f"{arr.shape[0]}; use bag.reshape(1, -1) for a one-instance bag"
        )
    if arr.ndim != 2:
        raise BagError(f"bag {i}: expected a 2-D array, got {arr.ndim}-D")
    _check_values(arr, raw, i, max_abs, row_of=lambda flat: flat // max(arr.shape[1], 1))
    return arr


def _check_sparse_bag(bag, i: int, dtype, max_abs: float | None) -> sp.csr_matrix:
    try:
        raw = sp.csr_matrix(bag)
        if raw.dtype.kind == "c":
            raise TypeError("complex values are not supported")
        with np.errstate(over="ignore"):
            arr = raw.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise BagError(f"bag {i}: cannot be read as a numeric sparse matrix ({exc})") from None
    _check_values(arr.data, raw.data, i, max_abs,
                  row_of=lambda flat: np.searchsorted(arr.indptr, flat, side="right") - 1)
    return arr


def _check_values(values: np.ndarray, raw: np.ndarray, i: int, max_abs: float | None, row_of) -> None:
    """Refuse NaN/inf, values that overflowed the cast, and values beyond ``max_abs``."""
    flat = values.ravel()
    bad = ~np.isfinite(flat)
    if bad.any():
        k = int(np.argmax(bad))
        original = float(np.asarray(raw, dtype=object).ravel()[k])
        if np.isfinite(original):
            limit = np.finfo(values.dtype).max
            raise BagError(f"bag {i}: instance {int(row_of(k))} holds {original:.3g}, too large for "
                           f"{values.dtype} (max ~{limit:.2g}); rescale the features")
        raise BagError(f"bag {i}: instance {int(row_of(k))} holds NaN or infinite values")
    if max_abs is not None and flat.size:
        k = int(np.argmax(np.abs(flat)))
        if abs(flat[k]) > max_abs:
            raise BagError(f"bag {i}: instance {int(row_of(k))} holds {flat[k]:.3g}, beyond the "
                           f"+/-{max_abs:.0e} this model's float64 arithmetic takes (sums and squares "
                           f"would overflow); rescale the features")


def _check_shape(arr, i: int, n_features: int | None) -> int:
    if arr.shape[0] == 0:
        raise BagError(f"bag {i}: empty bag (no instances)")
    if n_features is not None and arr.shape[1] != n_features:
        raise BagError(f"bag {i}: has {arr.shape[1]} features, expected {n_features}")
    return arr.shape[1]


def check_bag_targets(y: np.ndarray | Sequence, n_bags: int, task: str | None = None) -> np.ndarray:
    """Check that there is one valid target per bag and return them as an array.

    Parameters
    ----------
    y : array-like of shape (n_bags,) or (n_bags, n_outputs)
    n_bags : int
    task : {"regression", "classification"}, optional
        ``"regression"``: every target must be a finite number (numeric strings are read;
        None, NaN, inf, other strings such as a censored ``">5"``, and magnitudes beyond
        :data:`FLOAT64_MAX_ABS` are refused) and each output needs at least two distinct
        values; returns float64. ``"classification"``: 1-D scalar labels (whole numbers,
        strings, bools) of one type, no None/NaN, at least two classes. None: only the count
        and NaN/None are checked.

    Raises
    ------
    BagError
        Naming the bag (its position in ``y``) and the value.
    """
    try:
        y = np.asarray(y)
    except ValueError as exc:  # ragged nested sequences
        raise BagError(f"y cannot be read as an array of one label per bag ({exc})") from None
    if y.ndim == 0 or y.shape[0] != n_bags:
        got = 0 if y.ndim == 0 else y.shape[0]
        raise BagError(f"y has {got} labels but X has {n_bags} bags")
    if task == "regression":
        return _regression_targets(y)
    if task == "classification":
        return _class_labels(y)
    if task is not None:
        raise ValueError(f"task must be 'regression', 'classification' or None, got {task!r}")
    bad = ~np.isfinite(y) if y.dtype.kind == "f" else np.frompyfunc(
        lambda v: v is None or _is_nan(v), 1, 1)(y).astype(bool) if y.dtype == object else None
    if bad is not None and bad.any():
        k = int(np.argmax(bad.ravel()))
        value = y.ravel()[k]
        kind = "None" if value is None else "NaN" if _is_nan(value) else "infinite"
        raise BagError(f"bag {int(np.unravel_index(k, y.shape)[0])}: target is {kind} "
                       f"(y[{_position(y, k)}] = {_show(value)})")
    return y


def _position(y: np.ndarray, k: int) -> str:
    return ", ".join(str(int(i)) for i in np.unravel_index(k, y.shape))


def _show(value) -> str:
    """``repr`` of a label, numpy scalars shown as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _is_nan(value) -> bool:
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _target_problem(value) -> str | None:
    """What is wrong with one regression target, or None."""
    if value is None:
        return "None"
    if isinstance(value, (complex, np.complexfloating)):
        return "complex"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "not a number"
    if np.isnan(number):
        return "NaN"
    if np.isinf(number):
        return "infinite"
    if abs(number) > FLOAT64_MAX_ABS:
        return f"beyond +/-{FLOAT64_MAX_ABS:.0e}"
    return None


def _regression_targets(y: np.ndarray) -> np.ndarray:
    if y.ndim > 2:
        raise BagError(f"y must be 1-D or 2-D (one target or one row of targets per bag), got shape "
                       f"{y.shape}")
    fast = y.dtype.kind in "biuf"
    values = y.astype(np.float64) if fast else None
    if not fast or not (np.abs(values) <= FLOAT64_MAX_ABS).all():
        for k, value in enumerate(y.ravel()):
            problem = _target_problem(value)
            if problem is not None:
                bag = int(np.unravel_index(k, y.shape)[0])
                raise BagError(f"bag {bag}: target is {problem} (y[{_position(y, k)}] = {_show(value)}); "
                               f"regression targets must be finite numbers (censored values such as "
                               f"'>5' are not supported)")
        values = y.astype(np.float64)
    columns = values.reshape(len(values), -1)
    for col in range(columns.shape[1]):
        if np.all(columns[:, col] == columns[0, col]):
            where = "y" if values.ndim == 1 else f"y[:, {col}]"
            raise BagError(f"{where} holds one value ({columns[0, col]:g}) for all {len(values)} bags: "
                           f"nothing to learn; a regressor needs at least two distinct targets")
    return values


def _label_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Number, np.number)):
        return "number"
    return "str" if isinstance(value, str) else type(value).__name__


def _class_labels(y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise BagError(f"classification takes 1-D y (one label per bag), got shape {y.shape}")
    for k, value in enumerate(y if y.dtype.kind in "fO" else ()):
        if value is None or _is_nan(value):
            raise BagError(f"bag {k}: label is {value} (y[{k}] = {_show(value)}); every bag needs a class")
        try:
            hash(value)
        except TypeError:
            raise BagError(f"bag {k}: label {_show(value)} is not hashable") from None
        if np.ndim(value) != 0:  # tuples: scikit-learn's label encoding takes scalars only
            raise BagError(f"bag {k}: label {_show(value)} is not a scalar; use numbers or strings")
    if y.dtype == object:
        kinds = sorted({_label_kind(v) for v in y})
        if len(kinds) > 1:
            raise BagError(f"labels of different types cannot be ordered ({', '.join(kinds)}); "
                           f"use one label type")
        y = np.array(y.tolist())  # a plain dtype: scikit-learn reads object arrays of ints as "unknown"
    if y.dtype.kind == "f" and (y != np.round(y)).any():  # scikit-learn's rule: "continuous"
        k = int(np.argmax(y != np.round(y)))
        raise BagError(f"bag {k}: label {_show(y[k])} is a fractional number; class labels are whole "
                       f"numbers, strings or bools (is y a regression target?)")
    classes = np.unique(y)
    if len(classes) < 2:
        raise BagError(f"y holds a single class ({_show(classes[0])}); need at least two")
    return y


def check_finite_output(values: np.ndarray, what: str = "prediction") -> np.ndarray:
    """Refuse non-finite model output (one row per bag): a model never returns a silent NaN.

    Raises
    ------
    BagError
        Naming the first bag whose ``what`` is NaN or infinite.
    """
    values = np.asarray(values)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        bag = int(np.argwhere(~np.isfinite(values.reshape(len(values), -1)))[0, 0])
        raise BagError(f"bag {bag}: the {what} is not finite ({values[bag]}); its features are out of "
                       f"the range this model can take: rescale them (e.g. BagStandardScaler)")
    return values


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
        bags = check_bags(X, dtype=np.float64, max_abs=FLOAT64_MAX_ABS)
        self.transformer_ = self._make_transformer().fit(np.concatenate(bags, axis=0))
        self.n_features_in_ = bags[0].shape[1]
        return self

    def transform(self, X) -> list[np.ndarray]:
        check_is_fitted(self, "transformer_")
        bags = check_bags(X, n_features=self.n_features_in_, dtype=np.float64, max_abs=FLOAT64_MAX_ABS)
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
