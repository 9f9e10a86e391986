"""Decompression and width bombs: every input path holds its budget while it streams. Each bomb
is built by streaming, ends in one ``qsarmil: error:`` line naming where and which limit (exit
2), and a reader that meets one stays far under a gigabyte."""

import json
import os
import subprocess
import sys

import pytest
from cli_support import run
from hostile_files import (
    MAIN_NS,
    REL_NS,
    compressed,
    inline,
    repeated,
    replace_member,
    row,
    sd_record,
    workbook_relationships,
    write_xlsx,
)

from qsarmil.io import DEFAULT_LIMITS, BudgetError, Limits, open_table

MIB = 1024**2


def read_all(path, limits=DEFAULT_LIMITS):
    with open_table(path, limits) as table:
        return table.header, sum(1 for _ in table.rows)


def assert_one_line(capsys, status, *words):
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("qsarmil: error: "), err
    for word in words:
        assert word in err, err
    return err


# ----------------------------------------------------------------------------- the bombs

def gz_long_line(tmp):        # one line longer than the record budget, packed to kilobytes
    return compressed(tmp / "bomb.csv.gz", [b"smiles\n", *repeated(b"C", 20 * MIB), b"\n"])


def bz2_long_line(tmp):
    return compressed(tmp / "bomb.csv.bz2", [b"smiles\n", *repeated(b"C", 20 * MIB), b"\n"])


def xz_long_line(tmp):
    return compressed(tmp / "bomb.tsv.xz", [b"smiles\n", *repeated(b"C", 20 * MIB), b"\n"])


def sdf_gz_huge_property(tmp):  # one record, a 20 MB property of many lines, no $$$$
    head = sd_record("m", {}).encode() + b">  <id>\n"
    return compressed(tmp / "bomb.sdf.gz", [head, *repeated(b"x" * 79 + b"\n", 20 * MIB)])


def sdf_huge_property_line(tmp):
    return compressed(tmp / "line.sdf.gz", [sd_record("m", {}).encode() + b">  <id>\n",
                                            *repeated(b"x", 20 * MIB)])


def xlsx_huge_inline_string(tmp):
    return write_xlsx(tmp / "bomb.xlsx", [row(1, inline("A1", "smiles")), '<row r="2"><c r="A2" '
                      't="inlineStr"><is><t>', *(("C" * MIB) for _ in range(3)), "</t></is></c></row>"])


def xlsx_huge_shared_string(tmp):
    return write_xlsx(tmp / "shared.xlsx", [row(1, '<c r="A1" t="s"><v>0</v></c>')],
                      ["<si><t>", *(("C" * MIB) for _ in range(3)), "</t></si>"])


def xlsx_row_gap(tmp):
    return write_xlsx(tmp / "gap.xlsx", row(1, inline("A1", "smiles")) + row(2_000_000_000, inline(
        "A2000000000", "CCO")))


def xlsx_wide_row(tmp):        # 200 000 cells without references in one row
    return write_xlsx(tmp / "wide.xlsx", ['<row r="1">', *("<c><v>1</v></c>" for _ in range(200_000)),
                                          "</row>"])


def xlsx_far_column(tmp):
    return write_xlsx(tmp / "far.xlsx", row(1, inline("A1", "smiles"), inline("XFE1", "x")))


def csv_wide_header(tmp):       # 200 000 columns, 5 000 rows
    path = tmp / "wide.csv"
    with open(path, "w") as fh:
        fh.write(",".join(f"c{k}" for k in range(200_000)) + "\n")
        fh.writelines("CCO\n" for _ in range(5000))
    return path


def sdf_many_names(tmp):        # 100 000 distinct property names over 100 records
    path = tmp / "names.sdf"
    with open(path, "w") as fh:
        for k in range(100):
            fh.write(sd_record(f"m{k}", {f"p{k}_{j}": "1" for j in range(1000)}) + "$$$$\n")
    return path


def gz_ratio(tmp):              # valid rows unpacking far past 100 x the packed size (read with
    return compressed(tmp / "ratio.csv.gz", [b"smiles\n", *repeated(b"CCO\n", 4 * MIB)])


