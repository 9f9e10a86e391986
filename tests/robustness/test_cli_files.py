"""Generated CSV files through `qsarmil predict`: every run ends in exit 0 or 2 with one line
on stderr, never a traceback; on exit 0 every data row comes back, in order, cells identical."""

import csv
import io
import os
import tempfile

import pytest
from cli_support import model_columns
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qsarmil.cli import main

SPECIAL = ["", "NA", "None", "nan", "00042", "1e5", "=1+1", "=cmd|' /C calc'!A0", "+1", "-1", "@x",
           '"', '""', ",", "\n", "\r\n", "\r", " ", "\t", "#N/A", "é", "漢字", "😀", "\ufeff"]
SMILES_ATOMS = ["C", "c", "N", "n", "O", "o", "S", "Cl", "(", ")", "=", "#", "1", "2", "[NH4+]", "*",
                "c1ccccc1", "CCO", "[", "]", "@", "/", "\\", ".", "%10"]

text_cell = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=12),
                      st.lists(st.sampled_from(SPECIAL), max_size=4).map("".join))
smiles_cell = st.one_of(st.sampled_from(["CCO", "c1ccccc1O", "CC(=O)N", "CCCl", " CCO"]),
                        st.lists(st.sampled_from(SMILES_ATOMS), max_size=8).map("".join), text_cell)


@st.composite
def tables(draw):
    """A header with a 'smiles' column and rows of odd cells, some of them ragged."""
    width = draw(st.integers(1, 4))
    smiles_at = draw(st.integers(0, width - 1))
    header = [draw(st.sampled_from(["id", "prediction", "status", "error", "x", "", "smiles2"]))
              for _ in range(width)]
    header[smiles_at] = "smiles"
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        n = draw(st.sampled_from([width] * 4 + [max(width - 1, 1), width + 1, width + 2]))
        row = [draw(text_cell) for _ in range(n)]
        if smiles_at < n:
            row[smiles_at] = draw(smiles_cell)
        rows.append(row)
    return header, rows


@pytest.fixture(scope="module")
def model_dir(small_model_dir):
    return small_model_dir


def _rows(fh, delimiter):
    """Header and rows as qsarmil reads them: blank lines before the header are skipped, each
    one after it is a row ([])."""
    records = list(csv.reader(fh, delimiter=delimiter, strict=True))
    start = next(k for k, r in enumerate(records) if r)
    return records[start:]


@pytest.fixture(scope="module")
def count(request):
    """conftest's case counter where it has one, else a no-op."""
    try:
        return request.getfixturevalue("count_case")
    except pytest.FixtureLookupError:
        return lambda name: None


# The number of examples comes from the hypothesis profile (conftest: "ci", or "slow" with --slow).
@settings(deadline=None, suppress_health_check=[*settings.default.suppress_health_check,
                                                HealthCheck.function_scoped_fixture])
@given(table=tables(), suffix=st.sampled_from([".csv", ".tsv"]), raw_tail=st.sampled_from(
    ["", "", "", "\n\n", '"unterminated', "a\x00b\n", "\udcff"]))
def test_generated_csv_files(model_dir, capsys, count, table, suffix, raw_tail):
    count("qsarmil predict on generated CSV/TSV files")
    header, rows = table
    delimiter = "\t" if suffix == ".tsv" else ","
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows([header, *rows])
    data = (buf.getvalue() + raw_tail).encode("utf-8", errors="surrogateescape")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, f"in{suffix}"), os.path.join(tmp, f"out{suffix}")
        with open(src, "wb") as fh:
            fh.write(data)
        capsys.readouterr()
        try:
            main(["predict", model_dir, src, out])
            status = 0
        except SystemExit as exc:
            status = exc.code
        err = capsys.readouterr().err
        event(f"exit {status}")
        assert status in (0, 2), err
        assert "Traceback" not in err
        if status == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("qsarmil: error: ")
            assert not os.path.exists(out) and os.listdir(tmp) == [f"in{suffix}"]
            return
        with open(src, encoding="utf-8-sig", newline="") as fh:
            expected = _rows(fh, delimiter)
        with open(out, encoding="utf-8", newline="") as fh:
            got = list(csv.reader(fh, delimiter=delimiter, strict=True))
    width = len(expected[0])
    # Ours: prediction, status, error, then the model's own columns (stripped, domain).
    ours = 3 + len(model_columns(model_dir))
    status, error = width + 1, width + 2
    assert got[0][:width] == expected[0] and len(got[0]) == width + ours
    assert len(got) == len(expected)
    for want, row in zip(expected[1:], got[1:]):
        assert len(row) == width + ours
        if not want:
            assert row[:width] == [""] * width and row[status] == "failed"
            assert row[error].endswith("a blank line")
        elif len(want) == width:
            assert row[:width] == want
            event(f"row {row[status]}")
            assert row[status] in ("ok", "failed")
        else:
            assert row[status] == "failed" and "fields, the header has" in row[error]
            assert row[:width] == (want + [""] * width)[:width]
