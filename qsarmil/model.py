"""QSARModel: a MoleculeBagger and a milearn_core estimator, used on SMILES."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from milearn_core import (
    BagKernelClassifier,
    BagKernelRegressor,
    BagStandardScaler,
    MILClassifier,
    MILRegressor,
    StepwiseSearchCV,
    instance_weights,
    load_model,
    predicts_from_bag_sums,
)
from milearn_core.nn import INSTANCE_POOLINGS
from milearn_core.persist import ModelFileError, atomic_path, new_file_mode
from milearn_core.uncertainty import has_exact_out_of_fold

from .attribution import explanation_parts, training_reference, training_scale
from .custom_descriptors import is_custom, save_custom
from .domain import ApplicabilityDomain
from .execution import bag_on_dask
from .featurize import MoleculeBagger
from .model_folder import (
    CONFIG_FILE,
    DOMAIN_FILE,
    ESTIMATOR_FILE,
    FORMAT,
    RELIABILITY_FILE,
    VERSION,
    check_feature_counts,
    check_save_folder,
    checked_bagger,
    estimator_training_size,
    plain_file,
    read_config,
    read_domain,
    read_reliability,
    read_scaler,
)
from .reliability import Reliability, reference_rows, structure_keys
from .standardize import MoleculeError

__all__ = ["QSARModel", "check_save_folder", "detect_task"]

TASKS = ("auto", "regression", "classification")
_MAX_CLASSES_BY_GUESS = 10  # whole-number labels with 3..10 values: classes or a scale? ask


# The bag kernel model's recipe: Morgan environments plus atom pairs, both counted in the parent
# (measurements in the README). Applies to fragment bags whose descriptors are left at None.
# "morgan_atoms" rather than "morgan_parent": as accurate (leave-one-out on the 30 MoleculeACE
# training sets), and its fragments add up to the molecule, so fitting needs no cut.
REGRESSION_FRAGMENT_DESCRIPTORS = ("morgan_atoms", "atompair_parent")


def default_estimator(task: str, bag_type: str = "brics", counts: bool = True):
    """The default estimator per task and bag type (measurements in the README).

    ``counts=False``: fragment descriptors that are not all counts (RDKit 2-D, pharmacophores,
    your own): the MinMax kernel compares counts only, so the linear kernel alone (ridge on
    the summed instances, contributions still exact).
    """
    if not counts and bag_type != "conformers" and task in ("regression", "classification"):
        return (BagKernelRegressor(kernels=("linear",)) if task == "regression"
                else BagKernelClassifier(kernels=("linear",)))
    if task == "regression":
        if bag_type == "conformers":
            # A property does not grow with the number of conformers: attention picks the key
            # conformer (solubility test R² 0.86 against 0.64 for instance_sum).
            return MILRegressor(pooling="attention")
        # Fragments: kernel ridge on the bag's summed fingerprints, MinMax or linear kernel by
        # leave-one-out. MinMax beat the Tanimoto SVR on ECFP on most MoleculeACE sets; linear
        # (the additive model) wins on additive targets such as fragment-logP. Both split each
        # prediction exactly over the fragments.
        return BagKernelRegressor()
    if task == "classification":
        if bag_type == "conformers":
            return MILClassifier(pooling="attention")
        # Fragments: the kernel classifier on the same summed bags as the regression default,
        # calibrated on its leave-one-out scores (benchmarks/classification.py).
        return BagKernelClassifier()
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")


def signed_contributions(estimator, bags) -> list[np.ndarray] | None:
    """Per-instance signed contributions, or None where the estimator gives none.

    Regressors: exact contributions in target units where the estimator has them (additive
    model, instance-level poolings). Classifiers with exact contributions (the bag-kernel
    classifier): each instance's share of the log-odds of the explained class (see
    :func:`explained_class`). Other classifiers: :func:`probability_changes`.
    """
    if is_classifier(estimator) and hasattr(estimator, "instance_contributions"):
        contributions = estimator.instance_contributions(bags)
        if len(estimator.classes_) == 2:
            return contributions
        target = explained_class(np.asarray(estimator.predict_proba(bags)))
        return [c[:, t] for c, t in zip(contributions, target)]
    if is_classifier(estimator):
        return probability_changes(estimator, bags) if _probabilistic(estimator) else None
    if isinstance(estimator, MILRegressor) and estimator.pooling_ not in INSTANCE_POOLINGS:
        return None
    if not hasattr(estimator, "instance_contributions"):
        return None
    return estimator.instance_contributions(bags)


def explained_class(probabilities: np.ndarray) -> np.ndarray:
    """Column of the class each bag's explanation is about: the second (positive) class for
    binary classifiers, the predicted class otherwise."""
    if probabilities.shape[1] == 2:
        return np.ones(len(probabilities), dtype=int)
    return probabilities.argmax(axis=1)


def probability_changes(estimator, bags) -> list[np.ndarray]:
    """Leave-one-instance-out attribution for a classifier, signed.

    An instance's contribution is the probability of the explained class (see
    :func:`explained_class`) with the whole bag minus that probability with the instance left
    out: positive raises the probability, negative lowers it. It is an attribution, not an
    exact split: contributions need not add up to the probability. A one-instance bag gets its
    probability minus 1 / n_classes (the change from an uninformed guess).
    """
    bags = list(bags)
    sizes = [b.shape[0] for b in bags]
    full = np.asarray(estimator.predict_proba(bags), dtype=np.float64)
    target = explained_class(full)
    reduced = [bag[np.arange(n) != i] for bag, n in zip(bags, sizes) if n > 1 for i in range(n)]
    left_out = np.asarray(estimator.predict_proba(reduced), dtype=np.float64) if reduced else None
    out, start = [], 0
    for k, n in enumerate(sizes):
        p = full[k, target[k]]
        if n == 1:
            out.append(np.array([p - 1.0 / full.shape[1]]))
        else:
            out.append(p - left_out[start:start + n, target[k]])
            start += n
    return out


def _target_labels(target_name: str | None, units: str | None, y) -> tuple[str | None, str | None]:
    """The name and units given, else those the targets carry in ``attrs`` (pandas)."""
    if target_name is not None or units is not None:
        return target_name, units
    attrs = getattr(y, "attrs", None) or {}
    name, unit = attrs.get("target_name"), attrs.get("units")
    return (name if isinstance(name, str) else None), (unit if isinstance(unit, str) else None)


def detect_task(y) -> str:
    """The task labels ask for: "classification" or "regression".

    - Text or booleans: classification (numbers written as text are refused: convert them).
    - Numbers with exactly two distinct values, both whole (0/1, 1/2, -1/1): classification,
      as scikit-learn's ``type_of_target`` calls them binary.
    - Whole numbers with 3 to 10 distinct values (classes, or a coarse scale?): refused, with a
      message asking for ``task=``.
    - Other numbers (or numbers mixed with text, whose rows the regression checks then name):
      regression.

    Raises
    ------
    ValueError
        For the ambiguous labels above.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        return "regression"
    if y.dtype.kind == "b":
        return "classification"
    values = y.tolist()
    if y.dtype.kind in "OUS" and all(isinstance(v, (str, bool)) for v in values):
        texts = [(row, v) for row, v in enumerate(values) if isinstance(v, str)]
        if texts and all(_is_number_text(v) for _, v in texts):
            row, value = texts[0]
            raise ValueError(f"y holds numbers written as text (row {row}: {value!r}): convert "
                             f"them to numbers, or pass task='classification' or "
                             f"task='regression'")
        return "classification"
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return "regression"  # numbers and text: _regression_targets names the row
    distinct = np.unique(numbers)
    if len(distinct) < 2 or len(distinct) > _MAX_CLASSES_BY_GUESS or not np.all(
            distinct == np.round(distinct)):
        return "regression"
    if len(distinct) == 2:
        return "classification"
    shown = ", ".join(f"{v:g}" for v in distinct)
    raise ValueError(f"y holds only the whole numbers {shown}: classes or a numeric scale? Pass "
                     f"task='classification' or task='regression'")


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class QSARModel(BaseEstimator):
    """Molecules in, predictions and per-instance weights out.

    Parameters
    ----------
    bagger : MoleculeBagger, optional
        Featuriser; default :class:`MoleculeBagger` (BRICS fragments, in-parent Morgan counts,
        salts stripped to their parent molecule). With a :class:`~milearn_core.BagKernelRegressor`
        (the default regression estimator), fragment bags whose ``descriptors`` are None count
        every atom's Morgan environments and the atom pairs in the parent
        (``REGRESSION_FRAGMENT_DESCRIPTORS``).
    estimator : milearn_core estimator, optional
        Default: :func:`default_estimator` for the task.
    task : {"auto", "regression", "classification"}
        "auto": from ``estimator`` where one is given (a classifier or a regressor), else from
        the labels at fit (:func:`detect_task`: text, booleans and two whole numbers such as
        0/1 are classes; 3-10 distinct whole numbers are refused as ambiguous; other numbers
        are a regression). Before fit, scikit-learn cannot tell what an "auto" model is:
        ``cross_val_score`` then splits with ``KFold`` (not stratified) and scores with
        :meth:`score`; pass ``task="classification"`` for stratified folds.
    scale_features : bool or "auto"
        Standardise instance descriptors (over all training instances) before the estimator.
        "auto": on for conformer bags and 2-D descriptor sets other than Morgan counts (their
        scales differ by orders of magnitude), off for Morgan counts (kept sparse, and their
        unscaled counts keep additive contributions per atom environment).
    target_name, units : str, optional
        What is predicted and its units (e.g. "logS", "log mol/L"), shown on colour bars,
        legends and reports. Default: those the targets carry (a bundled data set's
        ``target`` column, see :func:`qsarmil.data.dataset_target`), else "prediction" and
        none; ``target_name_`` and ``units_`` hold what the fitted model uses.
    uncertainty : {"auto", "cv", None}
        Calibrate intervals (regression) or conformal class sets (classification) and keep
        the nearest-training-molecule table (:mod:`qsarmil.reliability`) on out-of-fold
        predictions of the training molecules. "auto": where the estimator gives exact
        leave-one-out values with its fit (the default kernel models; a few per cent of the
        fit), else none. "cv": those, or else 5-fold refits (networks, wrappers, consensus:
        about four more fits). None: no intervals, sets or neighbours.
    interval_level : float
        Default level of intervals and sets (0.9: 90 %); :meth:`predict_table` takes another.
    n_neighbours : int
        Nearest training molecules listed per prediction (0-20).
    n_jobs : int, optional
        Training on this many local processes (-1: every core) for bagging the molecules,
        and threads for the kernel model's landmark fit (above 8 000 molecules; a default
        estimator only). None: the bagger's own ``n_jobs``.
    scheduler : str or dask.distributed.Client, optional
        Bag the training molecules on a Dask cluster (``"tcp://host:8786"``; ``pip install
        qsarmil[dask]``): the same bags, failures and model as in-process. Give an address
        where scikit-learn clones the model (``cross_val_score``, searches): a client object
        cannot be deep-copied.
    search : {None, "stepwise"}
        "stepwise": tune the estimator's hyperparameters with :class:`~milearn_core.StepwiseSearchCV`
        (its default grid for the model family, 5 seeded folds) on the training molecules and
        keep the best; ``search_`` then holds the search (``cv_results_``, ``path_``). A saved
        model keeps the tuned estimator.

    Attributes
    ----------
    bagger_, estimator_ : fitted copies
    task_ : {"regression", "classification"}
        The task fitted (what a saved model stores).
    classes_ : ndarray
        Classifiers only: class labels, in the order of :meth:`predict_proba`'s columns.
    training_failures_ : list of Failure
        Training molecules that could not be bagged (left out of the fit).
    n_training_molecules_ : int or None
        Molecules the estimator was fitted on (those that could be bagged); saved, and on load
        the most molecules the saved applicability domain may hold. None only for a model
        loaded from a folder that recorded neither it nor a domain.
    domain_ : ApplicabilityDomain or None
        Fitted on the standardised training molecules (and, for regression, their targets);
        None for models saved before it existed. Adds the domain columns of
        :meth:`predict_table`.
    reliability_ : Reliability or None
        Intervals or sets, expected errors and the training molecules' table; None with
        ``uncertainty=None`` and for models saved before it existed.
    """

    def __init__(self, bagger: MoleculeBagger | None = None, estimator=None,
                 task: str = "auto", scale_features="auto", target_name: str | None = None,
                 units: str | None = None, search: str | None = None,
                 uncertainty: str | None = "auto", interval_level: float = 0.9,
                 n_neighbours: int = 3, n_jobs: int | None = None, scheduler=None):
        self.bagger = bagger
        self.estimator = estimator
        self.task = task
        self.scale_features = scale_features
        self.target_name = target_name
        self.units = units
        self.search = search
        self.uncertainty = uncertainty
        self.interval_level = interval_level
        self.n_neighbours = n_neighbours
        self.n_jobs = n_jobs
        self.scheduler = scheduler

    def _default_counts(self) -> bool:
        """Whether the default recipe's descriptors are counts (left at None, they will be)."""
        return self.bagger_.descriptors is None or self.bagger_._config()["counts_only"]

    def _wants_scaling(self) -> bool:
        if self.scale_features != "auto":
            return bool(self.scale_features)
        # 3-D and RDKit 2-D descriptors span orders of magnitude; count fingerprints do not.
        return not self.bagger_._config()["counts_only"]

    def _known_task(self) -> str | None:
        """The task, where it is known without labels (fitted, explicit, or the estimator's)."""
        if hasattr(self, "task_"):
            return self.task_
        if self.task in ("regression", "classification"):
            return self.task
        if self.estimator is not None:
            return "classification" if is_classifier(self.estimator) else "regression"
        return None

    def _resolve_task(self, y: np.ndarray) -> str:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.estimator is not None:
            implied = "classification" if is_classifier(self.estimator) else "regression"
            if self.task not in ("auto", implied):
                raise ValueError(f"task={self.task!r}, but {type(self.estimator).__name__} is "
                                 f"for {implied}")
            return implied
        return detect_task(y) if self.task == "auto" else self.task

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        task = self._known_task()
        tags.estimator_type = {"classification": "classifier", "regression": "regressor"}.get(task)
        tags.classifier_tags = ClassifierTags() if task == "classification" else None
        tags.regressor_tags = RegressorTags() if task == "regression" else None
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags

    @property
    def _estimator_type(self) -> str | None:
        return self.__sklearn_tags__().estimator_type

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        if self.task_ != "classification":
            raise AttributeError("classes_: this QSARModel is a regression model")
        return self.estimator_.classes_

    def fit(self, smiles, y, ids=None):
        """Bag the molecules and fit the estimator; molecules that fail are left out.

        Parameters
        ----------
        smiles : iterable of str or RDKit Mol (a single string is one molecule)
        y : array-like of shape (n_molecules,)
            Numbers for regression, labels for classification (see ``task``).
        ids : sequence, optional
            One ID per molecule, listed with the nearest training molecules of each
            prediction (default: "row <input row>").

        Raises
        ------
        ValueError
            No molecules, a length mismatch, labels whose task is ambiguous, or a target that
            is missing or not a finite number (the message names the input row and value).

        Notes
        -----
        An estimator that sees bags only through their sums (the default regression model;
        :func:`~milearn_core.predicts_from_bag_sums`) is fitted, and predicts, on each
        molecule's summed bag (:meth:`MoleculeBagger.transform_summed`): the same numbers
        without building the fragments. Explanations cut the molecules as before.
        """
        if self.search not in (None, "stepwise"):
            raise ValueError(f"search must be None or 'stepwise', got {self.search!r}")
        if self.uncertainty not in (None, "auto", "cv"):
            raise ValueError(f"uncertainty must be 'auto', 'cv' or None, got {self.uncertainty!r}")
        reliability = (None if self.uncertainty is None
                       else Reliability(self.interval_level, self.n_neighbours))  # checks both
        smiles = _molecule_list(smiles)
        if ids is not None and (isinstance(ids, str) or len(ids) != len(smiles)):
            raise ValueError(f"ids must hold one ID per molecule ({len(smiles)})")
        self.target_name_, self.units_ = _target_labels(self.target_name, self.units, y)
        y = _checked_targets(y, len(smiles), "auto")
        task = self._resolve_task(y)
        y = _checked_targets(y, len(smiles), task)
        self.bagger_ = clone(self.bagger) if self.bagger is not None else MoleculeBagger()
        self.estimator_ = (clone(self.estimator) if self.estimator is not None
                           else default_estimator(task, self.bagger_.bag_type,
                                                  self._default_counts()))
        if (isinstance(self.estimator_, (BagKernelRegressor, BagKernelClassifier))
                and self.bagger_.descriptors is None
                and self.bagger_.bag_type != "conformers"):
            self.bagger_.set_params(descriptors=REGRESSION_FRAGMENT_DESCRIPTORS)
        if self.n_jobs is not None:
            self.bagger_.set_params(n_jobs=self.n_jobs)
            if self.estimator is None and "n_jobs" in self.estimator_.get_params():
                self.estimator_.set_params(n_jobs=self.n_jobs)
        self.bagger_.fit(smiles)
        scaled = self._wants_scaling()
        # An estimator that sees only bag sums needs no fragments to fit: each molecule is
        # described whole (the same sums, several times faster); explanations still cut it.
        summed = self._sums_suffice(scaled)
        if self.scheduler is not None:
            bags = bag_on_dask(self.bagger_, smiles, summed, self.scheduler)
        else:
            bags = (self.bagger_.transform_summed(smiles) if summed
                    else self.bagger_.transform(smiles))
        self.scaler_ = BagStandardScaler().fit(bags) if bags and scaled else None
        bags = self._scale(bags)
        self.training_failures_ = list(self.bagger_.failures_)
        if not bags:
            first = self.training_failures_[0]
            raise MoleculeError(f"no molecule could be bagged; row {first.index}: {first.reason}")
        if self.search == "stepwise":
            # The search's folds and candidate seeds are seeded: the same data give the same
            # model. Only its best estimator is kept (and saved); the search stays in search_.
            self.search_ = StepwiseSearchCV(self.estimator_, random_state=0).fit(
                bags, y[self.bagger_.valid_index_])
            self.estimator_ = self.search_.best_estimator_
        else:
            self.estimator_.fit(bags, y[self.bagger_.valid_index_])
        self.task_ = task
        self.n_training_molecules_ = len(bags)
        self.reference_prediction_ = training_reference(self, bags)  # contributions' reference
        valid = self.bagger_.valid_index_
        mols = _domain_mols(self.bagger_.provenance_)
        self.contribution_scale_ = training_scale(self, mols)  # one colour scale per file
        # Above MAX_REFERENCE molecules the domain and the neighbour search hold a sample.
        reference = reference_rows(len(bags), exclude=getattr(self.estimator_, "landmark_rows_", None))
        self.domain_ = ApplicabilityDomain().fit([mols[i] for i in reference],
                                                 y[valid] if task == "regression" else None)
        self.reliability_ = None
        if reliability is not None and (self.uncertainty == "cv"
                                        or has_exact_out_of_fold(self.estimator_)):
            kept = valid[reference]
            ids = [f"row {i}" for i in kept] if ids is None else [str(ids[i]) for i in kept]
            texts = [s if isinstance(s, str) else Chem.MolToSmiles(s) for s in (smiles[i] for i in kept)]
            provenance = [self.bagger_.provenance_[i] for i in reference]
            self.reliability_ = reliability.fit(self.estimator_, bags, y[valid], self.domain_,
                                                structure_keys(provenance), ids, texts,
                                                rows=reference)
        return self

    def _sums_suffice(self, scaled: bool) -> bool:
        """Whether whole-molecule sums (:meth:`MoleculeBagger.transform_summed`) can stand in
        for the bags: the estimator sees only sums, and no instance scaling comes between."""
        return (not scaled and predicts_from_bag_sums(self.estimator_)
                and self.bagger_.summable())

    def _scale(self, bags):
        if self.scaler_ is None or not bags:
            return bags
        return [b.astype(np.float32) for b in self.scaler_.transform(bags)]

    def predict(self, smiles, return_interval: bool | float = False):
        """One prediction per input row.

        Regression: a float array, NaN where the molecule failed. Classification: an object
        array of class labels, None where the molecule failed.

        ``return_interval``: True (at ``interval_level``) or a level such as 0.9 also returns,
        for regression, the bounds as an array of shape (n, 2) (lower, upper); for
        classification, the conformal prediction sets as a boolean array of shape
        (n, n_classes), columns ordered as ``classes_``. NaN / False where a molecule failed.
        """
        if return_interval is False or return_interval is None:
            return self.predict_table(smiles)["prediction"].to_numpy()
        if getattr(self, "reliability_", None) is None:
            raise ValueError("this model has no intervals (fitted with uncertainty=None, or "
                             "'auto' on an estimator without exact leave-one-out values: pass "
                             "uncertainty='cv', or "
                             "saved before intervals existed)")
        level = None if return_interval is True else return_interval
        table = self.predict_table(smiles, level=level)
        predictions = table["prediction"].to_numpy()
        if self.task_ == "regression":
            return predictions, table[["prediction_lower", "prediction_upper"]].to_numpy(np.float64)
        members = table["prediction_set"].fillna("").str.split("|")
        names = [str(c) for c in self.classes_]
        sets = np.array([[name in m for name in names] for m in members], dtype=bool)
        return predictions, sets

    def _can_predict_proba(self) -> bool:
        if not hasattr(self, "estimator_"):
            return self._known_task() in ("classification", None)
        return self.task_ == "classification" and _probabilistic(self.estimator_)

    @available_if(_can_predict_proba)
    def predict_proba(self, smiles) -> np.ndarray:
        """Class probabilities, one row per input row (NaN where the molecule failed), columns
        ordered as ``classes_``. Only for classifiers whose estimator gives probabilities."""
        table = self.predict_table(smiles)
        return table[self._proba_columns()].to_numpy(dtype=np.float64)

    def _proba_columns(self) -> list[str]:
        """``proba_<class>`` per class where the estimator gives probabilities, else none."""
        if not _probabilistic(self.estimator_):
            return []
        return [f"proba_{c}" for c in self.classes_]

    def score(self, smiles, y, sample_weight=None) -> float:
        """R² (regression) or accuracy (classification) over the molecules that could be bagged.

        Molecules that fail are left out with a warning (as in :meth:`fit`).
        """
        table = self.predict_table(smiles)
        y = _checked_targets(y, len(table), self.task_)
        ok = (table.status == "ok").to_numpy()
        if not ok.any():
            raise MoleculeError(f"no molecule could be scored; row 0: {table.error.iloc[0]}")
        if not ok.all():
            rows = np.flatnonzero(~ok)
            warnings.warn(f"score: {len(rows)} molecules could not be bagged and are left out "
                          f"(rows {rows[:5].tolist()}{', ...' if len(rows) > 5 else ''})",
                          stacklevel=2)
        predicted = table.prediction.to_numpy()[ok]
        weights = None if sample_weight is None else np.asarray(sample_weight)[ok]
        if self.task_ == "classification":
            return float(accuracy_score(_plain_labels(y[ok]), _plain_labels(predicted),
                                        sample_weight=weights))
        return float(r2_score(y[ok], predicted.astype(np.float64), sample_weight=weights))

    def predict_table(self, smiles, chunk_size: int = 1000, level: float | None = None
                      ) -> pd.DataFrame:
        """A row per input: ``smiles, prediction, status, error, stripped``.

        ``status`` is "ok" or "failed" (``error`` says why: RDKit's own message for SMILES it
        cannot parse); ``stripped`` names the counter-ions and solvents removed before bagging
        (e.g. "HCl", "Na+"), empty when none were. Classifiers add a ``proba_<class>`` column
        per class after ``prediction``. Failed rows: see :meth:`predict` and
        :meth:`predict_proba`.

        Applicability domain (models with a ``domain_``; those saved before it have none and
        lack these columns), after ``stripped``: ``in_domain`` (True/False), ``max_similarity``
        (largest Tanimoto similarity to a training molecule), ``unseen_fraction`` (share of
        atom environments never seen in training) and, for regression,
        ``prediction_in_range`` (within the training targets' range); see
        :mod:`qsarmil.domain`. Failed rows have None in the flag columns and NaN in the
        numbers.

        How sure (models with a ``reliability_``, :mod:`qsarmil.reliability`): regression adds
        ``prediction_lower``, ``prediction_upper`` and ``interval_level`` (conformal interval
        at ``level``, default ``interval_level``) and ``expected_error`` (half of such
        predictions err by less) after ``stripped``; classification adds ``prediction_set``
        (the classes of the conformal set, joined by "|"), ``set_size`` and ``set_level``.
        After the domain columns: ``domain_note`` (why a molecule is out of domain, in words;
        ``in_domain`` then also requires an expected error within the training molecules'
        90th percentile), ``in_training_set`` and ``training_value`` (the same standardised
        structure was trained on, with this measured value), and for each of the
        ``n_neighbours`` nearest training molecules ``nearest_<j>_id``,
        ``nearest_<j>_similarity`` (Tanimoto) and ``nearest_<j>_value`` (measured).

        ``smiles`` may be any iterable (a single string is one molecule); it is scored in
        chunks of ``chunk_size``, so memory beyond the result table stays flat.
        """
        tables = list(self.iter_predict(smiles, chunk_size, level=level))
        if not tables:
            return self._predict([], with_weights=False, bagger=self.bagger_, level=level)[0]
        return pd.concat(tables) if len(tables) > 1 else tables[0]

    def iter_predict(self, smiles, chunk_size: int = 1000, level: float | None = None
                     ) -> Iterator[pd.DataFrame]:
        """Score an iterable of molecules chunk by chunk, yielding one table per chunk.

        Tables are as :meth:`predict_table`'s, indexed by input row (0-based, counted over the
        whole iterable). Memory stays flat whatever the length: nothing is kept between chunks.
        """
        check_is_fitted(self, "estimator_")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        bagger = clone(self.bagger_).set_params(progress=False)  # one bar per chunk would be noise
        items = iter([smiles] if isinstance(smiles, (str, Chem.Mol)) else smiles)
        start = 0
        while chunk := list(islice(items, chunk_size)):
            table, _ = self._predict(chunk, with_weights=False, bagger=bagger, level=level)
            table.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield table

    def predict_with_weights(self, smiles) -> tuple[pd.DataFrame, list[pd.DataFrame | None]]:
        """Predictions plus, per molecule, a table of its instances.

        Returns
        -------
        table : DataFrame
            As :meth:`predict_table`.
        instances : list of DataFrame or None
            Per input row (None where it failed): ``instance, atoms, smiles, weight`` and, for
            conformer bags, ``conformer_id``; plus ``contribution`` where signed contributions
            exist. Regression: exact contributions that add up to the prediction minus the
            model's intercept (e.g. ``estimator_.intercept_`` of the default fragment model).
            Classification: how much the instance raises (+) or lowers (-) the probability
            of the positive class (binary: ``classes_[1]``) or else of the predicted class,
            by leaving it out (:func:`probability_changes`; an attribution, not a sum).
        """
        return self._predict(smiles, with_weights=True)

    def _predict(self, smiles, with_weights: bool, bagger: MoleculeBagger | None = None,
                 level: float | None = None):
        """Predictions (and instance tables) for one batch of molecules, bagged by ``bagger``
        (default: ``bagger_``, whose ``provenance_`` then describes this batch)."""
        check_is_fitted(self, "estimator_")
        bagger = self.bagger_ if bagger is None else bagger
        smiles = _molecule_list(smiles)
        summed = not with_weights and self._sums_suffice(self.scaler_ is not None)
        bags = self._scale(bagger.transform_summed(smiles) if summed else bagger.transform(smiles))
        valid, failures = bagger.valid_index_, bagger.failures_
        classifier = is_classifier(self.estimator_)
        predictions = (np.full(len(smiles), None, dtype=object) if classifier
                       else np.full(len(smiles), np.nan))
        proba_columns = self._proba_columns() if classifier else []
        probabilities = np.full((len(smiles), len(proba_columns)), np.nan)
        status = np.full(len(smiles), "ok", dtype=object)
        errors = np.full(len(smiles), "", dtype=object)
        stripped = np.full(len(smiles), "", dtype=object)
        for f in failures:
            status[f.index], errors[f.index] = "failed", f.reason
        for prov in bagger.provenance_:
            stripped[prov.index] = prov.stripped
        per_molecule: list[pd.DataFrame | None] = [None] * len(smiles)
        if bags:
            predictions[valid] = self.estimator_.predict(bags)
            if proba_columns:
                probabilities[valid] = self.estimator_.predict_proba(bags)
            if with_weights:
                weights = instance_weights(self.estimator_, bags)
                contributions = signed_contributions(self.estimator_, bags)
                for k, (row, prov) in enumerate(zip(valid, bagger.provenance_)):
                    frame = pd.DataFrame({"instance": range(len(weights[k])), "atoms": prov.atoms,
                                          "smiles": prov.instance_smiles, "weight": weights[k]})
                    if prov.conformer_ids:
                        frame["conformer_id"] = prov.conformer_ids
                    if contributions is not None:
                        frame["contribution"] = contributions[k]
                    per_molecule[row] = frame
        columns = {"smiles": pd.Series(smiles, dtype=object),
                   "prediction": pd.Series(predictions, dtype=predictions.dtype)}
        columns.update(zip(proba_columns, probabilities.T))
        mols = _domain_mols(bagger.provenance_)
        found = self._search(mols)
        domain = self._domain_columns(mols, valid, predictions, found)
        sure = self._reliability_columns(bagger.provenance_, mols, valid, predictions,
                                         probabilities, domain, level, found)
        # The interval (or set) columns come before the domain's; the rest after them.
        first = list(sure)[:list(sure).index("in_domain")] if sure else []
        columns.update(status=status, error=errors, stripped=stripped)
        columns.update((c, sure.pop(c)) for c in first)
        columns.update(domain)
        columns.update(sure)
        return pd.DataFrame(columns), per_molecule

    def _search(self, mols: list) -> tuple[np.ndarray, np.ndarray] | None:
        """One search of the training molecules for a batch: the domain's nearest one and
        the reliability table's neighbours come from it."""
        domain = getattr(self, "domain_", None)
        if domain is None or not mols:
            return None
        reliability = getattr(self, "reliability_", None)
        return domain.search(mols, 1 if reliability is None else reliability.neighbours_needed())

    def _reliability_columns(self, provenance, mols: list, valid: np.ndarray,
                             predictions: np.ndarray, probabilities: np.ndarray, domain: dict,
                             level: float | None, found=None) -> dict:
        """Interval or set, expected error, domain note and neighbours for one batch (see
        :meth:`predict_table`); {} without a ``reliability_``."""
        reliability = getattr(self, "reliability_", None)
        if reliability is None or not domain:
            return {}
        level = self.interval_level if level is None else level
        n = len(predictions)
        out = {name: np.full(n, np.nan) if floats else np.full(n, None, dtype=object)
               for name, floats in reliability.column_kinds().items()}
        if len(valid):
            full_probabilities = None
            if self.task_ == "classification":
                full_probabilities = (probabilities[valid] if probabilities.shape[1]
                                      else np.eye(len(self.classes_))[np.searchsorted(
                                          self.classes_, predictions[valid].astype(self.classes_.dtype))])
            values = reliability.columns(
                mols, structure_keys(provenance), self.domain_,
                predictions[valid].astype(np.float64) if self.task_ == "regression" else None,
                full_probabilities, {k: v[valid] for k, v in domain.items()}, level,
                units=self._units() or "", found=found)
            for name in out:
                out[name][valid] = values[name]
        return out

    def _domain_columns(self, mols: list, valid: np.ndarray, predictions: np.ndarray,
                        found=None) -> dict:
        """Domain columns for one batch (see :meth:`predict_table`); {} without a domain."""
        domain = getattr(self, "domain_", None)
        if domain is None:
            return {}
        n = len(predictions)
        regression = self.task_ == "regression"
        names = ["in_domain", "max_similarity", "unseen_fraction"]
        names += ["prediction_in_range"] if regression else []
        out = {name: (np.full(n, np.nan) if name in ("max_similarity", "unseen_fraction")
                      else np.full(n, None, dtype=object)) for name in names}
        if len(valid):
            scores = domain.score(mols, predictions[valid] if regression else None, found)
            for name in names:
                out[name][valid] = scores[name].to_numpy()
        return out

    def explain(self, smiles, reference="training"):
        """Explain one molecule (a SMILES string) or several (a list).

        Returns an :class:`~qsarmil.explanation.Explanation` (or a list of them, failed rows
        included with ``status == "failed"``): the instance table plus ``.draw()``,
        ``.view3d()`` and ``.to_html()``.

        ``reference``: what exact contributions are measured from (the explanation's
        ``baseline``): ``"training"`` (default) the mean prediction over the training
        molecules, ``"intercept"`` the model's intercept, or a SMILES (several: their mean
        prediction); prediction = baseline + sum of contributions, over fragments and, where
        the model splits over atoms (:func:`qsarmil.attribution.atom_level_available`), over
        atoms (``atom_contributions``; drawings then colour atoms by default).
        """
        from .explanation import Explanation

        single = isinstance(smiles, str)
        items = [smiles] if single else list(smiles)
        table, instances = self._predict(items, with_weights=True)
        provenance = {p.index: p for p in self.bagger_.provenance_}
        target_name, units = self._contribution_scale()
        ref, per_atom = explanation_parts(self, reference, instances, provenance)
        baseline = None if ref is None else ref.value
        domain_names = [c for c in _DOMAIN_COLUMNS if c in table]
        reliability = getattr(self, "reliability_", None)
        sure_names = [c for c in reliability.column_names() if c in table and c != "in_domain"
                      ] if reliability is not None else []

        def cells(names: list[str], row: int) -> dict:
            """One row's cells as plain Python values (NumPy scalars unwrapped)."""
            return {c: getattr(v := table[c].iloc[row], "item", lambda v=v: v)() for c in names}

        out = []
        for row, frame in enumerate(instances):
            prov = provenance.get(row)
            domain = cells(domain_names, row) if domain_names and prov else None
            sure = cells(sure_names, row) if sure_names and prov else None
            out.append(Explanation(
                smiles=items[row], prediction=table.prediction.iloc[row],
                status=table.status.iloc[row], error=table.error.iloc[row],
                mol=prov.mol if prov else None, instances=frame,
                baseline=baseline if frame is not None and "contribution" in frame else None,
                baseline_name=ref.name if ref is not None else "",
                atom_contributions=per_atom.get(row),
                target_name=target_name, units=units, domain=domain, reliability=sure,
                stripped=str(table.stripped.iloc[row] or "")))
        if single and out[0].status != "ok":
            raise MoleculeError(f"row 0 ({items[0]!r}): {out[0].error}")
        return out[0] if single else out

    def compare(self, smiles_a: str, smiles_b: str, measured_a: float | None = None,
                measured_b: float | None = None, reference="training", split: str = "auto",
                charge: str = "change"):
        """Two analogues aligned on their common substructure: the predicted difference
        ``a - b`` split exactly into the changed atoms' part and the context's, the measured
        difference where given; ``.draw()`` shows both. ``split="pair"`` (the default where
        the model allows it) measures each molecule against the other, with each difference
        on the changed atoms it depends on (``charge="change"``) or left at the shared atoms
        that hold it (``"holder"``); ``"molecules"`` each from ``reference``
        (:mod:`qsarmil.pairs`)."""
        from .pairs import compare

        return compare(self, smiles_a, smiles_b, measured_a, measured_b, reference=reference,
                       split=split, charge=charge)

    def _target_name(self) -> str | None:
        return getattr(self, "target_name_", self.target_name)

    def _units(self) -> str | None:
        return getattr(self, "units_", self.units)

    def _contribution_scale(self) -> tuple[str, str]:
        """What explanations' contributions add up to, and its units: the target for
        regressors; the log-odds of a class for classifiers with exact contributions."""
        if self.task_ == "regression" or not hasattr(self.estimator_, "instance_contributions"):
            return self._target_name() or "prediction", self._units() or ""
        classes = self.estimator_.classes_
        what = f"{self._target_name()} = " if self._target_name() else "class "
        if len(classes) == 2:
            return f"log-odds of {what}{classes[1]}", ""
        return "log-odds of the predicted class", ""

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Save to the folder ``path``: ``qsarmil.json`` (settings), ``estimator.safetensors``
        and ``domain.json`` (the applicability domain, where the model has one).

        A new folder is written whole and renamed into place. An existing folder is written
        into only when it is empty or holds a model saved here before (then ``overwrite=True``
        is needed). Only the files this save writes are replaced; nothing else in the folder is
        touched or deleted: not your notes, not an ``estimator.skops`` saved by qsarmil 0.1 (no
        longer loaded), not a ``domain.json`` of the model replaced when this model has none.
        ``qsarmil.json`` names the files that belong to the model, and load reads only those.

        Raises
        ------
        FileExistsError
            If ``path`` is a file, a folder holding anything but a saved model, a saved model
            while ``overwrite`` is False, the working directory (or a folder above it), or a
            saved model where one of the names above is a link or a folder.
        ValueError
            If ``domain_`` holds more molecules than the model was trained on (a folder that
            load would refuse).
        """
        check_is_fitted(self, "estimator_")
        config = self._config()
        path = Path(path)
        target = check_save_folder(path, overwrite)
        if target is None:  # a new folder: built beside the target, renamed when complete
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp."))
            try:
                self._write_files(tmp, config)
                os.chmod(tmp, new_file_mode(directory=True))
                os.rename(tmp, path)  # fails, rather than replaces, if path appeared meanwhile
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # only our own temp folder
        else:
            self._write_files(target, config)  # replaces those files; deletes nothing

    def _config(self) -> dict:
        scaler = None if self.scaler_ is None else {
            "mean": self.scaler_.transformer_.mean_.tolist(),
            "scale": self.scaler_.transformer_.scale_.tolist()}
        domain = getattr(self, "domain_", None)
        bagger = self.bagger_.get_params()
        kinds = self.bagger_._config()["descriptors"]
        widths: dict[str, int] = {}
        if any(is_custom(k) for k in kinds):  # saved by name and width only, never as code
            bagger["descriptors"], widths = save_custom(kinds)
        return {"format": FORMAT, "version": VERSION, "task": self.task_, "scaler": scaler,
                "scale_features": self.scale_features, "bagger": bagger,
                "custom_widths": widths,
                "estimator_file": ESTIMATOR_FILE,
                "domain_file": DOMAIN_FILE if domain else None,
                "reliability_file": RELIABILITY_FILE if self._saved_reliability() else None,
                "target_name": self._target_name(), "units": self._units(),
                "n_training_molecules": self._training_size(domain),
                "reference_prediction": getattr(self, "reference_prediction_", None),
                "contribution_scale": getattr(self, "contribution_scale_", None)}

    def _training_size(self, domain: ApplicabilityDomain | None) -> int | None:
        """n_training_molecules_ to save (the domain's size where it was not recorded), checked
        against the domain's size."""
        n = getattr(self, "n_training_molecules_", None)
        held = domain.n_molecules_ if domain else None
        if n is None:
            return held
        if held is not None and held > n:
            raise ValueError(f"domain_ holds {held} molecules, more than the {n} this model was "
                             f"trained on; fit the domain on the training molecules")
        return n

    def _saved_reliability(self) -> bool:
        return (getattr(self, "reliability_", None) is not None
                and getattr(self, "domain_", None) is not None)

    def _write_files(self, folder: Path, config: dict) -> None:
        self.estimator_.save(folder / ESTIMATOR_FILE)
        if config["domain_file"] is not None:
            with atomic_path(folder / DOMAIN_FILE) as tmp:
                tmp.write_text(json.dumps(self.domain_.to_dict(), separators=(",", ":")))
        if config["reliability_file"] is not None:
            with atomic_path(folder / RELIABILITY_FILE) as tmp:
                tmp.write_text(json.dumps(self.reliability_.to_dict(), separators=(",", ":")))
        with atomic_path(folder / CONFIG_FILE) as tmp:  # written last: the folder's marker
            tmp.write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu",
             custom_descriptors: dict | None = None) -> QSARModel:
        """Load a model saved with :meth:`save`.

        A model trained with custom descriptors (callables or transformers) saved only their
        names and widths; pass the same objects again as ``custom_descriptors={name: obj}``
        (the message of a load without them names each).

        Only the files :meth:`save` writes are read, each checked (see
        :mod:`milearn_core.persist` and :meth:`ApplicabilityDomain.from_dict`); nothing in the
        folder is executed or imported. The bagger's feature count (from its settings) must
        match the estimator's, and the domain may hold at most the recorded number of training
        molecules (folders saved before version 4: the bags a bag-kernel estimator keeps), both
        checked before anything is built from them. Folders saved before version 3 load with
        ``domain_ = None``.

        Raises
        ------
        ModelFileError
            If ``path`` is not a model folder or any setting fails its check.
        """
        path = Path(path)
        config = read_config(path)
        try:
            bagger = checked_bagger(config["bagger"], config.get("custom_widths"), custom_descriptors)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: bagger settings not understood ({exc})") from None
        model = cls(bagger=clone(bagger), task=config["task"], scale_features=config["scale_features"],
                    target_name=config.get("target_name"), units=config.get("units"))
        model.bagger_ = bagger
        model.task_ = config["task"]
        model.target_name_, model.units_ = config.get("target_name"), config.get("units")
        model.estimator_ = load_model(plain_file(path, config["estimator_file"]), device=device)
        if is_classifier(model.estimator_) != (config["task"] == "classification"):
            raise ModelFileError(f"{path}: a {type(model.estimator_).__name__} cannot serve task "
                                 f"{config['task']!r}")
        check_feature_counts(path, bagger, model.estimator_)
        model.scaler_ = read_scaler(path, config["scaler"], getattr(model.estimator_, "n_features_in_", None))
        model.training_failures_ = []
        model.reference_prediction_ = config.get("reference_prediction")  # None before version 7
        model.contribution_scale_ = config.get("contribution_scale")  # None before version 8
        n_training = config.get("n_training_molecules")  # before version 4: not recorded
        if n_training is None:
            n_training = estimator_training_size(model.estimator_)
        model.domain_ = read_domain(path, config.get("domain_file"), n_training)
        model.n_training_molecules_ = (n_training if n_training is not None or model.domain_ is None
                                       else model.domain_.n_molecules_)
        model.reliability_ = read_reliability(
            path, config.get("reliability_file"), model.domain_,
            model.estimator_.classes_ if config["task"] == "classification" else None)
        if model.reliability_ is not None:  # the settings it was fitted with
            model.set_params(interval_level=model.reliability_.level,
                             n_neighbours=model.reliability_.n_neighbours)
        return model