def xlsx_shared_fanout(tmp):  # one 1M-character shared string named by 15 cells of 3000 rows
    cells = "".join(f'<c r="{c}{{n}}" t="s"><v>1</v></c>' for c in "ABCDEFGHIJKLMNO")
    return write_xlsx(tmp / "fanout.xlsx", [row(1, '<c r="A1" t="s"><v>0</v></c>'), *(
        f'<row r="{n}">{cells.replace("{n}", str(n))}</row>' for n in range(2, 3002))],
        ["<si><t>smiles</t></si>", f"<si><t>{'C' * MIB}</t></si>"])


def xlsx_empty_rows(tmp):  # 1.2 million <row/>: nothing kept, each counted towards the gap
    return write_xlsx(tmp / "empty.xlsx", [row(1, inline("A1", "smiles")), *(["<row/>" * 100_000] * 12)])


def xlsx_huge_attribute(tmp):  # one 60 MB attribute (expat rescans an unfinished tag: 52 s)
    return write_xlsx(tmp / "attribute.xlsx", [row(1, inline("A1", "smiles")), '<row r="2" spans="',
                                               *repeated("x" * 4096, 60 * MIB), '"/>'])


def xlsx_many_attributes(tmp):  # one row tag with 500 000 attributes (a dict of them: 1.2 GB)
    return write_xlsx(tmp / "attributes.xlsx", [row(1, inline("A1", "smiles")), "<row r=\"2\" ", *(
        " ".join(f'a{k}="1"' for k in range(j, j + 10_000)) + " " for j in range(0, 500_000, 10_000)),
        "/>"])


def xlsx_huge_comment(tmp):  # a 20 MB comment in the shared strings
    return write_xlsx(tmp / "comment.xlsx", row(1, '<c r="A1" t="s"><v>0</v></c>'),
                      ["<si><t>smiles</t></si><!--", *repeated("x" * 4096, 20 * MIB), "-->"])


def xlsx_huge_workbook_tag(tmp):  # a 10 MB processing instruction in the workbook part
    return write_xlsx(tmp / "workbook.xlsx", row(1, inline("A1", "smiles")), workbook=[
        f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><?x ', *repeated("x" * 4096, 10 * MIB),
        '?><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'])


# The ratio bomb is read with a small floor and ratio: with the defaults it would be 16M rows
# scored before the budget ends the read.
SMALL_BUDGET = {"gz_ratio": ["--limit", "expansion_floor=1K", "--limit", "max_expansion=2"]}
BOMBS = {  # builder -> words in the message
    "gz_long_line": (gz_long_line, ["line 2", "max_record_chars"]),
    "bz2_long_line": (bz2_long_line, ["line 2", "max_record_chars"]),
    "xz_long_line": (xz_long_line, ["line 2", "max_record_chars"]),
    "sdf_gz_huge_property": (sdf_gz_huge_property, ["max_record_chars"]),
    "sdf_huge_property_line": (sdf_huge_property_line, ["line 8", "max_record_chars"]),
    "xlsx_huge_inline_string": (xlsx_huge_inline_string, ["cell A2", "max_cell_chars"]),
    "xlsx_huge_shared_string": (xlsx_huge_shared_string, ["shared string 0", "max_cell_chars"]),
    "xlsx_row_gap": (xlsx_row_gap, ["row 2000000000", "max_row_gap"]),
    "xlsx_wide_row": (xlsx_wide_row, ["row 1", "max_columns"]),
    "xlsx_far_column": (xlsx_far_column, ["XFE1", "max_columns"]),
    "csv_wide_header": (csv_wide_header, ["200000 columns", "max_columns"]),
    "sdf_many_names": (sdf_many_names, ["record 17", "max_columns"]),
    "gz_ratio": (gz_ratio, ["unpacks to more than", "max_expansion"]),
    "xlsx_shared_fanout": (xlsx_shared_fanout, ["characters in all, by cell", "max_expansion"]),
    "xlsx_empty_rows": (xlsx_empty_rows, ["sheet row 1048579 follows row 1", "max_row_gap"]),
    "xlsx_huge_attribute": (xlsx_huge_attribute, ["'xl/worksheets/sheet1.xml'", "max_markup_bytes"]),
    "xlsx_many_attributes": (xlsx_many_attributes, ["'xl/worksheets/sheet1.xml'", "max_markup_bytes"]),
    "xlsx_huge_comment": (xlsx_huge_comment, ["'xl/sharedStrings.xml'", "max_markup_bytes"]),
    "xlsx_huge_workbook_tag": (xlsx_huge_workbook_tag, ["'xl/workbook.xml'", "max_markup_bytes"]),
}


