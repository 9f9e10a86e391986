"""``qsarmil predict --pairs``: one analogue pair per row, every row back with the split of its
predicted difference, bad rows failed alone with the reason."""

import pytest
from cli_support import read_csv, run, write_csv
from openpyxl import load_workbook

from qsarmil.batch_pairs import PAIR_COLUMNS
from qsarmil.model import QSARModel

ROWS = [["id", "a", "b", "ya", "yb"],
        ["p1", "Cc1ccc(O)cc1", "Oc1ccccc1", "-0.62", "0.0"],
        ["p2", "CCO", "not a smiles", "1", "2"],
        ["p3", "CCCO", "CCO", "abc", "1"],
        ["p4", "CCCCO", "CCO", "", "NA"],
        ["00042", "c1ccccc1Cl", "c1ccccc1", "1e5", "-2.0"],
        ["p6", "CCO", "CCN", "1_5", "2"],
        ["p7", "CCO", "CCN", "1.7e308", "-1.7e308"]]


def test_pairs_come_back_row_for_row_with_the_split(tmp_path, small_model_dir, capsys):
    write_csv(tmp_path / "pairs.csv", ROWS)
    out = tmp_path / "out.csv"
    assert run("predict", small_model_dir, tmp_path / "pairs.csv", "-o", out,
               "--pairs", "a", "b", "--measured", "ya", "yb", "--id-col", "id") == 0
    written = read_csv(out)
    assert written[0] == ROWS[0] + PAIR_COLUMNS
    assert [r[:5] for r in written[1:]] == ROWS[1:]  # every row, every cell as written
    rows = [dict(zip(written[0], r)) for r in written[1:]]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "ok", "ok", "failed", "failed"]
    assert rows[5]["error"] == "column 'ya': '1_5' is not a finite number"  # as training reads it
    assert rows[6]["error"] == "the measured difference is too large for a number"
    assert rows[1]["error"].startswith("molecule b (not a smiles) could not be explained")
    assert rows[2]["error"] == "column 'ya': 'abc' is not a finite number"
    model = QSARModel.load(small_model_dir)
    for row, measured in ((rows[0], (-0.62, 0.0)), (rows[3], (None, None)), (rows[4], (1e5, -2.0))):
        pair = model.compare(row["a"], row["b"], *measured)
        assert float(row["predicted_difference"]) == pytest.approx(pair.predicted_difference)
        assert float(row["changed_part"]) + float(row["context_part"]) == pytest.approx(
            float(row["predicted_difference"]))
        assert float(row["changed_part"]) == pytest.approx(pair.changed_part)
        assert row["changed_atoms_a"] == ",".join(map(str, pair.changed_a))
    assert float(rows[0]["measured_difference"]) == pytest.approx(-0.62)
    assert rows[3]["measured_difference"] == ""  # not measured: no difference
    assert rows[4]["changed_atoms_a"] == "6"  # the chlorine
    summary = capsys.readouterr().out
    assert "wrote 7 rows" in summary and "4 failed" in summary and "(id p2)" in summary


def test_charge_holder_is_applied_and_recorded(tmp_path, small_model_dir):
    write_csv(tmp_path / "pairs.csv", ROWS[:2])
    out = tmp_path / "out.csv"
    assert run("predict", small_model_dir, tmp_path / "pairs.csv", "-o", out,
               "--pairs", "a", "b", "--charge", "holder") == 0
    row = dict(zip(*read_csv(out)))
    model = QSARModel.load(small_model_dir)
    held = model.compare(row["a"], row["b"], charge="holder")
    assert row["charge"] == "holder" and row["split"] == "pair"
    assert float(row["changed_part"]) == pytest.approx(held.changed_part)
    assert held.changed_part != pytest.approx(model.compare(row["a"], row["b"]).changed_part)


def test_pairs_write_xlsx(tmp_path, small_model_dir):
    write_csv(tmp_path / "pairs.csv", ROWS[:2])
    out = tmp_path / "out.xlsx"
    assert run("predict", small_model_dir, tmp_path / "pairs.csv", "-o", out, "--pairs", "a", "b") == 0
    sheet = load_workbook(out).active
    header = [c.value for c in next(sheet.iter_rows())]
    assert header == ROWS[0] + PAIR_COLUMNS and sheet.max_row == 2


