"""`qsarmil train`/`predict` on the formats chemists use: TSV, gzip, SDF, XLSX with pictures,
stdin; SMILES column detection, --id-col, --explain, classification, a light --help."""

import contextlib
import csv
import gzip
import io
import re
import subprocess
import sys
import zipfile

import openpyxl
import pytest
from cli_support import read_csv, run, write_csv
from rdkit import Chem

from qsarmil.batch_train import Steps
from qsarmil.columns import SMILES_NAMES
from qsarmil.data import load_dataset

N_TRAIN = 30




@pytest.fixture(scope="module")
def data():
    return load_dataset("solubility").iloc[:N_TRAIN]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """One model for the module, trained through the command line with 2-fold CV, quietly;
    returns its folder and what the command printed."""
    folder = tmp_path_factory.mktemp("cli")
    rows = [["ID", "SMILES", "logS"]] + [[f"S-{i:03d}", s, repr(t)]
                                         for i, (s, t) in enumerate(zip(data.smiles, data.target))]
    write_csv(folder / "train.csv", rows)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert run("train", folder / "train.csv", "--target-col", "logS", "--cv", "2", "--seed", "1",
                   "-q", "-o", folder / "model") == 0
    return folder / "model", out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dir(trained):
    return trained[0]


QUERY = [["id", "smiles", "note"], ["00042", "CCO", "NA"], ["A-2", "not-a-smiles", "1e5"],
         ["A-3", "c1ccccc1O", ""]]


# ----------------------------------------------------------------------------- formats in


def test_tsv_in_tsv_out(model_dir, tmp_path):
    write_csv(tmp_path / "q.tsv", QUERY, "\t")
    assert run("predict", model_dir, tmp_path / "q.tsv", "-o", tmp_path / "out.tsv") == 0
    out = read_csv(tmp_path / "out.tsv", "\t")
    assert [r[:3] for r in out] == QUERY
    assert [r[4] for r in out[1:]] == ["ok", "failed", "ok"]


@pytest.mark.parametrize("name,delimiter", [("q.csv.gz", ","), ("q.tsv.gz", "\t")])
def test_gzip_input(model_dir, tmp_path, name, delimiter):
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(QUERY)
    (tmp_path / name).write_bytes(gzip.compress(buf.getvalue().encode()))
    assert run("predict", model_dir, tmp_path / name, "-o", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    assert [r[:3] for r in out] == QUERY and out[1][4] == "ok"


def test_broken_gzip_is_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "q.csv.gz").write_bytes(b"smiles\nCCO\n")
    assert run("predict", model_dir, tmp_path / "q.csv.gz", "-o", tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert "not a readable gzip file" in err and len(err.strip().splitlines()) == 1


BROKEN_RECORD = ("broken\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n   0.0 C\nM  END\n"
                 ">  <ID>\nX-9\n\n>  <note>\nkept\n\n$$$$\n")


def write_sdf(path, data, gz=False):
    buf = io.StringIO()
    writer = Chem.SDWriter(buf)
    for i, smiles in enumerate(data.smiles[:3]):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", f"mol{i}")
        mol.SetProp("ID", f"00{i}")
        if i == 1:
            mol.SetProp("note", "two\nlines")
        writer.write(mol)
    writer.close()
    text = buf.getvalue() + BROKEN_RECORD
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())


@pytest.mark.parametrize("name", ["in.sdf", "in.sdf.gz"])
def test_sdf_in_keeps_properties_and_fails_broken_records(model_dir, data, tmp_path, name):
    write_sdf(tmp_path / name, data, gz=name.endswith(".gz"))
    assert run("predict", model_dir, tmp_path / name, "-o", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    assert out[0][:5] == ["ID", "note", "prediction", "status", "error"]
    assert [r[:2] for r in out[1:]] == [["000", ""], ["001", "two\nlines"], ["002", ""],
                                        ["X-9", "kept"]]
    assert [r[3] for r in out[1:]] == ["ok", "ok", "ok", "failed"]
    line = 1 + (gzip.decompress if name.endswith(".gz") else bytes)(
        (tmp_path / name).read_bytes()).decode().split("broken\n")[0].count("\n")
    assert out[4][4] == (f"record 4 (line {line}): RDKit cannot read the molblock: Atom line too "
                         "short: '   0.0 C' on line 5")
    assert out[4][2] == ""


def test_sdf_out_reads_back_with_properties(model_dir, data, tmp_path):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "--id-col", "id",
               "-o", tmp_path / "out.sdf") == 0
    mols = list(Chem.ForwardSDMolSupplier(str(tmp_path / "out.sdf"), sanitize=False))
    assert len(mols) == 3
    props = [m.GetPropsAsDict(includePrivate=False, autoConvertStrings=False) for m in mols]
    assert [p["id"] for p in props] == ["00042", "A-2", "A-3"]
    assert [p["status"] for p in props] == ["ok", "failed", "ok"]
    assert [m.GetNumAtoms() for m in mols] == [3, 0, 7]      # a failed row: empty molecule
    assert mols[0].GetProp("_Name") == "00042"
    assert float(props[0]["prediction"]) == pytest.approx(float(props[0]["prediction"]))
    # SDF in, SDF out: the molblocks pass through, the broken record becomes an empty molecule.
    write_sdf(tmp_path / "in.sdf", data)
    assert run("predict", model_dir, tmp_path / "in.sdf", "-o", tmp_path / "out2.sdf") == 0
    back = list(Chem.ForwardSDMolSupplier(str(tmp_path / "out2.sdf")))
    assert [m.GetProp("_Name") for m in back] == ["mol0", "mol1", "mol2", ""]
    assert back[3].GetNumAtoms() == 0 and back[3].GetProp("ID") == "X-9"
    assert back[1].GetProp("note") == "two\nlines"


