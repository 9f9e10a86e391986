import numpy as np
import pytest

from milearn_core.datasets import make_digit_bags

# Small, fast settings: real training, few epochs.
FAST = dict(hidden_layer_sizes=(32,), max_epochs=12, batch_size=16, random_state=0,
            early_stopping=False)


@pytest.fixture(scope="session")
def or_bags():
    return make_digit_bags("or", n_bags=160, bag_size=(3, 8), random_state=1)


@pytest.fixture(scope="session")
def mean_bags():
    return make_digit_bags("mean", n_bags=160, bag_size=(3, 8), random_state=2)


@pytest.fixture()
def rng():
    return np.random.RandomState(0)
