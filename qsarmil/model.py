"""QSARModel: a MoleculeBagger and a milearn_core estimator, used on SMILES."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from milearn_core import (
    AdditiveRegressor,
    BagStandardScaler,
    MILClassifier,
    MILRegressor,
    instance_weights,
    load_model,
)
from milearn_core.nn import INSTANCE_POOLINGS

from .featurize import MoleculeBagger
from .standardize import MoleculeError

__all__ = ["QSARModel"]

_FORMAT = "qsarmil.QSARModel"


def default_estimator(task: str, bag_type: str = "brics"):
    """The default estimator per task and bag type (measurements in the README)."""
    if task == "regression":
        if bag_type == "conformers":
            # A property does not grow with the number of conformers: attention picks the key
            # conformer (solubility test R² 0.86 against 0.64 for instance_sum).
            return MILRegressor(pooling="attention")
        # Fragments: intercept + additive fragment contributions, ridge in closed form. It beat
        # the neural poolings on fragment-logP (KID) and on solubility and MoleculeACE sets.
        return AdditiveRegressor()
    if task == "classification":
        return MILClassifier(pooling="attention")
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")


def signed_contributions(estimator, bags) -> list[np.ndarray] | None:
    """Per-instance contributions in target units where the estimator has exact ones."""
    if isinstance(estimator, MILRegressor) and estimator.pooling not in INSTANCE_POOLINGS:
        return None
    if not hasattr(estimator, "instance_contributions"):
        return None
    return estimator.instance_contributions(bags)


class QSARModel(BaseEstimator):
    """Molecules in, predictions and per-instance weights out.

    Parameters
    ----------
    bagger : MoleculeBagger, optional
        Featuriser; default :class:`MoleculeBagger` (BRICS fragments, in-parent Morgan counts).
    estimator : milearn_core estimator, optional
        Default: :func:`default_estimator` for ``task``.
    task : {"regression", "classification"}
    scale_features : bool or "auto"
        Standardise instance descriptors (over all training instances) before the estimator.
        "auto": on for conformer bags and 2-D descriptor sets other than Morgan counts (their
        scales differ by orders of magnitude), off for Morgan counts (kept sparse, and their
        unscaled counts keep additive contributions per atom environment).

    Attributes
    ----------
    bagger_, estimator_ : fitted copies
    training_failures_ : list of Failure
        Training molecules that could not be bagged (left out of the fit).
    """

    def __init__(self, bagger: MoleculeBagger | None = None, estimator=None,
                 task: str = "regression", scale_features="auto"):
        self.bagger = bagger
        self.estimator = estimator
        self.task = task
        self.scale_features = scale_features

    def _wants_scaling(self) -> bool:
        if self.scale_features != "auto":
            return bool(self.scale_features)
        # 3-D and RDKit 2-D descriptors span orders of magnitude; count fingerprints do not.
        return not self.bagger_._config()["counts_only"]

    def fit(self, smiles, y):
        """Bag the molecules and fit the estimator; molecules that fail are left out."""
        y = np.asarray(y)
        smiles = list(smiles)
        if len(smiles) != len(y):
            raise ValueError(f"{len(smiles)} molecules but {len(y)} labels")
        self.bagger_ = clone(self.bagger) if self.bagger is not None else MoleculeBagger()
        bags = self.bagger_.fit_transform(smiles)
        self.scaler_ = BagStandardScaler().fit(bags) if bags and self._wants_scaling() else None
        bags = self._scale(bags)
        self.training_failures_ = list(self.bagger_.failures_)
        if not bags:
            first = self.training_failures_[0]
            raise MoleculeError(f"no molecule could be bagged; row {first.index}: {first.reason}")
        self.estimator_ = (clone(self.estimator) if self.estimator is not None
                           else default_estimator(self.task, self.bagger_.bag_type))
        self.estimator_.fit(bags, y[self.bagger_.valid_index_])
        return self

    def _scale(self, bags):
        if self.scaler_ is None or not bags:
            return bags
        return [b.astype(np.float32) for b in self.scaler_.transform(bags)]

    def _bag(self, smiles):
        check_is_fitted(self, "estimator_")
        smiles = list(smiles)
        bags = self._scale(self.bagger_.transform(smiles))
        return smiles, bags, self.bagger_.valid_index_, list(self.bagger_.failures_)

    def predict(self, smiles) -> np.ndarray:
        """One prediction per input row; NaN (or None for classifiers) where bagging failed."""
        return self.predict_table(smiles)["prediction"].to_numpy()

    def predict_table(self, smiles) -> pd.DataFrame:
        """A row per input: ``smiles, prediction, status, error`` (status "ok" or "failed")."""
        table, _ = self._predict(smiles, with_weights=False)
        return table

    def predict_with_weights(self, smiles) -> tuple[pd.DataFrame, list[pd.DataFrame | None]]:
        """Predictions plus, per molecule, a table of its instances.

        Returns
        -------
        table : DataFrame
            As :meth:`predict_table`.
        instances : list of DataFrame or None
            Per input row (None where it failed): ``instance, atoms, smiles, weight`` and, for
            conformer bags, ``conformer_id``; plus ``contribution`` where the estimator gives
            signed instance contributions (they add up to the prediction minus the model's
            intercept, e.g. ``estimator_.intercept_`` of the default fragment model).
        """
        return self._predict(smiles, with_weights=True)

    def _predict(self, smiles, with_weights: bool):
        smiles, bags, valid, failures = self._bag(smiles)
        classifier = is_classifier(self.estimator_)
        predictions = (np.full(len(smiles), None, dtype=object) if classifier
                       else np.full(len(smiles), np.nan))
        status = np.full(len(smiles), "ok", dtype=object)
        errors = np.full(len(smiles), "", dtype=object)
        for f in failures:
            status[f.index], errors[f.index] = "failed", f.reason
        per_molecule: list[pd.DataFrame | None] = [None] * len(smiles)
        if bags:
            predictions[valid] = self.estimator_.predict(bags)
            if with_weights:
                weights = instance_weights(self.estimator_, bags)
                contributions = signed_contributions(self.estimator_, bags)
                for k, (row, prov) in enumerate(zip(valid, self.bagger_.provenance_)):
                    frame = pd.DataFrame({"instance": range(len(weights[k])), "atoms": prov.atoms,
                                          "smiles": prov.instance_smiles, "weight": weights[k]})
                    if prov.conformer_ids:
                        frame["conformer_id"] = prov.conformer_ids
                    if contributions is not None:
                        frame["contribution"] = contributions[k]
                    per_molecule[row] = frame
        table = pd.DataFrame({"smiles": smiles, "prediction": predictions, "status": status,
                              "error": errors})
        return table, per_molecule

    def explain(self, smiles):
        """Explain one molecule (a SMILES string) or several (a list).

        Returns an :class:`~qsarmil.explanation.Explanation` (or a list of them, failed rows
        included with ``status == "failed"``): the instance table plus ``.draw()``,
        ``.view3d()`` and ``.to_html()``.
        """
        from .explanation import Explanation

        single = isinstance(smiles, str)
        items = [smiles] if single else list(smiles)
        table, instances = self._predict(items, with_weights=True)
        provenance = {p.index: p for p in self.bagger_.provenance_}
        intercept = getattr(self.estimator_, "intercept_", None)
        baseline = float(intercept) if intercept is not None and np.ndim(intercept) == 0 else None
        out = []
        for row, frame in enumerate(instances):
            prov = provenance.get(row)
            out.append(Explanation(
                smiles=items[row], prediction=table.prediction.iloc[row],
                status=table.status.iloc[row], error=table.error.iloc[row],
                mol=prov.mol if prov else None, instances=frame,
                baseline=baseline if frame is not None and "contribution" in frame else None))
        if single and out[0].status != "ok":
            raise MoleculeError(f"row 0 ({items[0]!r}): {out[0].error}")
        return out[0] if single else out

    def save(self, path: str | os.PathLike) -> None:
        """Save to the folder ``path``: featuriser settings (JSON) + estimator (no pickle)."""
        check_is_fitted(self, "estimator_")
        path = Path(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent if path.parent.exists() else None,
                                    prefix=f".{path.name}."))
        try:
            neural = isinstance(self.estimator_, (MILRegressor, MILClassifier))
            model_file = "estimator.safetensors" if neural else "estimator.skops"
            self.estimator_.save(tmp / model_file)
            scaler = None if self.scaler_ is None else {
                "mean": self.scaler_.transformer_.mean_.tolist(),
                "scale": self.scaler_.transformer_.scale_.tolist()}
            config = {"format": _FORMAT, "version": 1, "task": self.task, "scaler": scaler,
                      "scale_features": self.scale_features,
                      "bagger": self.bagger_.get_params(), "estimator_file": model_file}
            (tmp / "qsarmil.json").write_text(json.dumps(config, indent=2))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> QSARModel:
        """Load a model saved with :meth:`save`."""
        path = Path(path)
        try:
            config = json.loads((path / "qsarmil.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a saved QSARModel ({exc})") from None
        if config.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a saved QSARModel (format {config.get('format')!r})")
        model = cls(bagger=MoleculeBagger(**config["bagger"]), task=config["task"],
                    scale_features=config.get("scale_features", "auto"))
        model.bagger_ = MoleculeBagger(**config["bagger"])
        model.scaler_ = None
        if config.get("scaler"):
            model.scaler_ = BagStandardScaler()
            model.scaler_.transformer_ = StandardScaler()
            model.scaler_.transformer_.mean_ = np.asarray(config["scaler"]["mean"])
            model.scaler_.transformer_.scale_ = np.asarray(config["scaler"]["scale"])
            model.scaler_.transformer_.n_features_in_ = len(config["scaler"]["mean"])
            model.scaler_.n_features_in_ = len(config["scaler"]["mean"])
        model.estimator_ = load_model(path / config["estimator_file"], device=device)
        model.training_failures_ = []
        return model
