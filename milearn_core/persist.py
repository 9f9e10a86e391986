"""Safe save/load: a model file is JSON plus numeric arrays, and loading runs nothing from it.

Every model is one safetensors file: its tensors are the numeric arrays (network weights, or
a classical model's coefficients, support vectors, tree nodes) and its metadata holds JSON: the
class name, the parameters and the fitted state. Loading

- reads at most ``max_bytes`` (checked on the file size before anything is read),
- accepts only the classes of an exact allow-list, looked up by exact name in registries that
  each estimator module fills for its own classes (:func:`register_network` here for networks,
  :func:`milearn_core.safe_state.register_state` for the rest); nothing is imported by name,
- checks every parameter, every declared shape and size against the stored tensors and sane
  limits before a network is built (the shapes are worked out on PyTorch's ``meta`` device,
  which allocates nothing),
- raises one :class:`ModelFileError` for anything else: another format (pickle, zip/skops,
  NumPy), an unknown version, class or parameter, a mismatch.

Files are written atomically (temp file in the target folder, renamed when complete), with the
permissions the user's umask gives a new file (or those of the file replaced).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .safe_state import StateError, allowed_class_names, check_int, decode, encode, exact_keys

__all__ = ["ModelFileError", "NetworkSchema", "PersistMixin", "save_model", "load_model", "atomic_path",
           "register_network", "MAX_MODEL_BYTES"]

FORMAT = "milearn_core.neural"
FORMAT_VERSION = 1
CLASSICAL_FORMAT = "milearn_core.classical"
CLASSICAL_VERSION = 1
MAX_MODEL_BYTES = 2 * 1024**3  # default ceiling on a model file's size
_MAX_METADATA = 64 * 1024**2  # JSON text in a file's header


class ModelFileError(ValueError):
    """A file is missing, corrupt, too large, or not a model written by milearn_core."""


def _umask() -> int:
    """The process umask (read without a window where it is changed, where Linux tells it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: Path | None = None, directory: bool = False) -> int:
    """Permissions for a new file (or folder): those of ``path`` where it exists, else the umask's."""
    if path is not None and path.exists():
        return path.stat().st_mode & 0o7777
    return (0o777 if directory else 0o666) & ~_umask()


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` only on success.

    The temporary file lies in the target folder (so the rename is atomic) and keeps the
    target's suffix (writers choose the format by it). On any exception, ``KeyboardInterrupt``
    and ``SystemExit`` included, it is removed. The result gets the permissions of the file it
    replaces, or those the umask gives a new file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp.",
                                   suffix=self.path.suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                os.chmod(self.tmp, new_file_mode(self.path))
                os.replace(self.tmp, self.path)
            except BaseException:
                self.tmp.unlink(missing_ok=True)
                raise
        else:
            self.tmp.unlink(missing_ok=True)
        return False


@dataclass(frozen=True)
class NetworkSchema:
    """A network estimator's file schema: ``params(cls, stored)`` returns the checked
    constructor parameters (``device`` left out: it is the caller's), ``fitted(cls, stored,
    params)`` the checked fitted attributes (``params``: the checked parameters, for what an
    older file left out); both raise :class:`StateError`. The weights' shapes are then
    checked against a network built from them on PyTorch's ``meta`` device."""

    name: str
    cls: type
    params: Callable[[type, object], dict]
    fitted: Callable[[type, object, dict], dict]


_NETWORKS: dict[str, NetworkSchema] = {}


def register_network(name: str, *, params: Callable[[type, object], dict],
                     fitted: Callable[[type, object, dict], dict]) -> Callable[[type], type]:
    """Class decorator: allow a network estimator in model files under the exact ``name``.

    The class provides ``_build_network()`` and ``_fitted_state()`` (the JSON that ``fitted``
    reads back); its network's ``state_dict`` is stored as safetensors.
    """
    def add(cls: type) -> type:
        _NETWORKS[name] = NetworkSchema(name, cls, params, fitted)
        return cls
    return add


def _network_schema(cls: type) -> NetworkSchema | None:
    return next((s for s in _NETWORKS.values() if s.cls is cls), None)


# -- saving ---------------------------------------------------------------------------------------
def save_model(model, path: str | os.PathLike) -> None:
    """Save a fitted milearn_core estimator to the file ``path`` (replaced if it exists).

    Raises
    ------
    TypeError
        If the model holds something a model file may not (a custom class, a callable).
    """
    schema = _network_schema(type(model))
    if schema is not None and hasattr(model, "network_"):
        config, tensors = _neural_config(model, schema.name), {
            k: v.detach().cpu().contiguous() for k, v in model.network_.state_dict().items()}
        from safetensors.torch import save_file
    else:
        arrays: dict[str, np.ndarray] = {}
        state = encode(model, arrays)
        config = {"format": CLASSICAL_FORMAT, "version": CLASSICAL_VERSION,
                  "class": state["__object__"], "state": state}
        from safetensors.numpy import save_file

        tensors = arrays
    try:
        metadata = {"milearn_core": json.dumps(config)}
    except TypeError as exc:
        raise TypeError(f"cannot save: a parameter is not JSON-serialisable ({exc})") from None
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _neural_config(model, name: str) -> dict:
    params = model.get_params()
    params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "class": name,
        "params": params,
        "fitted": model._fitted_state(),
        "history": {"train_loss": model.history_.train_loss, "val_loss": model.history_.val_loss,
                    "best_epoch": model.history_.best_epoch},
    }


# -- loading --------------------------------------------------------------------------------------
def load_model(path: str | os.PathLike, device: str = "cpu", expected_class: type | None = None,
               max_bytes: int = MAX_MODEL_BYTES):
    """Load a model written by :func:`save_model`.

    Parameters
    ----------
    path : path-like
        The model file.
    device : str
        Device of a neural model.
    expected_class : type, optional
        Refuse any other class, before anything is built.
    max_bytes : int
        Largest file accepted.

    Raises
    ------
    ModelFileError
        If the file is missing, too large, of another format, or fails any check.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelFileError(f"{path}: {size} bytes, larger than the {max_bytes} a model file may "
                             f"have (pass max_bytes to allow more)")
    config, read_tensor = _open(path)
    fmt, version, name = config.get("format"), config.get("version"), config.get("class")
    if expected_class is not None and name != _class_name(expected_class):
        shown = name if isinstance(name, str) and name.replace(".", "").isalnum() else repr(name)
        raise ModelFileError(f"{path} holds a {shown}, not a {expected_class.__name__}")
    try:
        if (fmt, version) == (FORMAT, FORMAT_VERSION):
            return _load_neural(config, read_tensor, device)
        if (fmt, version) == (CLASSICAL_FORMAT, CLASSICAL_VERSION):
            return _load_classical(config, read_tensor)
    except StateError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    raise ModelFileError(f"{path}: unsupported model format {fmt!r} version {version!r}")


def _class_name(cls: type) -> str:
    """The name files give the class: its network or state schema's name."""
    network = _network_schema(cls)
    return network.name if network else f"milearn_core.{cls.__name__}"


def _open(path: Path):
    """The JSON config and a function returning a stored tensor by name (as NumPy)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        raise ModelFileError(f"{path}: not a milearn_core model file (too short)")
    # safetensors: an 8-byte little-endian header length, then the JSON header. The length's
    # bytes can be anything (0x80, "PK"), so other formats are named only when that fails.
    header_size = int.from_bytes(head[:8], "little")
    if header_size > min(_MAX_METADATA, path.stat().st_size - 8) or head[8:9] != b"{":
        if head.startswith((b"PK", b"\x80", b"\x93NUMPY")):
            raise ModelFileError(f"{path}: a zip, pickle or NumPy file, not a milearn_core model "
                                 f"(these formats can run code and are never loaded)")
        raise ModelFileError(f"{path}: not a milearn_core model file (header size {header_size})")
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(path), framework="numpy")
        metadata = handle.metadata() or {}
        names = set(handle.keys())
        config = json.loads(metadata["milearn_core"])
    except (SafetensorError, KeyError, ValueError, OSError, RecursionError) as exc:
        raise ModelFileError(f"{path}: not a milearn_core model file ({type(exc).__name__}: "
                             f"{exc})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: model config is not a JSON object")

    def read_tensor(key) -> np.ndarray:
        if not isinstance(key, str) or key not in names:
            raise StateError(f"no stored tensor {key!r}")
        return handle.get_tensor(key)

    read_tensor.names = names
    return config, read_tensor


def _load_classical(config: dict, read_tensor):
    exact_keys(config, {"format", "version", "class", "state"}, "model config")
    used: set[str] = set()

    def array(key):
        used.add(key)
        return read_tensor(key)

    if not isinstance(config["state"], dict) or config["state"].get("__object__") != config["class"]:
        raise StateError(f"class {config['class']!r} does not match the stored state "
                         f"(allowed: {', '.join(allowed_class_names())})")
    model = decode(config["state"], array)
    if used != read_tensor.names:
        raise StateError(f"stored tensors {sorted(read_tensor.names - used)[:5]} are not used")
    return model


def _load_neural(config: dict, read_tensor, device: str):
    import torch

    exact_keys(config, {"format", "version", "class", "params", "fitted", "history"}, "model config")
    schema = _NETWORKS.get(config["class"]) if isinstance(config["class"], str) else None
    if schema is None:
        raise StateError(f"unknown model class {config['class']!r}")
    cls = schema.cls
    params = schema.params(cls, config["params"])
    model = cls(**params, device=device)
    for key, value in schema.fitted(cls, config["fitted"], params).items():
        setattr(model, key, value)
    from .training import TrainingHistory, resolve_device

    model.history_ = TrainingHistory(**_history(config["history"]))
    model.n_epochs_ = model.history_.n_epochs
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: (tuple(v.shape), v.dtype) for k, v in model._build_network().state_dict().items()}
    except (ValueError, TypeError, KeyError) as exc:
        raise StateError(f"invalid network settings ({exc})") from None
    if set(expected) != read_tensor.names:
        raise StateError(f"stored weights {sorted(read_tensor.names ^ set(expected))[:5]} do not "
                         f"match the network")
    tensors = {}
    for key, (shape, dtype) in expected.items():
        value = read_tensor(key)
        if tuple(value.shape) != shape or torch.from_numpy(value[:0]).dtype != dtype:
            raise StateError(f"weights {key!r}: shape {value.shape}, expected {shape}")
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
    network = model._build_network()
    network.load_state_dict(tensors, strict=True)
    model.network_ = network.to(resolve_device(device)).eval()
    return model


def _history(history) -> dict:
    if not isinstance(history, dict):
        raise StateError("history is not a JSON object")
    exact_keys(history, {"train_loss", "val_loss", "best_epoch"}, "history")
    out = {}
    for key in ("train_loss", "val_loss"):
        values = history[key]
        if not isinstance(values, list) or len(values) > 10**7 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise StateError(f"history {key} is not a list of numbers")
        out[key] = [float(v) for v in values]
    out["best_epoch"] = check_int(history["best_epoch"], "best_epoch", 0, 10**9)
    return out


class PersistMixin:
    """``save(path)`` and ``Class.load(path)`` through :mod:`milearn_core.persist`."""

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model to the file ``path`` (JSON and arrays; no pickled code)."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", max_bytes: int = MAX_MODEL_BYTES):
        """Load a model saved with :meth:`save`; the file must hold a ``cls``."""
        return load_model(path, device=device, expected_class=cls, max_bytes=max_bytes)
