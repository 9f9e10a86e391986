"""Estimator state as JSON plus numeric arrays, through an exact allow-list of types.

:func:`encode` walks a fitted estimator (its ``__getstate__``) and returns plain JSON, with every
numeric array set aside under a short key (the caller stores them as safetensors).
:func:`decode` rebuilds only the classes registered with :func:`register_state` (``cls.__new__``
and ``__setstate__``) and checks each one's state against its :class:`StateSchema` before handing
it out. Each estimator module registers its own classes and checks; this module imports no
estimator, and scikit-learn's classes are registered here, on first use. A file never names a
function, a module to import or a constructor to call: an unknown name is refused, not looked up.
"""

from __future__ import annotations

import inspect
import keyword
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["StateError", "StateSchema", "allowed_class_names", "check_array", "check_int",
           "check_number", "decode", "encode", "exact_keys", "is_finite_number", "is_utf8_text",
           "register_state"]

MAX_DEPTH = 64  # nesting of containers and estimators (a forest of pipelines is ~6)
MAX_NODES = 2_000_000  # JSON values decoded from one file
MAX_ITEMS = 50_000_000  # elements of one array stored as JSON text (strings, objects)
# Array dtypes a file may hold: numbers and booleans only (never object or structured ones).
_ARRAY_DTYPES = frozenset({"|b1", "|u1", "|i1", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8",
                           "<f2", "<f4", "<f8"})
_JSON_SCALARS = (str, int, float, bool, type(None))


class StateError(ValueError):
    """A stored state is not one this module writes (unknown type, bad shape, too large)."""


@dataclass(frozen=True)
class StateSchema:
    """What a model file may hold of one class: its public name, the fitted attributes allowed
    besides the constructor parameters (``None``: any instance attribute, for scikit-learn's own
    classes, whose private attributes vary by version), a consistency check of the fitted
    state (run at save and at load; raises :class:`StateError`), and the constructor parameters
    added since files of the class were first saved (a file without one gets its default)."""

    name: str
    cls: type
    fields: frozenset[str] | None = None
    check: Callable[[object], None] | None = None
    added_params: frozenset[str] = frozenset()


_REGISTRY: dict[str, StateSchema] = {}


