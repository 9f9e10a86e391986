"""Classical MIL: bag-embedding and instance wrappers around scikit-learn estimators, mi-SVM."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_classifier
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from ..bags import FLOAT64_MAX_ABS, BagError, check_bag_targets, check_bags, check_finite_output, pack_bags
from ..kid import leave_one_out_weights, normalize_per_bag
from ..nn.segment import segment_max, segment_mean
from ..persist import PersistMixin
from ..safe_state import StateError, check_int, register_state

__all__ = ["BAG_POOLS", "BagWrapper", "InstanceWrapper", "MISVM", "embed_bags"]


def _stats(bags: list[np.ndarray], *funcs) -> np.ndarray:
    return np.stack([np.concatenate([f(b, axis=0) for f in funcs]) for b in bags])


BAG_POOLS = {
    "mean": lambda bags: _stats(bags, np.mean),
    "max": lambda bags: _stats(bags, np.max),
    "min": lambda bags: _stats(bags, np.min),
    "mean_std": lambda bags: _stats(bags, np.mean, np.std),
    "extreme": lambda bags: _stats(bags, np.min, np.max),
}


def embed_bags(bags: list[np.ndarray], pool: str) -> np.ndarray:
    """One fixed-length vector per bag (see ``BAG_POOLS``)."""
    if pool not in BAG_POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of {sorted(BAG_POOLS)}")
    return BAG_POOLS[pool](bags)


def _float64_bags(X, n_features: int | None = None) -> list[np.ndarray]:
    """Dense float64 bags of magnitudes the wrapped estimators' arithmetic can take."""
    return check_bags(X, n_features, np.float64, max_abs=FLOAT64_MAX_ABS)


