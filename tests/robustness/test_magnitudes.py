"""Huge and tiny feature values: every estimator gives finite predictions or a clear BagError."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from mil_cases import ALL, CLASSIFIERS, DOCUMENTED, REGRESSORS, TINY

from milearn_core import BagError, MILRegressor, check_bags
from milearn_core.training import TrainingDivergedError

NETWORKS = {"MILRegressor", "MILRegressor-attention", "MILClassifier"}


def _data(name, seed=0):
    rng = np.random.RandomState(seed)
    bags = [rng.rand(rng.randint(1, 4), 3) for _ in range(12)]
    y = np.arange(12.0) if name in REGRESSORS else np.array([0, 1] * 6)
    return bags, y


def _check_result(name, model, bags):
    pred = model.predict(bags)
    assert pred.shape == (len(bags),)
    if name in REGRESSORS:
        assert np.isfinite(pred).all()
    else:
        assert set(pred.tolist()) <= {0, 1}


@pytest.mark.parametrize("value", [1e308, -1e308, 1e200, -1e120])
@pytest.mark.parametrize("name", sorted(ALL))
def test_values_beyond_the_model_arithmetic_are_refused_naming_bag_and_instance(name, value):
    bags, y = _data(name)
    bags[4][-1, 1] = value
    limit = "too large for float32 \\(max ~3.4e\\+38\\)" if name in NETWORKS else "beyond the \\+/-1e\\+100"
    where = re.escape(f"bag 4: instance {len(bags[4]) - 1} holds {value:.3g}, ")
    with pytest.raises(BagError, match=where + limit):
        ALL[name]().fit(bags, y)


@pytest.mark.parametrize("value", [1e38, -1e38, 3e38, 1e19, 1e-310, -5e-324, 1e-45])
@pytest.mark.parametrize("name", sorted(ALL))
def test_large_or_denormal_values_give_finite_results_or_a_clear_error(name, value):
    bags, y = _data(name)
    bags[4][0, 1] = value
    try:
        model = ALL[name]().fit(bags, y)
    except DOCUMENTED as exc:
        # Only the networks may diverge, and only on huge values; the message says what to check.
        assert name in NETWORKS and abs(value) >= 1e19, exc
        assert "feature scale" in str(exc) and "learning rate" in str(exc)
        return
    _check_result(name, model, bags)


@pytest.mark.parametrize("name", sorted(ALL))
def test_predicting_on_out_of_range_bags_is_finite_or_names_the_bag(name):
    bags, y = _data(name)
    model = ALL[name]().fit(bags, y)
    for value in (1e38, -1e38, 1e99, 1e-320):
        test = [b.copy() for b in bags[:3]]
        test[2][0, 0] = value
        try:
            _check_result(name, model, test)
        except BagError as exc:
            assert str(exc).startswith("bag 2: "), exc


def test_sparse_bags_report_float32_overflow_with_bag_and_instance():
    bag = sp.csr_matrix(np.array([[0, 0, 1.0], [0, 2e300, 0]]))
    with pytest.raises(BagError, match="bag 1: instance 1 holds 2e\\+300, too large for float32"):
        check_bags([sp.csr_matrix(np.ones((1, 3))), bag], accept_sparse=True)


def test_non_finite_loss_stops_training_at_once():
    rng = np.random.RandomState(0)
    bags = [rng.rand(3, 4) * 1e29 for _ in range(16)]
    bags[5][1, 2] = 1e30
    model = MILRegressor(**dict(TINY, max_epochs=50))
    with pytest.raises(TrainingDivergedError, match=r"the training loss became (nan|inf) at epoch 1; "
                                                    r"training stopped: check the feature scale "
                                                    r"\(largest \|feature\| 1e\+30"):
        model.fit(bags, np.arange(16.0))
    assert isinstance(TrainingDivergedError("x"), FloatingPointError | ValueError)


def test_diverging_learning_rate_is_stopped_not_saved_as_nans():
    rng = np.random.RandomState(0)
    bags = [rng.rand(3, 4) for _ in range(16)]
    model = MILRegressor(**dict(TINY, hidden_layer_sizes=(64, 64), learning_rate=1e18, max_epochs=30))
    with pytest.raises(TrainingDivergedError, match=r"learning rate \(1e\+18\)"):
        model.fit(bags, np.arange(16.0) ** 3)
    assert not hasattr(model, "n_epochs_")


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_denormal_only_features_still_classify(name):
    bags, y = _data(name)
    bags = [b * 1e-310 for b in bags]
    _check_result(name, CLASSIFIERS[name]().fit(bags, y), bags)