def register_state(name: str, *, fields: Iterable[str] | None = None,
                   check: Callable[[object], None] | None = None,
                   added_params: Iterable[str] = ()) -> Callable[[type], type]:
    """Class decorator: allow the class in model files under the exact public ``name``.

    Each estimator module registers its own classes; this module imports none of them.
    """
    def add(cls: type) -> type:
        known = _REGISTRY.get(name)
        if known is not None and (known.cls.__module__, known.cls.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise ValueError(f"{name!r} is already registered for {known.cls.__qualname__}")
        _REGISTRY[name] = StateSchema(name, cls, None if fields is None else frozenset(fields),
                                      check, frozenset(added_params))
        return cls
    return add


@cache
def _register_scikit_learn() -> None:
    """scikit-learn's classes that MIL wrappers and pipelines may hold, with their checks."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        RidgeClassifier,
    )
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler
    from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR
    from sklearn.tree import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        ExtraTreeClassifier,
        ExtraTreeRegressor,
    )

    checked = {
        "sklearn.ensemble": ((ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier,
                              RandomForestRegressor), _check_forest),
        "sklearn.linear_model": ((ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge,
                                  RidgeClassifier), _check_linear),
        "sklearn.pipeline": ((Pipeline,), None),
        "sklearn.preprocessing": ((MinMaxScaler, StandardScaler), None),
        "sklearn.svm": ((SVC, SVR), _check_libsvm),
        "sklearn.svm ": ((LinearSVC, LinearSVR), _check_linear),
        "sklearn.tree": ((DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier,
                          ExtraTreeRegressor), None),
    }
    for module, (classes, check) in checked.items():
        for cls in classes:
            register_state(f"{module.strip()}.{cls.__name__}", check=check)(cls)


def _registry() -> dict[str, StateSchema]:
    _register_scikit_learn()
    return _REGISTRY


def allowed_class_names() -> list[str]:
    """The classes a classical model file may contain, by public name."""
    return sorted(_registry())


def _schema_of(obj) -> StateSchema | None:
    cls = type(obj)
    return next((schema for schema in _registry().values() if schema.cls is cls), None)


# -- encoding -------------------------------------------------------------------------------------
def encode(obj, arrays: dict[str, np.ndarray]) -> object:
    """JSON-ready form of ``obj``; numeric arrays are added to ``arrays`` and referenced by key.

    Raises
    ------
    TypeError
        If ``obj`` holds anything outside the allow-list (a callable, a custom class, ...).
    """
    if obj is None or isinstance(obj, (str, bool, int, float)) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, np.generic):
        return {"__scalar__": _checked_dtype(obj.dtype, "scalar"), "value": obj.item()}
    if isinstance(obj, np.dtype):
        return {"__dtype__": _checked_dtype(obj, "dtype")}
    if isinstance(obj, np.ndarray):
        return _encode_array(obj, arrays)
    if isinstance(obj, list):
        return [encode(v, arrays) for v in obj]
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, arrays) for v in obj]}
    if isinstance(obj, dict):
        return {"__dict__": [[encode(k, arrays), encode(v, arrays)] for k, v in obj.items()]}
    from sklearn.tree._tree import Tree

    if type(obj) is Tree:
        return {"__tree__": _encode_tree(obj, arrays)}
    schema = _schema_of(obj)
    if schema is None:
        raise TypeError(f"cannot save a {type(obj).__module__}.{type(obj).__qualname__}: model files "
                        f"hold only these classes: {', '.join(allowed_class_names())}")
    state = dict(obj.__getstate__())
    try:
        _check_state_keys(schema, state)
    except StateError as exc:
        raise TypeError(f"cannot save: {exc}") from None
    _check_fitted_state(schema, obj)
    return {"__object__": schema.name, "state": encode(state, arrays)}


def _checked_dtype(dtype: np.dtype, what: str) -> str:
    if dtype.str not in _ARRAY_DTYPES:
        raise TypeError(f"cannot save a {what} of dtype {dtype}")
    return dtype.str


def _encode_array(arr: np.ndarray, arrays: dict) -> dict:
    if arr.dtype.kind in "OU":  # labels: strings (or a mix of plain scalars) kept as JSON text
        items = arr.ravel().tolist()
        if not all(isinstance(v, _JSON_SCALARS) for v in items):
            raise TypeError("cannot save an object array holding other than str/int/float/bool")
        return {"__text_array__": items, "kind": arr.dtype.kind, "shape": list(arr.shape)}
    _checked_dtype(arr.dtype, "array")
    key = f"a{len(arrays)}"
    arrays[key] = np.ascontiguousarray(arr)
    return {"__array__": key}


_TREE_FIELDS = ("left_child", "right_child", "feature", "threshold", "impurity", "n_node_samples",
                "weighted_n_node_samples", "missing_go_to_left")


def _encode_tree(tree, arrays: dict) -> dict:
    _, (n_features, n_classes, n_outputs), state = tree.__reduce__()
    nodes = state["nodes"]
    return {"n_features": int(n_features), "n_classes": _encode_array(np.asarray(n_classes, np.int64),
                                                                      arrays),
            "n_outputs": int(n_outputs), "max_depth": int(state["max_depth"]),
            "node_count": int(state["node_count"]),
            "nodes": {f: _encode_array(np.ascontiguousarray(nodes[f]), arrays) for f in _TREE_FIELDS},
            "values": _encode_array(state["values"], arrays)}


# -- decoding -------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, arrays: Callable[[str], np.ndarray]):
        self.arrays = arrays
        self.nodes = 0

    def __call__(self, node, depth: int = 0):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise StateError(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise StateError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, _JSON_SCALARS):
            return node
        if isinstance(node, list):
            return [self(v, depth + 1) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise StateError(f"unexpected value of type {type(node).__name__}")
        tag = next(iter(node))
        handler = self._TAGS.get(tag)
        if handler is None:
            raise StateError(f"unknown entry {tag!r}")
        return handler(self, node, depth + 1)

    def _scalar(self, node, depth):
        _keys(node, {"__scalar__", "value"})
        dtype = _dtype(node["__scalar__"])
        value = node["value"]
        if not isinstance(value, (int, float, bool)):
            raise StateError(f"scalar value {value!r} is not a number")
        return dtype.type(value)

    def _dtype(self, node, depth):
        _keys(node, {"__dtype__"})
        return _dtype(node["__dtype__"])

    def _array(self, node, depth):
        _keys(node, {"__array__"})
        return self.arrays(node["__array__"])

    def _text_array(self, node, depth):
        _keys(node, {"__text_array__", "kind", "shape"})
        items, kind, shape = node["__text_array__"], node["kind"], node["shape"]
        if (not isinstance(items, list) or kind not in ("O", "U") or not _is_shape(shape)
                or int(np.prod(shape)) != len(items) or len(items) > MAX_ITEMS
                or not all(isinstance(v, _JSON_SCALARS) for v in items)):
            raise StateError("malformed text array")
        if kind == "U" and not all(isinstance(v, str) for v in items):
            raise StateError("malformed string array")
        self.nodes += len(items)
        return np.array(items, dtype=object if kind == "O" else str).reshape(shape)

    def _tuple(self, node, depth):
        _keys(node, {"__tuple__"})
        if not isinstance(node["__tuple__"], list):
            raise StateError("malformed tuple")
        return tuple(self(v, depth) for v in node["__tuple__"])

    def _dict(self, node, depth):
        _keys(node, {"__dict__"})
        pairs = node["__dict__"]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise StateError("malformed mapping")
        out = {}
        for key, value in pairs:
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise StateError(f"mapping key {key!r} is not a plain value")
            out[key] = self(value, depth)
        return out

    def _tree(self, node, depth):
        _keys(node, {"__tree__"})
        spec = node["__tree__"]
        if not isinstance(spec, dict):
            raise StateError("malformed tree")
        _keys(spec, {"n_features", "n_classes", "n_outputs", "max_depth", "node_count", "nodes",
                     "values"})
        if not isinstance(spec["nodes"], dict):
            raise StateError("malformed tree nodes")
        _keys(spec["nodes"], set(_TREE_FIELDS))
        fields = {f: self(spec["nodes"][f], depth) for f in _TREE_FIELDS}
        return _build_tree(spec, fields, self(spec["n_classes"], depth), self(spec["values"], depth))

    def _object(self, node, depth):
        _keys(node, {"__object__", "state"})
        name = node["__object__"]
        schema = _registry().get(name) if isinstance(name, str) else None
        if schema is None:
            raise StateError(f"type {name!r} is not allowed in a model file")
        cls = schema.cls
        state = self(node["state"], depth)
        if not isinstance(state, dict):
            raise StateError(f"{name}: state is not a mapping")
        defaults = inspect.signature(cls).parameters
        state = {**{p: defaults[p].default for p in schema.added_params}, **state}
        _check_state_keys(schema, state)
        obj = cls.__new__(cls)
        obj.__setstate__(state)
        if hasattr(obj, "_parameter_constraints"):  # scikit-learn's own parameter validation
            try:
                obj._validate_params()
            except (TypeError, ValueError) as exc:
                raise StateError(f"{name}: invalid parameters ({exc})") from None
        try:
            _check_fitted_state(schema, obj)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise StateError(f"{name}: inconsistent fitted state ({exc})") from None
        return obj

    _TAGS = {"__scalar__": _scalar, "__dtype__": _dtype, "__array__": _array,
             "__text_array__": _text_array, "__tuple__": _tuple, "__dict__": _dict,
             "__tree__": _tree, "__object__": _object}


def decode(node, arrays: Callable[[str], np.ndarray]):
    """Rebuild what :func:`encode` wrote; ``arrays(key)`` returns a stored array.

    Raises
    ------
    StateError
        On any entry outside the allow-list, a malformed entry or an inconsistent state.
    """
    return _Decoder(arrays)(node)


def _keys(node: dict, expected: set[str]) -> None:
    if set(node) != expected:
        raise StateError(f"entry has keys {sorted(node)}, expected {sorted(expected)}")


def _dtype(name) -> np.dtype:
    if name not in _ARRAY_DTYPES:
        raise StateError(f"dtype {name!r} is not allowed")
    return np.dtype(name)


def _is_shape(shape) -> bool:
    return (isinstance(shape, list) and len(shape) <= 8
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape))


def _check_state_keys(schema: StateSchema, state: dict) -> None:
    cls, name = schema.cls, schema.name
    for key in state:
        # Instance attributes only: a name the class defines (a method, a property) would be
        # shadowed by stored data.
        if (not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key)
                or key.startswith("__") or hasattr(cls, key)):
            raise StateError(f"{name}: attribute {key!r} is not allowed")
    params = set(cls._get_param_names())
    missing = params - set(state)
    if missing:
        raise StateError(f"{name}: parameters missing: {sorted(missing)}")
    if schema.fields is not None:
        unknown = set(state) - params - schema.fields
        if unknown:
            raise StateError(f"{name}: attributes {sorted(unknown)} are not in its schema")


# -- per-class consistency checks (run at save and at load) --------------------------------------
def _check_fitted_state(schema: StateSchema, obj) -> None:
    """Run the class's consistency check on a fitted object (scikit-learn's rule: it has an
    attribute ending in ``_``); unfitted ones refuse to predict anyway."""
    if schema.check is not None and any(k.endswith("_") and not k.startswith("__") for k in vars(obj)):
        schema.check(obj)


def check_int(value, what: str, low: int = 0, high: int = 2**40) -> int:
    """``value`` as an int, if it is an integer (not a bool) in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise StateError(f"{what} = {value!r} is not an integer")
    if not low <= int(value) <= high:
        raise StateError(f"{what} = {value} lies outside [{low}, {high}]")
    return int(value)


