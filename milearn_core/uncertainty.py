"""Prediction intervals and conformal prediction sets for any milearn_core estimator.

Both rest on out-of-fold predictions of the training bags (:func:`out_of_fold`): the exact
leave-one-out values a kernel model computes with its fit (``loo_predictions_``,
``loo_proba_``), or K-fold cross-validation refits for every other estimator.

- Regression (:class:`IntervalCalibrator`): normalised conformal intervals. Each training
  bag's score is its out-of-fold absolute residual divided by a difficulty (any positive
  number per bag that grows with the expected error, e.g. :func:`neighbour_difficulty`); the
  interval at level ``1 - a`` is ``prediction +- q * difficulty``, with ``q`` the
  ``ceil((n + 1)(1 - a)) / n`` quantile of the scores. Any level can be asked for after the fit.
  With ``groups`` (Mondrian), each group of bags gets its own quantile, so the level holds
  within each group, not only on average over them.
- Classification (:class:`SetCalibrator`): class-conditional (Mondrian) conformal sets on the
  score ``1 - p(true class)``, so each class is covered at the level, rare ones included.

Why not MAPIE or crepes here: with exact leave-one-out residuals both methods are a sort and
a quantile (MAPIE's jackknife+ would refit the model once per training bag, or keep K fold
models and predict with each), and the difficulty comes from the caller (in qsarmil: the
nearest training molecules' errors), which neither takes as given. The benchmarks compare
against MAPIE's CV+ around a Tanimoto SVR.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from .persist import ModelFileError
from .safe_state import is_finite_number

__all__ = ["IntervalCalibrator", "SetCalibrator", "has_exact_out_of_fold", "neighbour_difficulty",
           "out_of_fold"]

MAX_SCORES = 10_000_000  # calibration scores a saved calibrator may hold
MAX_GROUPS = 16  # Mondrian groups a saved interval calibrator may hold


def _exact_values(estimator):
    """The fitted estimator's exact leave-one-out values of its training bags, or None."""
    return getattr(estimator, "loo_proba_" if is_classifier(estimator) else "loo_predictions_", None)


def has_exact_out_of_fold(estimator) -> bool:
    """Whether a fitted estimator holds exact leave-one-out values of its training bags."""
    return _exact_values(estimator) is not None


def out_of_fold(estimator, X, y, cv: int = 5, random_state: int | None = 0) -> np.ndarray:
    """Out-of-fold predictions (regression) or class probabilities (classification).

    Parameters
    ----------
    estimator : fitted milearn_core estimator
        If it holds exact leave-one-out values (``loo_predictions_`` or ``loo_proba_``, shaped
        for these bags), they are returned without refitting; otherwise an unfitted clone is
        refitted on ``cv`` folds (stratified for classifiers).
    X : list of bags
    y : array-like of shape (n_bags,)
    cv : int
        Folds for estimators without leave-one-out values.
    random_state : int or None
        Seeds the folds.

    Returns
    -------
    ndarray of shape (n_bags,) or (n_bags, n_classes)
    """
    y = np.asarray(y)
    classifier = is_classifier(estimator)
    exact = _exact_values(estimator)
    if exact is not None and len(exact) == len(y):
        return np.asarray(exact, dtype=np.float64)
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
    # As many folds as the data allow: each fold must hold a bag (of every class).
    cv = min(cv, int(np.unique(y, return_counts=True)[1].min()) if classifier else len(y))
    if cv < 2:
        raise ValueError("out-of-fold predictions need at least 2 bags"
                         + (" of every class" if classifier else ""))
    splitter = (StratifiedKFold if classifier else KFold)(cv, shuffle=True, random_state=random_state)
    if not classifier:
        return cross_val_predict(clone(estimator), list(X), y, cv=splitter).astype(np.float64)
    if hasattr(estimator, "predict_proba"):
        return cross_val_predict(clone(estimator), list(X), y, cv=splitter, method="predict_proba")
    # No probabilities: the predicted class with certainty.
    predicted = cross_val_predict(clone(estimator), list(X), y, cv=splitter)
    return (predicted[:, None] == estimator.classes_[None, :]).astype(np.float64)


