"""XLSX inputs read by the streaming reader: no formula of any kind survives (array, shared,
data-table, string formulas come back as their cached value, or as text where never calculated;
never live and never a Python repr), stored text comes back (1e309), odd encodings and packings
read or end in one line, a sheet laid out so that a value would be lost or moved is refused."""

import datetime
import re
import struct
import zipfile

import openpyxl
import pytest
from cli_support import read_csv, run
from hostile_files import MAIN_NS, REL_NS, inline, patch_member, row, write_xlsx

from qsarmil.io import BudgetError, Limits, TableError, open_table

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
EXPECTED = [  # the values Excel cached, as pandas reads them
    ["CCO", 0, 2, 5, "ab", "1e309"],
    ["CCN", "#DIV/0!", 4, 6, True, "-1e400"],
]


@pytest.fixture()
def formulas(tmp_path):
    return write_xlsx(tmp_path / "formulas.xlsx", HEADER + FORMULAS)


def cells(path):
    with open_table(path) as table:
        return table.header, [r.cells for r in table.rows]


def test_every_formula_kind_reads_as_its_cached_value(formulas):
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


def test_a_formula_never_calculated_reads_as_its_text(tmp_path):
    long_master = "+".join(["A2"] * 3000)  # over Excel's 8192 characters: not translated
    path = write_xlsx(tmp_path / "f.xlsx", HEADER + row(
        2, inline("A2", "CCO"), '<c r="B2"><f>SUM(A2:A3)</f><v></v></c>',
        '<c r="C2"><f t="shared" ref="C2:C3" si="0">A2&amp;B2</f></c>',
        '<c r="D2"><f t="dataTable" ref="D2:D3" dt2D="0" dtr="0" r1="A1"/></c>',
        f'<c r="E2"><f t="shared" ref="E2:E3" si="1">{long_master}</f><v>9</v></c>',
        '<c r="F2" t="str"><f>""</f><v></v></c>',
    ) + row(3, inline("A3", "CCN"), '<c r="C3"><f t="shared" si="0"/></c>',
            '<c r="D3"><f t="dataTable" ref="D2:D3" dt2D="0" dtr="0" r1="A1"/></c>',
            '<c r="E3"><f t="shared" si="1"/></c>', '<c r="F3"><f t="shared" si="7"/></c>'))
    assert cells(path)[1] == [["CCO", "=SUM(A2:A3)", "=A2&B2", None, 9, ""],
                              ["CCN", None, "=A3&B3", None, None, None]]


def test_an_openpyxl_formula_without_a_cached_value_reads_as_its_text(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["smiles", "n"])
    book.active.append(["CCO", "=LEN(A2)"])
    book.save(tmp_path / "o.xlsx")
    assert cells(tmp_path / "o.xlsx")[1] == [["CCO", "=LEN(A2)"]]


def test_translating_never_calculated_shared_formulas_is_budgeted(tmp_path):
    master = "+".join(["A2"] * 2000)
    path = write_xlsx(tmp_path / "t.xlsx", [
        HEADER, f'<row r="2"><c r="B2"><f t="shared" ref="B2:B900" si="0">{master}</f></c></row>',
        *(f'<row r="{n}"><c r="B{n}"><f t="shared" si="0"/></c></row>' for n in range(3, 900))])
    with pytest.raises(BudgetError, match="translate to more than 100000 characters, by cell B"):
        with open_table(path, Limits(max_record_chars=100_000)) as table:
            list(table.rows)


