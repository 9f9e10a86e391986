"""A saved bag-kernel model carries its training bags as CSR arrays, which index the kernel code:
every lie about them must be refused at load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from milearn_core import BagKernelRegressor, ModelFileError, load_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.RandomState(0)
    bags = [rng.poisson(1.0, (rng.randint(1, 4), 6)).astype(float) for _ in range(30)]
    y = np.array([np.sqrt(b.sum()) for b in bags])
    path = tmp_path_factory.mktemp("kernel") / "model.safetensors"
    BagKernelRegressor(kernels=("minmax",)).fit(bags, y).save(path)
    with safe_open(str(path), framework="numpy") as fh:
        return json.loads(fh.metadata()["milearn_core"]), {k: fh.get_tensor(k) for k in fh.keys()}


def _attribute_arrays(config: dict) -> dict[str, str]:
    """Attribute name -> tensor key, for the model's array attributes."""
    return {name: value["__array__"] for name, value in config["state"]["state"]["__dict__"]
            if isinstance(value, dict) and "__array__" in value}


def _tampered(tmp_path, saved, attribute: str, change) -> str:
    config, tensors = saved
    tensors = dict(tensors)
    key = _attribute_arrays(config)[attribute]
    tensors[key] = np.ascontiguousarray(change(tensors[key].copy()))
    path = tmp_path / "evil.safetensors"
    save_file(tensors, str(path), metadata={"milearn_core": json.dumps(config)})
    return str(path)


def _set(index, value):
    def change(a):
        a[index] = value
        return a
    return change


@pytest.mark.parametrize("attribute, change, message", [
    ("train_indices_", _set(0, 10**6), "out of range"),
    ("train_indices_", _set(-1, -5), "out of range"),
    ("train_indptr_", _set(-1, 10**7), "train_indices_|shape"),
    ("train_indptr_", _set(1, -3), "row pointer"),
    ("train_data_", _set(0, -1.0), "nonnegative"),
    ("train_data_", _set(0, np.nan), "nonnegative"),
    ("dual_coef_", lambda a: a[:-1], "dual_coef_"),
    ("linear_coef_", lambda a: np.zeros(99), "match"),
])
def test_lies_about_the_stored_training_bags_are_refused(tmp_path, saved, attribute, change, message):
    path = _tampered(tmp_path, saved, attribute, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_the_untampered_file_loads(tmp_path, saved):
    path = _tampered(tmp_path, saved, "dual_coef_", lambda a: a)
    assert load_model(path).kernel_ == "minmax"