def is_finite_number(value) -> bool:
    """Whether ``value`` is an int or float (not a bool) that is finite as a float: a JSON
    integer of 400 digits is not (it overflows every float it meets)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_utf8_text(value) -> bool:
    """Whether ``value`` is a str that UTF-8 can encode (JSON may carry lone surrogates,
    which no output file could then be written with)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_number(value, what: str) -> float:
    """``value``, if it is a finite int or float (not a bool)."""
    if not is_finite_number(value):
        raise StateError(f"{what} = {value!r} is not a finite number")
    return value


def exact_keys(mapping: dict, expected: set[str], what: str) -> None:
    """Refuse a mapping whose keys are not exactly ``expected``."""
    missing, unknown = expected - set(mapping), set(mapping) - expected
    if missing or unknown:
        raise StateError(f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")


def check_array(value, what: str, kinds: str, shape: tuple) -> np.ndarray:
    """Check an array's dtype kind and shape (None in ``shape``: any length)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
        raise StateError(f"{what} is not a numeric array")
    if value.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, value.shape)):
        raise StateError(f"{what} has shape {value.shape}, expected {shape}")
    return value


def _build_tree(spec: dict, fields: dict, n_classes, values):
    from sklearn.tree._tree import NODE_DTYPE, Tree

    n_features = check_int(spec["n_features"], "tree n_features", 1)
    n_outputs = check_int(spec["n_outputs"], "tree n_outputs", 1, 100_000)
    node_count = check_int(spec["node_count"], "tree node_count", 1)
    check_int(spec["max_depth"], "tree max_depth", 0, node_count)
    n_classes = check_array(n_classes, "tree n_classes", "iu", (n_outputs,))
    if n_classes.min() < 1:
        raise StateError("tree n_classes must be positive")
    for f in _TREE_FIELDS:
        check_array(fields[f], f"tree {f}", NODE_DTYPE[f].kind, (node_count,))
    check_array(values, "tree values", "f", (node_count, n_outputs, int(n_classes.max())))
    # Every child lies after its parent and inside the array (no cycles, no reads out of
    # bounds in the compiled predict); leaves have no children; split features exist.
    left, right, feature = fields["left_child"], fields["right_child"], fields["feature"]
    index = np.arange(node_count)
    leaf = left == -1
    inner = ~leaf
    if (not np.all(right[leaf] == -1)
            or not np.all((left[inner] > index[inner]) & (left[inner] < node_count))
            or not np.all((right[inner] > index[inner]) & (right[inner] < node_count))
            or not np.all((feature[inner] >= 0) & (feature[inner] < n_features))):
        raise StateError("tree nodes are inconsistent (child or feature index out of range)")
    nodes = np.zeros(node_count, dtype=NODE_DTYPE)
    for f in _TREE_FIELDS:
        nodes[f] = fields[f]
    tree = Tree(n_features, n_classes.astype(np.intp), n_outputs)
    tree.__setstate__({"max_depth": int(spec["max_depth"]), "node_count": node_count,
                       "nodes": nodes, "values": np.ascontiguousarray(values, dtype=np.float64)})
    return tree


def _check_libsvm(svm) -> None:
    """The compiled libsvm predict trusts these sizes: check them all against each other."""
    if svm.kernel not in ("linear", "poly", "rbf", "sigmoid") or svm._sparse:
        raise StateError("only dense SVMs with a linear/poly/rbf/sigmoid kernel can be stored")
    n_features = check_int(svm.n_features_in_, "n_features_in_", 1)
    vectors = check_array(svm.support_vectors_, "support_vectors_", "f", (None, n_features))
    n_sv = vectors.shape[0]
    shape_fit = svm.shape_fit_
    if not isinstance(shape_fit, tuple) or len(shape_fit) != 2:
        raise StateError("shape_fit_ is not a pair")
    check_int(shape_fit[0], "shape_fit_[0]", 1)
    support = check_array(svm.support_, "support_", "i", (n_sv,))
    if n_sv and (support.min() < 0 or support.max() >= shape_fit[0]):
        raise StateError("support_ indices out of range")
    classes = getattr(svm, "classes_", None)
    n_class = 2 if classes is None else len(classes)
    if n_class < 2:
        raise StateError("an SVC needs at least two classes")
    n_support = check_array(svm._n_support, "_n_support", "i", (n_class,))
    if classes is not None and (n_support.min() < 0 or n_support.sum() != n_sv):
        raise StateError("_n_support does not add up to the support vectors")
    n_pairs = n_class * (n_class - 1) // 2
    rows = 1 if classes is None else n_class - 1
    check_array(svm._dual_coef_, "_dual_coef_", "f", (rows, n_sv))
    check_array(svm._intercept_, "_intercept_", "f", (n_pairs,))
    for name in ("_probA", "_probB"):
        if getattr(svm, name).shape not in ((0,), (n_pairs,)):
            raise StateError(f"{name} has the wrong length")
    if classes is not None:
        check_array(svm.class_weight_, "class_weight_", "f", (n_class,))
    if not np.isfinite(float(svm._gamma)) or check_int(svm.degree, "degree", 0, 100) < 0:
        raise StateError("gamma/degree out of range")


def _check_linear(model) -> None:
    n_features = check_int(model.n_features_in_, "n_features_in_", 1)
    coef = np.asarray(model.coef_)
    if coef.ndim not in (1, 2) or coef.shape[-1] != n_features:
        raise StateError(f"coef_ has shape {coef.shape}, expected (..., {n_features})")


def _check_forest(forest) -> None:
    n_features = check_int(forest.n_features_in_, "n_features_in_", 1)
    for tree in forest.estimators_:
        if type(tree) is not type(forest.estimator) or tree.n_features_in_ != n_features:
            raise StateError("a tree of the forest does not match the forest")