@pytest.mark.parametrize("extra, message", [
    (["-o", "out.sdf", "--pairs", "a", "b"], "give a .csv, .tsv or .xlsx output"),
    (["-o", "out.csv", "--pairs", "a", "b", "--explain"], "does not combine with --explain"),
    (["-o", "out.csv", "--pairs", "a", "b", "--interval", "0.8"], "does not combine with --interval"),
    (["-o", "out.csv", "--measured", "ya", "yb"], "--measured goes with --pairs"),
    (["-o", "out.csv", "--charge", "holder"], "--charge goes with --pairs"),
    (["-o", "out.sdf", "--charge", "holder", "--explain"], "--charge goes with --pairs"),
    (["-o", "out.csv", "--pairs", "a", "x"], "no column 'x'"),
    (["-o", "out.csv", "--pairs", "a", "A"], "same column twice"),
])
def test_pair_options_are_checked(tmp_path, small_model_dir, capsys, extra, message):
    write_csv(tmp_path / "pairs.csv", ROWS)
    extra = [str(tmp_path / e) if e.startswith("out.") else e for e in extra]
    assert run("predict", small_model_dir, tmp_path / "pairs.csv", *extra) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("out.*"))


def test_pairs_refuse_a_classifier(tmp_path, capsys):
    from qsarmil.data import load_dataset

    data = load_dataset("solubility").iloc[:30]
    path = tmp_path / "clf"
    QSARModel(uncertainty=None).fit(data.smiles, (data.target > data.target.median()).astype(int)).save(path)
    write_csv(tmp_path / "pairs.csv", ROWS)
    assert run("predict", path, tmp_path / "pairs.csv", "-o", tmp_path / "o.csv", "--pairs", "a", "b") == 2
    assert "needs a regression model" in capsys.readouterr().err


def test_a_long_smiles_fails_its_row_with_a_readable_reason(tmp_path, small_model_dir):
    write_csv(tmp_path / "pairs.csv", [["a", "b"], ["CCO", "C" * 600], ["CCO", "CCN"]])
    assert run("predict", small_model_dir, tmp_path / "pairs.csv", "-o", tmp_path / "o.csv",
               "--pairs", "a", "b") == 0
    rows = read_csv(tmp_path / "o.csv")
    assert rows[1][1] == "C" * 600  # the input cell as written
    error = rows[1][-1]
    assert error.startswith("molecule b (CCCC") and "(600 characters)" in error
    assert error.endswith("600 heavy atoms, over max_heavy_atoms=500") and len(error) < 200
    assert rows[2][-2] == "ok"


def test_pairs_refuse_a_model_without_signed_contributions(tmp_path, capsys):
    from milearn_core import MILRegressor
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger

    data = load_dataset("solubility").iloc[:30]
    path = tmp_path / "attention"
    QSARModel(bagger=MoleculeBagger(descriptors=("morgan_parent",), morgan_size=256, sparse=False),
              estimator=MILRegressor(pooling="attention", max_epochs=2, random_state=0),
              uncertainty=None).fit(data.smiles, data.target).save(path)
    write_csv(tmp_path / "pairs.csv", ROWS)
    assert run("predict", path, tmp_path / "pairs.csv", "-o", tmp_path / "o.csv", "--pairs", "a", "b") == 2
    assert "cannot split a predicted difference" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_charge_is_refused_where_pairs_are_split_molecule_by_molecule(tmp_path, capsys):
    from milearn_core import MILRegressor
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger

    data = load_dataset("solubility").iloc[:30]
    path = tmp_path / "max"  # instance-level pooling: signed contributions, no atom split
    QSARModel(bagger=MoleculeBagger(descriptors=("morgan_parent",), morgan_size=256, sparse=False),
              estimator=MILRegressor(pooling="instance_max", max_epochs=2, random_state=0),
              uncertainty=None).fit(data.smiles, data.target).save(path)
    write_csv(tmp_path / "pairs.csv", ROWS[:2])
    assert run("predict", path, tmp_path / "pairs.csv", "-o", tmp_path / "o.csv", "--pairs", "a", "b",
               "--charge", "holder") == 2
    assert "drop --charge" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()
    assert run("predict", path, tmp_path / "pairs.csv", "-o", tmp_path / "o.csv", "--pairs", "a", "b") == 0
    row = dict(zip(*read_csv(tmp_path / "o.csv")))
    assert (row["status"], row["split"], row["charge"]) == ("ok", "molecules", "")


def test_closed_standard_input_is_one_line(tmp_path, small_model_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", None)  # as when started with <&-
    assert run("predict", small_model_dir, "-", "-o", tmp_path / "o.csv") == 2
    assert capsys.readouterr().err.strip() == (
        "qsarmil: error: -: there is no standard input to read (it is closed)")
