import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline

from conftest import FAST
from milearn_core import BagStandardScaler, MILClassifier, MILRegressor


def test_clone_and_params():
    model = MILRegressor(pooling="gated_attention", hidden_layer_sizes=(8, 4), random_state=3)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    copy.set_params(pooling="hopfield", learning_rate=0.01)
    assert copy.pooling == "hopfield" and model.pooling == "gated_attention"
    assert not hasattr(model, "network_")


def test_fitted_state_lives_in_trailing_underscore_attributes(mean_bags):
    model = MILRegressor(**FAST).fit(mean_bags.bags, mean_bags.y)
    assert model.n_features_in_ == 64
    assert hasattr(model, "network_") and hasattr(model, "history_")
    assert clone(model).get_params() == model.get_params()


def test_pipeline_grid_search_and_cross_val(or_bags):
    pipe = Pipeline([("scale", BagStandardScaler()), ("mil", MILClassifier(**FAST))])
    search = GridSearchCV(pipe, {"mil__pooling": ["mean", "attention"]}, cv=2)
    search.fit(or_bags.bags, or_bags.y)
    assert search.best_params_["mil__pooling"] in ("mean", "attention")
    assert search.predict(or_bags.bags[:4]).shape == (4,)
    scores = cross_val_score(MILClassifier(**FAST), or_bags.bags, or_bags.y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)


def test_cross_val_regression(mean_bags):
    scores = cross_val_score(MILRegressor(**dict(FAST, max_epochs=60, learning_rate=3e-3)), mean_bags.bags,
                             mean_bags.y, cv=KFold(3, shuffle=True, random_state=0), scoring="r2")
    assert scores.mean() > 0.35
