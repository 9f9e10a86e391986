"""Model zoo: every bag type x descriptor set x estimator, trained, ranked, saved, resumable.

:class:`ModelZoo` splits the molecules once into a training and a validation part, fits one
:class:`~qsarmil.model.QSARModel` per combination on the training part, scores it on the
validation part (and, where ground-truth key atoms are given, measures KID), saves it with
:meth:`QSARModel.save` and ranks all of them in one table. Its best models feed a consensus
(:meth:`ModelZoo.top_models`, :meth:`ModelZoo.consensus_predict`).

Folder layout::

    zoo/
      zoo.json              data fingerprint, split and task (a rerun on other data is refused)
      models/<name>/        one saved QSARModel per combination (atomic: built aside, renamed)
      records/<name>.json   its table row, written (atomically) after the model
      table.csv             the ranked table of the last run

Resumable: a combination whose model folder and record are both there is loaded, not refit;
one whose model was saved but whose record was not (an interruption in between) is loaded and
scored again. Failed fits are not recorded, so a rerun retries them.

Work runs in this process (``n_jobs=1``), in local worker processes (joblib) or on a Dask
cluster (``scheduler=``, as :func:`qsarmil.scale.predict_chunks`); workers send fitted models
back and this process saves them, so workers need no shared disk. Molecules are bagged once per
bag type and descriptor set per process, not once per estimator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from milearn_core import AdditiveRegressor, BagWrapper, InstanceWrapper, MILClassifier, MILRegressor
from milearn_core.estimators import MISVM, BagKernelRegressor
from milearn_core.persist import ModelFileError, atomic_path
from milearn_core.progress import show_progress

from .featurize import MoleculeBagger
from .model import REGRESSION_FRAGMENT_DESCRIPTORS, QSARModel, detect_task

__all__ = ["ModelZoo", "default_zoo_estimators", "DEFAULT_DESCRIPTOR_SETS"]

DEFAULT_DESCRIPTOR_SETS: dict[str, dict[str, Any]] = {
    "morgan": {"descriptors": "morgan_parent"},
    "morgan_atompair": {"descriptors": REGRESSION_FRAGMENT_DESCRIPTORS},  # the default's recipe
    "pharmacophore": {"descriptors": "pharmacophore"},
    "rdkit2d": {"descriptors": "rdkit2d"},
}
_CONFORMER_DESCRIPTORS = {"shape_usrcat": {"descriptors": ("shape", "usrcat"), "n_conformers": 5,
                                           "optimize": None}}
_METRICS = {"regression": ("r2", "rmse"),
            "classification": ("balanced_accuracy", "accuracy", "roc_auc")}
_LOWER_IS_BETTER = {"rmse"}
_DENSE_ONLY = (BagWrapper, InstanceWrapper, MISVM)  # they densify bags: 32768-bit counts would not fit
_COUNTS_ONLY = (BagKernelRegressor,)  # the MinMax kernel compares nonnegative counts
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_ZOO_FILE, _TABLE_FILE = "zoo.json", "table.csv"


def default_zoo_estimators(task: str) -> dict[str, Any]:
    """The estimators a zoo tries by default, by name (seeded).

    Regression: the bag-kernel model (QSARModel's default), the additive (ridge) model,
    ``instance_mean`` and attention networks, and a random forest on mean-pooled bags.
    Classification: attention and ``instance_max`` networks, and a random forest on
    mean/std-pooled bags. The forests take dense descriptor sets only, the kernel model count
    fingerprints only.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if task == "regression":
        return {"kernel": BagKernelRegressor(), "additive": AdditiveRegressor(),
                "net_instance_mean": MILRegressor(pooling="instance_mean", random_state=0),
                "net_attention": MILRegressor(pooling="attention", random_state=0),
                "bag_rf": BagWrapper(RandomForestRegressor(200, random_state=0), pool="mean")}
    if task == "classification":
        return {"net_attention": MILClassifier(pooling="attention", random_state=0),
                "net_instance_max": MILClassifier(pooling="instance_max", random_state=0),
                "bag_rf": BagWrapper(RandomForestClassifier(200, random_state=0), pool="mean_std")}
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")


# -- bagging once per bag type and descriptor set (per process) -------------------------------

_BAG_CACHE: OrderedDict[str, tuple] = OrderedDict()
_BAG_CACHE_SIZE = 8  # train + validation of two descriptor sets, cut and summed


def _cache_key(params: dict, smiles: Sequence, summed: bool) -> str:
    settings = {k: v for k, v in params.items() if k not in ("n_jobs", "progress")}
    text = json.dumps([settings, list(map(str, smiles)), summed], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class _MemoBagger(MoleculeBagger):
    """A MoleculeBagger that remembers its last few results in this process (same settings,
    same molecules: same bags), cut or summed. Used inside the zoo only; saved models hold a
    plain bagger. ``last_bagging_``: (seconds the bags took to make, seconds spent in the call)."""

    def _transform(self, X, summed: bool) -> list:
        items = list(X)
        key = _cache_key(self.get_params(), items, summed)
        start = time.perf_counter()
        if key not in _BAG_CACHE:
            bags = super()._transform(items, summed)
            _BAG_CACHE[key] = (bags, self.provenance_, self.failures_, self.valid_index_,
                               time.perf_counter() - start)
            while len(_BAG_CACHE) > _BAG_CACHE_SIZE:
                _BAG_CACHE.popitem(last=False)
        _BAG_CACHE.move_to_end(key)
        bags, self.provenance_, self.failures_, self.valid_index_, seconds = _BAG_CACHE[key]
        self.last_bagging_ = (seconds, time.perf_counter() - start)
        return list(bags)


# -- one combination ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Combo:
    name: str
    bag_type: str
    descriptor_set: str
    bagger_params: dict
    estimator_name: str
    estimator: Any

    def fingerprint(self) -> str:
        text = json.dumps([self.bagger_params, type(self.estimator).__name__,
                           self.estimator.get_params(deep=True)], sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scores(task: str, model: QSARModel, smiles: list, y: np.ndarray) -> dict:
    """Validation metrics over the molecules that could be bagged."""
    table = model.predict_table(smiles)
    ok = (table.status == "ok").to_numpy()
    out: dict[str, float] = {"failed_validation": int((~ok).sum())}
    if task == "regression":
        pred = table.prediction.to_numpy(dtype=float)[ok]
        out.update(r2=r2_score(y[ok], pred), rmse=float(np.sqrt(mean_squared_error(y[ok], pred))))
        return out
    labels = np.asarray(table.prediction.to_numpy()[ok].tolist())
    truth = np.asarray(y[ok].tolist())
    out.update(accuracy=accuracy_score(truth, labels),
               balanced_accuracy=balanced_accuracy_score(truth, labels), roc_auc=np.nan)
    columns = [f"proba_{c}" for c in model.classes_]
    if len(model.classes_) == 2 and all(c in table for c in columns) and len(np.unique(truth)) == 2:
        out["roc_auc"] = roc_auc_score(truth == model.classes_[1], table[columns[1]].to_numpy()[ok])
    return out


def _kid(model: QSARModel, smiles: list, key_atoms: list | None, bag_type: str) -> float:
    """Share of molecules with ground truth whose top-weighted instance contains a key atom set
    (NaN without ground truth, and for conformer bags, whose every instance holds every atom)."""
    if key_atoms is None or bag_type == "conformers":
        return np.nan
    rows = [i for i, keys in enumerate(key_atoms) if keys]
    if not rows:
        return np.nan
    _, instances = model.predict_with_weights([smiles[i] for i in rows])
    hits = []
    for row, frame in zip(rows, instances):
        if frame is None:
            continue
        top = set(frame.atoms.iloc[int(np.argmax(frame.weight.to_numpy()))])
        hits.append(any(set(alt) <= top for alt in key_atoms[row]))
    return float(np.mean(hits)) if hits else np.nan


def _train_one(combo: _Combo, task: str, train: tuple, val: tuple, key_atoms: list | None) -> tuple:
    """Fit, score and measure one combination; returns (record, fitted model). Runs in workers."""
    record = {"name": combo.name, "bag_type": combo.bag_type, "descriptors": combo.descriptor_set,
              "estimator": combo.estimator_name, "fingerprint": combo.fingerprint()}
    model = QSARModel(bagger=_MemoBagger(**combo.bagger_params), estimator=clone(combo.estimator),
                      task=task)
    start = time.perf_counter()
    model.fit(train[0], train[1])  # bags as the model needs them: cut, or summed (cached)
    made, spent = model.bagger_.last_bagging_
    record["featurize_seconds"] = made
    record["fit_seconds"] = time.perf_counter() - start - spent
    record["n_train"] = len(train[0]) - len(model.training_failures_)
    record.update(_scores(task, model, val[0], val[1]))
    record["kid"] = _kid(model, val[0], key_atoms, combo.bag_type)
    plain = MoleculeBagger(**combo.bagger_params)  # what a saved model holds anyway
    model.bagger, model.bagger_ = plain, clone(plain)
    return record, model


def _checked_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} name {name!r} must be 1-80 letters, digits, '_', '.' or '-'")
    return name


def _digest(smiles: list, y: np.ndarray, extra: dict) -> str:
    text = json.dumps([list(map(str, smiles)), np.asarray(y).tolist(), extra], default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class ModelZoo:
    """Train every bag type x descriptor set x estimator combination; rank, save, resume.

    Parameters
    ----------
    folder : path
        Where models, records and the table go. Reusing it resumes (finished models are
        loaded, not refit); a folder holding a zoo trained on other data is refused.
    bag_types : sequence of str
        Any of "brics", "recap", "conformers" (conformer bags take minutes per thousand
        molecules: off by default).
    descriptor_sets : mapping of name to str, tuple or dict, optional
        Descriptor sets for fragment bags: a descriptor name (or tuple of names) or a dict of
        :class:`MoleculeBagger` settings. Default :data:`DEFAULT_DESCRIPTOR_SETS` (Morgan
        counts in the parent, the default regression recipe of every atom's Morgan
        environments with atom pairs, pharmacophore counts, RDKit 2-D).
        Conformer bags use their own (shape + USRCAT on 5 unoptimised conformers), or
        ``conformer_descriptor_sets``.
    conformer_descriptor_sets : mapping, optional
        As ``descriptor_sets``, for conformer bags.
    estimators : mapping of name to estimator, optional
        Default :func:`default_zoo_estimators` for the task. Wrappers around scikit-learn
        models (``BagWrapper``, ``InstanceWrapper``, ``MISVM``) need dense bags: they are
        skipped (status "skipped") on sparse count-fingerprint bags; ``BagKernelRegressor``
        needs count fingerprints and is skipped on other descriptor sets.
    task : {"auto", "regression", "classification"}
        "auto": from the labels (:func:`qsarmil.model.detect_task`).
    validation_fraction : float
        Share of the molecules held out for scoring (stratified for classification).
    scoring : str, optional
        Ranking metric: "r2" (default) or "rmse" for regression; "balanced_accuracy"
        (default), "accuracy" or "roc_auc" for classification.
    random_state : int
        Seed of the split.
    n_jobs : int
        Local worker processes (joblib); ignored when ``scheduler`` is given.
    scheduler : str or dask.distributed.Client, optional
        Run the combinations on this Dask cluster (as :func:`qsarmil.scale.predict_chunks`).
    progress : bool or "auto"
        Progress bar over combinations; "auto": on a terminal or in Jupyter only.
    callback : callable, optional
        Called with each finished row (a dict) in this process, after its model is saved.

    Attributes
    ----------
    table_ : DataFrame
        One row per combination, best first: rank, name, bag_type, descriptors, estimator,
        status ("trained", "loaded", "failed", "skipped"), score (the ranking metric), the
        other metrics, kid, featurize_seconds, fit_seconds, n_train, failed_validation, error.
    task_ : str
    train_index_, validation_index_ : ndarray
        Input rows of the two parts.
    """

    def __init__(self, folder: str | os.PathLike, *, bag_types: Sequence[str] = ("brics", "recap"),
                 descriptor_sets: Mapping[str, Any] | None = None,
                 conformer_descriptor_sets: Mapping[str, Any] | None = None,
                 estimators: Mapping[str, Any] | None = None, task: str = "auto",
                 validation_fraction: float = 0.2, scoring: str | None = None, random_state: int = 0,
                 n_jobs: int = 1, scheduler: Any = None, progress="auto",
                 callback: Callable[[dict], None] | None = None):
        self.folder = folder
        self.bag_types = bag_types
        self.descriptor_sets = descriptor_sets
        self.conformer_descriptor_sets = conformer_descriptor_sets
        self.estimators = estimators
        self.task = task
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.progress = progress
        self.callback = callback

    # -- settings -----------------------------------------------------------------------------
    def _combos(self, task: str) -> list[_Combo]:
        from .featurize import BAG_TYPES

        bag_types = [self.bag_types] if isinstance(self.bag_types, str) else list(self.bag_types)
        if not bag_types or any(b not in BAG_TYPES for b in bag_types):
            raise ValueError(f"bag_types must be a non-empty list drawn from {BAG_TYPES}, "
                             f"got {self.bag_types!r}")
        estimators = dict(default_zoo_estimators(task) if self.estimators is None else self.estimators)
        if not estimators:
            raise ValueError("estimators is empty: give at least one")
        combos = []
        for bag_type in dict.fromkeys(bag_types):
            conformers = bag_type == "conformers"
            sets = (self.conformer_descriptor_sets or _CONFORMER_DESCRIPTORS) if conformers else (
                self.descriptor_sets or DEFAULT_DESCRIPTOR_SETS)
            for set_name, spec in sets.items():
                params = self._bagger_params(bag_type, _checked_name(set_name, "descriptor set"), spec)
                for est_name, estimator in estimators.items():
                    _checked_name(est_name, "estimator")
                    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
                        raise TypeError(f"estimator {est_name!r} is not a scikit-learn estimator")
                    combos.append(_Combo(f"{bag_type}-{set_name}-{est_name}", bag_type, set_name,
                                         params, est_name, estimator))
        return combos

    @staticmethod
    def _bagger_params(bag_type: str, set_name: str, spec) -> dict:
        if isinstance(spec, Mapping):
            settings = dict(spec)
        elif isinstance(spec, (str, tuple, list)):
            settings = {"descriptors": spec if isinstance(spec, str) else tuple(spec)}
        else:
            raise ValueError(f"descriptor set {set_name!r}: give descriptor names or a dict of "
                             f"MoleculeBagger settings, got {spec!r}")
        bagger = MoleculeBagger(**{**settings, "bag_type": bag_type, "progress": False})
        bagger.fit([])  # checks the settings now, not after hours of training
        return bagger.get_params()

    def _checked_task(self, y) -> str:
        if self.task == "auto":
            return detect_task(y)
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'auto', 'regression' or 'classification', got {self.task!r}")
        return self.task

    def _metric(self, task: str) -> str:
        metric = self.scoring or _METRICS[task][0]
        if metric not in _METRICS[task]:
            raise ValueError(f"scoring {metric!r} does not apply to {task}; choose one of {_METRICS[task]}")
        return metric

    # -- the run ------------------------------------------------------------------------------
    def run(self, smiles: Iterable[str], y, key_atoms: Sequence | None = None) -> pd.DataFrame:
        """Train (or load) every combination and return the ranked table (also ``table_``).

        Parameters
        ----------
        smiles : iterable of str
        y : array-like of shape (n_molecules,)
        key_atoms : sequence, optional
            Ground truth for KID, per molecule: None (or empty) where there is none, else a
            list of alternative atom-index sets (indices in the molecule as bagged: salts
            stripped). A molecule counts as a hit when its top-weighted instance contains all
            atoms of one alternative. Not measured for conformer bags (every conformer holds
            every atom).

        Returns
        -------
        DataFrame
        """
        smiles = [smiles] if isinstance(smiles, str) else list(smiles)
        y = np.asarray(y)
        if len(smiles) != len(y):
            raise ValueError(f"{len(smiles)} molecules but {len(y)} targets")
        if key_atoms is not None and len(key_atoms) != len(smiles):
            raise ValueError(f"{len(smiles)} molecules but {len(key_atoms)} key_atoms entries")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        task = self._checked_task(y)
        metric = self._metric(task)
        combos = self._combos(task)
        folder = Path(self.folder)
        train_idx, val_idx = self._split(task, y)
        self._check_folder(folder, smiles, y, task, train_idx, val_idx)
        self.task_, self.train_index_, self.validation_index_ = task, train_idx, val_idx
        train = ([smiles[i] for i in train_idx], y[train_idx])
        val = ([smiles[i] for i in val_idx], y[val_idx])
        keys = None if key_atoms is None else [_alternatives(key_atoms[i]) for i in val_idx]
        rows, todo = [], []
        for combo in combos:
            row = self._finished(folder, combo, task, val, keys)
            if row is not None:
                rows.append(row)
                self._notify(row)
            elif (reason := _incompatible(combo)) is not None:
                rows.append({**_identity(combo), "status": "skipped", "error": reason})
            else:
                todo.append(combo)
        with tqdm(total=len(todo), desc="model zoo", disable=not show_progress(self.progress),
                  leave=False) as bar:
            for combo, result in self._execute(todo, task, train, val, keys):
                row = self._save(folder, combo, result)
                rows.append(row)
                bar.set_postfix_str(f"{combo.name}: {metric} {row.get(metric, np.nan):.3f}")
                bar.update(1)
                self._notify(row)
        self.table_ = _ranked(pd.DataFrame(rows), metric)
        with atomic_path(folder / _TABLE_FILE) as tmp:
            self.table_.to_csv(tmp, index=False)
        return self.table_

    def _notify(self, row: dict) -> None:
        if self.callback is not None:
            self.callback(dict(row))

    def _split(self, task: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(y))
        stratify = None
        if task == "classification":
            _, counts = np.unique(y.astype(str), return_counts=True)
            stratify = y.astype(str) if counts.min() >= 2 else None
        train, val = train_test_split(rows, test_size=self.validation_fraction,
                                      random_state=self.random_state, stratify=stratify)
        return np.sort(train), np.sort(val)

    def _check_folder(self, folder: Path, smiles, y, task, train_idx, val_idx) -> None:
        """Create the zoo folder, or check that the zoo in it was trained on the same data."""
        info = {"format": "qsarmil.ModelZoo", "version": 1, "task": task,
                "data": _digest(smiles, y, {"train": train_idx.tolist(), "validation": val_idx.tolist()}),
                "n_molecules": len(smiles), "n_validation": len(val_idx)}
        marker = folder / _ZOO_FILE
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"{folder}: exists and is not a folder")
        if marker.is_file():
            try:
                saved = json.loads(marker.read_text())
            except (OSError, ValueError) as exc:
                raise ModelFileError(f"{marker}: not a model zoo file ({exc})") from None
            if saved != info:
                raise ValueError(f"{folder} holds a zoo trained on other data, another split or "
                                 f"task; give a new folder")
            return
        if folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder}: holds files but no model zoo; give a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps(info, indent=2))

    def _finished(self, folder: Path, combo: _Combo, task: str, val: tuple, keys) -> dict | None:
        """The row of a combination finished in an earlier run, or None."""
        model_dir, record = folder / "models" / combo.name, folder / "records" / f"{combo.name}.json"
        if not (model_dir / "qsarmil.json").is_file():
            return None
        if record.is_file():
            row = json.loads(record.read_text())
            if row.get("fingerprint") != combo.fingerprint():
                raise ValueError(f"{model_dir}: saved with other settings than {combo.name!r} has now; "
                                 f"give a new folder, or remove that model")
            return {**row, "status": "loaded"}
        # Saved, but interrupted before its record: score the saved model again (fit time lost).
        model = QSARModel.load(model_dir)
        row = {**_identity(combo), "fingerprint": combo.fingerprint(), "featurize_seconds": np.nan,
               "fit_seconds": np.nan, "n_train": np.nan, **_scores(task, model, *val),
               "kid": _kid(model, val[0], keys, combo.bag_type)}
        self._write_record(record, row)
        return {**row, "status": "loaded"}

    def _execute(self, todo: list[_Combo], task, train, val, keys):
        """(combo, (record, model) or exception) per combination, in order, as they finish."""
        args = (task, train, val, keys)
        if not todo:
            return
        if self.scheduler is not None:
            yield from self._on_dask(todo, args)
            return
        from joblib import Parallel, delayed, effective_n_jobs

        if effective_n_jobs(self.n_jobs) == 1:
            for combo in todo:
                yield combo, _guarded(combo, *args)
            return
        with Parallel(n_jobs=self.n_jobs, return_as="generator") as parallel:
            results = parallel(delayed(_guarded)(combo, *args) for combo in todo)
            yield from zip(todo, results)

    def _on_dask(self, todo: list[_Combo], args: tuple):
        from .execution import dask_client, in_order

        with dask_client(self.scheduler) as client:
            shared = client.scatter(list(args), broadcast=True, hash=False)
            window = max(2, 2 * (sum(client.nthreads().values()) or 1))

            def submit(combo):
                return client.submit(_guarded_packed, combo, shared, pure=False)

            yield from zip(todo, in_order(submit, ((c,) for c in todo), window))

    def _save(self, folder: Path, combo: _Combo, result) -> dict:
        if isinstance(result, _Failure):
            return {**_identity(combo), "status": "failed", "error": result.message}
        record, model = result
        model.save(folder / "models" / combo.name)  # atomic: a new folder is renamed into place
        self._write_record(folder / "records" / f"{combo.name}.json", record)
        return {**record, "status": "trained"}

    @staticmethod
    def _write_record(path: Path, record: dict) -> None:
        clean = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(clean, indent=2, default=_json_number))

    # -- using the zoo ------------------------------------------------------------------------
    def _table(self) -> pd.DataFrame:
        if hasattr(self, "table_"):
            return self.table_
        path = Path(self.folder) / _TABLE_FILE
        if not path.is_file():
            raise ValueError(f"{self.folder}: no zoo table yet; call run() first")
        return pd.read_csv(path)

    def top_models(self, k: int = 3) -> list[QSARModel]:
        """The ``k`` best fitted models (by the ranking metric), loaded from the zoo folder.

        Raises
        ------
        ValueError
            If ``k`` is not a positive integer or the zoo has no fitted model.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        table = self._table()
        fitted = table[table.status.isin(["trained", "loaded"])]
        if fitted.empty:
            raise ValueError("the zoo has no fitted model")
        return [QSARModel.load(Path(self.folder) / "models" / name) for name in fitted.name.iloc[:k]]

    def consensus_predict(self, smiles, k: int = 3) -> np.ndarray:
        """Predictions averaged over the ``k`` best models.

        Regression: the mean of their predictions (over the models that could bag the
        molecule; NaN where none could). Classification: the class of highest mean probability
        (a model without probabilities votes with its predicted class); None where no model
        could bag the molecule.
        """
        models = self.top_models(k)
        smiles = [smiles] if isinstance(smiles, str) else list(smiles)
        if models[0].task_ == "regression":
            preds = np.vstack([m.predict(smiles).astype(float) for m in models])
            valid = np.isfinite(preds)
            total = np.where(valid, preds, 0.0).sum(axis=0)
            count = valid.sum(axis=0)
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
        classes = models[0].classes_
        total = np.zeros((len(smiles), len(classes)))
        for model in models:
            table = model.predict_table(smiles)
            columns = [f"proba_{c}" for c in classes]
            if all(c in table for c in columns):
                proba = table[columns].to_numpy(dtype=float)
            else:
                labels = table.prediction.to_numpy()
                proba = np.array([[float(lab == c) if lab is not None else np.nan for c in classes]
                                  for lab in labels])
            total += np.nan_to_num(proba, nan=0.0)
        out = np.full(len(smiles), None, dtype=object)
        seen = total.sum(axis=1) > 0
        out[seen] = classes[total[seen].argmax(axis=1)]
        return out


# -- helpers -----------------------------------------------------------------------------------

@dataclass
class _Failure:
    message: str


def _guarded(combo: _Combo, task, train, val, keys):
    """``_train_one``, with a failed fit returned as a value (one bad combination never stops
    the zoo; KeyboardInterrupt still does)."""
    try:
        return _train_one(combo, task, train, val, keys)
    except Exception as exc:
        return _Failure(f"{type(exc).__name__}: {exc}")


def _guarded_packed(combo: _Combo, args: list):
    return _guarded(combo, *args)


def _incompatible(combo: _Combo) -> str | None:
    """Why an estimator cannot take a descriptor set's bags, or None."""
    config = MoleculeBagger(**combo.bagger_params)._config()
    if isinstance(combo.estimator, _DENSE_ONLY) and config["sparse"]:
        return "needs dense bags (count fingerprints stay sparse)"
    if isinstance(combo.estimator, _COUNTS_ONLY) and not config["counts_only"]:
        return "needs nonnegative count fingerprints"
    return None


