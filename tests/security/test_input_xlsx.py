"""XLSX inputs read by the streaming reader: no formula of any kind survives (array, shared,
data-table, string formulas come back as text or cached value, never live and never a Python
repr), stored text comes back (1e309), odd encodings and packings read or end in one line."""

import datetime
import zipfile

import openpyxl
import pytest
from cli_support import read_csv, run
from hostile_files import inline, patch_member, row, write_xlsx

from qsarmil.io import TableError, open_table

FORMULAS = row(
    2,
    inline("A2", "CCO"),
    '<c r="B2"><f t="array" ref="B2">HYPERLINK("http://127.0.0.1/x","click")</f><v>0</v></c>',
    '<c r="C2"><f t="shared" ref="C2:C3" si="0">SUM(A2:B2)</f><v>2</v></c>',
    '<c r="D2"><f t="dataTable" ref="D2:D3" dt2D="0" dtr="0" r1="A1"/><v>5</v></c>',
    '<c r="E2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>',
    '<c r="F2"><v>1e309</v></c>',
) + row(
    3,
    inline("A3", "CCN"),
    '<c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
    '<c r="C3"><f t="shared" si="0"/><v>4</v></c>',
    '<c r="D3"><f t="dataTable" ref="D2:D3" dt2D="0" dtr="0" r1="A1"/><v>6</v></c>',
    '<c r="E3" t="b"><v>1</v></c>',
    '<c r="F3"><v>-1e400</v></c>',
)
HEADER = row(1, *(inline(f"{c}1", n) for c, n in zip("ABCDEF", ["smiles", "b", "c", "d", "e", "f"])))
EXPECTED = [
    ["CCO", '=HYPERLINK("http://127.0.0.1/x","click")', "=SUM(A2:B2)", 5, '="a"&"b"', "1e309"],
    ["CCN", "=1/0", "=SUM(A3:B3)", 6, True, "-1e400"],
]


@pytest.fixture()
def formulas(tmp_path):
    return write_xlsx(tmp_path / "formulas.xlsx", HEADER + FORMULAS)


def cells(path):
    with open_table(path) as table:
        return table.header, [r.cells for r in table.rows]


def test_every_formula_kind_reads_as_its_text_or_cached_value(formulas):
    header, rows = cells(formulas)
    assert header == ["smiles", "b", "c", "d", "e", "f"]
    assert rows == EXPECTED


def test_no_formula_survives_to_xlsx_or_csv_output(small_model_dir, formulas, tmp_path):
    assert run("predict", small_model_dir, formulas, "-o", tmp_path / "out.xlsx") == 0
    with zipfile.ZipFile(tmp_path / "out.xlsx") as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f" not in xml
    out = list(openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0].iter_rows(values_only=True))
    assert [list(r[:6]) for r in out[1:]] == EXPECTED
    assert run("predict", small_model_dir, formulas, "-o", tmp_path / "out.csv") == 0
    got = read_csv(tmp_path / "out.csv")
    assert [r[:6] for r in got[1:]] == [[str(v) for v in r] for r in EXPECTED]
    assert not any("object at 0x" in c for r in got for c in r)


def test_shared_strings_rich_text_and_phonetics(tmp_path):
    shared = ["<si><t>smiles</t></si>", "<si><r><t>C</t></r><r><rPr><b/></rPr><t>CO</t></r></si>",
              "<si><t>漢字</t><rPh sb=\"0\" eb=\"1\"><t>かんじ</t></rPh></si>"]
    path = write_xlsx(tmp_path / "s.xlsx", row(1, '<c r="A1" t="s"><v>0</v></c>',
                                                  '<c r="B1" t="s"><v>2</v></c>')
                      + row(2, '<c r="A2" t="s"><v>1</v></c>', '<c r="B2" t="s"><v>2</v></c>'), shared)
    assert cells(path) == (["smiles", "漢字"], [["CCO", "漢字"]])


def test_a_shared_string_index_out_of_range_is_one_error(tmp_path):
    path = write_xlsx(tmp_path / "s.xlsx", row(1, '<c r="A1" t="s"><v>7</v></c>'), ["<si><t>a</t></si>"])
    with pytest.raises(TableError, match="cell A1 names shared string '7' of 1"):
        cells(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_utf16_sheet_and_strings(tmp_path, encoding):
    path = write_xlsx(tmp_path / "u.xlsx", row(1, '<c r="A1" t="s"><v>0</v></c>')
                      + row(2, inline("A2", "c1ccccc1Ω")), ["<si><t>smiles</t></si>"],
                      encoding=encoding)
    assert cells(path) == (["smiles"], [["c1ccccc1Ω"]])


def test_an_encoding_expat_cannot_read_is_one_error(tmp_path):
    path = write_xlsx(tmp_path / "u.xlsx", row(1, inline("A1", "smiles")), encoding="utf-16-le")
    with pytest.raises(TableError, match="not readable XML"):
        cells(path)


def test_a_gap_in_columns_pads_to_the_last_column_excel_has(tmp_path):
    path = write_xlsx(tmp_path / "g.xlsx", row(1, inline("A1", "smiles"), inline("XFD1", "last"))
                      + row(2, inline("A2", "CCO")))
    header, rows = cells(path)
    assert len(header) == 16384 and header[-1] == "last" and header[1] == ""
    assert rows[0][0] == "CCO" and rows[0][1:] == [None] * 16383


def test_dates_and_durations_keep_their_meaning(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["smiles", "when", "how long"])
    book.active.append(["CCO", datetime.datetime(2024, 1, 5, 12, 30), datetime.timedelta(hours=36)])
    book.save(tmp_path / "d.xlsx")
    assert cells(tmp_path / "d.xlsx")[1] == [["CCO", datetime.datetime(2024, 1, 5, 12, 30),
                                              datetime.timedelta(hours=36)]]


def test_xml_with_a_dtd_is_refused(tmp_path):
    laughs = ('<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>')
    path = write_xlsx(tmp_path / "dtd.xlsx", row(1, inline("A1", "&b;")))
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    end = sheet.index(b"?>") + 2
    parts["xl/worksheets/sheet1.xml"] = sheet[:end] + laughs.encode() + sheet[end:]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    with pytest.raises(TableError, match="not readable XML"):
        cells(path)


@pytest.mark.parametrize("flag,method,words", [(0x1, None, "is encrypted"),
                                               (None, 93, "zip method 93"),
                                               (None, 99, "zip method 99")])
def test_encrypted_or_unknown_method_members_are_one_line(small_model_dir, formulas, tmp_path, capsys,
                                                          flag, method, words):
    patch_member(formulas, "xl/worksheets/sheet1.xml", flag=flag, method=method)
    with pytest.raises(TableError, match=words):
        cells(formulas)
    assert run("predict", small_model_dir, formulas, "-o", tmp_path / "o.csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("qsarmil: error: ") and len(err.strip().splitlines()) == 1 and words in err


def test_a_corrupt_member_is_one_line(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", HEADER + FORMULAS)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10:start + 40] = b"\xff" * 30   # deflate stream garbage
    path.write_bytes(bytes(data))
    with pytest.raises(TableError, match="sheet1.xml"):
        cells(path)


def test_a_zip_with_too_many_members_is_refused_before_it_is_listed(tmp_path):
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(10_001):
            zf.writestr(f"x/{k}", b"")
    with pytest.raises(TableError, match="max_zip_members"):
        cells(path)
