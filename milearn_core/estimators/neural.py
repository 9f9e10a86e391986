"""Neural MIL estimators with a scikit-learn API: :class:`MILRegressor`, :class:`MILClassifier`."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from ..bags import PackedBags, check_bag_targets, check_bags, check_finite_output, pack_bags
from ..batching import DeviceBags
from ..kid import leave_one_out_weights, normalize_per_bag
from ..nn.networks import INSTANCE_POOLINGS, MILNetwork, MILOutput, pooling_names
from ..persist import PersistMixin, register_network
from ..training import LR_SCHEDULES, predict_network, resolve_device, train_network
from .neural_state import check_classifier_fitted, check_params, check_regressor_fitted

__all__ = ["MILRegressor", "MILClassifier"]

# Poolings whose own weights carry no information (every instance counts the same): "auto"
# weights come from leave-one-instance-out attribution instead.
_UNINFORMATIVE_POOLINGS = {"mean", "sum"}
# A run whose best validation loss is not below this share of a constant prediction's learned
# next to nothing (e.g. stuck on the XOR plateau): with ``restarts`` it is trained again.
_LEARNED = 0.9
# pooling="auto" keeps its additive candidate, without training the interaction one, when the
# additive one's validation loss is under this share of a constant prediction's.
_FITS = 0.1
# pooling="auto": an additive pooling first, then one whose instances see each other.
AUTO_POOLINGS = {"regression": ("instance_mean", "self_attention"),
                 "classification": ("attention", "self_attention")}
# Poolings whose own weights are taken after the instances mixed, so they do not say which
# input instance drove the prediction: "auto" weights come from leave-one-instance-out.
_MIXING_POOLINGS = {"self_attention"}


def _best_run(runs: list[tuple]) -> tuple:
    """The (network, history, pooling) of lowest best validation loss."""
    return min(runs, key=lambda run: run[1].best_loss)


class _BaseMILNetwork(PersistMixin, BaseEstimator):
    """Shared fit/predict machinery; subclasses define targets, loss and weights."""

    def __init__(
        self,
        pooling: str = "attention",
        hidden_layer_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        instance_dropout: float = 0.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 32,
        max_epochs: int = 200,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 20,
        pooling_kwargs: dict | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        lr_schedule: str = "constant",
        restarts: int = 0,
        tol: float = 0.0,
    ):
        self.pooling = pooling
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.instance_dropout = instance_dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.pooling_kwargs = pooling_kwargs
        self.random_state = random_state
        self.device = device
        self.lr_schedule = lr_schedule
        self.restarts = restarts
        self.tol = tol

    _task: str | None = None  # "regression" or "classification": how targets are checked

    # Subclasses define _encode_targets(y) -> (targets, n_outputs), _loss(out, target),
    # _bag_scores(X) -> 2-D scores for attribution, and _instance_mode_weights(out, packed).

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    # -- fitting -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not 0 <= self.dropout < 1 or not 0 <= self.instance_dropout < 1:
            raise ValueError("dropout and instance_dropout must lie in [0, 1)")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("batch_size and max_epochs must be positive")
        if not 0 <= self.tol < 1:
            raise ValueError(f"tol must lie in [0, 1), got {self.tol!r}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError("validation_fraction must lie in (0, 1) when early_stopping=True")
        if self.pooling != "auto" and self.pooling not in pooling_names():
            raise ValueError(f"unknown pooling {self.pooling!r}; choose 'auto' or one of "
                             f"{pooling_names()}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not isinstance(self.restarts, (int, np.integer)) or self.restarts < 0:
            raise ValueError(f"restarts must be a non-negative integer, got {self.restarts!r}")

    def fit(self, X, y):
        """Fit the network on bags ``X`` and bag labels ``y``.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)
        y : array-like of shape (n_bags,) or (n_bags, n_outputs)

        Returns
        -------
        self
        """
        self._check_params()
        bags = check_bags(X, accept_sparse=True)
        y = check_bag_targets(y, len(bags), self._task)
        device = resolve_device(self.device)
        targets, n_outputs = self._encode_targets(y)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        ids = np.arange(len(bags))
        val_ids = None
        if self.early_stopping and len(bags) >= 10:
            ids, val_ids = train_test_split(
                ids, test_size=self.validation_fraction, random_state=seed,
                stratify=self._stratify(y),
            )
        self.n_features_in_ = bags[0].shape[1]
        self.n_outputs_ = n_outputs
        targets = targets.to(device)
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        train = pack_bags([bags[i] for i in ids])
        val = pack_bags([bags[i] for i in val_ids]) if val_ids is not None else None
        y_train = targets[torch.as_tensor(ids, device=device)]
        y_val = None if val_ids is None else targets[torch.as_tensor(val_ids, device=device)]
        constant = None if val is None else self._constant_loss(y_train, y_val)
        runs = []  # (network, history, pooling)
        on_device = None  # the bags on the device, made once: every candidate shares the encoder
        candidates = AUTO_POOLINGS[self._task] if self.pooling == "auto" else (self.pooling,)
        for k, pooling in enumerate(candidates):
            # Restarts go to the last candidate: under "auto", an additive pooling that learned
            # nothing makes way for the interaction pooling rather than trying again.
            for _ in range(self.restarts + 1 if k == len(candidates) - 1 else 1):
                run_seed = seed if not runs else int(
                    np.random.RandomState([seed, len(runs)]).randint(np.iinfo(np.int32).max))
                with torch.random.fork_rng(devices=fork_devices):
                    torch.manual_seed(run_seed)
                    network = self._build_network(pooling).to(device)
                    if on_device is None:
                        on_device = (self._device_bags(train, network),
                                     None if val is None else self._device_bags(val, network))
                    history = train_network(
                        network, on_device[0], y_train, self._loss, val=on_device[1], y_val=y_val,
                        learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                        batch_size=self.batch_size, max_epochs=self.max_epochs,
                        patience=self.patience, instance_dropout=self.instance_dropout,
                        lr_schedule=self.lr_schedule, tol=self.tol,
                        plateau_loss=math.inf if constant is None else _FITS * constant,
                        rng=np.random.RandomState(run_seed),
                        generator=torch.Generator().manual_seed(run_seed),
                    )
                runs.append((network, history, pooling))
                if constant is None or history.best_loss < _LEARNED * constant:
                    break
            if constant is None or _best_run(runs)[1].best_loss <= _FITS * constant:
                break
        self.network_, self.history_, self.pooling_ = _best_run(runs)
        self.n_runs_ = len(runs)
        self.n_epochs_ = self.history_.n_epochs
        return self

    def _constant_loss(self, y_train: torch.Tensor, y_val: torch.Tensor) -> float:
        """Validation loss of the best constant prediction learned from the training targets."""
        out = MILOutput(self._constant_output(y_train).expand(len(y_val), -1), None, None)
        return float(self._loss(out, y_val))

    def _build_network(self, pooling: str | None = None) -> MILNetwork:
        """The network for ``pooling`` (default: the fitted ``pooling_``)."""
        return MILNetwork(
            self.n_features_in_, self.n_outputs_, tuple(self.hidden_layer_sizes), self.activation,
            self.dropout, pooling or self.pooling_, self.pooling_kwargs,
        )

    def _device_bags(self, packed: PackedBags, network: MILNetwork | None = None) -> DeviceBags:
        """``packed`` on the network's device; sparse only where the network takes sparse rows."""
        network = network or self.network_
        device = next(network.parameters()).device
        return DeviceBags(packed, device, None if network.accepts_sparse else False)

    # -- inference ---------------------------------------------------------------------------
    def _forward(self, X) -> tuple[MILOutput, PackedBags]:
        check_is_fitted(self, "network_")
        packed = pack_bags(check_bags(X, n_features=self.n_features_in_, accept_sparse=True))
        out = predict_network(self.network_, self._device_bags(packed))
        check_finite_output(out.bag.float().cpu().numpy(), "network output")
        return MILOutput(*(None if t is None else t.float().cpu() for t in out)), packed

    def instance_weights(self, X, method: str = "auto") -> list[np.ndarray]:
        """Per-instance weights, one 1-D array per bag, each summing to 1.

        Parameters
        ----------
        X : sequence of 2-D arrays
        method : {"auto", "native", "loo"}
            ``"native"``: the pooling's own weights (attention, routing, max share) or, for
            instance-level poolings, the instance outputs; ``"loo"``: leave-one-instance-out
            change of the bag prediction, normalised; ``"auto"``: native, except for mean and
            sum pooling whose native weights are uniform, where it uses ``"loo"``.
        """
        if method not in ("auto", "native", "loo"):
            raise ValueError(f"method must be 'auto', 'native' or 'loo', got {method!r}")
        if method == "loo" or (method == "auto" and self.pooling_ in _UNINFORMATIVE_POOLINGS
                               | _MIXING_POOLINGS):
            check_is_fitted(self, "network_")
            return leave_one_out_weights(
                self._bag_scores, check_bags(X, self.n_features_in_, accept_sparse=True))
        out, packed = self._forward(X)
        if out.weights is not None:
            weights = out.weights.numpy()
        else:
            weights = self._instance_mode_weights(out, packed)
        return normalize_per_bag(packed.split(weights))

    def _fitted_state(self) -> dict:
        return {"n_features_in_": self.n_features_in_, "n_outputs_": self.n_outputs_,
                "pooling_": self.pooling_}