def neighbour_difficulty(neighbour_errors: np.ndarray, similarities: np.ndarray,
                         floor: float) -> np.ndarray:
    """A difficulty per query: its nearest training bags' mean absolute out-of-fold error,
    weighted by similarity, plus ``floor``; raised where even the nearest is far.

    Parameters
    ----------
    neighbour_errors : ndarray of shape (n_queries, k)
        Absolute out-of-fold errors of each query's ``k`` nearest training bags.
    similarities : ndarray of shape (n_queries, k)
        Their similarities to the query, in [0, 1], the nearest first.
    floor : float
        Added to every difficulty (keeps it positive; e.g. a tenth of the median error).

    Returns
    -------
    ndarray of shape (n_queries,)
        ``(floor + weighted mean error) / (0.5 + 0.5 * nearest similarity)``: a query whose
        nearest training bag is unlike it gets up to twice its neighbours' error.
    """
    weights = np.clip(similarities, 1e-3, None)
    local = (weights * neighbour_errors).sum(axis=1) / weights.sum(axis=1)
    return (floor + local) / (0.5 + 0.5 * np.clip(similarities[:, 0], 0.0, 1.0))


def _quantile(scores: np.ndarray, level: float) -> float:
    """The conformal quantile: the ``ceil((n + 1) level)``-th smallest of ``scores`` (inf
    when that exceeds ``n``: too few calibration values for the level)."""
    rank = math.ceil((len(scores) + 1) * level)
    return float(scores[rank - 1]) if rank <= len(scores) else math.inf


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) \
            or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number between 0 and 1 (e.g. 0.9), got {level!r}")
    return float(level)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(f"calibration: {message}")


def _scores_from(value: object, max_scores: int | None, what: str) -> np.ndarray:
    """A saved list of calibration scores, checked: finite, nonnegative, sorted, sized."""
    limit = MAX_SCORES if max_scores is None else min(max_scores, MAX_SCORES)
    _check(isinstance(value, list) and 0 < len(value) <= limit,
           f"{what}: a list of 1 to {limit} numbers")
    _check(all(map(is_finite_number, value)), f"{what}: finite numbers only")
    scores = np.asarray([float(v) for v in value], dtype=np.float64)
    _check(bool(np.all(np.isfinite(scores)) and scores.min() >= 0 and np.all(np.diff(scores) >= 0)),
           f"{what}: finite, nonnegative and sorted")
    return scores


