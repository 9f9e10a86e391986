"""How sure: exact leave-one-out values, conformal intervals and sets, nearest training
molecules, the explained domain flag, and how all of it travels (tables, CLI, saved folders)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cli_support import read_csv, run, write_csv
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator
from sklearn.linear_model import Ridge

from milearn_core import BagKernelClassifier, BagKernelRegressor, BagWrapper
from milearn_core.persist import ModelFileError
from milearn_core.uncertainty import IntervalCalibrator, SetCalibrator, out_of_fold
from qsarmil.data import load_dataset
from qsarmil.domain import ApplicabilityDomain
from qsarmil.model import QSARModel
from qsarmil.neighbours import nearest

IBUPROFEN = "CC(C)Cc1ccc(cc1)C(C)C(=O)O"  # a solubility training molecule (measured -3.99)


@pytest.fixture(scope="module")
def solubility():
    data = load_dataset("solubility")
    return data[data.split == "train"], data[data.split == "test"]


@pytest.fixture(scope="module")
def model(solubility):
    train, _ = solubility
    return QSARModel(target_name="logS", units="log mol/L").fit(
        train.smiles, train.target, ids=[f"sol-{i}" for i in range(len(train))])


def _bags(rng, n=50):
    bags = [rng.poisson(1.0, (rng.randint(1, 4), 10)).astype(float) for _ in range(n)]
    y = np.array([b.sum(0)[:3].sum() - b.sum(0)[5] + rng.randn() * 0.3 for b in bags])
    return bags, y


# --- exact leave-one-out values ---------------------------------------------------------------

@pytest.mark.parametrize("selection_size", [None, 20])
def test_kernel_leave_one_out_predictions_match_refits(selection_size):
    """With or without a selection subset (then from the final fit's inverse diagonal), each
    training bag's stored value is what a refit without it predicts (up to the label mean,
    which the refit recomputes)."""
    bags, y = _bags(np.random.RandomState(0))
    model = BagKernelRegressor(kernels=["minmax"], selection_size=selection_size).fit(bags, y)
    refits = []
    for i in range(len(bags)):
        keep = [j for j in range(len(bags)) if j != i]
        alone = BagKernelRegressor(kernels=["minmax"], alphas=[model.alpha_], selection_size=None)
        refits.append(alone.fit([bags[j] for j in keep], y[keep]).predict([bags[i]])[0])
    assert np.abs(np.array(refits) - model.loo_predictions_).max() < 0.05 * y.std()
    assert np.corrcoef(refits, model.loo_predictions_)[0, 1] > 0.999


def test_classifier_keeps_out_of_fold_probabilities():
    bags, y = _bags(np.random.RandomState(1))
    labels = np.where(y > np.median(y), "high", "low")
    clf = BagKernelClassifier(selection_size=20).fit(bags, labels)
    assert clf.loo_proba_.shape == (len(bags), 2)
    np.testing.assert_allclose(clf.loo_proba_.sum(axis=1), 1.0)
    # out of fold: worse than in-sample, better than chance
    in_sample = clf.predict_proba(bags)[np.arange(len(bags)), (labels == "low").astype(int)]
    oof = clf.loo_proba_[np.arange(len(bags)), (labels == "low").astype(int)]
    assert oof.mean() < in_sample.mean() and oof.mean() > 0.5
    assert out_of_fold(clf, bags, labels) is not None
    np.testing.assert_array_equal(out_of_fold(clf, bags, labels), clf.loo_proba_)


def test_out_of_fold_refits_models_without_exact_values():
    bags, y = _bags(np.random.RandomState(2), n=40)
    wrapper = BagWrapper(Ridge()).fit(bags, y)
    oof = out_of_fold(wrapper, bags, y, cv=4, random_state=0)
    from sklearn.model_selection import KFold

    for train, test in KFold(4, shuffle=True, random_state=0).split(bags):
        fold = BagWrapper(Ridge()).fit([bags[i] for i in train], y[train])
        np.testing.assert_allclose(oof[test], fold.predict([bags[i] for i in test]))
    with pytest.raises(ValueError, match="at least 2 bags"):
        out_of_fold(wrapper, bags[:1], y[:1])


# --- conformal calibrators ----------------------------------------------------------------------

def test_intervals_cover_at_their_level_on_exchangeable_data():
    rng = np.random.RandomState(3)
    scale = rng.uniform(0.2, 2.0, 4000)  # a known difficulty
    residuals = rng.randn(4000) * scale
    calibrator = IntervalCalibrator().fit(residuals[:2000], scale[:2000])
    for level in (0.8, 0.9, 0.95):
        low, high = calibrator.interval(np.zeros(2000), level, scale[2000:])
        covered = np.mean((residuals[2000:] >= low) & (residuals[2000:] <= high))
        assert abs(covered - level) < 0.025
    # normalised by the right difficulty, intervals are narrower than one width for all
    plain = IntervalCalibrator().fit(residuals[:2000])
    assert np.mean(2 * calibrator.half_width(0.9, scale[2000:])) < 2 * plain.half_width(0.9)
    assert calibrator.half_width(0.999) == np.inf or len(calibrator.scores_) >= 1000
    assert IntervalCalibrator().fit([0.1, 0.2]).half_width(0.9) == np.inf  # too few to say


def test_sets_cover_every_class_at_the_level():
    rng = np.random.RandomState(4)
    codes = (rng.rand(3000) < 0.2).astype(int)  # a rare class
    p1 = np.clip(0.2 + 0.5 * codes + rng.randn(3000) * 0.25, 0.01, 0.99)
    proba = np.column_stack([1 - p1, p1])
    sets = SetCalibrator().fit(proba[:1500], codes[:1500]).predict_sets(proba[1500:], 0.9)
    for c in (0, 1):
        rows = codes[1500:] == c
        assert abs(sets[rows, c].mean() - 0.9) < 0.04


@pytest.mark.parametrize("scores", [[0.2, 0.1], [-0.1, 0.2], [0.1, float("nan")], [], [True],
                                    "0.1", [0.1] * 11])
def test_saved_interval_scores_are_checked(scores):
    with pytest.raises(ModelFileError):
        IntervalCalibrator.from_dict({"scores": scores}, max_scores=10)


def test_saved_set_scores_are_checked():
    good = SetCalibrator().fit(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 1]).to_dict()
    SetCalibrator.from_dict(good, n_classes=2, max_scores=3)
    for bad, n in ((good, 3), ({"scores": [[0.1], [1.5]]}, 2), ({"scores": [[0.1], [0.2]], "x": 1}, 2)):
        with pytest.raises(ModelFileError):
            SetCalibrator.from_dict(bad, n_classes=n, max_scores=3)
    with pytest.raises(ModelFileError, match="more than"):
        SetCalibrator.from_dict(good, n_classes=2, max_scores=2)


# --- neighbours -----------------------------------------------------------------------------------

def test_nearest_matches_rdkit_tanimoto(solubility):
    train, test = solubility
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mols_a = [Chem.MolFromSmiles(s) for s in train.smiles[:300]]
    mols_b = [Chem.MolFromSmiles(s) for s in test.smiles[:40]]
    rows = ApplicabilityDomain().fingerprint_rows  # radius 2, 2048 bits
    index, similarity = nearest(rows(mols_a), rows(mols_b), k=3)
    fps_a = [generator.GetFingerprint(m) for m in mols_a]
    for row, mol in enumerate(mols_b):
        expected = np.array(DataStructs.BulkTanimotoSimilarity(generator.GetFingerprint(mol), fps_a))
        np.testing.assert_allclose(similarity[row], np.sort(expected)[::-1][:3], atol=1e-9)
        np.testing.assert_allclose(expected[index[row]], similarity[row], atol=1e-9)
    own, own_sim = nearest(rows(mols_a), rows(mols_a), k=2, exclude_self=True)
    assert not np.any(own == np.arange(300)[:, None])


# --- the model's table ------------------------------------------------------------------------------

def test_mondrian_groups_cover_each_group_at_the_level():
    rng = np.random.RandomState(4)
    groups = rng.randint(0, 2, 6000)
    residuals = rng.randn(6000) * np.where(groups == 1, 1.0, 0.3)  # group 1 is noisier
    train, test = slice(0, 3000), slice(3000, None)
    pooled = IntervalCalibrator().fit(residuals[train])
    mondrian = IntervalCalibrator().fit(residuals[train], groups=groups[train])
    for g in (0, 1):
        inside = groups[test] == g
        r = np.abs(residuals[test][inside])
        by_group = np.mean(r <= mondrian.half_width(0.9, np.ones(inside.sum()), groups[test][inside]))
        assert abs(by_group - 0.9) < 0.03
        one_for_all = np.mean(r <= pooled.half_width(0.9))
        assert (one_for_all > 0.97) if g == 0 else (one_for_all < 0.85)  # pooled: uneven
    # a group too small for the level takes the pooled quantile
    small = IntervalCalibrator().fit([0.1, 0.2, 0.3] + [1.0] * 30, groups=[0, 0, 0] + [1] * 30)
    assert small.half_width(0.9, groups=[0])[0] == small.half_width(0.9)
    with pytest.raises(ValueError, match="nonnegative integers"):
        IntervalCalibrator().fit([0.1, 0.2], groups=[0.0, 1.0])
    with pytest.raises(ValueError, match="each with a residual"):
        IntervalCalibrator().fit([0.1, 0.2], groups=[0, 2])


def test_the_solubility_model_calibrates_per_similarity_bin(model):
    reliability = model.reliability_
    assert len(reliability.similarity_edges_) == 2  # tertiles of ~900 training molecules
    assert [len(g) >= 100 for g in reliability.intervals_.group_scores_] == [True] * 3
    assert sum(map(len, reliability.intervals_.group_scores_)) == len(reliability.intervals_.scores_)


def test_intervals_cover_the_solubility_test_split(model, solubility):
    _, test = solubility
    table = model.predict_table(test.smiles)
    y = test.target.to_numpy()
    covered = (y >= table.prediction_lower) & (y <= table.prediction_upper)
    assert 0.84 <= covered.mean() <= 0.96
    width = table.prediction_upper - table.prediction_lower
    assert width.std() > 0.05 * width.mean()  # normalised: not one width for all
    assert (table.interval_level == 0.9).all()
    narrow = model.predict_table(test.smiles, level=0.5)
    assert ((narrow.prediction_upper - narrow.prediction_lower) < width).all()
    np.testing.assert_allclose(narrow.prediction_upper - narrow.prediction, table.expected_error)
    # out-of-domain molecules get wider intervals than those in domain (median)
    inside = table.in_domain.astype(bool)
    assert np.median(width[~inside]) > np.median(width[inside])


def test_training_molecule_neighbours_and_salt_forms(model, solubility):
    train, _ = solubility
    row = int(np.flatnonzero(train.smiles.to_numpy() == IBUPROFEN)[0]) if IBUPROFEN in set(
        train.smiles) else None
    table = model.predict_table([IBUPROFEN, "[Na+].CC(C)Cc1ccc(cc1)C(C)C(=O)[O-]", "CCCCCCCCCCCCCCCCCO",
                                 "not a smiles"])
    ibu, salt, alcohol, failed = table.itertuples(index=False)
    measured = -3.99
    assert ibu.in_training_set is True and ibu.training_value == measured
    assert ibu.nearest_1_similarity == 1.0 and ibu.nearest_1_value == measured
    if row is not None:
        assert ibu.nearest_1_id == f"sol-{row}"
    assert salt.stripped == "Na+"
    # the standardised structure counts: the sodium salt is ibuprofen once stripped and neutralised
    assert salt.in_training_set is True and salt.training_value == measured
    assert alcohol.in_training_set is False and np.isnan(alcohol.training_value)
    assert alcohol.nearest_1_similarity >= alcohol.nearest_2_similarity >= alcohol.nearest_3_similarity
    assert failed.status == "failed" and failed.in_training_set is None
    assert pd.isna(failed.nearest_1_id) and pd.isna(failed.domain_note)
    assert np.isnan(failed.prediction_lower) and np.isnan(failed.nearest_1_similarity)
    e = model.explain(IBUPROFEN)
    assert "90% interval" in e.caption() and "in training set (measured -3.99)" in e.caption()


def test_domain_notes_say_why_in_words(model):
    crown = "C1COCCOCCOCCOCCOCCO1"
    table = model.predict_table([crown, "CCCCCO"])
    assert table.in_domain.tolist() == [False, True]
    note = table.domain_note[0]
    assert "atom environments never seen in training" in note
    assert table.domain_note[1] == ""
    assert "! outside domain: " + note in model.explain(crown).caption()


def test_predict_returns_intervals_and_sets(model, solubility):
    _, test = solubility
    pred, bounds = model.predict(list(test.smiles[:20]) + ["x("], return_interval=0.8)
    assert bounds.shape == (21, 2) and np.isnan(bounds[-1]).all()
    assert np.all(bounds[:20, 0] < pred[:20]) and np.all(pred[:20] < bounds[:20, 1])
    _, wide = model.predict(test.smiles[:20], return_interval=True)
    assert np.all(wide[:, 1] - wide[:, 0] > bounds[:20, 1] - bounds[:20, 0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.predict(test.smiles[:2], return_interval=1.5)
    plain = QSARModel(uncertainty=None).fit(test.smiles[:30], test.target[:30])
    assert "prediction_lower" not in plain.predict_table(["CCO"])
    with pytest.raises(ValueError, match="no intervals"):
        plain.predict(["CCO"], return_interval=True)


def test_classifier_sets_cover_and_name_their_classes(solubility):
    train, test = solubility
    cut = float(np.median(train.target))
    label = {True: "soluble", False: "insoluble"}
    clf = QSARModel(task="classification").fit(train.smiles, [label[v > cut] for v in train.target])
    table = clf.predict_table(test.smiles)
    truth = [label[v > cut] for v in test.target]
    covered = [t in s.split("|") for t, s in zip(truth, table.prediction_set)]
    assert np.mean(covered) >= 0.84
    assert set(table.set_size) <= {0, 1, 2} and (table.set_level == 0.9).all()
    _, sets = clf.predict(test.smiles[:30], return_interval=0.5)
    assert sets.shape == (30, 2) and sets.sum(axis=1).mean() < table.set_size[:30].mean() + 1e-9


def test_networks_and_wrappers_get_intervals_from_refits(solubility):
    train, test = solubility
    model = QSARModel(estimator=BagWrapper(Ridge(alpha=10.0)))
    assert model.fit(train.smiles[:200], train.target[:200]).reliability_ is None  # "auto": no LOO
    wrapped = model.set_params(uncertainty="cv").fit(train.smiles[:200], train.target[:200])
    table = wrapped.predict_table(test.smiles[:50])
    y = test.target.to_numpy()[:50]
    assert np.mean((y >= table.prediction_lower) & (y <= table.prediction_upper)) >= 0.7


# --- saved folders and the CLI ----------------------------------------------------------------------

def test_reliability_survives_save_and_load(model, solubility, tmp_path):
    _, test = solubility
    model.save(tmp_path / "m")
    loaded = QSARModel.load(tmp_path / "m")
    smiles = list(test.smiles[:30]) + [IBUPROFEN, "x("]
    assert loaded.predict_table(smiles).equals(model.predict_table(smiles))


@pytest.mark.parametrize("attack", ["ids_short", "scores_nan", "scores_unsorted", "extra_key",
                                    "k_bool", "threshold_negative", "sets_in_regressor",
                                    "huge_id", "no_domain"])
def test_tampered_reliability_files_are_refused(model, tmp_path, attack):
    folder = tmp_path / "m"
    model.save(folder)
    file = folder / "reliability.json"
    state = json.loads(file.read_text())
    if attack == "ids_short":
        state["neighbours"]["ids"] = state["neighbours"]["ids"][:-1]
    elif attack == "scores_nan":
        state["intervals"]["scores"][3] = float("nan")
    elif attack == "scores_unsorted":
        state["intervals"]["scores"][0] = 1e9
    elif attack == "extra_key":
        state["code"] = "__import__('os').system('true')"
    elif attack == "k_bool":
        state["k_difficulty"] = True
    elif attack == "threshold_negative":
        state["error_threshold"] = -1.0
    elif attack == "sets_in_regressor":
        state["sets"] = {"scores": [[0.1], [0.2]]}
    elif attack == "huge_id":
        state["neighbours"]["ids"][0] = "x" * 100_000
    if attack == "no_domain":
        config = json.loads((folder / "qsarmil.json").read_text())
        config["domain_file"] = None
        (folder / "qsarmil.json").write_text(json.dumps(config))
    else:
        file.write_text(json.dumps(state))
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


def test_oversized_reliability_file_is_refused_before_reading(model, tmp_path, monkeypatch):
    import qsarmil.model_folder as folder_module

    model.save(tmp_path / "m")
    monkeypatch.setattr(folder_module, "_MAX_DOMAIN_BYTES", 1000)
    with pytest.raises(ModelFileError, match="larger than 1000 bytes"):
        folder_module.read_reliability(tmp_path / "m", "reliability.json", model.domain_, None)


def test_cli_interval_option(model, tmp_path, capsys):
    model.save(tmp_path / "m")
    write_csv(tmp_path / "in.csv", [["id", "smiles"], ["a", "CCCCO"], ["b", "nope("]])
    assert run("predict", str(tmp_path / "m"), str(tmp_path / "in.csv"), "-o",
               str(tmp_path / "out.csv"), "--interval", "0.8", "-q") == 0
    header, *rows = read_csv(tmp_path / "out.csv")
    got = dict(zip(header, rows[0]))
    assert got["interval_level"] == "0.8" and float(got["prediction_lower"]) < float(got["prediction"])
    assert got["nearest_1_id"].startswith("sol-") and got["in_training_set"] in ("True", "False")
    assert dict(zip(header, rows[1]))["status"] == "failed"
    capsys.readouterr()
    assert run("predict", str(tmp_path / "m"), str(tmp_path / "in.csv"), "-o",
               str(tmp_path / "bad.csv"), "--interval", "1.5") == 2
    assert "--interval must lie between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


def test_report_draws_intervals_and_predicted_against_measured(model, solubility):
    from qsarmil.report import render_report

    _, test = solubility
    smiles = list(test.smiles[:12]) + ["x("]
    measured = list(test.target[:12]) + [None]
    page = render_report(model, smiles, measured=measured)
    table = model.predict_table(smiles[:12])
    inside = int(((test.target[:12].to_numpy() >= table.prediction_lower)
                  & (test.target[:12].to_numpy() <= table.prediction_upper)).sum())
    assert f"{inside} of 12 measured values" in page and "inside their 90% intervals" in page
    assert "<th>90% interval</th>" in page and "<th>nearest training molecule</th>" in page
    assert page.count("aria-label='interval ") == 12  # one error bar per scored row
    assert "predicted against measured" not in render_report(model, smiles)  # no values, no plot


def test_uncertainty_table_is_the_saved_full_run():
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    from uncertainty import markdown

    results = json.loads((root / "benchmarks" / "results" / "uncertainty.json").read_text())
    assert len(results["sets"]) == 32                              # 30 MoleculeACE + 2, one run
    assert all("mapie_cv_plus_svr" in r for r in results["sets"].values())
    assert markdown(results) == (root / "benchmarks" / "results" / "uncertainty.md").read_text()
    assert "<!-- results: uncertainty -->" in (root / "docs" / "benchmarks.md").read_text()


def test_large_training_sets_keep_a_reference_sample(monkeypatch, tmp_path):
    """Above MAX_REFERENCE molecules the domain and neighbour table hold a seeded sample;
    intervals still come from every molecule's out-of-fold error there, and files load."""
    import qsarmil.reliability as reliability_module
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger
    from qsarmil.model import QSARModel

    monkeypatch.setattr(reliability_module, "MAX_REFERENCE", 40)
    data = load_dataset("solubility").head(100)
    model = QSARModel(bagger=MoleculeBagger(progress=False)).fit(data.smiles, data.target)
    rows = reliability_module.reference_rows(100)
    assert model.domain_.n_molecules_ == len(model.reliability_.neighbours_) == 40
    assert model.reliability_.neighbours_.ids_ == [f"row {i}" for i in rows]
    table = model.predict_table(list(data.smiles[:10]))
    assert table.prediction_lower.notna().all()
    in_sample = set(rows.tolist())
    assert list(table.in_training_set) == [i in in_sample for i in range(10)]
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(QSARModel.load(tmp_path / "m").predict_table(list(data.smiles[:10])),
                                  table)


def test_a_landmark_model_keeps_its_landmarks_out_of_the_reference_sample(monkeypatch):
    """Landmarks' leave-one-out errors are pessimistic (their basis function stays): the
    calibration and neighbour sample takes the other rows."""
    import qsarmil.reliability as reliability_module
    from milearn_core import BagKernelRegressor
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger
    from qsarmil.model import QSARModel

    monkeypatch.setattr(reliability_module, "MAX_REFERENCE", 30)
    data = load_dataset("solubility").head(100)
    model = QSARModel(bagger=MoleculeBagger(progress=False),
                      estimator=BagKernelRegressor(exact_limit=50)).fit(data.smiles, data.target)
    landmarks = set(model.estimator_.landmark_rows_.tolist())
    assert len(landmarks) == 50
    held = [int(i.split()[1]) for i in model.reliability_.neighbours_.ids_]
    assert len(held) == 30 and not landmarks & set(held)
