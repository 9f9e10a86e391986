"""Classification with QSARModel end to end: task detection, probabilities, scores, explanations,
saving, the report, and the scikit-learn protocol."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, cross_val_score

from milearn_core import BagKernelClassifier, BagWrapper, MILClassifier
from milearn_core.persist import ModelFileError
from qsarmil import MoleculeBagger, QSARModel, load_dataset
from qsarmil.data import load_chembl_sample
from qsarmil.model import default_estimator, detect_task
from qsarmil.report import render_report

CHLORO = Chem.MolFromSmarts("[Cl]")


def small_bagger() -> MoleculeBagger:
    return MoleculeBagger(morgan_size=2048, progress=False)


def logistic() -> BagWrapper:
    # Max pooling: a bag holds a chlorine environment if any fragment does.
    return BagWrapper(LogisticRegression(max_iter=1000), pool="max")


@pytest.fixture(scope="module")
def chloro():
    """Label 1 where the molecule holds chlorine: the chlorinated fragment drives the class."""
    smiles = [s for s in load_chembl_sample(400) if "." not in s]
    y = np.array([int(Chem.MolFromSmiles(s).HasSubstructMatch(CHLORO)) for s in smiles])
    model = QSARModel(bagger=small_bagger(), estimator=logistic()).fit(smiles[:300], y[:300])
    return model, smiles[300:], y[300:]


@pytest.fixture(scope="module")
def network():
    """An attention network (the default for conformer bags), fitted on text labels with
    task='auto'."""
    data = load_dataset("solubility").head(40)
    y = np.where(data.target > data.target.median(), "soluble", "insoluble")
    bagger = MoleculeBagger(morgan_size=256, progress=False)
    model = QSARModel(bagger=bagger, estimator=MILClassifier(random_state=0))
    model.fit(data.smiles, y)
    return model, list(data.smiles[:10])


# --- task detection ---------------------------------------------------------------------------

@pytest.mark.parametrize("y, task", [
    (["active", "inactive", "active"], "classification"),
    ([True, False, True], "classification"),
    (np.array([0, 1, 1, 0]), "classification"),
    ([0.0, 1.0, 1.0], "classification"),  # pandas turns 0/1 with gaps into floats
    ([-1, 1, 1], "classification"),
    ([0.5, 1.5, 0.5], "regression"),  # two values, but not whole numbers: measurements
    ([1.2, 3.4, 5.6, 7.0], "regression"),
    (list(range(20)), "regression"),  # many whole numbers: a scale
    (np.array([0.1, 0.2, ">5"], dtype=object), "regression"),  # the regression check names row 2
])
def test_detect_task(y, task):
    assert detect_task(y) == task


@pytest.mark.parametrize("y, message", [
    ([0, 1, 2, 1], r"only the whole numbers 0, 1, 2: classes or a numeric scale\? Pass "
                   r"task='classification' or task='regression'"),
    (["1.5", "2.0", "3"], r"numbers written as text \(row 0: '1.5'\)"),
])
def test_ambiguous_labels_are_refused(y, message):
    with pytest.raises(ValueError, match=message):
        detect_task(y)
    with pytest.raises(ValueError, match=message):
        QSARModel().fit(["CCO", "CCN", "CCC", "CCCl"][:len(y)], y)


def test_explicit_task_and_estimator():
    smiles, y = ["CCO", "CCN", "CCC", "CCCl"], [0, 1, 0, 1]
    assert QSARModel(task="regression").fit(smiles, y).task_ == "regression"
    assert QSARModel(estimator=logistic()).fit(smiles, y).task_ == "classification"
    with pytest.raises(ValueError, match="task='regression', but BagWrapper is for classification"):
        QSARModel(task="regression", estimator=logistic()).fit(smiles, y)
    with pytest.raises(ValueError, match="task must be one of"):
        QSARModel(task="ranking").fit(smiles, y)


def test_text_labels_fit_the_default_classifier():
    data = load_dataset("solubility").head(40)
    y = np.where(data.target > data.target.median(), "soluble", "insoluble")
    model = QSARModel(bagger=MoleculeBagger(progress=False)).fit(data.smiles, y)
    assert model.task_ == "classification" and isinstance(model.estimator_, BagKernelClassifier)
    assert model.classes_.tolist() == ["insoluble", "soluble"]
    assert set(model.predict(data.smiles)) <= {"insoluble", "soluble"}
    assert isinstance(default_estimator("classification", "conformers"), MILClassifier)


# --- probabilities, predictions and failed rows -----------------------------------------------

def test_predict_proba_rows_columns_and_failures(chloro):
    model, smiles, _ = chloro
    rows = [smiles[0], "not a smiles", smiles[1]]
    proba = model.predict_proba(rows)
    assert proba.shape == (3, 2) and np.isnan(proba[1]).all()
    np.testing.assert_allclose(proba[[0, 2]].sum(axis=1), 1)
    inner = model.estimator_.predict_proba(model.bagger_.transform([smiles[0], smiles[1]]))
    np.testing.assert_allclose(proba[[0, 2]], inner)  # columns in the order of classes_
    predicted = model.predict(rows)
    assert predicted.dtype == object and predicted[1] is None
    assert predicted[0] == model.classes_[proba[0].argmax()]
    table = model.predict_table(rows)
    # a wrapper has no leave-one-out values: no class sets under uncertainty="auto"
    assert list(table.columns) == ["smiles", "prediction", "proba_0", "proba_1", "status",
                                   "error", "stripped", "in_domain", "max_similarity",
                                   "unseen_fraction"]  # no prediction_in_range for classes
    assert table.in_domain[1] is None and np.isnan(table.max_similarity[1])
    assert table.status.tolist() == ["ok", "failed", "ok"]


def test_text_classes_failed_rows_are_none(network):
    model, smiles = network
    predicted = model.predict([smiles[0], "C1CC"])
    assert predicted[0] in model.classes_ and predicted[1] is None
    assert list(model.predict_table(smiles[:2]).columns[2:4]) == ["proba_insoluble", "proba_soluble"]


def test_regression_models_have_no_predict_proba():
    model = QSARModel(bagger=small_bagger()).fit(["CCO", "CCN", "CCC", "CCCl"], [0.1, 0.5, 0.9, 2.3])
    assert model.task_ == "regression" and not hasattr(model, "predict_proba")
    assert not hasattr(model, "classes_")
    assert "proba_0" not in model.predict_table("CCO")


# --- score, cross_val_score and the scikit-learn protocol -------------------------------------

def test_score_is_accuracy_and_leaves_out_failed_rows(chloro):
    model, smiles, y = chloro
    assert model.score(smiles, y) == pytest.approx(np.mean(model.predict(smiles) == y))
    assert model.score(smiles, y) > 0.9
    with pytest.warns(UserWarning, match=r"1 molecules could not be bagged .*rows \[1\]"):
        partial = model.score([smiles[0], "C1CC", smiles[1]], [y[0], 1, y[1]])
    assert partial == model.score(smiles[:2], y[:2])


def test_cross_val_score_without_scoring():
    smiles = [s for s in load_chembl_sample(120) if "." not in s][:90]
    y = np.array([int(Chem.MolFromSmiles(s).HasSubstructMatch(CHLORO)) for s in smiles])
    model = QSARModel(bagger=small_bagger(), estimator=logistic())
    scores = cross_val_score(model, smiles, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.6).all()  # accuracy, from QSARModel.score
    logp = np.array([Descriptors.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])
    r2 = cross_val_score(QSARModel(bagger=small_bagger()), smiles, logp, cv=3)
    assert (r2 > 0.3).all() and (r2 <= 1).all()  # R², from QSARModel.score


def test_sklearn_sees_the_task_before_fit():
    """Tags follow the known task: explicit, the estimator's, or (fitted) the detected one. An
    unfitted task='auto' model without estimator is neither, so cross-validation uses KFold."""
    y = np.array([0, 1] * 10)
    auto = QSARModel()
    assert not is_classifier(auto) and not is_regressor(auto)
    assert isinstance(check_cv(3, y, classifier=is_classifier(auto)), KFold)
    explicit = QSARModel(task="classification")
    assert is_classifier(explicit) and explicit._estimator_type == "classifier"
    assert isinstance(check_cv(3, y, classifier=is_classifier(explicit)), StratifiedKFold)
    assert is_classifier(QSARModel(estimator=logistic()))
    assert is_regressor(QSARModel(task="regression"))
    fitted = QSARModel(bagger=small_bagger(), estimator=None, task="auto")
    fitted.fit(["CCO", "CCN", "CCC", "CCCl"], [0.1, 0.5, 0.9, 2.3])
    assert is_regressor(fitted)


def test_clone_and_params():
    model = QSARModel(bagger=small_bagger(), estimator=logistic(), task="classification")
    copy = clone(model)
    assert copy.get_params()["task"] == "classification"
    assert copy.get_params()["bagger__morgan_size"] == 2048
    assert QSARModel().get_params()["task"] == "auto"
    assert copy.set_params(task="auto").task == "auto"


# --- explanations ----------------------------------------------------------------------------

def test_signed_explanation_follows_the_fragment_that_drives_the_class(chloro):
    """Binary: contributions are toward classes_[1] (chlorine present); the chlorinated
    fragment raises that probability, and more than any other fragment does."""
    model, smiles, y = chloro
    _, instances = model.predict_with_weights(smiles)
    checked = 0
    for label, frame in zip(y, instances):
        has_cl = frame.smiles.str.contains("Cl").to_numpy()
        if label != 1 or has_cl.sum() != 1:
            continue
        contribution = frame.contribution.to_numpy()
        assert contribution[has_cl][0] > 0
        assert contribution.argmax() == np.flatnonzero(has_cl)[0]
        checked += 1
    assert checked >= 5
    e = model.explain("Clc1ccc(OCCN2CCCC2)cc1")
    assert e.prediction == 1 and e.has_signed and e.baseline is None
    assert "<svg" in e.draw(signed=True)


def test_network_classifier_explains_with_contributions(network):
    model, smiles = network
    e = model.explain(smiles[0])
    proba = model.predict_proba(smiles[0])[0]
    assert e.has_signed and np.isfinite(e.instances.contribution).all()
    assert (np.abs(e.instances.contribution) <= 1).all()
    one_fragment = model.explain("CCO")  # a one-instance bag: its change from a 50/50 guess
    assert one_fragment.instances.contribution.iloc[0] == pytest.approx(
        model.predict_proba("CCO")[0, 1] - 0.5)
    assert proba.shape == (2,)


def test_report_shows_probabilities(chloro):
    model, smiles, _ = chloro
    page = render_report(model, [smiles[0], "nope"])
    assert "<th>proba_0</th><th>proba_1</th>" in page
    p1 = model.predict_proba(smiles[0])[0, 1]
    assert f"<td>{p1:.3f}</td>" in page
    assert "raise the probability of 1" in page


# --- saving ----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["chloro", "network"])
def test_classifier_round_trip(which, request, tmp_path):
    model, smiles = request.getfixturevalue(which)[:2]
    model.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "qsarmil.json").read_text())
    assert config["task"] == "classification"  # the resolved task, never "auto"
    loaded = QSARModel.load(tmp_path / "clf")
    assert loaded.task_ == "classification" and is_classifier(loaded)
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(smiles), model.predict_proba(smiles))
    np.testing.assert_array_equal(loaded.predict(smiles), model.predict(smiles))


def test_a_saved_auto_task_is_refused(chloro, tmp_path):
    model = chloro[0]
    model.save(tmp_path / "clf")
    file = tmp_path / "clf" / "qsarmil.json"
    file.write_text(file.read_text().replace('"classification"', '"auto"'))
    with pytest.raises(ModelFileError, match="unknown task 'auto'"):
        QSARModel.load(tmp_path / "clf")


# --- top-level names -------------------------------------------------------------------------

def test_top_level_names_are_lazy():
    code = ("import sys, qsarmil; heavy = {'torch', 'rdkit'} & set(sys.modules); "
            "assert not heavy, heavy; from qsarmil import QSARModel, MoleculeBagger, load_dataset; "
            "assert QSARModel.__module__ == 'qsarmil.model' and 'rdkit' in sys.modules; "
            "assert 'QSARModel' in dir(qsarmil)")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import qsarmil

        qsarmil.nothing  # noqa: B018
