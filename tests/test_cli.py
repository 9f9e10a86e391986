import pandas as pd
import pytest

from qsarmil.cli import main


def test_train_then_predict_keeps_every_row(tmp_path, capsys):
    data = pd.DataFrame({"smiles": ["CCO", "CCCCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O",
                                    "CCN(CC)CC", "OCC(O)CO", "c1ccccc1", "CCCCCCCC"] * 3,
                         "target": [0.1, 0.9, 1.4, 1.2, 1.4, -1.8, 2.1, 4.2] * 3})
    train_csv = tmp_path / "train.csv"
    data.to_csv(train_csv, index=False)
    main(["train", "--input", str(train_csv), "--out", str(tmp_path / "model")])
    query = pd.DataFrame({"id": [1, 2, 3, 4], "smiles": ["CCO", "not-a-smiles", None, "CCCO"]})
    query.to_csv(tmp_path / "query.csv", index=False)
    main(["predict", str(tmp_path / "model"), str(tmp_path / "query.csv"), str(tmp_path / "out.csv")])
    out = pd.read_csv(tmp_path / "out.csv")
    assert out.id.tolist() == [1, 2, 3, 4]
    assert out.status.tolist() == ["ok", "failed", "failed", "ok"]
    assert out.error.fillna("").iloc[1].startswith("RDKit cannot parse")
    assert out.prediction.notna().tolist() == [True, False, False, True]
    assert "wrote 4 rows" in capsys.readouterr().out
    main(["predict", str(tmp_path / "model"), str(tmp_path / "query.csv"), str(tmp_path / "out.xlsx")])
    # Cells read as text from the CSV stay text in the workbook.
    sheet = pd.read_excel(tmp_path / "out.xlsx", dtype=object)
    assert sheet.id.tolist() == ["1", "2", "3", "4"]
    assert sheet.status.tolist() == out.status.tolist()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_missing_column_is_a_clear_error(tmp_path):
    pd.DataFrame({"structure": ["CCO"], "target": [1.0]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(SystemExit, match=r"no SMILES column .*columns: \['structure', 'target'\]"):
        main(["train", "--input", str(tmp_path / "x.csv"), "--out", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match=r"no column 'pIC50' \(columns: \['structure', 'target'\]\)"):
        main(["train", str(tmp_path / "x.csv"), "--smiles-col", "structure", "--target-col", "pIC50",
              "-o", str(tmp_path / "m")])
