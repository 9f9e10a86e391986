"""Stepwise hyperparameter search: one parameter at a time, over a grid, in a given order.

:class:`StepwiseSearchCV` is a scikit-learn meta-estimator (like ``GridSearchCV``). Step by step
it tries every value of one parameter, the others held at their best values so far, and keeps
the value of best mean validation score before moving on. A full grid of ``k`` parameters with
``v`` values each costs ``v ** k`` candidates; a stepwise pass costs about ``k * v``.

Reproducible by construction: every candidate fit gets its own seed, derived from the search's
``random_state`` and the candidate's parameters (a hash, not a draw from shared RNG state), so
the same seed gives the same ``best_params_`` and the same refit predictions whatever
``n_jobs`` is and in whatever order the fits finish.

:func:`default_search_space` gives a grid per model family (networks, the additive model, the
bag-kernel model, the bag/instance wrappers, mi-SVM).
"""

from __future__ import annotations

import hashlib
import json
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit
from sklearn.model_selection import check_cv as sklearn_check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from .progress import check_progress, show_progress

__all__ = ["StepwiseSearchCV", "default_search_space", "candidate_seed"]

Steps = list[tuple[str, list]]


# -- default grids ---------------------------------------------------------------------------

_NETWORK_POOLINGS = {
    "regression": ["instance_mean", "instance_sum", "attention", "gated_attention", "mean", "max"],
    "classification": ["attention", "gated_attention", "instance_max", "instance_mean", "mean",
                       "max", "self_attention"],
}
# Order: structure (pooling), capacity, optimiser, regularisation, then the rest. Widths stop
# at 512: a wider or deeper network only overfits a few hundred molecules (the milearn
# StepwiseHopt chose a 6-layer, 2048-wide network that scored R² -1.65 on fragment bags).
_NETWORK_GRID = [
    ("hidden_layer_sizes", [(256, 128), (128,), (256,), (512, 256), (64,)]),
    ("learning_rate", [1e-3, 3e-4, 3e-3]),
    ("weight_decay", [1e-4, 1e-5, 1e-3, 1e-2]),
    ("dropout", [0.0, 0.1, 0.3]),
    ("instance_dropout", [0.0, 0.1, 0.2]),
    ("batch_size", [32, 16, 64]),
    ("activation", ["relu", "gelu", "tanh"]),
]
_PENALTIES = [1.0, 0.1, 10.0, 100.0]
# Grids of common scikit-learn estimators inside BagWrapper / InstanceWrapper, by class name.
_SKLEARN_GRIDS = {
    "SVR": [("C", _PENALTIES), ("gamma", ["scale", 1e-3, 1e-2, 1e-1]), ("epsilon", [0.1, 0.01, 0.3])],
    "SVC": [("C", _PENALTIES), ("gamma", ["scale", 1e-3, 1e-2, 1e-1])],
    "Ridge": [("alpha", _PENALTIES)],
    "LogisticRegression": [("C", _PENALTIES)],
    "RandomForestRegressor": [("max_features", [1.0, "sqrt", 0.3]), ("min_samples_leaf", [1, 3, 10])],
    "RandomForestClassifier": [("max_features", ["sqrt", 0.3, 1.0]), ("min_samples_leaf", [1, 3, 10])],
    "KNeighborsRegressor": [("n_neighbors", [5, 3, 10, 20]), ("weights", ["uniform", "distance"])],
    "KNeighborsClassifier": [("n_neighbors", [5, 3, 10, 20]), ("weights", ["uniform", "distance"])],
}


def _with_current(estimator, name: str, options: Sequence) -> list:
    """``options`` with the estimator's current value first (kept when nothing beats it)."""
    values = [estimator.get_params()[name], *options]
    out: list = []
    for v in values:
        if not any(_same(v, w) for w in out):
            out.append(v)
    return out


def _same(a, b) -> bool:
    return type(a) is type(b) and _plain(a) == _plain(b)


def _grid(estimator, pairs) -> Steps:
    return [(name, _with_current(estimator, name, options)) for name, options in pairs]


def _inner_grid(inner, prefix: str) -> Steps:
    if inner is None:
        return []
    pairs = _SKLEARN_GRIDS.get(type(inner).__name__, [])
    return [(f"{prefix}{name}", values) for name, values in _grid(inner, pairs)]


