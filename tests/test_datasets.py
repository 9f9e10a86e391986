import numpy as np
import pytest

from milearn_core.datasets import make_digit_bags


@pytest.mark.parametrize("task", ["or", "and", "xor"])
def test_rules_and_keys(task):
    data = make_digit_bags(task, n_bags=300, bag_size=(2, 9), random_state=0)
    assert 0.35 < data.y.mean() < 0.65
    for digits, label, keys in zip(data.instance_values, data.y, data.key_instances):
        has3, has7 = 3 in digits, 7 in digits
        expected = {"or": has3, "and": has3 and has7, "xor": has3 != has7}[task]
        assert label == expected
        if label:
            key_digits = (3,) if task == "or" else (3, 7)
            np.testing.assert_array_equal(keys, np.isin(digits, key_digits))
        else:
            assert not keys.any()
    assert {len(b) for b in data.bags} <= set(range(2, 10))


def test_mean_task_and_seed():
    a = make_digit_bags("mean", n_bags=50, bag_size=5, random_state=7)
    b = make_digit_bags("mean", n_bags=50, bag_size=5, random_state=7)
    np.testing.assert_allclose(a.y, [v.mean() for v in a.instance_values])
    np.testing.assert_array_equal(np.vstack(a.bags), np.vstack(b.bags))
    assert a.bags[0].shape == (5, 64) and 0 <= a.bags[0].min() and a.bags[0].max() <= 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="task must be one of"):
        make_digit_bags("nand")
    with pytest.raises(ValueError, match="bag_size range"):
        make_digit_bags("or", bag_size=(5, 2))
