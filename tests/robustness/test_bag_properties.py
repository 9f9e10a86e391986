"""Property-based: bags of odd shapes and magnitudes, odd targets, into every estimator.

Every case ends in a correct-shaped finite result or a documented exception (BagError,
TrainingDivergedError) with a message, never a crash inside torch/scikit-learn or a silent NaN.
"""

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mil_cases import CLASSIFIERS, DOCUMENTED, REGRESSORS

from milearn_core import check_bags

SPECIAL = [0.0, -0.0, 1e308, -1e308, 1e38, -1e38, 3.4e38, 1e100, -1e101, 1e19, 1e-310, 5e-324,
           -5e-324, 1e-45, float("nan"), float("inf"), float("-inf")]
SCALES = [1.0, 1.0, 1.0, 1e-300, 1e-20, 1e20, 1e37, 1e99]
ODDITIES = [None] * 6 + ["empty", "1d", "3d", "ragged", "sparse", "list", "int", "text", "none"]


@st.composite
def bag_collections(draw, min_bags=1, max_bags=8):
    """A list of bags, mostly well formed; a scale, a few special values and one oddity."""
    n_features = draw(st.integers(1, 4))
    scale = draw(st.sampled_from(SCALES))
    bags = [draw(arrays(np.float64, (draw(st.integers(1, 4)), n_features),
                        elements=st.floats(-100, 100, allow_subnormal=False))) * scale
            for _ in range(draw(st.integers(min_bags, max_bags)))]
    for _ in range(draw(st.integers(0, 2))):
        bag = bags[draw(st.integers(0, len(bags) - 1))]
        bag[draw(st.integers(0, bag.shape[0] - 1)), draw(st.integers(0, n_features - 1))] = draw(
            st.sampled_from(SPECIAL))
    return _odd(bags, draw(st.sampled_from(ODDITIES)), draw(st.integers(0, len(bags) - 1)))


def _odd(bags, oddity, k):
    bags = list(bags)
    if oddity == "empty":
        bags[k] = bags[k][:0]
    elif oddity == "1d":
        bags[k] = bags[k][0]
    elif oddity == "3d":
        bags[k] = bags[k][None]
    elif oddity == "ragged":
        bags[k] = np.hstack([bags[k], bags[k][:, :1]])
    elif oddity == "sparse":
        bags = [sp.csr_matrix(b) for b in bags]
    elif oddity == "list":
        bags[k] = bags[k].tolist()
    elif oddity == "int":
        bags[k] = np.clip(bags[k], -1e9, 1e9).round().astype(np.int64)
    elif oddity == "text":
        bags[k] = bags[k].astype(str)
    elif oddity == "none":
        bags[k] = None
    return bags


def regression_targets(n):
    value = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([None, float("nan"), float("inf"), ">5", "7.5",
                                                             1e300, 0.0]))
    return st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n).flatmap(
        lambda ys: st.tuples(st.just(ys), st.integers(0, n - 1), value, st.booleans())).map(
        lambda t: _inject(*t))


def _inject(ys, k, value, inject):
    ys = list(ys)
    if inject:
        ys[k] = value
    return np.array(ys, dtype=object)


def class_labels(n):
    label_sets = st.sampled_from([[0, 1], ["a", "b", "c"], [True, False], [-1.5, 2.0], [-1.0, 2.0], ["x"]])
    return st.tuples(label_sets, st.lists(st.integers(0, 2), min_size=n, max_size=n), st.integers(0, n - 1),
                     st.sampled_from([None, float("nan"), "ok"])).map(_labels)


def _labels(t):
    labels, picks, k, value = t
    y = np.empty(len(picks), dtype=object)
    y[:] = [labels[p % len(labels)] for p in picks]
    if value != "ok":
        y[k] = value
    return y


def _fit_predict(make, bags, y, is_regressor):
    """Fit and predict; returns None when a documented error refused the input."""
    try:
        model = make().fit(bags, y)
        pred = model.predict(bags)
    except DOCUMENTED as exc:
        assert str(exc), "an error without a message"
        return None
    assert pred.shape == (len(bags),)
    if is_regressor:
        assert pred.dtype.kind == "f" and np.isfinite(pred).all(), pred
    else:
        assert set(pred.tolist()) <= set(np.asarray(y).tolist())
    return model


@given(data=st.data(), name=st.sampled_from(sorted(REGRESSORS)))
def test_regressors_on_odd_bags_and_targets(count_case, data, name):
    count_case("regressors on odd bags and targets")
    bags = data.draw(bag_collections())
    y = data.draw(regression_targets(len(bags)))
    _fit_predict(REGRESSORS[name], bags, y, is_regressor=True)


@given(data=st.data(), name=st.sampled_from(sorted(CLASSIFIERS)))
def test_classifiers_on_odd_bags_and_labels(count_case, data, name):
    count_case("classifiers on odd bags and labels")
    bags = data.draw(bag_collections(min_bags=2))
    y = data.draw(class_labels(len(bags)))
    _fit_predict(CLASSIFIERS[name], bags, y, is_regressor=False)


@given(data=st.data(), name=st.sampled_from(sorted({**REGRESSORS, **CLASSIFIERS})))
def test_fitted_models_predict_odd_bags(count_case, fitted_models, data, name):
    model = fitted_models[name]
    bags = data.draw(bag_collections(max_bags=4).filter(lambda b: _n_features(b) in (None, 3)))
    count_case("fitted models predicting odd bags")
    try:
        pred = model.predict(bags)
    except DOCUMENTED as exc:
        assert str(exc).startswith(("bag ", "X ")), exc
        return
    assert pred.shape == (len(bags),)
    if name in REGRESSORS:
        assert np.isfinite(pred).all()


def _n_features(bags):
    shapes = {np.shape(b)[-1] for b in bags if b is not None and np.ndim(b) == 2}
    return shapes.pop() if len(shapes) == 1 else None


@given(bags=bag_collections(), dtype=st.sampled_from([np.float32, np.float64]),
       sparse=st.booleans(), max_abs=st.sampled_from([None, 1e100]))
def test_check_bags_returns_finite_float_bags_or_names_the_bag(count_case, bags, dtype, sparse, max_abs):
    count_case("check_bags")
    try:
        checked = check_bags(bags, dtype=dtype, accept_sparse=sparse, max_abs=max_abs)
    except DOCUMENTED as exc:
        assert str(exc).startswith(("bag ", "X ")), exc
        return
    assert len(checked) == len(bags)
    for bag in checked:
        values = bag.data if sp.issparse(bag) else bag
        assert bag.ndim == 2 and bag.shape[0] >= 1 and bag.dtype == dtype
        assert np.isfinite(values).all() and (max_abs is None or np.abs(values).max(initial=0) <= max_abs)
