"""Estimator factories shared by the robustness tests: every class, tiny settings."""

from sklearn.linear_model import LogisticRegression, Ridge

from milearn_core import (
    MISVM,
    AdditiveRegressor,
    BagError,
    BagWrapper,
    InstanceWrapper,
    MILClassifier,
    MILRegressor,
)
from milearn_core.training import TrainingDivergedError

TINY = dict(hidden_layer_sizes=(4,), max_epochs=2, batch_size=4, early_stopping=False, random_state=0)

REGRESSORS = {
    "MILRegressor": lambda: MILRegressor(**TINY),
    "MILRegressor-attention": lambda: MILRegressor(pooling="attention", **TINY),
    "AdditiveRegressor": lambda: AdditiveRegressor(cv=2),
    "BagWrapper-Ridge": lambda: BagWrapper(Ridge(), pool="mean_std"),
    "InstanceWrapper-Ridge": lambda: InstanceWrapper(Ridge()),
}
CLASSIFIERS = {
    "MILClassifier": lambda: MILClassifier(**TINY),
    "BagWrapper-Logistic": lambda: BagWrapper(LogisticRegression(), pool="extreme"),
    "InstanceWrapper-Logistic": lambda: InstanceWrapper(LogisticRegression(), aggregate="max"),
    "MISVM-mi": lambda: MISVM(max_iter=3),
    "MISVM-MI": lambda: MISVM(variant="MI", max_iter=3),
}
ALL = {**REGRESSORS, **CLASSIFIERS}

# What bad input may raise: our own errors, each naming the bag or the training step.
DOCUMENTED = (BagError, TrainingDivergedError)
