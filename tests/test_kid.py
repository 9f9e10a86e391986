import numpy as np
import pytest

from milearn_core import instance_weights, kid_accuracy, kid_spearman, leave_one_out_weights
from milearn_core.kid import normalize_per_bag, top_instances


def test_top_instances_stable():
    assert top_instances(np.array([0.2, 0.5, 0.5, 0.1]), 2).tolist() == [1, 2]


def test_kid_accuracy_counts_top_hits():
    weights = [np.array([0.1, 0.9]), np.array([0.6, 0.4]), np.array([0.5, 0.3, 0.2])]
    keys = [np.array([False, True]), np.array([False, True]), np.array([False, False, False])]
    # Bag 2 has no key instance and is left out by default.
    assert kid_accuracy(weights, keys) == 0.5
    keys2 = [np.array([True, True]), np.array([True, False]), np.array([True, True, False])]
    assert kid_accuracy(weights, keys2, top_k=2) == 1.0
    with pytest.raises(ValueError, match="bag 0: 2 weights but 3 key flags"):
        kid_accuracy([np.ones(2) / 2], [np.ones(3, bool)])


def test_kid_spearman():
    weights = [np.array([0.1, 0.2, 0.7]), np.array([0.5, 0.3, 0.2])]
    values = [np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])]
    assert kid_spearman(weights, values) == pytest.approx(0.0)
    assert kid_spearman(weights[:1], values[:1]) == pytest.approx(1.0)


def test_leave_one_out_on_an_additive_model():
    """For a bag score = sum of first feature, removing an instance changes it by that value."""
    bags = [np.array([[1.0], [3.0], [0.0]]), np.array([[2.0]])]
    weights = leave_one_out_weights(lambda b: np.array([[x[:, 0].sum()] for x in b]), bags)
    np.testing.assert_allclose(weights[0], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(weights[1], [1.0])


def test_normalize_per_bag_handles_zeros():
    out = normalize_per_bag([np.zeros(4), np.array([1.0, 3.0])])
    np.testing.assert_allclose(out[0], 0.25)
    np.testing.assert_allclose(out[1], [0.25, 0.75])


def test_instance_weights_for_any_sklearn_style_model():
    class Summer:
        def predict(self, bags):
            return np.array([b[:, 0].sum() for b in bags])

    weights = instance_weights(Summer(), [np.array([[1.0, 0], [1.0, 0]])])
    np.testing.assert_allclose(weights[0], [0.5, 0.5])
