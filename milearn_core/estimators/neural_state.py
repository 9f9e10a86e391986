"""What a network estimator's model file may hold: its parameters and fitted attributes,
each checked by type and range before a network is built (see :mod:`milearn_core.persist`)."""

from __future__ import annotations

import numpy as np
import torch

from ..nn.networks import ACTIVATIONS, pooling_names
from ..safe_state import StateError, check_int, check_number, exact_keys
from ..training import LR_SCHEDULES

__all__ = ["check_classifier_fitted", "check_params", "check_regressor_fitted"]

_MAX_WIDTH = 65_536  # widest hidden layer, attention dimension, number of heads
_MAX_FEATURES = 2**26
_MAX_OUTPUTS = 100_000
_POOLING_KWARGS = {"attention_dim": (1, _MAX_WIDTH), "n_heads": (1, 1024),
                   "n_iterations": (1, 100)}


# Parameters added after model files were first written, with the value that reproduces how
# an older file's network was trained.
_ADDED_PARAMS = {"lr_schedule": "constant", "restarts": 0, "tol": 0.0}


def check_params(cls: type, params) -> dict:
    """The constructor parameters, each checked by type and range (device is the caller's)."""
    if not isinstance(params, dict):
        raise StateError("params is not a JSON object")
    names = set(cls._get_param_names())
    params = {**_ADDED_PARAMS, **params}
    exact_keys(params, names, "params")
    params = dict(params)
    params.pop("device")
    sizes = params["hidden_layer_sizes"]
    if not isinstance(sizes, list) or len(sizes) > 32:
        raise StateError("hidden_layer_sizes must be a list of at most 32 layer widths")
    params["hidden_layer_sizes"] = tuple(check_int(n, "hidden layer width", 1, _MAX_WIDTH)
                                         for n in sizes)
    if params["pooling"] not in ("auto", *pooling_names()):
        raise StateError(f"unknown pooling {params['pooling']!r}")
    if params["activation"] not in ACTIVATIONS:
        raise StateError(f"unknown activation {params['activation']!r}")
    kwargs = params["pooling_kwargs"]
    if kwargs is not None:
        if not isinstance(kwargs, dict) or not set(kwargs) <= {*_POOLING_KWARGS, "beta"}:
            raise StateError(f"pooling_kwargs {kwargs!r} not understood")
        for key, value in kwargs.items():
            if key == "beta":
                if value is not None:
                    check_number(value, "beta")
            else:
                check_int(value, key, *_POOLING_KWARGS[key])
    for key in ("dropout", "instance_dropout", "learning_rate", "weight_decay",
                "validation_fraction", "tol"):
        check_number(params[key], key)
    if params["lr_schedule"] not in LR_SCHEDULES:
        raise StateError(f"unknown lr_schedule {params['lr_schedule']!r}")
    for key in ("batch_size", "max_epochs", "patience", "restarts"):
        check_int(params[key], key, 0, 10**9)
    if not isinstance(params["early_stopping"], bool):
        raise StateError("early_stopping must be true or false")
    if params["random_state"] is not None:
        check_int(params["random_state"], "random_state", 0, 2**32 - 1)
    if params.get("class_weight") not in (None, "balanced"):
        raise StateError(f"class_weight {params['class_weight']!r} not understood")
    return params


def _number_list(value, what: str, length: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != length:
        raise StateError(f"{what} must be a list of {length} numbers")
    return np.asarray([check_number(v, what) for v in value], dtype=np.float64)


def _common_fitted(fitted, keys: set[str], params: dict) -> dict:
    if not isinstance(fitted, dict):
        raise StateError("fitted is not a JSON object")
    if "pooling_" not in fitted and params["pooling"] != "auto":
        fitted = {**fitted, "pooling_": params["pooling"]}  # files from before pooling="auto"
    exact_keys(fitted, {"n_features_in_", "n_outputs_", "pooling_", *keys}, "fitted")
    if fitted["pooling_"] not in pooling_names():
        raise StateError(f"unknown pooling_ {fitted['pooling_']!r}")
    return {"n_features_in_": check_int(fitted["n_features_in_"], "n_features_in_", 1, _MAX_FEATURES),
            "n_outputs_": check_int(fitted["n_outputs_"], "n_outputs_", 1, _MAX_OUTPUTS),
            "pooling_": fitted["pooling_"]}


def check_regressor_fitted(cls: type, fitted, params: dict) -> dict:
    """A network regressor's pooling and target scaling, one number per output."""
    out = _common_fitted(fitted, {"y_mean_", "y_scale_", "_y_ndim"}, params)
    n = out["n_outputs_"]
    out["y_mean_"] = _number_list(fitted["y_mean_"], "y_mean_", n)
    out["y_scale_"] = _number_list(fitted["y_scale_"], "y_scale_", n)
    out["_y_ndim"] = check_int(fitted["_y_ndim"], "_y_ndim", 1, 2)
    return out


def check_classifier_fitted(cls: type, fitted, params: dict) -> dict:
    """A network classifier's pooling, classes (plain labels of a plain dtype), loss weights."""
    out = _common_fitted(fitted, {"classes_", "classes_dtype", "_loss_weights"}, params)
    n = out["n_outputs_"]
    dtype = fitted["classes_dtype"]
    labels = fitted["classes_"]
    if not isinstance(dtype, str) or not isinstance(labels, list) or len(labels) != n or n < 2:
        raise StateError("classes_ do not match n_outputs_")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise StateError(f"classes_dtype {dtype!r} not understood") from None
    if dtype.kind not in "biufUO" or dtype.fields is not None or dtype.subdtype is not None or not all(
            isinstance(v, (str, int, float, bool)) for v in labels):
        raise StateError(f"classes_ of dtype {dtype} are not plain labels")
    out["classes_"] = np.asarray(labels, dtype=dtype)
    weights = fitted["_loss_weights"]
    out["_loss_weights"] = None if weights is None else torch.as_tensor(
        _number_list(weights, "_loss_weights", n), dtype=torch.float32)
    return out
