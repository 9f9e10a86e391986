"""`qsarmil predict`/`train` against hostile and careless files: cells come back byte-identical,
our columns never clobber the user's, ragged rows are failures, XLSX cells are never formulas,
writes are atomic and honour the umask, and whole-file problems end in one line with exit 2."""

import codecs
import csv
import io
import os
import signal
import subprocess
import sys
import time
import zipfile

import openpyxl
import pytest
from cli_support import model_columns, read_csv, run, write_csv

from qsarmil.cli import main
from qsarmil.columns import added_columns
from qsarmil.data import load_dataset
from qsarmil.model import QSARModel

TRICKY = ["00042", "1e5", "NA", "None", "nan", "1", "-0", "", " padded ", '"quoted"', "a,b",
          "two\nlines", "crlf\r\nline", "tab\there", "=1+1", "+cmd", "-2+3", "@SUM(A1)",
          "=HYPERLINK(\"http://x\",\"y\")", "=cmd|' /C calc'!A0", "#N/A", "TRUE", "null", "1,5",
          "Ωmega 漢字 😀", "'0012", "0x1F", "1.10", "١٢٣"]


@pytest.fixture(scope="module")
def model_dir(small_model_dir):
    return small_model_dir


def assert_one_line_error(capsys, status, code=2):
    err = capsys.readouterr().err
    assert status == code
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("qsarmil: error: "), err
    return err


# ----------------------------------------------------------------------------- cells


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t"), (".tab", "\t")])
def test_every_cell_comes_back_byte_identical(model_dir, tmp_path, suffix, delimiter):
    smiles = ["CCO", "NA", "None", "nan", "1", "c1ccccc1O", "", " CCO"] * 4
    rows = [["id", "smiles", "note"]] + [
        [TRICKY[k % len(TRICKY)], smiles[k % len(smiles)], TRICKY[(k * 7 + 3) % len(TRICKY)]]
        for k in range(len(TRICKY) * 2)]
    write_csv(tmp_path / f"in{suffix}", rows, delimiter)
    assert run("predict", model_dir, tmp_path / f"in{suffix}", tmp_path / f"out{suffix}") == 0
    out = read_csv(tmp_path / f"out{suffix}", delimiter)
    assert out[0] == ["id", "smiles", "note", "prediction", "status", "error",
                      *model_columns(model_dir)]
    assert [r[:3] for r in out] == rows
    for row in out[1:]:
        if row[1] in ("NA", "None", "nan", "1"):   # scored as the text written, and fails clearly
            assert row[4] == "failed" and row[5] and "empty" not in row[5]
        if row[1] == "CCO":
            assert row[4] == "ok" and float(row[3]) == pytest.approx(float(row[3]))


def test_utf8_bom_and_utf16_bom_are_read(model_dir, tmp_path):
    text = "id,smiles\r\n00042,CCO\r\nΩ,CCN\r\n"
    (tmp_path / "bom8.csv").write_bytes(codecs.BOM_UTF8 + text.encode())
    (tmp_path / "bom16.csv").write_bytes(text.encode("utf-16"))
    for name in ("bom8.csv", "bom16.csv"):
        assert run("predict", model_dir, tmp_path / name, tmp_path / f"out-{name}") == 0
        out = read_csv(tmp_path / f"out-{name}")
        assert [r[:2] for r in out] == [["id", "smiles"], ["00042", "CCO"], ["Ω", "CCN"]]


def test_our_columns_never_overwrite_the_users(model_dir, tmp_path):
    header = ["smiles", "prediction", "Status", "qsarmil_error", "error"]
    write_csv(tmp_path / "in.csv", [header, ["CCO", "mine", "keep", "me", "too"]])
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    assert out[0] == header + ["qsarmil_prediction", "qsarmil_status", "qsarmil_qsarmil_error",
                               *model_columns(model_dir)]
    assert out[1][:5] == ["CCO", "mine", "keep", "me", "too"] and out[1][6] == "ok"
    assert added_columns(["id"]) == ["prediction", "status", "error"]