# A layout no writer makes, which a lenient reader would turn into a lost, merged or moved value.
LAYOUTS = {
    "row inside a row": ('<row r="2">' + inline("A2", "CCO") + row(3, inline("A3", "CCN")) + "</row>",
                         "a sheet row opens inside row 2"),
    "cell named twice": (row(2, inline("A2", "CCO"), inline("A2", "CCN")),
                         "cell A2 comes after column 1 of row 2"),
    "cells going left": (row(2, inline("B2", "CCO"), inline("A2", "CCN")),
                         "cell A2 comes after column 2 of row 2"),
    "rows going up": (row(3, inline("A3", "CCO")) + row(2, inline("A2", "CCN")),
                      "sheet row 2 comes after row 3"),
    "a row number twice": (row(2, inline("A2", "CCO")) + row(2, inline("B2", "CCN")),
                           "sheet row 2 comes after row 2"),
    "a cell of another row": (row(2, inline("A7", "CCO")), "sheet row 2 holds a cell named 'A7'"),
    "a cell outside rows": (inline("A2", "CCO"), "a cell (A2) outside any sheet row"),
    "a cell in a cell": ('<row r="2"><c r="A2">' + inline("B2", "x") + "</c></row>",
                         "cell A2 holds another cell"),
    "row number zero": (row(0, inline("A0", "CCO")), "has the number '0'"),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_a_layout_that_would_lose_or_move_a_value_is_refused(tmp_path, name):
    rows, words = LAYOUTS[name]
    path = write_xlsx(tmp_path / "l.xlsx", row(1, inline("A1", "smiles"), inline("B1", "b")) + rows)
    with pytest.raises(TableError, match=re.escape(words)):
        cells(path)


def test_a_shared_string_inside_another_is_refused(tmp_path):
    path = write_xlsx(tmp_path / "s.xlsx", row(1, '<c r="A1" t="s"><v>0</v></c>'),
                      ["<si><t>a</t><si><t>b</t></si></si>"])
    with pytest.raises(TableError, match="shared string 0 holds another inside it"):
        cells(path)


def test_empty_rows_count_towards_the_row_gap(tmp_path):
    path = write_xlsx(tmp_path / "e.xlsx", [row(1, inline("A1", "smiles")), "<row/>" * 3000,
                                            row(3100, inline("A3100", "CCO"))])
    gap = r"sheet row 2003 follows row 1 \(empty rows between\).*max_row_gap"
    with pytest.raises(BudgetError, match=gap):
        with open_table(path, Limits(max_row_gap=2000)) as table:
            list(table.rows)
    with open_table(path) as table:
        assert [(r.where, r.cells) for r in table.rows] == [("row 3100", ["CCO"])]


def test_a_value_element_inside_an_inline_string_does_not_reset_the_cell_budget(tmp_path):
    piece = "<t>" + "C" * 400 + "</t><v>1</v>"
    path = write_xlsx(tmp_path / "i.xlsx", [row(1, inline("A1", "smiles")), '<row r="2"><c r="A2" '
                      't="inlineStr"><is>' + piece * 3 + "</is></c></row>"])
    with pytest.raises(BudgetError, match="cell A2 holds more than 1000 characters"):
        with open_table(path, Limits(max_cell_chars=1000)) as table:
            list(table.rows)


def test_thousands_of_digits_are_a_number_not_an_error(tmp_path):
    digits = "0" * 5000 + "42"
    path = write_xlsx(tmp_path / "d.xlsx", row(1, inline("A1", "smiles"), inline("B1", "n"))
                      + row(2, inline("A2", "CCO"), f'<c r="B2" s="{"9" * 5000}"><v>{digits}</v></c>'))
    assert cells(path)[1] == [["CCO", 42]]


@pytest.mark.parametrize("part", ["sheet", "workbook", "styles"])
def test_nesting_deeper_than_any_writer_is_refused(tmp_path, part):
    deep = "<a>" * 100_000 + "</a>" * 100_000
    body = {"rows": row(1, inline("A1", "smiles"))}
    if part == "sheet":
        body["rows"] += deep
    elif part == "workbook":
        body["workbook"] = (f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets><sheet name="S" '
                            f'sheetId="1" r:id="rId1"/></sheets>{deep}</workbook>')
    else:
        body["styles"] = deep
    path = write_xlsx(tmp_path / "n.xlsx", **body)
    with pytest.raises(TableError, match="nests elements more than 128 deep"):
        cells(path)


def test_styles_beyond_the_table_and_many_of_them_read(tmp_path):
    styles = ['<cellXfs count="200001">', '<xf numFmtId="0"/>' * 200_000, '<xf numFmtId="14"/>',
              "</cellXfs>"]
    path = write_xlsx(tmp_path / "s.xlsx", row(1, inline("A1", "smiles"), inline("B1", "d"),
                                               inline("C1", "n"))
                      + row(2, inline("A2", "CCO"), '<c r="B2" s="200000"><v>45000</v></c>',
                            '<c r="C2" s="999999"><v>7</v></c>'), styles=styles)
    assert cells(path)[1] == [["CCO", datetime.datetime(2023, 3, 15), 7]]


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


@pytest.mark.parametrize("declared", [None, 5])
def test_a_zip_with_too_many_members_is_refused_before_it_is_listed(tmp_path, declared):
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(10_001):
            zf.writestr(f"x/{k}", b"")
    if declared is not None:  # the end record lies about the count: zipfile reads them all
        data = bytearray(path.read_bytes())
        end = data.rindex(b"PK\x05\x06")
        data[end + 8:end + 12] = struct.pack("<HH", declared, declared)
        path.write_bytes(bytes(data))
        with zipfile.ZipFile(path) as zf:
            assert len(zf.namelist()) == 10_001
    with pytest.raises(BudgetError, match="more than 10000 members .*max_zip_members"):
        cells(path)


def test_a_zip64_workbook_is_refused(tmp_path):
    path = tmp_path / "z64.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x", b"")
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end:end] = b"PK\x06\x07" + bytes(16)  # a ZIP64 locator where zipfile looks for one
    path.write_bytes(bytes(data))
    with pytest.raises(TableError, match="a ZIP64 archive"):
        cells(path)


def test_ooxml_escapes_read_as_excel_shows_them_and_round_trip(small_model_dir, tmp_path):
    # Excel stores a typed "_x0041_" as "_x005F_x0041_" and a carriage return as "_x000D_";
    # a surrogate code cannot be a character and stays as written.
    shared = ["<si><t>smiles</t></si>", "<si><t>id_x005F_x0041_ a_x000D_b</t></si>"]
    path = write_xlsx(tmp_path / "e.xlsx", row(1, '<c r="A1" t="s"><v>0</v></c>', inline("B1", "id"),
                                               inline("C1", "note"))
                      + row(2, inline("A2", "CCO"), '<c r="B2" t="s"><v>1</v></c>',
                            inline("C2", "_x0009_x_xD800_ _x00e9_")), shared)
    expected = ["CCO", "id_x0041_ a\rb", "\tx_xD800_ \u00e9"]
    assert cells(path) == (["smiles", "id", "note"], [expected])
    assert run("predict", small_model_dir, path, "-o", tmp_path / "out.xlsx") == 0
    assert cells(tmp_path / "out.xlsx")[1][0][:3] == expected
    # written as Excel writes them (openpyxl shows an inline string's escapes as they are)
    back = list(openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0].iter_rows(values_only=True))
    assert back[1][:3] == ("CCO", "id_x005F_x0041_ a_x000D_b", "\tx_x005F_xD800_ \u00e9")