@pytest.mark.parametrize("name", BOMBS)
def test_reader_refuses_the_bomb_naming_where_and_the_limit(tmp_path, name):
    build, words = BOMBS[name]
    path = build(tmp_path)
    assert path.stat().st_size < 8 * MIB
    limits = Limits(expansion_floor=MIB) if name == "gz_ratio" else Limits()
    with pytest.raises(BudgetError) as caught:
        read_all(path, limits)
    for word in words:
        assert word in str(caught.value)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["gz_long_line", "sdf_gz_huge_property", "xlsx_huge_inline_string",
                                  "xlsx_row_gap", "csv_wide_header", "gz_ratio", "xlsx_huge_attribute"])
def test_predict_ends_a_bomb_in_one_line(small_model_dir, tmp_path, capsys, name):
    build, words = BOMBS[name]
    path = build(tmp_path)
    out = tmp_path / "out.csv"
    status = run("predict", small_model_dir, path, "-o", out, *SMALL_BUDGET.get(name, []))
    assert_one_line(capsys, status, *words)
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_train_ends_a_bomb_in_one_line(tmp_path, capsys):
    path = compressed(tmp_path / "bomb.csv.gz", [b"smiles,target\n", *repeated(b"C", 20 * MIB)])
    assert_one_line(capsys, run("train", path, "-o", tmp_path / "m", "-q"), "max_record_chars")
    assert not (tmp_path / "m").exists()


# Peak memory of a fresh process (VmHWM: ru_maxrss would count the forking pytest process).
_PEAK = """
import json, re, sys
from qsarmil.io import Limits, TableError, open_table
try:
    with open_table(sys.argv[1], Limits(expansion_floor=2**20 if "ratio" in sys.argv[1] else 2**26)) as t:
        for _ in t.rows:
            pass
    outcome = "read"
except TableError as exc:
    outcome = type(exc).__name__
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(json.dumps([outcome, int(peak) / 1024]))
"""


def peak_of_reading(path):
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True,
                          timeout=120)
    return json.loads(done.stdout or json.dumps([done.stderr, 0]))


@pytest.mark.parametrize("name", ["gz_long_line", "sdf_gz_huge_property", "xlsx_huge_inline_string",
                                  "xlsx_wide_row", "csv_wide_header", "sdf_many_names", "gz_ratio",
                                  "xlsx_shared_fanout", "xlsx_many_attributes"])
def test_reading_a_bomb_stays_far_under_a_gigabyte(tmp_path, name):
    outcome, peak_mb = peak_of_reading(BOMBS[name][0](tmp_path))
    assert outcome == "BudgetError"
    assert peak_mb < 400, f"{name}: peak {peak_mb:.0f} MB"


def test_large_workbook_parts_are_streamed_not_built_into_trees(tmp_path):
    # 30 MB of styles (an element tree of them took 1.3 GB); 300 000 more workbook relationships
    path = write_xlsx(tmp_path / "parts.xlsx", row(1, inline("A1", "smiles")) + row(2, inline("A2", "CCO")),
                      styles=['<cellXfs>', *(['<xf numFmtId="0"/>' * 100_000] * 16), '</cellXfs>'])
    real = workbook_relationships(styles=True)
    head, tail = real[:real.index("<Relationship ")], real[real.index("<Relationship "):]
    replace_member(path, "xl/_rels/workbook.xml.rels", [head, *(
        "".join(f'<Relationship Id="x{k}" Type="t" Target="x{k}.xml"/>' for k in range(j, j + 10_000))
        for j in range(0, 300_000, 10_000)), tail])
    outcome, peak_mb = peak_of_reading(path)
    assert outcome == "read"
    assert peak_mb < 400, f"peak {peak_mb:.0f} MB"


# ----------------------------------------------------------------------------- configurable