def test_predict_help_documents_the_prefix(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "qsarmil_prediction" in capsys.readouterr().out


def test_ragged_rows_are_failures_never_shifted(model_dir, tmp_path):
    content = ("id,smiles,note\n"
               "1,CCO,a\n"
               "2,CCN\n"                        # line 3: short
               "3,c1ccccc1,x,EXTRA,\"more,1\"\n"  # line 4: long
               "\n"                             # line 5: blank, a failed row in its place
               "4,CCCO,b\n")
    (tmp_path / "in.csv").write_text(content)
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.csv") == 0
    out = read_csv(tmp_path / "out.csv")
    assert [r[:3] for r in out[1:]] == [["1", "CCO", "a"], ["2", "CCN", ""], ["3", "c1ccccc1", "x"],
                                       ["", "", ""], ["4", "CCCO", "b"]]
    assert [r[4] for r in out[1:]] == ["ok", "failed", "failed", "failed", "ok"]
    assert out[4][5] == "line 5: a blank line"
    assert out[2][3] == "" and out[3][3] == ""     # not scored
    assert out[2][5] == "line 3 has 2 fields, the header has 3"
    assert out[3][5].startswith("line 4 has 5 fields, the header has 3")
    assert "'EXTRA'" in out[3][5] and "'more,1'" in out[3][5]
    by_id = {r[0]: r for r in out[1:]}
    direct = QSARModel.load(model_dir).predict(["CCO", "CCCO"])
    assert float(by_id["1"][3]) == pytest.approx(direct[0])
    assert float(by_id["4"][3]) == pytest.approx(direct[1])


def test_header_only_gives_header_only(model_dir, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("id,smiles\n")
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.csv") == 0
    assert read_csv(tmp_path / "out.csv") == [["id", "smiles", "prediction", "status", "error",
                                                *model_columns(model_dir)]]
    assert "no data rows" in capsys.readouterr().out


# ----------------------------------------------------------------------------- XLSX


def sheet_xml(path):
    with zipfile.ZipFile(path) as zf:
        return b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))


def test_xlsx_output_cells_are_text_never_formulas(model_dir, tmp_path):
    cells = [t for t in TRICKY if "\r" not in t]   # XML stores a line break as LF
    rows = [["id", "smiles"]] + [[t, "CCO"] for t in cells]
    write_csv(tmp_path / "in.csv", rows)
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.xlsx") == 0
    xml = sheet_xml(tmp_path / "out.xlsx")
    assert b"<f>" not in xml and b"<f " not in xml
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0]
    got = list(sheet.iter_rows(max_col=2))
    assert [c.value for c in got[0]] == ["id", "smiles"]
    for (cell, _), text in zip(got[1:], cells):
        if text == "":
            assert cell.value is None
        else:
            assert cell.data_type == "s" and cell.value == text, (cell.data_type, cell.value, text)
    assert sheet.max_row == len(rows)


def test_xlsx_in_xlsx_out_keeps_values_and_defuses_formulas(model_dir, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "smiles", "amount", "sum"])
    sheet.append(["00042", "CCO", 1.5, "=1+1"])      # "=1+1" is a live formula in this input
    sheet.append([7, "CCN", None, "=HYPERLINK(\"http://evil\",\"x\")"])
    sheet.append([None, None, None, None])            # an empty row is no row
    sheet.append(["x", "CCCO"])                        # trailing empty cells are fine
    book.save(tmp_path / "in.xlsx")
    assert run("predict", model_dir, tmp_path / "in.xlsx", tmp_path / "out.xlsx") == 0
    assert b"<f>" not in sheet_xml(tmp_path / "out.xlsx")
    out = list(openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0].iter_rows(values_only=True))
    assert out[0] == ("id", "smiles", "amount", "sum", "prediction", "status", "error",
                      *model_columns(model_dir))
    assert out[1][:4] == ("00042", "CCO", 1.5, "=1+1") and out[1][5] == "ok"
    assert out[2][:4] == (7, "CCN", None, "=HYPERLINK(\"http://evil\",\"x\")")
    assert out[3][:2] == ("x", "CCCO") and isinstance(out[3][4], float)
    assert len(out) == 4
    # The same input to CSV: numbers as they print, formulas as their text.
    assert run("predict", model_dir, tmp_path / "in.xlsx", tmp_path / "out.csv") == 0
    assert [r[:4] for r in read_csv(tmp_path / "out.csv")[1:]] == [
        ["00042", "CCO", "1.5", "=1+1"], ["7", "CCN", "", "=HYPERLINK(\"http://evil\",\"x\")"],
        ["x", "CCCO", "", ""]]


