"""Safe save/load: no pickled code is ever loaded.

Neural models: one safetensors file holding the weights, with the JSON config (class name,
parameters, fitted state) in its metadata. Classical models: skops, loading only types from
scikit-learn, NumPy, SciPy and milearn_core. Files are written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ModelFileError", "PersistMixin", "save_model", "load_model", "atomic_path"]

FORMAT = "milearn_core.neural"
FORMAT_VERSION = 1
_TRUSTED_PREFIXES = ("milearn_core.", "sklearn.", "numpy.", "scipy.", "builtins.")


class ModelFileError(ValueError):
    """A file is missing, corrupt, or not a model written by milearn_core."""


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` only on success."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder (so the rename is atomic) and same suffix (writers pick formats by it).
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp.",
                                   suffix=self.path.suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def _neural_classes():
    from .estimators.neural import MILClassifier, MILRegressor

    return {cls.__name__: cls for cls in (MILRegressor, MILClassifier)}


def _is_neural(model) -> bool:
    return type(model).__name__ in _neural_classes() and hasattr(model, "network_")


def save_model(model, path: str | os.PathLike) -> None:
    """Save a fitted milearn_core estimator to ``path``."""
    if _is_neural(model):
        _save_neural(model, path)
    else:
        import skops.io as sio

        with atomic_path(path) as tmp:
            sio.dump(model, tmp)


def _save_neural(model, path) -> None:
    from safetensors.torch import save_file

    params = model.get_params()
    params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "class": type(model).__name__,
        "params": params,
        "fitted": model._fitted_state(),
        "history": {"train_loss": model.history_.train_loss, "val_loss": model.history_.val_loss,
                    "best_epoch": model.history_.best_epoch},
    }
    try:
        metadata = {"milearn_core": json.dumps(config)}
    except TypeError as exc:
        raise TypeError(f"cannot save: a parameter is not JSON-serialisable ({exc})") from None
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.network_.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_model(path: str | os.PathLike, device: str = "cpu"):
    """Load a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        If the file is missing, truncated, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        return _load_skops(path)
    return _load_neural(path, device)


def _load_skops(path: Path):
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
        if foreign:
            raise ModelFileError(f"{path}: refuses to load types outside scikit-learn/milearn_core: "
                                 f"{foreign}")
        return sio.load(path, trusted=untrusted)
    except ModelFileError:
        raise
    except Exception as exc:  # skops raises many kinds on a damaged archive
        raise ModelFileError(f"{path}: not a readable milearn_core model ({exc})") from None


def _load_neural(path: Path, device: str):
    import torch
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            config = json.loads((fh.metadata() or {})["milearn_core"])
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(f"{path}: not a milearn_core model file ({exc})") from None
    if config.get("format") != FORMAT or config.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unsupported model format {config.get('format')!r} "
                             f"version {config.get('version')!r}")
    classes = _neural_classes()
    if config.get("class") not in classes:
        raise ModelFileError(f"{path}: unknown model class {config.get('class')!r}")
    params = dict(config["params"], device=device)
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    model = classes[config["class"]](**params)
    fitted = dict(config["fitted"])
    if "classes_" in fitted:
        model.classes_ = np.asarray(fitted.pop("classes_"), dtype=np.dtype(fitted.pop("classes_dtype")))
        weights = fitted.pop("_loss_weights")
        model._loss_weights = None if weights is None else torch.as_tensor(weights)
    for key in ("y_mean_", "y_scale_"):
        if key in fitted:
            fitted[key] = np.asarray(fitted[key])
    for key, value in fitted.items():
        setattr(model, key, value)
    from .training import TrainingHistory, resolve_device

    model.history_ = TrainingHistory(**config["history"])
    model.n_epochs_ = model.history_.n_epochs
    network = model._build_network()
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match the saved configuration ({exc})") from None
    model.network_ = network.to(resolve_device(device)).eval()
    return model


class PersistMixin:
    """``save(path)`` and ``Class.load(path)`` through :mod:`milearn_core.persist`."""

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model to ``path`` (no pickled code)."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu"):
        """Load a model saved with :meth:`save`; the file must hold a ``cls``."""
        model = load_model(path, device=device)
        if not isinstance(model, cls):
            raise ModelFileError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