def test_limits_are_configurable_from_the_command_line(small_model_dir, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text("smiles,note\nCCO," + "x" * 5000 + "\n")
    status = run("predict", small_model_dir, path, "-o", tmp_path / "out.csv", "--limit",
                 "max_cell_chars=4K")
    assert_one_line(capsys, status, "line 2, field 2", "5000 characters", "max_cell_chars")
    assert run("predict", small_model_dir, path, "-o", tmp_path / "out.csv") == 0


@pytest.mark.parametrize("setting", ["max_cells=3", "max_columns", "max_columns=-1", "max_columns=0",
                                     "max_columns=1T"])
def test_a_bad_limit_setting_is_one_line(small_model_dir, tmp_path, capsys, setting):
    (tmp_path / "in.csv").write_text("smiles\nCCO\n")
    status = run("predict", small_model_dir, tmp_path / "in.csv", "-o", tmp_path / "o.csv",
                 "--limit", setting)
    assert_one_line(capsys, status, "max_columns")


def test_defaults_cover_real_files(tmp_path):
    """A 300-column ELN export, a 100 000-atom molblock and a 40 000-character cell all read."""
    eln = tmp_path / "eln.csv"
    eln.write_text(",".join(["smiles", *(f"c{k}" for k in range(299))]) + "\n"
                   + ("CCO," + ",".join("1.5" for _ in range(299)) + "\n") * 50)
    assert read_all(eln) == (read_all(eln)[0], 50) and len(read_all(eln)[0]) == 300
    atoms = "".join("    0.0000    0.0000    0.0000 C   0  0\n" for _ in range(100_000))
    big = tmp_path / "protein.sdf"
    big.write_text("big\n  x\n\n100000  0  0  0  0  0  0  0  0  0999 V2000\n" + atoms
                   + "M  END\n>  <id>\nP1\n\n$$$$\n")
    assert read_all(big) == (["id"], 1)
    cell = tmp_path / "cell.csv"
    cell.write_text("smiles,note\nCCO," + "y" * 40_000 + "\n")
    assert read_all(cell)[1] == 1


# ----------------------------------------------------------------------------- wide rows, scored

_WIDE_PREDICT = """
import re, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
from qsarmil.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"@@peak {int(peak) / 1024:.0f}", file=sys.stderr)
"""


def test_scoring_rows_of_many_short_cells_stays_under_a_gigabyte(small_model_dir, tmp_path):
    # Within every input budget: 16 000 columns (under 16 384) and 8000 blank lines, each a
    # failed row of 16 000 empty cells: held until a usable row came (none does), 20 000 of
    # them reached 2.3 GB and a MemoryError.
    path = compressed(tmp_path / "padded.csv.gz", [
        ("smiles," + ",".join(f"c{k}" for k in range(16_000)) + "\n").encode(),
        *repeated(b"\n", 8_000)])
    assert path.stat().st_size < 100_000
    done = subprocess.run([sys.executable, "-c", _WIDE_PREDICT, "predict", str(small_model_dir),
                           str(path), "-o", str(tmp_path / "out.csv"), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    peak_mb = float(done.stderr.strip().splitlines()[-1].split()[1])
    assert peak_mb < 1024, f"peak {peak_mb:.0f} MB"


def test_blocks_without_a_usable_row_are_not_held_back(small_model_dir):
    # A file of failed rows only (600 000 unreadable SD records) kept every block in memory
    # until a usable row came: peak RSS grew with the file (530 MB at 100k, 655 MB at 300k).
    from qsarmil.batch_predict import Block, Scoring, _classes
    from qsarmil.io.rows import Row
    from qsarmil.model import QSARModel

    model = QSARModel.load(small_model_dir)
    scoring = Scoring(model, _classes(model), explain=False, pictures=0, sdf_out=False)
    made = []

    def blocks():
        for k in range(50):
            made.append(k)
            yield Block([Row(["bad"], f"line {k + 2}")], [], {0: "unreadable"}, {0})
        made.append("usable")
        yield Block([Row(["CCO"], "line 52")], ["CCO"], {}, set())

    results = scoring.results(blocks())
    block, values = next(results)
    assert values is None and block.rows[0].where == "line 2"
    assert len(made) <= 3                     # read as it is written, not all at once
    rest = list(results)
    assert len(rest) == 50 and rest[-1][1] is not None and len(rest[-1][1]) == 1