class _DelegatingMIL(PersistMixin, MetaEstimatorMixin, BaseEstimator):
    """Wrapper of a scikit-learn estimator; classifier or regressor follows the estimator."""

    @property
    def _estimator_type(self):
        return getattr(self.estimator, "_estimator_type", None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        return tags

    @property
    def classes_(self):
        return self.estimator_.classes_

    def _check_fit_input(self, X, y) -> tuple[list[np.ndarray], np.ndarray]:
        bags = _float64_bags(X)
        task = "classification" if is_classifier(self.estimator) else "regression"
        return bags, check_bag_targets(y, len(bags), task)

    def score(self, X, y):
        """Accuracy for classifiers, R² for regressors."""
        from sklearn.metrics import accuracy_score, r2_score

        metric = accuracy_score if is_classifier(self.estimator) else r2_score
        return metric(y, self.predict(X))

    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Instance weights per bag (leave-one-instance-out attribution), each summing to 1."""
        check_is_fitted(self, "estimator_")
        bags = _float64_bags(X, self.n_features_in_)
        score = self.predict_proba if is_classifier(self.estimator) else self.predict
        return leave_one_out_weights(score, bags)


def _check_wrapper(model) -> None:
    """The inner estimator takes the features the pooling makes, and is of the given class."""
    n_features = check_int(model.n_features_in_, "n_features_in_", 1)
    options = BAG_POOLS if hasattr(model, "pool") else _AGGREGATES
    choice = getattr(model, "pool", getattr(model, "aggregate", None))
    if choice not in options:
        raise StateError(f"unknown pool/aggregate {choice!r}")
    width = 2 * n_features if choice in ("mean_std", "extreme") else n_features
    inner = getattr(model.estimator_, "n_features_in_", width)
    if inner != width:
        raise StateError(f"inner estimator takes {inner} features, expected {width}")
    if type(model.estimator_) is not type(model.estimator):
        raise StateError("fitted estimator_ is not of the estimator's class")


_WRAPPER_FIELDS = ("estimator_", "n_features_in_")


@register_state("milearn_core.BagWrapper", check=_check_wrapper, fields=_WRAPPER_FIELDS)
class BagWrapper(_DelegatingMIL):
    """Embed each bag as one vector (mean/max/min/mean_std/extreme), then any estimator.

    Parameters
    ----------
    estimator : scikit-learn estimator
    pool : str, default="mean"
    """

    def __init__(self, estimator=None, pool: str = "mean"):
        self.estimator = estimator
        self.pool = pool

    def fit(self, X, y):
        bags, y = self._check_fit_input(X, y)
        self.n_features_in_ = bags[0].shape[1]
        self.estimator_ = clone(self.estimator).fit(embed_bags(bags, self.pool), y)
        return self

    def transform(self, X) -> np.ndarray:
        """The bag embeddings the estimator sees."""
        return embed_bags(_float64_bags(X, getattr(self, "n_features_in_", None)), self.pool)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return check_finite_output(self.estimator_.predict(self.transform(X)))

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return check_finite_output(self.estimator_.predict_proba(self.transform(X)), "probability")


_AGGREGATES = {"mean": segment_mean, "max": segment_max}


@register_state("milearn_core.InstanceWrapper", check=_check_wrapper, fields=_WRAPPER_FIELDS)
class InstanceWrapper(_DelegatingMIL):
    """Instances inherit their bag's label; instance predictions are pooled per bag.

    Parameters
    ----------
    estimator : scikit-learn estimator
    aggregate : {"mean", "max"}
        How instance predictions (probabilities for classifiers) become a bag prediction.
    """

    def __init__(self, estimator=None, aggregate: str = "mean"):
        self.estimator = estimator
        self.aggregate = aggregate

    def fit(self, X, y):
        if self.aggregate not in _AGGREGATES:
            raise ValueError(f"aggregate must be one of {sorted(_AGGREGATES)}, got {self.aggregate!r}")
        bags, y = self._check_fit_input(X, y)
        packed = pack_bags(bags)
        self.n_features_in_ = bags[0].shape[1]
        self.estimator_ = clone(self.estimator).fit(packed.instances, y[packed.bag_index])
        return self

    def _instance_scores(self, X):
        check_is_fitted(self, "estimator_")
        packed = pack_bags(_float64_bags(X, self.n_features_in_))
        if is_classifier(self.estimator):
            scores = self.estimator_.predict_proba(packed.instances)
        else:
            scores = np.asarray(self.estimator_.predict(packed.instances)).reshape(
                len(packed.instances), -1)
        return scores, packed

    def _pool(self, scores, packed):
        import torch

        pooled = _AGGREGATES[self.aggregate](
            torch.as_tensor(scores), torch.as_tensor(packed.bag_index), packed.n_bags)
        return pooled.numpy()

    def predict_proba(self, X) -> np.ndarray:
        scores, packed = self._instance_scores(X)
        pooled = self._pool(scores, packed)
        return check_finite_output(pooled / pooled.sum(axis=1, keepdims=True), "probability")

    def predict(self, X) -> np.ndarray:
        if is_classifier(self.estimator):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        scores, packed = self._instance_scores(X)
        pooled = check_finite_output(self._pool(scores, packed))
        return pooled[:, 0] if pooled.shape[1] == 1 else pooled

    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Native weights: each instance's probability of the bag's predicted class
        (classifiers) or its absolute predicted value (regressors); ``method="loo"`` for
        leave-one-instance-out attribution."""
        if method == "loo":
            return super().instance_weights(X)
        scores, packed = self._instance_scores(X)
        if is_classifier(self.estimator):
            predicted = self._pool(scores, packed).argmax(axis=1)[packed.bag_index]
            weights = scores[np.arange(len(scores)), predicted]
        else:
            weights = np.abs(scores).sum(axis=1)
        return normalize_per_bag(packed.split(weights))


def _check_misvm(model) -> None:
    if type(model.svc_) is not SVC or model.svc_.n_features_in_ != model.n_features_in_:
        raise StateError("svc_ does not match the model")
    if len(model.classes_) != 2:
        raise StateError("MISVM is binary")


@register_state("milearn_core.MISVM", check=_check_misvm,
                fields=("classes_", "n_features_in_", "n_iter_", "svc_"))
class MISVM(PersistMixin, ClassifierMixin, BaseEstimator):
    """mi-SVM and MI-SVM (Andrews, Tsochantaridis & Hofmann, 2002) on scikit-learn's SVC.

    Binary classification. ``variant="mi"`` relabels the instances of positive bags each round
    (every positive bag keeps at least one positive instance); ``variant="MI"`` trains on one
    witness (the highest-scoring instance) per positive bag and every negative instance.
    A bag's decision value is the largest decision value of its instances.

    Parameters
    ----------
    variant : {"mi", "MI"}
    C, kernel, gamma, class_weight : SVC parameters
    max_iter : int
        Rounds of relabelling; stops earlier when labels (witnesses) no longer change.
    positive_class : label, optional
        The label of positive bags (those holding a witness). Default: the larger of the two
        labels, as in scikit-learn's binary convention.

    Attributes
    ----------
    classes_ : ndarray
        ``[negative, positive]``.
    """

    def __init__(self, variant: str = "mi", C: float = 1.0, kernel: str = "rbf",
                 gamma="scale", class_weight=None, max_iter: int = 20, positive_class=None):
        self.variant = variant
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.positive_class = positive_class

    def _svc(self):
        return SVC(C=self.C, kernel=self.kernel, gamma=self.gamma, class_weight=self.class_weight)

    def fit(self, X, y):
        if self.variant not in ("mi", "MI"):
            raise ValueError(f"variant must be 'mi' or 'MI', got {self.variant!r}")
        bags = _float64_bags(X)
        y = check_bag_targets(y, len(bags), "classification")
        labels = np.unique(y)
        if len(labels) != 2:
            raise BagError(f"MISVM is binary; y holds {len(labels)} classes ({labels.tolist()})")
        if self.positive_class is not None:
            if self.positive_class not in labels:
                raise ValueError(f"positive_class {self.positive_class!r} is not in y ({labels})")
            labels = np.array([labels[labels != self.positive_class][0], self.positive_class],
                              dtype=labels.dtype)
        self.classes_ = labels
        positive = y == labels[1]
        packed = pack_bags(bags)
        self.n_features_in_ = packed.instances.shape[1]
        in_positive = positive[packed.bag_index]
        fit = self._fit_mi if self.variant == "mi" else self._fit_MI
        self.svc_, self.n_iter_ = fit(packed, in_positive, positive)
        return self

    def _fit_mi(self, packed, in_positive, positive):
        labels = in_positive.astype(int)
        svc, n_iter = None, 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter is returned
            svc = self._svc().fit(packed.instances, labels)
            scores = svc.decision_function(packed.instances)
            new = (in_positive & (scores > 0)).astype(int)
            # Each positive bag keeps its best instance positive.
            best = self._argmax_per_bag(scores, packed)
            new[best[positive]] = 1
            if np.array_equal(new, labels):
                break
            labels = new
        return svc, n_iter

    def _fit_MI(self, packed, in_positive, positive):
        neg_rows = np.flatnonzero(~in_positive)
        pos_bags = np.flatnonzero(positive)
        # Start from the centroid of every positive bag.
        witnesses = np.stack([packed.instances[packed.offsets[b]:packed.offsets[b + 1]].mean(0)
                              for b in pos_bags])
        chosen, svc, n_iter = None, None, 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter is returned
            Xt = np.vstack([packed.instances[neg_rows], witnesses])
            yt = np.r_[np.zeros(len(neg_rows), int), np.ones(len(pos_bags), int)]
            svc = self._svc().fit(Xt, yt)
            best = self._argmax_per_bag(svc.decision_function(packed.instances), packed)[pos_bags]
            if chosen is not None and np.array_equal(best, chosen):
                break
            chosen = best
            witnesses = packed.instances[best]
        return svc, n_iter

    @staticmethod
    def _argmax_per_bag(scores, packed) -> np.ndarray:
        """Row of the highest score in every bag (vectorised)."""
        order = np.lexsort((-scores, packed.bag_index))
        return order[packed.offsets[:-1]]

    def _instance_decisions(self, X):
        check_is_fitted(self, "svc_")
        packed = pack_bags(_float64_bags(X, self.n_features_in_))
        return self.svc_.decision_function(packed.instances), packed

    def decision_function(self, X) -> np.ndarray:
        """Bag decision values: the largest instance decision value of each bag."""
        scores, packed = self._instance_decisions(X)
        return check_finite_output(scores[self._argmax_per_bag(scores, packed)], "decision value")

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Softmax of instance decision values within each bag (top = witness instance)."""
        if method == "loo":
            return leave_one_out_weights(self.decision_function, _float64_bags(X, self.n_features_in_))
        scores, packed = self._instance_decisions(X)
        return [np.exp(s - s.max()) / np.exp(s - s.max()).sum() for s in packed.split(scores)]
