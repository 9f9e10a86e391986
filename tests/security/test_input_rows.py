"""One bad row never costs the others: over-long cells fail their row (or are cut in our own
columns, saying so), no SD record vanishes, a SMILES with whitespace inside is a failed row, the
console gets escaped and capped text, standard input is never overwritten, and CSV formula
escaping is there when asked for."""

import io
import os
import sys

import openpyxl
import pytest
from cli_support import read_csv, run, write_csv
from hostile_files import sd_record

from qsarmil.columns import MAX_OUR_CHARS


def xlsx_rows(path):
    return list(openpyxl.load_workbook(path).worksheets[0].iter_rows(values_only=True))


@pytest.mark.parametrize("out", ["out.csv", "out.xlsx"])
def test_a_huge_rdkit_error_is_cut_and_every_row_is_written(small_model_dir, tmp_path, out):
    unbalanced = "C(" * 1000 + "C"               # 2001 characters: RDKit writes ~40 000 back
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"], [unbalanced], ["CCN"]])
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", tmp_path / out) == 0
    rows = (read_csv(tmp_path / out) if out.endswith(".csv") else
            [["" if v is None else str(v) for v in r] for r in xlsx_rows(tmp_path / out)])
    assert [r[0] for r in rows] == ["smiles", "CCO", unbalanced, "CCN"]
    assert [r[2] for r in rows[1:]] == ["ok", "failed", "ok"]
    assert len(rows[2][3]) <= MAX_OUR_CHARS
    assert rows[2][3].startswith("row ") or "RDKit" in rows[2][3]


def test_a_200000_character_smiles_cell_is_a_failed_row(small_model_dir, tmp_path):
    huge = "C" * 200_000
    write_csv(tmp_path / "in.csv", [["smiles"], [huge], ["CCO"]])
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.csv") == 0
    rows = read_csv(tmp_path / "out.csv")
    assert rows[1][0] == huge and rows[1][2] == "failed" and "max_smiles_length" in rows[1][3]
    assert rows[2][2] == "ok"
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.xlsx") == 0
    back = xlsx_rows(tmp_path / "out.xlsx")
    assert len(back) == 3 and back[1][2] == "failed" and "200000 characters" in back[1][3]
    assert back[2][2] == "ok"


@pytest.mark.parametrize("delimiter", ["$$$$ ", "$$$$\t", "$$$$x", "$$$$"])
def test_no_sd_record_vanishes_whatever_follows_the_delimiter(small_model_dir, tmp_path, delimiter):
    text = "".join(sd_record(f"m{k}", {"id": f"M{k}"}) + delimiter + "\n" for k in range(3))
    (tmp_path / "in.sdf").write_text(text)
    assert run("predict", small_model_dir, tmp_path / "in.sdf", "-o", tmp_path / "out.csv") == 0
    rows = read_csv(tmp_path / "out.csv")
    assert [r[0] for r in rows[1:]] == ["M0", "M1", "M2"] and [r[2] for r in rows[1:]] == ["ok"] * 3


@pytest.mark.parametrize("smiles,what", [("CC O", "a space"), ("CC\nO", "a line break"),
                                         ("C\tO", "a tab"), ("C\u00a0O", "whitespace U+00A0")])
def test_whitespace_inside_a_smiles_fails_the_row(small_model_dir, tmp_path, smiles, what):
    write_csv(tmp_path / "in.csv", [["smiles"], [smiles], [" CCO "]])
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.csv") == 0
    rows = read_csv(tmp_path / "out.csv")
    assert rows[1][0] == smiles and rows[1][2] == "failed" and what in rows[1][3], rows[1]
    assert rows[2][2] == "ok"                    # surrounding spaces are fine