def test_xlsx_fails_the_row_whose_cell_it_cannot_store(model_dir, tmp_path, capsys):
    long = "C" * 40_000
    write_csv(tmp_path / "in.csv", [["id", "smiles"], ["bell\x07", "CCO"], ["ok", "CCN"],
                                    ["long", long]])
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.xlsx") == 0
    rows = list(openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 4                                   # every row written, none lost
    assert rows[1][0] == "bell\ufffd" and rows[1][3] == "failed"
    assert "column 'id'" in rows[1][4] and "control character" in rows[1][4]
    assert rows[2][:2] == ("ok", "CCN") and rows[2][3] == "ok"
    assert rows[3][3] == "failed" and "40000 characters" in rows[3][4]
    assert len(rows[3][1]) == 32767 and rows[3][1].endswith("[cut: 40000 characters]")


# ----------------------------------------------------------------------------- writes


def test_output_honours_the_umask(model_dir, tmp_path):
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    old = os.umask(0o022)
    try:
        assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "new.csv") == 0
        assert os.stat(tmp_path / "new.csv").st_mode & 0o777 == 0o644
        (tmp_path / "old.xlsx").write_bytes(b"previous")
        os.chmod(tmp_path / "old.xlsx", 0o644)
        assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "old.xlsx") == 0
        assert os.stat(tmp_path / "old.xlsx").st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_input_equal_to_output_is_refused(model_dir, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    src = tmp_path / "d" / "in.csv"
    write_csv(src, [["smiles"], ["CCO"]])
    before = src.read_bytes()
    os.symlink(src, tmp_path / "link.csv")
    os.link(src, tmp_path / "hard.csv")
    for out in (src, tmp_path / "d" / ".." / "d" / "in.csv", tmp_path / "link.csv",
                tmp_path / "hard.csv"):
        err = assert_one_line_error(capsys, run("predict", model_dir, src, out))
        assert "is the input file" in err
    assert run("predict", model_dir, tmp_path / "link.csv", src) == 2
    capsys.readouterr()
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "d")) == ["in.csv"]


DRIVER = """
import pathlib, sys, time
import pandas
import qsarmil.batch_predict as batch_predict
import qsarmil.cli as cli

class Slow:
    def predict_table(self, smiles, chunk_size=1000, level=None):
        if not smiles:  # asked for its columns before the write starts
            return pandas.DataFrame(columns=["smiles", "prediction", "status", "error"])
        pathlib.Path(sys.argv[3]).touch()
        time.sleep(120)

    def iter_predict(self, smiles, chunk_size=1000, level=None):
        yield self.predict_table(smiles)

batch_predict._load_model = lambda path: Slow()
# The model folder is never read (any existing folder will do).
cli.main(["predict", str(pathlib.Path(sys.argv[1]).parent), sys.argv[1], sys.argv[2]])
"""


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_sigterm_leaves_no_temp_file(tmp_path, suffix):
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"], ["CCN"]])
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "in.csv"),
                             str(tmp_path / f"out{suffix}"), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [p for p in os.listdir(tmp_path) if ".tmp." in p]   # a write is under way
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert err.strip() == "qsarmil: error: terminated" and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "ready"]