@pytest.mark.parametrize("header,message", [("a<b>", "cannot be an SD property name"),
                                            ("", "cannot be an SD property name")])
def test_sdf_out_refuses_a_header_a_record_cannot_hold(model_dir, tmp_path, capsys, header, message):
    write_csv(tmp_path / "q.csv", [["smiles", header], ["CCO", "x"]])
    assert run("predict", model_dir, tmp_path / "q.csv", "-o", tmp_path / "out.sdf") == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.csv"]


@pytest.mark.parametrize("cell,stored", [("a\n\nb", "a\nb"), ("x\n$$$$\ny", "x\n $$$$\ny"),
                                         ("x\n$$$$ tail", "x\n $$$$ tail")])
def test_sdf_out_fails_the_row_whose_cell_a_record_cannot_hold(model_dir, tmp_path, cell, stored):
    write_csv(tmp_path / "q.csv", [["smiles", "note"], ["CCO", cell], ["CCN", "fine"]])
    assert run("predict", model_dir, tmp_path / "q.csv", "-o", tmp_path / "out.sdf") == 0
    back = list(Chem.ForwardSDMolSupplier(str(tmp_path / "out.sdf"), sanitize=False))
    assert len(back) == 2                                  # no record lost, none merged
    assert back[0].GetProp("status") == "failed" and back[0].GetProp("note") == stored
    assert "column 'note'" in back[0].GetProp("error") and back[0].GetNumAtoms() == 0
    assert back[1].GetProp("status") == "ok" and back[1].GetProp("note") == "fine"


def test_stdin(model_dir, tmp_path, monkeypatch):
    buf = io.StringIO()
    csv.writer(buf).writerows(QUERY)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buf.getvalue().encode())))
    assert run("predict", model_dir, "-", "-o", tmp_path / "out.csv") == 0
    assert [r[:3] for r in read_csv(tmp_path / "out.csv")] == QUERY


# ----------------------------------------------------------------------------- columns


@pytest.mark.parametrize("name", ["SMILES", "Smiles", "canonical_smiles", "Mol", "smi"])
def test_smiles_column_is_detected(model_dir, tmp_path, name):
    write_csv(tmp_path / "q.csv", [["id", name], ["1", "CCO"]])
    assert run("predict", model_dir, tmp_path / "q.csv", tmp_path / "out.csv") == 0  # positional
    assert read_csv(tmp_path / "out.csv")[1][3] == "ok"


def test_smiles_column_choice_and_errors(model_dir, tmp_path, capsys):
    write_csv(tmp_path / "q.csv", [["smiles", "structure"], ["not-a-smiles", "CCO"]])
    assert run("predict", model_dir, tmp_path / "q.csv", "--smiles-col", "structure",
               "-o", tmp_path / "out.csv") == 0
    assert read_csv(tmp_path / "out.csv")[1][3] == "ok"
    assert run("predict", model_dir, tmp_path / "q.csv", "--smiles-col", "smi",
               "-o", tmp_path / "out.csv") == 2
    assert "no column 'smi' (columns: ['smiles', 'structure'])" in capsys.readouterr().err
    write_csv(tmp_path / "two.csv", [["SMILES", "smiles"], ["CCO", "CCN"]])
    assert run("predict", model_dir, tmp_path / "two.csv", "-o", tmp_path / "out.csv") == 2
    assert "choose one with --smiles-col" in capsys.readouterr().err
    assert SMILES_NAMES[0] == "smiles"


