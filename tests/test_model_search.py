"""QSARModel(search="stepwise") and `qsarmil train --search stepwise`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from milearn_core import BagKernelRegressor
from qsarmil.cli import main
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel


@pytest.fixture(scope="module")
def solubility():
    data = load_dataset("solubility")
    return data[data.split == "train"].head(120), data[data.split == "test"].head(30)


def test_stepwise_search_tunes_the_default_model_reproducibly_and_saves_it(tmp_path, solubility):
    train, test = solubility
    make = lambda: QSARModel(bagger=MoleculeBagger(progress=False), search="stepwise")  # noqa: E731
    model = make().fit(train.smiles, train.target)
    assert isinstance(model.estimator_, BagKernelRegressor)
    steps = [row["param"] for row in model.search_.path_]
    assert steps[:2] == ["kernels", "alphas"]
    assert model.search_.best_params_ == make().fit(train.smiles, train.target).search_.best_params_
    model.save(tmp_path / "m")
    loaded = QSARModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(test.smiles), model.predict(test.smiles))


def test_unknown_search_is_refused(solubility):
    train, _ = solubility
    with pytest.raises(ValueError, match="search must be"):
        QSARModel(search="grid").fit(train.smiles, train.target)


def test_cli_search_flag_trains_a_tuned_model(tmp_path, solubility):
    train, _ = solubility
    train[["smiles", "target"]].head(60).to_csv(tmp_path / "train.csv", index=False)
    main(["train", str(tmp_path / "train.csv"), "--search", "stepwise", "--cv", "0", "-q",
          "-o", str(tmp_path / "model")])
    config = json.loads((tmp_path / "model" / "qsarmil.json").read_text())
    assert config["task"] == "regression"
    assert QSARModel.load(tmp_path / "model").predict(["CCO"]).shape == (1,)