def default_search_space(estimator) -> Steps:
    """An ordered list of ``(parameter, values)`` steps for ``estimator``'s model family.

    Each step's values start with the estimator's current value, so a step changes the value
    only when another one scores better.

    - ``MILRegressor`` / ``MILClassifier``: pooling, hidden sizes, learning rate, weight decay,
      dropout, instance dropout, batch size, activation (23 candidates at most).
    - ``AdditiveRegressor``: a wider penalty range (it picks its own penalty by internal CV) and
      the intercept.
    - ``BagWrapper`` / ``InstanceWrapper``: the bag pooling (instance aggregate), then the
      wrapped estimator's own grid where it is a common scikit-learn model (SVR/SVC: ``C``,
      ``gamma``; ridge/logistic: the penalty; random forest; k-NN).
    - ``MISVM``: variant, ``C``, ``gamma``, class weight.
    - ``BagKernelRegressor``: each kernel on its own and all of them (it otherwise picks one by
      exact leave-one-out error), then a wider penalty range.
    - A ``Pipeline``: the grid of its last step, with the step's prefix.

    Parameters
    ----------
    estimator : estimator

    Returns
    -------
    list of (str, list)

    Raises
    ------
    ValueError
        For an estimator with no default grid: pass ``steps=`` yourself.
    """
    from .estimators import (
        MISVM,
        AdditiveRegressor,
        BagKernelRegressor,
        BagWrapper,
        InstanceWrapper,
        MILClassifier,
        MILRegressor,
    )
    from .estimators.kernels import KERNELS

    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return [(f"{name}__{param}", values) for param, values in default_search_space(last)]
    if isinstance(estimator, (MILRegressor, MILClassifier)):
        task = "classification" if isinstance(estimator, MILClassifier) else "regression"
        return _grid(estimator, [("pooling", _NETWORK_POOLINGS[task]), *_NETWORK_GRID])
    if isinstance(estimator, AdditiveRegressor):
        wide = tuple(float(a) for a in np.logspace(-4, 5, 19))
        return _grid(estimator, [("alphas", [wide]), ("fit_intercept", [True, False])])
    if isinstance(estimator, BagWrapper):
        return [*_grid(estimator, [("pool", ["mean", "max", "mean_std", "extreme", "min"])]),
                *_inner_grid(estimator.estimator, "estimator__")]
    if isinstance(estimator, InstanceWrapper):
        return [*_grid(estimator, [("aggregate", ["mean", "max"])]),
                *_inner_grid(estimator.estimator, "estimator__")]
    if isinstance(estimator, MISVM):
        return _grid(estimator, [("variant", ["mi", "MI"]), ("C", _PENALTIES),
                                 ("gamma", ["scale", 1e-2, 1e-1, 1.0]),
                                 ("class_weight", [None, "balanced"])])
    if isinstance(estimator, BagKernelRegressor):
        kernels = [(name,) for name in KERNELS] + [tuple(KERNELS)]
        wide = tuple(float(a) for a in np.logspace(-8, 4, 25))
        return _grid(estimator, [("kernels", kernels), ("alphas", [wide])])
    raise ValueError(f"no default search space for {type(estimator).__name__}; pass "
                     f"steps=[(parameter, values), ...]")


# -- seeds -----------------------------------------------------------------------------------