def test_keyboard_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    import qsarmil.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "predict", interrupted)
    err = assert_one_line_error(capsys, run("predict", "m", "in.csv", "out.csv"), code=130)
    assert "interrupted" in err


def test_debug_variable_reraises(monkeypatch, tmp_path):
    monkeypatch.setenv("QSARMIL_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["predict", "nomodel", str(tmp_path / "missing.csv"), str(tmp_path / "o.csv")])


# ----------------------------------------------------------------------------- whole files


def _zip_not_workbook(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")


BAD_INPUTS = {
    "empty.csv": (lambda p: p.write_bytes(b""), "empty"),
    "blank.csv": (lambda p: p.write_bytes(b"\n\r\n\n"), "empty"),
    "latin1.csv": (lambda p: p.write_bytes("smiles,name\nCCO,café\n".encode("latin-1")),
                   "not UTF-8 text (byte 0xE9 at byte offset 19)"),
    "utf16.csv": (lambda p: p.write_bytes("smiles\nCCO\n".encode("utf-16-le")), "NUL byte"),
    "garbage.csv": (lambda p: p.write_bytes(bytes(range(256)) * 4), "not UTF-8"),
    "nul.csv": (lambda p: p.write_bytes(b"smiles\nCC\x00O\n"), "NUL byte on line 2"),
    "quote.csv": (lambda p: p.write_bytes(b'smiles\n"CCO\n'), "line 2"),
    "fake.xlsx": (lambda p: p.write_text("smiles\nCCO\n"), "not an XLSX workbook"),
    "zip.xlsx": (_zip_not_workbook, "not an XLSX workbook"),
    "old.xls": (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0"), "save it as .xlsx"),
    "folder.csv": (lambda p: p.mkdir(), "is a folder"),
    "missing.csv": (lambda p: None, "No such file or directory"),
    "nosmiles.csv": (lambda p: p.write_text("id,structure\n1,CCO\n"),
                     "no SMILES column (looked for smiles, canonical_smiles, isomeric_smiles, mol, "
                     "smi, ignoring case; columns: ['id', 'structure'])"),
    "twice.csv": (lambda p: p.write_text("smiles,smiles\nCCO,CCN\n"), "2 columns are named 'smiles'"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_whole_file_problems_are_one_line(model_dir, tmp_path, capsys, name):
    make, expected = BAD_INPUTS[name]
    make(tmp_path / name)
    err = assert_one_line_error(capsys, run("predict", model_dir, tmp_path / name, tmp_path / "out.csv"))
    assert expected in err and name in err
    assert not (tmp_path / "out.csv").exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]


def _not_a_model(path):
    path.mkdir()
    (path / "qsarmil.json").write_text("{\"format\": \"something else\"}")


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir(), _not_a_model,
                                  lambda p: p.write_text("x")], ids=["missing", "empty", "foreign", "file"])
def test_bad_model_folder_is_one_line(tmp_path, capsys, make):
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    make(tmp_path / "model")
    err = assert_one_line_error(capsys, run("predict", tmp_path / "model", tmp_path / "in.csv",
                                            tmp_path / "out.csv"))
    assert "model" in err


@pytest.mark.parametrize("out", ["out.xls", "out.json", "out", "out.CSV.gz"])
def test_unsupported_output_formats_are_refused(model_dir, tmp_path, capsys, out):
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    err = assert_one_line_error(capsys, run("predict", model_dir, tmp_path / "in.csv", tmp_path / out))
    assert ".csv, .tsv, .xlsx" in err
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]


def test_unwritable_output_is_one_line(model_dir, tmp_path, capsys):
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    (tmp_path / "afile").write_text("x")
    err = assert_one_line_error(capsys, run("predict", model_dir, tmp_path / "in.csv",
                                            tmp_path / "afile" / "out.csv"))
    assert "afile is a file, not a folder" in err
    (tmp_path / "adir.csv").mkdir()
    err = assert_one_line_error(capsys, run("predict", model_dir, tmp_path / "in.csv", tmp_path / "adir.csv"))
    assert "is a folder" in err
    if os.geteuid() != 0:      # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        err = assert_one_line_error(capsys, run("predict", model_dir, tmp_path / "in.csv",
                                                tmp_path / "ro" / "out.csv"))
        assert f"cannot write {tmp_path / 'ro' / 'out.csv'}" in err