def _molecule_list(smiles) -> list:
    """Input molecules as a list; a single SMILES string (or Mol) is one molecule."""
    if isinstance(smiles, (str, Chem.Mol)):
        return [smiles]
    if isinstance(smiles, bytes) or not isinstance(smiles, Iterable):
        raise TypeError(f"expected SMILES strings (an iterable of them), got {type(smiles).__name__}")
    return list(smiles)


def _probabilistic(estimator) -> bool:
    """Whether a fitted classifier gives probabilities (a wrapper: its inner estimator)."""
    inner = getattr(estimator, "estimator_", None)
    if inner is not None and not hasattr(inner, "predict_proba"):
        return False
    return hasattr(estimator, "predict_proba")


def _plain_labels(labels: np.ndarray) -> np.ndarray:
    """Class labels held as Python objects as a plain NumPy array (ints stay ints)."""
    return np.asarray(labels.tolist()) if labels.dtype == object else labels


def _checked_targets(y, n_molecules: int, task: str) -> np.ndarray:
    """Targets as an array, refused with the input row and value where one is unusable
    (``task`` "auto": only the checks every task shares)."""
    if isinstance(y, str) or not isinstance(y, Iterable) and np.ndim(y) == 0:
        raise TypeError(f"y must hold one target per molecule, got {type(y).__name__}")
    if hasattr(y, "to_numpy"):  # a pandas Series or DataFrame (list() would give its column names)
        y = y.to_numpy()
    y = np.asarray(list(y) if not isinstance(y, np.ndarray) else y)
    if n_molecules == 0:
        raise ValueError("no molecules to fit on")
    if len(y) != n_molecules:
        raise ValueError(f"{n_molecules} molecules but {len(y)} targets")
    if y.ndim == 2 and y.shape[1] == 1:  # a column, as from frame[["pIC50"]]
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must hold one target per molecule (shape ({n_molecules},)), got "
                         f"shape {y.shape}: a QSARModel predicts one target, fit one per column")
    for row, value in enumerate(y):
        if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
            raise ValueError(f"row {row}: target {value!r} is missing or not a finite number")
        if task == "regression":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"row {row}: target {value!r} is not a number") from None
            if not np.isfinite(number):
                raise ValueError(f"row {row}: target {value!r} is not a finite number")
    return y.astype(np.float64) if task == "regression" else y


_DOMAIN_COLUMNS = ("in_domain", "max_similarity", "unseen_fraction", "prediction_in_range")


def _domain_mols(provenance) -> list[Chem.Mol]:
    """The standardised molecules of a bagged batch, without explicit hydrogens."""
    return [Chem.RemoveHs(p.mol) if p.conformer_ids else p.mol for p in provenance]
