"""Targets are validated like bags: every estimator names the bag and the value it refuses."""

import numpy as np
import pytest
from mil_cases import CLASSIFIERS, REGRESSORS, TINY

from milearn_core import BagError, MILClassifier, MILRegressor
from milearn_core.bags import check_bag_targets


def _bags(n=12, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.rand(rng.randint(1, 4), 3) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(REGRESSORS))
@pytest.mark.parametrize("bad, shown", [(None, "None"), (np.nan, "NaN"), (np.inf, "infinite"),
                                        (">5", "not a number"), ("abc", "not a number")])
def test_regressors_refuse_bad_targets_naming_bag_and_value(name, bad, shown):
    y = np.array([0.0, 1.0, 2.0, bad, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], dtype=object)
    with pytest.raises(BagError, match=rf"bag 3: target is {shown} \(y\[3\] = "):
        REGRESSORS[name]().fit(_bags(), y)


def test_none_target_message_for_the_issue_case():
    with pytest.raises(BagError) as info:
        MILRegressor(**TINY).fit(_bags(5), [0.0, 1.0, 2.0, None, 4.0])
    assert str(info.value).startswith("bag 3: target is None (y[3] = None)")
    assert "finite numbers" in str(info.value)


def test_numeric_strings_are_read_as_numbers():
    y = check_bag_targets(np.array(["1.5", "2", "-3e2"]), 3, "regression")
    assert y.dtype == np.float64 and y.tolist() == [1.5, 2.0, -300.0]


def test_multi_output_targets_name_row_and_column():
    y = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    with pytest.raises(BagError, match=r"bag 1: target is NaN \(y\[1, 1\] = nan\)"):
        check_bag_targets(y, 3, "regression")


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_single_valued_regression_target_is_refused(name):
    with pytest.raises(BagError, match=r"y holds one value \(2.5\) for all 12 bags.*two distinct"):
        REGRESSORS[name]().fit(_bags(), np.full(12, 2.5))


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@pytest.mark.parametrize("bad", [None, np.nan])
def test_classifiers_refuse_missing_labels(name, bad):
    y = np.array([0, 1] * 6, dtype=object)
    y[5] = bad
    with pytest.raises(BagError, match=r"bag 5: label is (None|nan) \(y\[5\] = (None|nan)\)"):
        CLASSIFIERS[name]().fit(_bags(), y)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifiers_refuse_a_single_class(name):
    with pytest.raises(BagError, match=r"single class \('a'\)"):
        CLASSIFIERS[name]().fit(_bags(), ["a"] * 12)


@pytest.mark.parametrize("labels", [["x", "y"], [True, False], [-1.0, 2.0], [np.int64(3), np.int64(-7)]])
def test_classifiers_take_any_hashable_labels(labels):
    y = np.empty(12, dtype=object)
    y[:] = [labels[i % 2] for i in range(12)]
    model = MILClassifier(**TINY).fit(_bags(), y)
    assert set(model.predict(_bags(4, seed=1)).tolist()) <= set(labels)


def test_mixed_label_types_are_refused_clearly():
    y = np.array([1, "a"] * 6, dtype=object)
    with pytest.raises(BagError, match="different types cannot be ordered.*number, str"):
        check_bag_targets(y, 12, "classification")


def test_unhashable_and_sequence_labels_are_refused():
    y = np.empty(2, dtype=object)
    y[:] = [[1], [2]]
    with pytest.raises(BagError, match=r"bag 0: label \[1\] is not hashable"):
        check_bag_targets(y, 2, "classification")
    y[:] = [(1, 2), (3, 4)]
    with pytest.raises(BagError, match=r"bag 0: label \(1, 2\) is not a scalar"):
        MILClassifier(**TINY).fit(_bags(2), y)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_fractional_labels_are_refused_as_likely_regression_targets(name):
    y = np.array([0.0, 1.0] * 6)
    y[7] = 2.5
    with pytest.raises(BagError, match=r"bag 7: label 2.5 is a fractional number"):
        CLASSIFIERS[name]().fit(_bags(), y)