@register_network("MILRegressor", params=check_params, fitted=check_regressor_fitted)
class MILRegressor(RegressorMixin, _BaseMILNetwork):
    """Multi-instance regression network.

    Targets are standardised internally and predictions returned in the original units;
    2-D ``y`` gives multi-output regression. ``pooling`` names the operator (see
    :func:`milearn_core.nn.pooling_names`); the default ``"instance_mean"`` scores every instance
    and averages the scores, which makes instance contributions exact
    (:meth:`instance_contributions`).

    Parameters
    ----------
    pooling : str, default="instance_mean"
        An operator name, or ``"auto"``: train an additive pooling (``"instance_mean"``) and,
        unless its validation loss is already under a tenth of a constant prediction's, one
        whose instances see each other (``"self_attention"``, for rules over instance pairs);
        keep the one of lower validation loss (``pooling_``). Needs ``early_stopping``.
    hidden_layer_sizes : tuple of int, default=(256, 128)
    activation : str, default="relu"
    dropout, instance_dropout : float, default=0.0
    learning_rate, weight_decay : float, default=1e-2, 1e-4
        AdamW settings; ``learning_rate`` is the peak of the schedule.
    batch_size, max_epochs : int, default=32, 60
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the bags; stop after ``patience`` epochs without
        improvement and restore the best weights.
    patience : int, default=10
    pooling_kwargs : dict, optional
    random_state : int, optional
    device : {"cpu", "cuda", "auto"}
    lr_schedule : {"onecycle", "cosine", "constant"}, default="onecycle"
        Learning rate over the ``max_epochs`` (:func:`milearn_core.training.make_schedule`).
    restarts : int, default=3
        A run whose best validation loss is not under 90 % of a constant prediction's (it
        learned next to nothing, e.g. stuck on the plateau of an XOR rule) is trained again
        from another seed, up to ``restarts`` times; the run of lowest validation loss is kept.
        Under ``"auto"`` the restarts go to the last candidate.
    tol : float, default=0.0
        Once the validation loss is under a tenth of a constant prediction's (the model fits),
        an epoch resets the patience only when it improves the best loss by more than this
        share: a converged run stops instead of creeping down to ``max_epochs``. Before that
        every improvement counts (a run on a plateau is not cut short). The classifier's
        default is 0.1; for regression a tolerance cost accuracy (conformer solubility R² 0.853
        against 0.895 without it).

    Attributes
    ----------
    network_ : MILNetwork
    history_ : TrainingHistory
    pooling_ : str
        The pooling of the fitted network (``pooling``, or the choice of ``"auto"``).
    n_runs_ : int
        Networks trained (restarts and ``"auto"`` candidates included).
    y_mean_, y_scale_ : ndarray
        Target scaling.
    """

    _task = "regression"

    def __init__(self, pooling: str = "instance_mean", hidden_layer_sizes=(256, 128),
                 activation="relu", dropout=0.0, instance_dropout=0.0, learning_rate=1e-2,
                 weight_decay=1e-4, batch_size=32, max_epochs=60, early_stopping=True,
                 validation_fraction=0.1, patience=10, pooling_kwargs=None, random_state=None,
                 device="cpu", lr_schedule="onecycle", restarts=3, tol=0.0):
        super().__init__(pooling, hidden_layer_sizes, activation, dropout, instance_dropout,
                         learning_rate, weight_decay, batch_size, max_epochs, early_stopping,
                         validation_fraction, patience, pooling_kwargs, random_state, device,
                         lr_schedule, restarts, tol)

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
        self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        # An additive model (instance_sum) has no bag-level intercept to spread over instances:
        # targets are only scaled, so instance scores are the instances' whole contributions.
        self.y_mean_ = np.zeros(y2.shape[1]) if self.pooling == "instance_sum" else y2.mean(axis=0)
        scale = np.sqrt(((y2 - self.y_mean_) ** 2).mean(axis=0))
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        scaled = (y2 - self.y_mean_) / self.y_scale_
        return torch.as_tensor(scaled, dtype=torch.float32), y2.shape[1]

    def _loss(self, out, target):
        return torch.nn.functional.mse_loss(out.bag, target)

    def _constant_output(self, y_train):
        return y_train.mean(dim=0, keepdim=True)

    def _unscale(self, values: np.ndarray) -> np.ndarray:
        return values * self.y_scale_ + self.y_mean_

    def predict(self, X) -> np.ndarray:
        """Predicted bag labels in the original units."""
        out, _ = self._forward(X)
        pred = self._unscale(out.bag.numpy().astype(np.float64))
        return pred[:, 0] if self._y_ndim == 1 else pred

    def _bag_scores(self, X):
        return self.predict(X).reshape(len(X), -1)

    def instance_contributions(self, X) -> list[np.ndarray]:
        """Signed contribution of every instance to its bag's prediction, in target units.

        Only for instance-level poolings, where the bag prediction is an exact function of
        instance scores: the contributions of a bag add up to its prediction. Arrays are
        1-D for single-output models, (n_instances, n_outputs) otherwise.
        """
        check_is_fitted(self, "network_")
        if self.pooling_ not in INSTANCE_POOLINGS:
            raise ValueError(
                f"instance_contributions needs an instance-level pooling "
                f"({sorted(INSTANCE_POOLINGS)}); this model uses {self.pooling_!r}"
            )
        out, packed = self._forward(X)
        contrib = self._contributions(out, packed)
        parts = packed.split(contrib)
        return [p[:, 0] for p in parts] if self._y_ndim == 1 else parts

    def _contributions(self, out: MILOutput, packed: PackedBags) -> np.ndarray:
        scores = out.instance.numpy().astype(np.float64)
        sizes = packed.sizes[packed.bag_index][:, None]
        if self.pooling_ == "instance_mean":
            return (scores * self.y_scale_ + self.y_mean_) / sizes
        if self.pooling_ == "instance_sum":
            return scores * self.y_scale_ + self.y_mean_ / sizes
        # instance_max: the winning instance carries the bag's value, the others nothing.
        bag = out.bag.numpy()[packed.bag_index]
        winner = scores == bag
        first = np.zeros_like(winner)
        for col in range(winner.shape[1]):  # loop over outputs only, vectorised over instances
            idx = np.flatnonzero(winner[:, col])
            _, pos = np.unique(packed.bag_index[idx], return_index=True)
            first[idx[pos], col] = True
        return first * self._unscale(bag.astype(np.float64))

    def _instance_mode_weights(self, out, packed):
        return np.abs(self._contributions(out, packed)).sum(axis=1)

    def _fitted_state(self):
        return {**super()._fitted_state(), "y_mean_": self.y_mean_.tolist(),
                "y_scale_": self.y_scale_.tolist(), "_y_ndim": self._y_ndim}