# ----------------------------------------------------------------------------- train


@pytest.mark.parametrize("value,message", [
    ("NaN", "line 5: target 'NaN' is not a finite number"),
    ("inf", "line 5: target 'inf' is not a finite number"),
    (">5", "line 5: censored target '>5' is not supported (remove the row or give a number)"),
    ("<0.1", "line 5: censored target '<0.1' is not supported"),
    (">=5", "line 5: censored target '>=5' is not supported"),
    ("", "line 5: target is empty"),
    ("1,5", "line 5: target '1,5' is not a number"),
    ("1_000", "line 5: target '1_000' is not a number"),
])
def test_train_names_the_line_and_cell_of_a_bad_target(tmp_path, capsys, value, message):
    rows = [["smiles", "target"], ["CCO", "0.1"], ["CCN", "1e-1"], ["CCC", " 2 "], ["CCCC", value],
            ["CCCCO", "1"]]
    write_csv(tmp_path / "train.csv", rows)
    err = assert_one_line_error(capsys, run("train", "--input", tmp_path / "train.csv", "--out",
                                            tmp_path / "m"))
    assert message in err
    assert not (tmp_path / "m").exists()


def test_train_refuses_ragged_rows_and_counts_bad_rows(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("smiles,target\nCCO,1\nCCN\nCCC,x\n")
    err = assert_one_line_error(capsys, run("train", "--input", tmp_path / "t.csv", "--out", tmp_path / "m"))
    assert "2 bad rows: line 3 has 1 fields, the header has 2; line 4: target 'x' is not a number" in err
    (tmp_path / "h.csv").write_text("smiles,target\n")
    err = assert_one_line_error(capsys, run("train", "--input", tmp_path / "h.csv", "--out", tmp_path / "m"))
    assert "no data rows" in err


def test_train_out_never_replaces_a_foreign_folder(tmp_path, capsys):
    data = load_dataset("solubility").iloc[:25]
    write_csv(tmp_path / "t.csv", [["smiles", "target"]] + [[s, repr(t)] for s, t in
                                                             zip(data.smiles, data.target)])
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("precious")
    for extra in ([], ["--force"]):
        assert_one_line_error(capsys, run("train", "--input", tmp_path / "t.csv", "--out", victim, *extra))
        assert (victim / "notes.txt").read_text() == "precious"
    model = tmp_path / "model"
    assert run("train", "--input", tmp_path / "t.csv", "--out", model) == 0
    capsys.readouterr()
    assert_one_line_error(capsys, run("train", "--input", tmp_path / "t.csv", "--out", model))
    assert run("train", "--input", tmp_path / "t.csv", "--out", model, "--force") == 0
    QSARModel.load(model)


def test_one_line_per_csv_row_even_with_embedded_newlines(model_dir, tmp_path):
    """Output rows = input rows: records, not physical lines, are rows."""
    buf = io.StringIO()
    csv.writer(buf).writerows([["smiles", "note"], ["CCO", "a\nb\nc"], ["CCN", "d"]])
    (tmp_path / "in.csv").write_text(buf.getvalue(), newline="")
    assert run("predict", model_dir, tmp_path / "in.csv", tmp_path / "out.csv") == 0
    assert [r[:2] for r in read_csv(tmp_path / "out.csv")] == [["smiles", "note"], ["CCO", "a\nb\nc"],
                                                               ["CCN", "d"]]