def test_id_col_is_checked_and_named_in_messages(model_dir, tmp_path, capsys):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "--id-col", "ID", "-o", tmp_path / "o.csv") == 0
    assert "first: line 3 (id A-2): RDKit cannot parse" in capsys.readouterr().out
    assert run("predict", model_dir, tmp_path / "q.csv", "--id-col", "code", "-o", tmp_path / "o.csv") == 2
    assert "no column 'code' (columns: ['id', 'smiles', 'note'])" in capsys.readouterr().err
    write_csv(tmp_path / "t.csv", [["code", "smiles", "target"], ["ABC-1", "CCO", "1"],
                                   ["ABC-2", "CCN", "high"]])
    assert run("train", tmp_path / "t.csv", "--id-col", "code", "-o", tmp_path / "m") == 2
    assert "line 3 (id ABC-2): target 'high' is not a number" in capsys.readouterr().err


def test_output_given_twice_or_never(model_dir, tmp_path, capsys):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", tmp_path / "a.csv", "-o", tmp_path / "b.csv") == 2
    assert run("predict", model_dir, tmp_path / "q.csv") == 2
    assert "no output file" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["out.json", "out.parquet", "out.sdf.gz"])
def test_unknown_output_extension_is_refused(model_dir, tmp_path, capsys, out):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "-o", tmp_path / out) == 2
    assert ".csv, .tsv, .xlsx, .sdf" in capsys.readouterr().err
    assert not (tmp_path / out).exists()


# ----------------------------------------------------------------------------- explain


def test_explain_columns(model_dir, tmp_path):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "--explain", "-o", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    header = out[0]
    assert header[3:6] == ["prediction", "status", "error"]
    assert header[-3:] == ["top_fragment", "top_contribution", "fragments"]
    assert "stripped" in header[6:-3]  # the model's own columns come before the explanation
    ok = dict(zip(header, out[3]))  # phenol: one fragment, or several with signed contributions
    assert ok["top_fragment"] and float(ok["top_contribution"]) != 0
    assert re.fullmatch(r"[^;]+:[+-]\d+\.\d\d(; [^;]+:[+-]\d+\.\d\d){0,2}", ok["fragments"])
    assert ok["fragments"].startswith(f"{ok['top_fragment']}:")
    assert out[2][-3:] == ["", "", ""]          # a failed row has no fragments


@pytest.mark.parametrize("explain", [False, True])
def test_stripped_counter_ions_are_reported(model_dir, tmp_path, explain):
    write_csv(tmp_path / "q.csv", [["smiles"], ["CC(=O)[O-].[Na+]"], ["CC(=O)O"], ["Cl.CCN"]])
    flags = ["--explain"] if explain else []
    assert run("predict", model_dir, tmp_path / "q.csv", *flags, "-o", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    stripped = out[0].index("stripped")
    assert [r[stripped] for r in out[1:]] == ["Na+", "", "HCl"]
    assert out[1][1] == out[2][1]  # sodium acetate is scored as acetic acid


def test_xlsx_pictures(model_dir, tmp_path, capsys):
    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "--explain", "-o", tmp_path / "out.xlsx") == 0
    with zipfile.ZipFile(tmp_path / "out.xlsx") as zf:
        media = [n for n in zf.namelist() if n.startswith("xl/media/")]
        assert len(media) == 2 and all(zf.read(n).startswith(b"\x89PNG") for n in media)
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0]
    assert [c.value for c in sheet[1]][-1] == "picture"
    assert sorted(img.anchor._from.row for img in sheet._images) == [1, 3]   # 0-based rows
    # A bound on the pictures kept in memory; --no-pictures keeps the columns only.
    assert run("predict", model_dir, tmp_path / "q.csv", "--explain", "--max-pictures", "1",
               "-o", tmp_path / "one.xlsx") == 0
    with zipfile.ZipFile(tmp_path / "one.xlsx") as zf:
        assert len([n for n in zf.namelist() if n.startswith("xl/media/")]) == 1
    assert "first 1 rows only" in capsys.readouterr().err
    assert run("predict", model_dir, tmp_path / "q.csv", "--explain", "--no-pictures",
               "-o", tmp_path / "none.xlsx") == 0
    with zipfile.ZipFile(tmp_path / "none.xlsx") as zf:
        assert not [n for n in zf.namelist() if n.startswith("xl/media/")]
    assert run("predict", model_dir, tmp_path / "q.csv", "--pictures", "-o", tmp_path / "p.csv") == 2


# ----------------------------------------------------------------------------- train


def test_train_prints_cross_validated_metrics_and_is_quiet_when_asked(trained):
    _, out, err = trained
    assert re.search(rf"2-fold cross-validation \(shuffled, seed 1, {N_TRAIN} molecules\): "
                     r"RMSE \d+\.\d{3} ± \d+\.\d{3}, R² -?\d+\.\d{3} ± \d+\.\d{3}", out), out
    assert f"trained on {N_TRAIN} molecules" in out and err == ""


