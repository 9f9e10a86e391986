"""``qsarmil train`` options: --split scaffold, --oof, --target-name/--units,
--skip-bad-targets, every bad target in one run, and the note on slow fits."""

from __future__ import annotations

import json

import pytest
from cli_support import read_csv, run, write_csv

from qsarmil.batch_train import TrainingData, cv_folds, expected_time_note, scaffold_groups
from qsarmil.data import load_dataset
from qsarmil.model import QSARModel


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    data = load_dataset("solubility").head(60)
    path = tmp_path_factory.mktemp("train") / "train.csv"
    write_csv(path, [["id", "smiles", "logS"]] + [[f"M{k}", s, f"{t:.3f}"]
                                                 for k, (s, t) in enumerate(zip(data.smiles, data.target))])
    return path, data


def test_scaffold_folds_keep_each_scaffold_in_one_fold():
    data = load_dataset("solubility").head(120)
    training = TrainingData(data.smiles.tolist(), data.target.tolist(), "regression")
    groups = scaffold_groups(training.molecules)
    folds = cv_folds(training, 5, seed=0, split="scaffold")
    seen = [None] * len(groups)
    for k, (train, test) in enumerate(folds):
        assert not set(train) & set(test)
        for i in test:
            seen[i] = k
    assert None not in seen
    by_scaffold = {}
    for group, k in zip(groups, seen):
        by_scaffold.setdefault(group, set()).add(k)
    assert all(len(ks) == 1 for ks in by_scaffold.values())
    assert cv_folds(training, 5, seed=0, split="scaffold")[0][1].tolist() == folds[0][1].tolist()


def test_oof_file_has_every_row_with_its_id_and_fold(tmp_path, table, capsys):
    path, data = table
    code = run("train", path, "--target-col", "logS", "--id-col", "id", "--cv", "3", "--split",
               "scaffold", "--oof", tmp_path / "oof.csv", "--target-name", "logS", "--units",
               "log mol/L", "-q", "-o", tmp_path / "model")
    assert code == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation (scaffold split, seed 0" in out
    rows = read_csv(tmp_path / "oof.csv")
    assert rows[0] == ["id", "smiles", "target", "fold", "prediction"]
    assert [r[0] for r in rows[1:]] == [f"M{k}" for k in range(len(data))]
    assert {r[3] for r in rows[1:]} == {"1", "2", "3"}
    assert all(float(r[4]) == float(r[4]) for r in rows[1:])  # every row predicted, no NaN
    config = json.loads((tmp_path / "model" / "qsarmil.json").read_text())
    assert (config["target_name"], config["units"]) == ("logS", "log mol/L")
    explanation = QSARModel.load(tmp_path / "model").explain("CCO")
    assert explanation.target_name == "logS" and explanation.units == "log mol/L"


def test_every_bad_target_is_reported_in_one_run(tmp_path, capsys):
    rows = [["smiles", "target"], ["CCO", "1.0"], ["CCN", ""], ["CCC", "x"], ["CCCl", "2"],
            ["c1ccccc1", ">5"], ["CO", "0.5"]]
    write_csv(tmp_path / "t.csv", rows)
    assert run("train", tmp_path / "t.csv", "--task", "regression", "-q", "-o", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "3 bad rows: line 3: target is empty; line 4: target 'x' is not a number; line 6: " \
           "censored target '>5'" in err
    assert err.count("qsarmil: error:") == 1 and not (tmp_path / "m").exists()


def test_skip_bad_targets_leaves_them_out_and_lists_them(tmp_path, capsys):
    data = load_dataset("solubility").head(30)
    rows = [["smiles", "target"]] + [[s, str(t)] for s, t in zip(data.smiles, data.target)]
    rows[3][1], rows[7][1] = "", "n/a"
    write_csv(tmp_path / "t.csv", rows)
    code = run("train", tmp_path / "t.csv", "--skip-bad-targets", "--cv", "0", "-q", "-o", tmp_path / "m")
    assert code == 0
    captured = capsys.readouterr()
    assert "left out 2 rows with a bad target (--skip-bad-targets): 2 rows: line 4: target is " \
           "empty; line 8: target 'n/a' is not a number" in captured.err
    assert "trained on 28 molecules" in captured.out


def test_oof_needs_cross_validation_and_another_file(tmp_path, table, capsys):
    path, _ = table
    assert run("train", "--dataset", "solubility", "--oof", tmp_path / "o.csv", "-o", tmp_path / "m") == 2
    assert "--oof needs cross-validation" in capsys.readouterr().err
    assert run("train", path, "--target-col", "logS", "--oof", path, "-o", tmp_path / "m") == 2
    assert "is the training file" in capsys.readouterr().err


def test_slow_fits_are_announced_and_quick_ones_are_not():
    from milearn_core import BagKernelRegressor, MILClassifier, MILRegressor
    from qsarmil.featurize import MoleculeBagger

    network = QSARModel(bagger=MoleculeBagger(), estimator=MILClassifier(), uncertainty="cv")
    note = expected_time_note(network, 2651, folds=5)
    assert note.startswith("note: a neural network on 2651 molecules takes under a minute per fit")
    assert note.endswith("expect about 5 min in all")
    assert "10 fits: 5 folds, the final model and about 4 for its intervals" in note
    plain = QSARModel(bagger=MoleculeBagger(), estimator=MILClassifier())  # "auto": no refits
    assert "6 fits: 5 folds and the final model" in expected_time_note(plain, 2651, folds=5)
    kernel = QSARModel(bagger=MoleculeBagger(), estimator=BagKernelRegressor())
    assert expected_time_note(kernel, 2000, folds=5) is None
    assert "the kernel model on 40000 molecules" in expected_time_note(kernel, 40000, folds=0)
    # above 8 000 molecules the landmark fit grows about linearly, not as n²
    assert "100000 molecules takes about 5 min per fit" in expected_time_note(kernel, 100_000, folds=0)
    exact = QSARModel(bagger=MoleculeBagger(), estimator=BagKernelRegressor(exact_limit=None))
    assert "takes about 78 min per fit" in expected_time_note(exact, 100_000, folds=0)
    # conformers are embedded once for the folds and the final fit (conformer_cache)
    conformers = QSARModel(bagger=MoleculeBagger(bag_type="conformers"), estimator=MILRegressor())
    note = expected_time_note(conformers, 2000, folds=5)
    assert "making the conformers takes about 6 min, once for all fits" in note
    assert note.endswith("expect about 7 min in all")


def test_bundled_sets_carry_their_target_and_units():
    data = load_dataset("CHEMBL204_Ki")
    assert data.attrs == {"target_name": "-log10 Ki", "units": "Ki in nM; pK - 9"}
    assert load_dataset("solubility").target.attrs["units"] == "log mol/L"
    train = data[data.split == "train"].head(40)
    model = QSARModel().fit(train.smiles, train.target)
    assert (model.target_name_, model.units_) == ("-log10 Ki", "Ki in nM; pK - 9")
    assert model.target_name is None  # parameters stay as given