@register_network("MILClassifier", params=check_params, fitted=check_classifier_fitted)
class MILClassifier(ClassifierMixin, _BaseMILNetwork):
    """Multi-instance classification network (binary or multi-class, any label type).

    Parameters are those of :class:`MILRegressor` plus ``class_weight`` (None or
    ``"balanced"``), with other defaults: ``pooling="auto"`` (``"attention"``, then
    ``"self_attention"`` when attention leaves the validation loss over a tenth of a constant
    prediction's: AND / XOR rules), ``learning_rate=3e-3`` and ``tol=0.1``.

    Attributes
    ----------
    classes_ : ndarray
        Class labels in the order of :meth:`predict_proba` columns.
    """

    _task = "classification"

    def __init__(self, pooling: str = "auto", hidden_layer_sizes=(256, 128),
                 activation="relu", dropout=0.0, instance_dropout=0.0, learning_rate=3e-3,
                 weight_decay=1e-4, batch_size=32, max_epochs=60, early_stopping=True,
                 validation_fraction=0.1, patience=10, pooling_kwargs=None, random_state=None,
                 device="cpu", class_weight: str | None = None, lr_schedule="onecycle",
                 restarts=3, tol=0.1):
        super().__init__(pooling, hidden_layer_sizes, activation, dropout, instance_dropout,
                         learning_rate, weight_decay, batch_size, max_epochs, early_stopping,
                         validation_fraction, patience, pooling_kwargs, random_state, device,
                         lr_schedule, restarts, tol)
        self.class_weight = class_weight

    def _encode_targets(self, y):
        if y.ndim != 1:
            raise ValueError(f"MILClassifier takes 1-D y, got shape {y.shape}")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"y holds a single class ({self.classes_[0]!r}); need at least two")
        encoded = encoder.transform(y)
        weights = None
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(self.classes_)),
                                           y=encoded)
        elif self.class_weight is not None:
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        self._loss_weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        return torch.as_tensor(encoded, dtype=torch.long), len(self.classes_)

    def _stratify(self, y):
        _, counts = np.unique(y, return_counts=True)
        return y if counts.min() >= 2 else None

    def _constant_output(self, y_train):
        counts = torch.bincount(y_train, minlength=self.n_outputs_).float().clamp_min(0.5)
        return torch.log(counts / counts.sum()).unsqueeze(0)

    def _loss(self, out, target):
        weights = None if self._loss_weights is None else self._loss_weights.to(out.bag.device)
        return torch.nn.functional.cross_entropy(out.bag, target, weight=weights)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        out, _ = self._forward(X)
        return torch.softmax(out.bag.double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted class labels."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _bag_scores(self, X):
        return self.predict_proba(X)

    def _instance_mode_weights(self, out, packed):
        # Weight = the instance's own probability of the bag's predicted class.
        predicted = out.bag.argmax(dim=1)[torch.as_tensor(packed.bag_index)]
        probs = torch.softmax(out.instance.double(), dim=1)
        return probs.gather(1, predicted.unsqueeze(1)).squeeze(1).numpy()

    def _fitted_state(self):
        return {**super()._fitted_state(), "classes_": self.classes_.tolist(),
                "classes_dtype": self.classes_.dtype.str,
                "_loss_weights": None if self._loss_weights is None
                else self._loss_weights.tolist()}