def _plain(value):
    """A JSON-able stand-in for a parameter value (NumPy scalars and arrays as Python values)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def candidate_seed(random_state: int, params: Mapping[str, Any]) -> int:
    """The seed of one candidate: a hash of ``random_state`` and the candidate's parameters.

    Parameters
    ----------
    random_state : int
    params : mapping of parameter name to value

    Returns
    -------
    int in [0, 2**31 - 1)
    """
    payload = json.dumps([int(random_state), sorted((k, _plain(v)) for k, v in params.items())])
    digest = hashlib.sha256(payload.encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


def _seed_params(estimator, searched: set[str], seed: int | None) -> dict:
    """Every ``random_state`` of ``estimator`` (nested ones too) set to ``seed``."""
    if seed is None:
        return {}
    return {name: seed for name in estimator.get_params(deep=True)
            if (name == "random_state" or name.endswith("__random_state")) and name not in searched}


# -- one fit ---------------------------------------------------------------------------------

def _fit_and_score(estimator, params: dict, X, y, train, test, scorer, error_score) -> dict:
    """Fit a clone with ``params`` on ``train``, score it on ``test``; never raises unless
    ``error_score == "raise"``."""
    model = clone(estimator).set_params(**params)
    start = time.perf_counter()
    try:
        model.fit([X[i] for i in train], y[train])
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        score = float(scorer(model, [X[i] for i in test], y[test]))
        return {"score": score, "fit_time": fit_time, "score_time": time.perf_counter() - start,
                "error": None}
    except Exception as exc:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        return {"score": float(error_score), "fit_time": time.perf_counter() - start,
                "score_time": 0.0, "error": f"{type(exc).__name__}: {exc}"}


def _best_has(name: str):
    def check(self) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, name)
        return hasattr(self.estimator, name)
    return check


class StepwiseSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Tune one hyperparameter at a time, in order, keeping the best value before moving on.

    Parameters
    ----------
    estimator : estimator
        Any scikit-learn-style estimator over bags (or over any ``X`` indexable by row).
    steps : list of (str, sequence) or dict, optional
        The parameters in the order they are tuned, each with its values (nested names such
        as ``"estimator__C"`` work). A parameter may appear more than once (a second pass).
        None: :func:`default_search_space` of ``estimator``. A step's values are its only
        candidates: include the current value to keep it as an option (the default grids do).
    scoring : str or callable, optional
        A scikit-learn scorer name or ``scorer(estimator, X, y)``; None: ``estimator.score``.
        Larger is better.
    cv : int or splitter, optional
        Folds over bags: an int (shuffled ``StratifiedKFold`` for classifiers, ``KFold``
        otherwise, seeded by ``random_state``) or any scikit-learn splitter (e.g.
        ``GroupKFold``; pass ``groups`` to :meth:`fit`). None: 5 folds, unless
        ``validation_fraction`` is given.
    validation_fraction : float, optional
        Score on one seeded hold-out of this share of the bags (stratified for classifiers)
        instead of folds: one fit per candidate. Exclusive with ``cv``.
    n_jobs : int, optional
        Parallel fits (joblib); the candidates of a step and their folds run together.
    refit : bool
        Refit the best candidate on all the data (``best_estimator_``; needed for predict).
    random_state : int or None
        Seeds the folds and every candidate fit: each candidate's ``random_state`` parameters
        (nested ones too, unless searched) are set to :func:`candidate_seed` of this value and
        the candidate's parameters. None: folds unseeded and the estimator's own
        ``random_state`` left as it is.
    error_score : float or "raise"
        Score of a fit that raises (NaN: the candidate cannot win, a warning names the error).
    progress : bool or "auto"
        A progress bar (step, value tried, best score so far); "auto": on a terminal or in
        Jupyter only (:func:`milearn_core.progress.show_progress`).
    verbose : int
        1 or more: one line per step with the value kept and its score.
    n_seeds : int or "auto"
        Fits per candidate and split, each from its own seed (:func:`candidate_seed` of the
        candidate and the repeat); a split's score is their mean, so a candidate is not chosen
        for one lucky initialisation (a network on an XOR rule succeeds from some seeds only).
        "auto": 3 for ``MILRegressor`` / ``MILClassifier`` (or a pipeline ending in one), 1
        for the rest. With ``random_state=None`` always 1.

    Attributes
    ----------
    best_params_ : dict
        The chosen value of every searched parameter.
    best_score_ : float
        Mean validation score of the best candidate.
    best_index_ : int
        Its row in ``cv_results_``.
    best_estimator_ : estimator
        A plain (unwrapped) estimator of ``estimator``'s class, refit on all the data with
        ``best_params_`` and its candidate seed (saveable as any estimator of that class).
    cv_results_ : dict of arrays
        One entry per distinct candidate, in the order tried: ``params``, ``param_<name>``,
        ``split<k>_test_score``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``mean_fit_time``, ``std_fit_time``, ``mean_score_time``, ``std_score_time``, ``step``
        (index of the step that first tried it), ``step_param`` and ``seed``.
    path_ : list of dict
        Per step: the parameter, the value kept and its score.
    n_splits_ : int
    n_seeds_ : int
        Fits per candidate and split.
    n_fits_ : int
        Fits made while searching (candidates x folds x seeds; repeated candidates are not
        refit).
    refit_time_ : float
        Seconds of the final refit.
    scorer_ : callable
    """

    def __init__(self, estimator, steps=None, *, scoring=None, cv=None,
                 validation_fraction: float | None = None, n_jobs: int | None = None,
                 refit: bool = True, random_state: int | None = 0, error_score=np.nan,
                 progress="auto", verbose: int = 0, n_seeds="auto"):
        self.estimator = estimator
        self.steps = steps
        self.scoring = scoring
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.refit = refit
        self.random_state = random_state
        self.error_score = error_score
        self.progress = progress
        self.verbose = verbose
        self.n_seeds = n_seeds

    # -- scikit-learn plumbing -------------------------------------------------------------
    @property
    def _estimator_type(self):
        return getattr(self.estimator, "_estimator_type", None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags = inner.input_tags
        tags.target_tags = inner.target_tags
        return tags

    # -- validation ------------------------------------------------------------------------
    def _checked_steps(self) -> Steps:
        steps = default_search_space(self.estimator) if self.steps is None else self.steps
        if isinstance(steps, Mapping):
            steps = list(steps.items())
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or len(steps) == 0:
            raise ValueError(f"steps must be a non-empty list of (parameter, values) pairs, got {steps!r}")
        valid = self.estimator.get_params(deep=True)
        out = []
        for k, step in enumerate(steps):
            if not (isinstance(step, (tuple, list)) and len(step) == 2 and isinstance(step[0], str)):
                raise ValueError(f"step {k}: expected a (parameter name, values) pair, got {step!r}")
            name, values = step
            if name not in valid:
                raise ValueError(f"step {k}: {type(self.estimator).__name__} has no parameter "
                                 f"{name!r}")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)) \
                    or len(values) == 0:
                raise ValueError(f"step {k} ({name}): values must be a non-empty list, got {values!r}")
            out.append((name, list(values)))
        return out

    def _check_params(self) -> None:
        if self.random_state is not None and (isinstance(self.random_state, bool) or not isinstance(
                self.random_state, numbers.Integral)):
            raise ValueError(f"random_state must be an int or None (a shared RandomState would make "
                             f"fits depend on their order), got {self.random_state!r}")
        if self.validation_fraction is not None:
            if self.cv is not None:
                raise ValueError("give cv or validation_fraction, not both")
            if not isinstance(self.validation_fraction, numbers.Real) or not 0 < self.validation_fraction < 1:
                raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.refit, bool):
            raise ValueError(f"refit must be True or False, got {self.refit!r}")
        check_progress(self.progress)
        if self.n_seeds != "auto" and (isinstance(self.n_seeds, bool) or not isinstance(
                self.n_seeds, numbers.Integral) or self.n_seeds < 1):
            raise ValueError(f"n_seeds must be 'auto' or a positive int, got {self.n_seeds!r}")
        if isinstance(self.error_score, str) and self.error_score != "raise":
            raise ValueError(f"error_score must be a number or 'raise', got {self.error_score!r}")

    def _splitter(self):
        classifier = is_classifier(self.estimator)
        seed = self.random_state
        if self.validation_fraction is not None:
            split = StratifiedShuffleSplit if classifier else ShuffleSplit
            return split(n_splits=1, test_size=self.validation_fraction, random_state=seed)
        cv = 5 if self.cv is None else self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be at least 2 folds, got {cv}")
            split = StratifiedKFold if classifier else KFold
            return split(n_splits=int(cv), shuffle=True, random_state=seed)
        return sklearn_check_cv(cv, classifier=classifier)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Run the stepwise search on bags ``X`` and labels ``y``, then refit the best candidate.

        Parameters
        ----------
        X : sequence of bags (2-D arrays, dense or sparse)
        y : array-like of shape (n_bags,) or (n_bags, n_outputs)
        groups : array-like of shape (n_bags,), optional
            Group labels for a grouped splitter.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad settings, an unknown parameter in ``steps``, mismatched lengths, or every
            candidate failing.
        """
        self._check_params()
        steps = self._checked_steps()
        for stale in ("best_estimator_", "refit_time_"):  # from an earlier fit with refit=True
            self.__dict__.pop(stale, None)
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__") or not hasattr(X, "__getitem__"):
            raise ValueError(f"X must be a sequence of bags, got {type(X).__name__}")
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"{len(X)} bags but {len(y)} labels")
        splits = list(self._splitter().split(np.zeros((len(y), 1)), y, groups))
        self.n_splits_ = len(splits)
        self.n_seeds_ = self._n_seeds()
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        searched = {name for name, _ in steps}
        current = {name: self.estimator.get_params(deep=True)[name] for name in searched}
        records: list[dict] = []
        index: dict[str, int] = {}  # candidate key -> its row in records
        self.path_ = []
        bar = tqdm(total=sum(len(v) for _, v in steps), desc="stepwise search",
                   disable=not show_progress(self.progress), leave=False)
        try:
            with Parallel(n_jobs=self.n_jobs, return_as="generator") as parallel:
                for k, (name, values) in enumerate(steps):
                    candidates = [{**current, name: v} for v in values]
                    fresh = {self._key(c): c for c in candidates if self._key(c) not in index}
                    self._evaluate(parallel, list(fresh.values()), k, name, X, y, splits, records,
                                   index, searched, bar)
                    bar.update(len(candidates) - len(fresh))  # repeated candidates: not refit
                    incumbent = index.get(self._key(current))
                    row = self._choose([index[self._key(c)] for c in candidates], records, incumbent)
                    current = dict(records[row]["params"])
                    self.path_.append({"param": name, "value": current[name],
                                       "score": records[row]["mean"]})
                    if self.verbose:
                        (print if bar.disable else tqdm.write)(
                            f"step {k + 1}/{len(steps)} {name}: keep {current[name]!r} "
                            f"(score {records[row]['mean']:.4f})")
        finally:
            bar.close()
        self._set_results(records, len(splits), index[self._key(current)])
        if not np.isfinite(self.best_score_):
            errors = "; ".join(sorted({e for r in records for e in r["errors"]}))[:2000]
            raise ValueError(f"every candidate failed to fit or score: {errors}")
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(
                **self.best_params_, **self._seeds(self.best_params_, searched))
            start = time.perf_counter()
            self.best_estimator_.fit(X, y)
            self.refit_time_ = time.perf_counter() - start
        return self

    @staticmethod
    def _key(params: dict) -> str:
        return json.dumps(sorted((k, _plain(v)) for k, v in params.items()))

    def _seed(self, params: dict, repeat: int = 0) -> int | None:
        """Seed of a candidate's ``repeat``-th fit per split (the first: :func:`candidate_seed`)."""
        if self.random_state is None:
            return None
        return candidate_seed(self.random_state, params if repeat == 0
                              else {**params, "__repeat__": repeat})

    def _seeds(self, params: dict, searched: set[str], repeat: int = 0) -> dict:
        return _seed_params(self.estimator, searched, self._seed(params, repeat))

    def _n_seeds(self) -> int:
        """Fits per candidate and split: ``n_seeds``, "auto" giving 3 for networks, else 1."""
        if self.random_state is None:
            return 1
        if self.n_seeds != "auto":
            return int(self.n_seeds)
        from .estimators import MILClassifier, MILRegressor

        last = self.estimator.steps[-1][1] if isinstance(self.estimator, Pipeline) else self.estimator
        return 3 if isinstance(last, (MILRegressor, MILClassifier)) else 1

    def _evaluate(self, parallel, candidates, step, name, X, y, splits, records, index, searched, bar):
        """Fit and score ``candidates`` on every split (in parallel), ``n_seeds`` seeds each;
        append their records (a split's score: the mean over its seeds)."""
        repeats = self.n_seeds_
        jobs = (delayed(_fit_and_score)(self.estimator, {**c, **self._seeds(c, searched, r)}, X,
                                        y, train, test, self.scorer_, self.error_score)
                for c in candidates for train, test in splits for r in range(repeats))
        results = iter(parallel(jobs))
        for cand in candidates:  # results come in submission order, a candidate's fits together
            fits = [next(results) for _ in range(len(splits) * repeats)]
            scores = np.array([f["score"] for f in fits], dtype=float).reshape(len(splits), repeats)
            scores = scores.mean(axis=1)
            errors = [f["error"] for f in fits if f["error"]]
            if errors:
                warnings.warn(f"candidate {cand}: {len(errors)} of {len(fits)} fits failed "
                              f"({errors[0]}); score set to {self.error_score}", UserWarning,
                              stacklevel=4)
            index[self._key(cand)] = len(records)
            records.append({"params": cand, "scores": scores, "step": step, "step_param": name,
                            "mean": float(scores.mean()) if np.isfinite(scores).all() else np.nan,
                            "errors": errors, "seed": self._seed(cand),
                            "fit_time": np.array([f["fit_time"] for f in fits]),
                            "score_time": np.array([f["score_time"] for f in fits])})
            best = np.nanmax([r["mean"] for r in records]) if any(
                np.isfinite(r["mean"]) for r in records) else np.nan
            bar.set_postfix_str(f"step {step + 1} {name}={_short(cand[name])} best {best:.4f}")
            bar.update(1)

    @staticmethod
    def _choose(rows: list[int], records: list[dict], incumbent: int | None) -> int:
        """Best row of a step: highest finite mean; the incumbent wins ties, then grid order."""
        means = np.array([records[r]["mean"] for r in rows])
        finite = np.isfinite(means)
        if not finite.any():
            return incumbent if incumbent is not None else rows[0]
        top = means[finite].max()
        if incumbent in rows and records[incumbent]["mean"] == top:
            return incumbent
        return rows[int(np.flatnonzero(finite & (means == top))[0])]

    def _set_results(self, records: list[dict], n_splits: int, best_row: int) -> None:
        n = len(records)
        results: dict[str, Any] = {"params": [r["params"] for r in records]}
        for name in records[0]["params"]:
            column = np.empty(n, dtype=object)
            column[:] = [r["params"][name] for r in records]
            results[f"param_{name}"] = column
        scores = np.vstack([r["scores"] for r in records])
        for k in range(n_splits):
            results[f"split{k}_test_score"] = scores[:, k]
        means = np.array([r["mean"] for r in records])
        results["mean_test_score"] = means
        results["std_test_score"] = scores.std(axis=1)
        ranked = np.where(np.isfinite(means), means, -np.inf)
        order = np.argsort(-ranked, kind="stable")
        rank = np.empty(n, dtype=np.int32)
        rank[order] = np.arange(1, n + 1)
        results["rank_test_score"] = rank
        for what in ("fit_time", "score_time"):
            times = np.vstack([r[what] for r in records])
            results[f"mean_{what}"] = times.mean(axis=1)
            results[f"std_{what}"] = times.std(axis=1)
        results["step"] = np.array([r["step"] for r in records])
        step_param = np.empty(n, dtype=object)
        step_param[:] = [r["step_param"] for r in records]
        results["step_param"] = step_param
        seeds = np.empty(n, dtype=object)
        seeds[:] = [r["seed"] for r in records]
        results["seed"] = seeds
        self.cv_results_ = results
        self.n_fits_ = n * n_splits * self.n_seeds_
        self.best_index_ = best_row
        self.best_params_ = dict(records[best_row]["params"])
        self.best_score_ = float(means[self.best_index_])

    # -- delegation to the refit best estimator --------------------------------------------
    def _fitted(self):
        check_is_fitted(self, "best_estimator_",
                        msg="This StepwiseSearchCV has no refit estimator: fit it (with refit=True) first")
        return self.best_estimator_

    @available_if(_best_has("predict"))
    def predict(self, X):
        """``best_estimator_.predict``."""
        return self._fitted().predict(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X):
        """``best_estimator_.predict_proba``."""
        return self._fitted().predict_proba(X)

    @available_if(_best_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """``best_estimator_.predict_log_proba``."""
        return self._fitted().predict_log_proba(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X):
        """``best_estimator_.decision_function``."""
        return self._fitted().decision_function(X)

    @available_if(_best_has("transform"))
    def transform(self, X):
        """``best_estimator_.transform``."""
        return self._fitted().transform(X)

    @available_if(_best_has("instance_weights"))
    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """``best_estimator_.instance_weights``: one 1-D array per bag, each summing to 1."""
        return self._fitted().instance_weights(X, method=method)

    @available_if(_best_has("instance_contributions"))
    def instance_contributions(self, X) -> list[np.ndarray]:
        """``best_estimator_.instance_contributions``: signed per-instance contributions."""
        return self._fitted().instance_contributions(X)

    def score(self, X, y) -> float:
        """The search's scorer (``scoring``) on the refit best estimator."""
        return float(self.scorer_(self._fitted(), X, y))

    @property
    def classes_(self) -> np.ndarray:
        """Class labels of the best estimator (classifiers)."""
        return self._fitted().classes_

    @property
    def n_features_in_(self) -> int:
        """Features per instance seen by the best estimator."""
        return self._fitted().n_features_in_


def _short(value) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 24 else text[:21] + "..."