def test_the_summary_line_escapes_control_characters_and_is_capped(small_model_dir, tmp_path,
                                                                    capsys):
    evil = "id\x1b]0;owned\x07" + "\u202e" + "x" * 50_000
    write_csv(tmp_path / "in.csv", [["id", "smiles"], [evil, "not a smiles\x1b[2J"]])
    assert run("predict", small_model_dir, tmp_path / "in.csv", "--id-col", "id",
               "-o", tmp_path / "out.csv") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;owned\\x07" in out and len(out) < 1000
    assert read_csv(tmp_path / "out.csv")[1][0] == evil      # the cell itself is untouched


def test_rdkit_writes_nothing_to_stderr_beside_our_lines(small_model_dir, tmp_path, capfd):
    broken = sd_record("bad", {"id": "B"}).replace(" C   0", " Xx  0")
    (tmp_path / "in.sdf").write_text(sd_record("ok", {"id": "A"}) + "$$$$\n" + broken + "$$$$\n")
    write_csv(tmp_path / "in.csv", [["smiles"], ["C1CC"], ["[NH5]"], ["CCO"]])
    capfd.readouterr()
    for source in ("in.sdf", "in.csv"):
        assert run("predict", small_model_dir, tmp_path / source, "-q", "-o", tmp_path / "o.csv") == 0
        assert capfd.readouterr().err == ""


def test_standard_input_is_never_the_output(small_model_dir, tmp_path, monkeypatch, capsys):
    same = tmp_path / "same.csv"
    write_csv(same, [["smiles"], ["CCO"]])
    before = same.read_bytes()
    with open(same, "rb") as fh:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(fh))
        assert run("predict", small_model_dir, "-", "-o", same) == 2
    assert "is the input file" in capsys.readouterr().err
    assert same.read_bytes() == before and os.listdir(tmp_path) == ["same.csv"]


PAYLOADS = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "\t=1", "=HYPERLINK(\"x\")"]
SAFE = ["-0.5", "+3", "1e5", "CCO", "'=quoted", ""]


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t")])
def test_formula_escaping_is_an_option_for_text_outputs(small_model_dir, tmp_path, suffix, delimiter):
    rows = [["note", "smiles"]] + [[p, "CCO"] for p in PAYLOADS + SAFE]
    write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / f"out{suffix}"
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", out) == 0
    assert [r[0] for r in read_csv(out, delimiter)[1:]] == PAYLOADS + SAFE      # off: verbatim
    assert run("predict", small_model_dir, tmp_path / "in.csv", "-o", out, "--escape-formulas") == 0
    got = read_csv(out, delimiter)
    assert [r[0] for r in got[1:]] == ["'" + p for p in PAYLOADS] + SAFE
    assert all(float(r[2]) == float(r[2]) for r in got[1:])                    # numbers stay numbers


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_a_molblock_keeps_its_lines_in_sdf_output(small_model_dir, tmp_path, separator):
    # Only CR and LF end a molblock line (as RDKit and the reader split them); str.splitlines
    # would split a title at U+2028 or NEL and shift the counts and atom lines down.
    record = sd_record(f"m1{separator}x", {"id": "M1"})
    (tmp_path / "in.sdf").write_text(record + "$$$$\n" + sd_record("m2", {"id": "M2"}) + "$$$$\n",
                                     encoding="utf-8")
    assert run("predict", small_model_dir, tmp_path / "in.sdf", "-o", tmp_path / "out.sdf") == 0
    from rdkit import Chem

    back = list(Chem.SDMolSupplier(str(tmp_path / "out.sdf"), sanitize=False))
    assert [m is not None and m.GetNumAtoms() for m in back] == [1, 1]
    written = (tmp_path / "out.sdf").read_text(encoding="utf-8")
    assert written.startswith(record[:record.index("M  END")])


def test_an_empty_sd_record_names_its_own_line(tmp_path):
    from qsarmil.io import open_table

    (tmp_path / "in.sdf").write_text("$$$$\n$$$$\n" + sd_record("m", {"id": "A"}) + "$$$$\n")
    with open_table(tmp_path / "in.sdf") as table:
        assert [r.where for r in table.rows] == ["record 1 (line 1)", "record 2 (line 2)",
                                                  "record 3 (line 3)"]