def _identity(combo: _Combo) -> dict:
    return {"name": combo.name, "bag_type": combo.bag_type, "descriptors": combo.descriptor_set,
            "estimator": combo.estimator_name}


def _alternatives(keys) -> list[tuple[int, ...]]:
    """Ground truth of one molecule as a list of alternative atom sets (empty: none)."""
    if keys is None or len(keys) == 0:
        return []
    first = next(iter(keys))
    if isinstance(first, (int, np.integer)):  # one atom set
        return [tuple(int(a) for a in keys)]
    return [tuple(int(a) for a in alt) for alt in keys if len(alt)]


def _json_number(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a zoo record")


def _ranked(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Best first (failed and skipped rows last), with a rank and the ranking metric as score."""
    table = table.copy()
    for column in ("status", "error"):
        if column not in table:
            table[column] = None
    table["metric"] = metric
    table["score"] = table[metric] if metric in table else np.nan
    fitted = table.status.isin(["trained", "loaded"])
    key = table.score.where(fitted)
    key = key if metric in _LOWER_IS_BETTER else -key
    table = table.assign(_key=key.fillna(np.inf)).sort_values(["_key", "name"], kind="stable")
    table = table.drop(columns=["_key", "fingerprint"], errors="ignore").reset_index(drop=True)
    table.insert(0, "rank", np.where(table.status.isin(["trained", "loaded"]), np.arange(1, len(table) + 1),
                                     np.nan))
    first = ["rank", "name", "bag_type", "descriptors", "estimator", "status", "metric", "score"]
    rest = [c for c in table.columns if c not in first and c != "error"]
    return table[first + rest + ["error"]]
