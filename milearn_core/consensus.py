"""Consensus of several MIL regressors on the same bags: averaged predictions and contributions.

Each member is fitted on the same bags; the consensus predicts the weighted mean of the members'
predictions. Where every member splits its prediction exactly over instances (an intercept
plus instance contributions), so does the consensus: its contributions are the weighted mean
of the members' and its intercept the weighted mean of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .bags import check_finite_output, predicts_from_bag_sums
from .kid import normalize_per_bag
from .persist import PersistMixin
from .safe_state import StateError, check_array, register_state

__all__ = ["ConsensusRegressor"]


def _members(consensus) -> list:
    """The fitted members, else the given ones; [] where ``estimators`` is malformed (fit
    then says how)."""
    fitted = getattr(consensus, "estimators_", None)
    if fitted:
        return fitted
    try:
        return [est for _, est in consensus.estimators]
    except (TypeError, ValueError):
        return []


def _members_split_exactly(self) -> bool:
    members = _members(self)
    return bool(members) and all(hasattr(est, "instance_contributions") for est in members)


def _check_state(model) -> None:
    """Each fitted member is of its estimator's class; the weights add up to 1."""
    members = list(model.estimators)
    fitted = model.estimators_
    if not isinstance(fitted, list) or len(fitted) != len(members) or not fitted:
        raise StateError("estimators_ does not match estimators")
    for (name, unfitted), est in zip(members, fitted):
        if not isinstance(name, str) or type(est) is not type(unfitted):
            raise StateError("a fitted member is not of its estimator's class")
    weights = check_array(model.weights_, "weights_", "f", (len(fitted),))
    if not (np.all(np.isfinite(weights) & (weights >= 0)) and abs(weights.sum() - 1) < 1e-9):
        raise StateError("weights_ must be nonnegative and add up to 1")


@register_state("milearn_core.ConsensusRegressor", check=_check_state,
                fields=("estimators_", "intercept_", "n_features_in_", "weights_"))
class ConsensusRegressor(PersistMixin, RegressorMixin, BaseEstimator):
    """Weighted mean of several bag regressors fitted on the same bags.

    Parameters
    ----------
    estimators : sequence of (str, estimator)
        Named members (unfitted; each is cloned at fit).
    weights : sequence of float, optional
        One nonnegative weight per member (normalised to sum 1); default equal weights.

    Attributes
    ----------
    estimators_ : list of fitted estimators
    weights_ : ndarray of shape (n_members,)
        The normalised weights.
    intercept_ : float
        Weighted mean of the members' intercepts (members with exact contributions).
    n_features_in_ : int
    """

    def __init__(self, estimators: Sequence[tuple[str, object]], weights: Sequence[float] | None = None):
        self.estimators = estimators
        self.weights = weights

    @property
    def _predicts_from_bag_sums(self) -> bool:
        """Every member sees bags only through their sums (see ``predicts_from_bag_sums``)."""
        members = _members(self)
        return bool(members) and all(predicts_from_bag_sums(est) for est in members)

    def _checked_weights(self, n: int) -> np.ndarray:
        if self.weights is None:
            return np.full(n, 1.0 / n)
        w = np.asarray(self.weights, dtype=np.float64).ravel()
        if w.shape != (n,) or not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
            raise ValueError(f"weights must be {n} nonnegative numbers, not all 0; got {self.weights!r}")
        return w / w.sum()

    def fit(self, X, y):
        """Fit every member on bags ``X`` and labels ``y``."""
        members = list(self.estimators)
        names = [name for name, _ in members] if all(
            isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) for m in members) else None
        if not members or names is None or len(set(names)) != len(names):
            raise ValueError("estimators must be a non-empty list of (unique name, estimator) pairs")
        self.weights_ = self._checked_weights(len(members))
        self.estimators_ = [clone(est).fit(X, y) for _, est in members]
        self.n_features_in_ = getattr(self.estimators_[0], "n_features_in_", None)
        intercepts = [getattr(est, "intercept_", None) for est in self.estimators_]
        if all(i is not None for i in intercepts):
            self.intercept_ = float(np.dot(self.weights_, np.asarray(intercepts, dtype=np.float64)))
        return self

    def predict(self, X) -> np.ndarray:
        """Weighted mean of the members' predictions."""
        check_is_fitted(self, "estimators_")
        predictions = np.array([est.predict(X) for est in self.estimators_], dtype=np.float64)
        return check_finite_output(np.tensordot(self.weights_, predictions, axes=1))

    @available_if(_members_split_exactly)
    def instance_contributions(self, X) -> list[np.ndarray]:
        """Weighted mean of the members' instance contributions; a bag's add up to its
        prediction minus ``intercept_`` where every member's do."""
        check_is_fitted(self, "estimators_")
        per_member = [est.instance_contributions(X) for est in self.estimators_]
        return [sum(w * np.asarray(c[k], dtype=np.float64) for w, c in zip(self.weights_, per_member))
                for k in range(len(per_member[0]))]

    @available_if(_members_split_exactly)
    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Absolute consensus contributions, normalised per bag to sum to 1."""
        if method not in ("auto", "native"):
            raise ValueError(f"method must be 'auto' or 'native', got {method!r}")
        return normalize_per_bag([np.abs(c).reshape(len(c), -1).sum(axis=1)
                                  for c in self.instance_contributions(X)])