class IntervalCalibrator:
    """Normalised conformal intervals from out-of-fold residuals (see the module docstring).

    Attributes
    ----------
    scores_ : ndarray of shape (n_train,)
        Sorted ``|y - out_of_fold| / difficulty`` of the training bags.
    group_scores_ : list of ndarray or None
        Mondrian: per group, the sorted scores of its bags (None without groups).
    """

    def fit(self, residuals, difficulty=None, groups=None) -> IntervalCalibrator:
        """``residuals``: out-of-fold ``y - prediction``; ``difficulty``: positive, per bag
        (default: 1, plain conformal intervals of one width); ``groups``: optional integer
        group per bag, ``0 .. n_groups - 1``, each group holding at least one bag."""
        residuals = np.abs(np.asarray(residuals, dtype=np.float64))
        difficulty = np.ones_like(residuals) if difficulty is None else np.asarray(difficulty, float)
        if residuals.ndim != 1 or not len(residuals) or difficulty.shape != residuals.shape:
            raise ValueError("residuals and difficulty must be 1-D, of the same nonzero length")
        if not (np.all(np.isfinite(residuals)) and np.all(np.isfinite(difficulty))
                and np.all(difficulty > 0)):
            raise ValueError("residuals must be finite and difficulties positive and finite")
        scores = residuals / difficulty
        self.scores_ = np.sort(scores)
        self.group_scores_ = None
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != scores.shape or groups.dtype.kind not in "iu" or groups.min() < 0:
                raise ValueError("groups must be nonnegative integers, one per residual")
            self.group_scores_ = [np.sort(scores[groups == g]) for g in range(groups.max() + 1)]
            if any(len(g) == 0 for g in self.group_scores_) or len(self.group_scores_) > MAX_GROUPS:
                raise ValueError(f"groups must number 1 to {MAX_GROUPS}, each with a residual")
        return self

    def half_width(self, level: float, difficulty=None, groups=None) -> np.ndarray | float:
        """Half the interval's width at ``level`` (per query where ``difficulty`` is given;
        ``groups``: each query's Mondrian group, as at fit). A group with too few scores for
        the level (an infinite quantile) takes the quantile of all scores."""
        level = _check_level(level)
        q = _quantile(self.scores_, level)
        if groups is not None and self.group_scores_ is not None:
            per_group = np.array([_quantile(s, level) for s in self.group_scores_])
            q = np.where(np.isfinite(per_group), per_group, q)[np.asarray(groups, dtype=int)]
        return q if difficulty is None else q * np.asarray(difficulty, dtype=np.float64)

    def interval(self, predictions, level: float = 0.9, difficulty=None, groups=None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds at ``level`` around ``predictions``."""
        predictions = np.asarray(predictions, dtype=np.float64)
        half = self.half_width(level, np.ones_like(predictions) if difficulty is None else difficulty,
                               groups)
        return predictions - half, predictions + half

    def to_dict(self) -> dict:
        state = {"scores": self.scores_.tolist()}
        if self.group_scores_ is not None:
            state["groups"] = [s.tolist() for s in self.group_scores_]
        return state

    @classmethod
    def from_dict(cls, state: object, max_scores: int | None = None) -> IntervalCalibrator:
        """Rebuild from :meth:`to_dict` output (untrusted), at most ``max_scores`` scores."""
        _check(isinstance(state, dict) and set(state) in ({"scores"}, {"scores", "groups"}),
               "interval state keys")
        calibrator = cls()
        calibrator.scores_ = _scores_from(state["scores"], max_scores, "interval scores")
        calibrator.group_scores_ = None
        if "groups" in state:
            lists = state["groups"]
            _check(isinstance(lists, list) and 1 <= len(lists) <= MAX_GROUPS,
                   f"interval groups: a list of 1 to {MAX_GROUPS} lists")
            calibrator.group_scores_ = [_scores_from(v, max_scores, "interval group scores")
                                        for v in lists]
            _check(sum(map(len, calibrator.group_scores_)) == len(calibrator.scores_)
                   and np.array_equal(np.sort(np.concatenate(calibrator.group_scores_)),
                                      calibrator.scores_),
                   "interval groups: together they must hold the scores, each once")
        return calibrator


class SetCalibrator:
    """Class-conditional conformal prediction sets from out-of-fold class probabilities.

    Attributes
    ----------
    scores_ : list of ndarray
        Per class (in ``classes_`` order), the sorted ``1 - p(class)`` of its training bags.
    """

    def fit(self, probabilities, codes) -> SetCalibrator:
        """``probabilities``: out-of-fold, shape (n_bags, n_classes); ``codes``: each bag's
        class index."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        codes = np.asarray(codes)
        if probabilities.ndim != 2 or len(codes) != len(probabilities):
            raise ValueError("probabilities must be (n_bags, n_classes), one code per bag")
        scores = 1.0 - probabilities[np.arange(len(codes)), codes]
        self.scores_ = [np.sort(np.clip(scores[codes == c], 0.0, 1.0))
                        for c in range(probabilities.shape[1])]
        if any(len(s) == 0 for s in self.scores_):
            raise ValueError("every class needs at least one calibration bag")
        return self

    def predict_sets(self, probabilities, level: float = 0.9) -> np.ndarray:
        """Boolean (n_queries, n_classes): class ``c`` is in a query's set when ``1 - p_c``
        is within class ``c``'s conformal quantile at ``level``."""
        level = _check_level(level)
        thresholds = np.array([_quantile(s, level) for s in self.scores_])
        return (1.0 - np.asarray(probabilities, dtype=np.float64)) <= thresholds[None, :]

    def to_dict(self) -> dict:
        return {"scores": [s.tolist() for s in self.scores_]}

    @classmethod
    def from_dict(cls, state: object, n_classes: int, max_scores: int | None = None
                  ) -> SetCalibrator:
        """Rebuild from :meth:`to_dict` output (untrusted), one list per class."""
        _check(isinstance(state, dict) and set(state) == {"scores"}, "set state keys")
        lists = state["scores"]
        _check(isinstance(lists, list) and len(lists) == n_classes,
               f"set scores: one list per class ({n_classes})")
        calibrator = cls()
        calibrator.scores_ = [_scores_from(v, max_scores, "set scores") for v in lists]
        _check(max_scores is None or sum(map(len, calibrator.scores_)) <= max_scores,
               f"set scores: more than the {max_scores} training bags")
        _check(all(s.max() <= 1.0 for s in calibrator.scores_), "set scores above 1")
        return calibrator