def test_steps_print_a_line_before_and_after(capsys):
    with Steps(quiet=False).step("fitting"):
        pass
    assert re.fullmatch(r"fitting \.\.\.\nfitting: done in \d+\.\d s\n", capsys.readouterr().err)


# The shell's entry point, with the default classifier made small so the test is quick.
SHELL = """
import sys
import qsarmil.model as model
from milearn_core import MILClassifier

default = model.default_estimator
model.default_estimator = lambda task, bag_type="brics": (
    MILClassifier(hidden_layer_sizes=(16,), max_epochs=10, early_stopping=False)
    if task == "classification" else default(task, bag_type))
from qsarmil.cli import main
main(sys.argv[1:])
"""


def shell(*argv):
    return subprocess.run([sys.executable, "-c", SHELL, *map(str, argv)], capture_output=True,
                          text=True, timeout=300)


def test_classification_from_the_shell(data, tmp_path):
    from qsarmil.model import QSARModel

    if not hasattr(QSARModel, "predict_proba"):
        pytest.skip("QSARModel.predict_proba has not landed yet")
    labels = ["soluble" if t > -2.5 else "insoluble" for t in data.target]
    write_csv(tmp_path / "t.csv", [["smiles", "class"]] + [[s, c] for s, c in zip(data.smiles, labels)])
    done = shell("train", tmp_path / "t.csv", "--target-col", "class", "--cv", "2", "-o", tmp_path / "m")
    assert done.returncode == 0, done.stderr
    assert re.search(r"accuracy \d\.\d{3} ± .*balanced accuracy .*ROC AUC", done.stdout), done.stdout
    write_csv(tmp_path / "q.csv", QUERY)
    done = shell("predict", tmp_path / "m", tmp_path / "q.csv", "--explain", "-o", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    out = read_csv(tmp_path / "out.csv")
    assert out[0][3:8] == ["prediction", "proba_insoluble", "proba_soluble", "status", "error"]
    assert out[1][3] in ("soluble", "insoluble") and out[1][6] == "ok"
    assert float(out[1][4]) + float(out[1][5]) == pytest.approx(1)
    assert out[2][3:7] == ["", "", "", "failed"]
    assert out[3][out[0].index("top_fragment")]        # top fragment of an explained classifier


def test_task_from_the_targets(tmp_path, capsys):
    write_csv(tmp_path / "t.csv", [["smiles", "target"], ["CCO", "1"], ["CCN", "2"], ["CCC", "3"]])
    assert run("train", tmp_path / "t.csv", "-o", tmp_path / "m") == 2
    assert "--task classification or --task regression" in capsys.readouterr().err
    write_csv(tmp_path / "t.csv", [["smiles", "target"], ["CCO", "1.5"], ["CCN", "active"]])
    assert run("train", tmp_path / "t.csv", "-o", tmp_path / "m") == 2
    assert "line 3: target 'active' is not a number (the other targets are numbers; for class " \
           "labels pass --task classification)" in capsys.readouterr().err


HELP_PROBE = """
import sys
from qsarmil.cli import main
for argv in (["--help"], ["predict", "--help"], ["train", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
heavy = [m for m in ("torch", "rdkit", "sklearn", "pandas", "qsarmil.model") if m in sys.modules]
print("HEAVY", heavy)
"""


def test_help_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []"
    assert "--smiles-col" in done.stdout and "--explain" in done.stdout and "--task" in done.stdout


def test_scoring_goes_through_the_execution_layer(model_dir, tmp_path, monkeypatch):
    import qsarmil.scale as scale

    calls = []
    real = scale.predict_chunks

    def recording(model, chunks, **kwargs):
        calls.append(kwargs)
        return real(model, chunks, **{**kwargs, "n_jobs": 1, "scheduler": None})

    write_csv(tmp_path / "q.csv", QUERY)
    assert run("predict", model_dir, tmp_path / "q.csv", "-o", tmp_path / "plain.csv") == 0
    monkeypatch.setattr(scale, "predict_chunks", recording)
    assert run("predict", model_dir, tmp_path / "q.csv", "--n-jobs", "2", "--scheduler",
               "tcp://127.0.0.1:8786", "-o", tmp_path / "routed.csv") == 0
    assert calls == [{"n_jobs": 2, "scheduler": "tcp://127.0.0.1:8786", "model_path": str(model_dir),
                      "level": None}]
    assert read_csv(tmp_path / "routed.csv") == read_csv(tmp_path / "plain.csv")
