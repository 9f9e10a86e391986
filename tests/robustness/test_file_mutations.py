"""Valid CSV, TSV, SDF, gzip and XLSX files, mutated (truncated, spliced, byte-flipped, given
stray delimiters, quotes and record ends), through `qsarmil predict`: every run ends in exit 0
with one output row per input record, or exit 2 with one `qsarmil: error:` line; never a
traceback, and memory stays bounded. A few hundred cases in CI, over 2 000 with --slow."""

import csv
import gzip
import io
import os
import re
import tempfile
import zipfile

import openpyxl
import pytest
from hostile_files import sd_record
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qsarmil.cli import main

CASES = 2000 if settings.get_current_profile_name() == "slow" else 60  # per format
STRAY = [b",", b"\t", b'"', b"\n", b"\r", b"\r\n", b"$$$$\n", b"$$$$ \n", b">  <x>\n", b"\x00",
         b"\xff", b"\xef\xbb\xbf", b"M  END\n", b"<row>", b"</c>", b"=1+1", b"C O"]
_PEAK_KB = 3 * 1024**2  # the whole pytest process, torch included, stays under 3 GB


def _csv(delimiter: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(
        [["id", "smiles", "note"], ["1", "CCO", "a,b"], ["2", "c1ccccc1O", 'say "hi"'],
         ["3", "CC(=O)N", "two\nlines"], ["4", "CCCl", ""]])
    return buf.getvalue().encode()


def _sdf() -> bytes:
    return "".join(sd_record(f"m{k}", {"id": str(k), "note": f"n{k}"}) + "$$$$\n"
                   for k in range(4)).encode()


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    for cells in (["id", "smiles", "amount"], ["1", "CCO", 1.5], [2, "CCN", "=1+1"], ["x", "CCCO"]):
        book.active.append(cells)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


VALID = {".csv": _csv(","), ".tsv": _csv("\t"), ".sdf": _sdf(), ".csv.gz": gzip.compress(_csv(",")),
         ".xlsx": _xlsx()}


@st.composite
def mutated(draw, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        at = draw(st.integers(0, max(n - 1, 0)))
        op = draw(st.sampled_from(["truncate", "duplicate", "flip", "insert", "delete"]))
        if op == "truncate":
            data = data[:at]
        elif op == "duplicate":
            end = draw(st.integers(at, min(n, at + 400)))
            data = data[:end] + data[at:end] + data[end:]
        elif op == "flip" and n:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif op == "insert":
            data = data[:at] + draw(st.sampled_from(STRAY)) + data[at:]
        else:
            data = data[:at] + data[at + draw(st.integers(1, 40)):]
    return data


def _records(suffix: str, data: bytes) -> int | None:
    """Input records as the format defines them, or None where the file cannot be a table."""
    try:
        if suffix == ".csv.gz":
            data, suffix = gzip.decompress(data), ".csv"
        if suffix == ".xlsx":
            sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
            return sum(1 for r in sheet.iter_rows(values_only=True) if any(v is not None for v in r)) - 1
        text = data.decode("utf-8-sig")
    except Exception:  # noqa: BLE001 - any failure means: no oracle for this file
        return None
    if suffix == ".sdf":
        lines = text.splitlines(keepends=True)
        ends = sum(1 for line in lines if line.startswith("$$$$"))
        tail = "".join(lines[max(k for k, line in enumerate([""] + lines)
                                 if line.startswith("$$$$")):]) if ends else text
        return ends + (1 if tail.strip() else 0)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",",
                               strict=True))
    except csv.Error:
        return None
    start = next((k for k, r in enumerate(rows) if r), None)
    return None if start is None else len(rows) - start - 1


def _run(model_dir: str, suffix: str, data: bytes, capsys) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, f"in{suffix}"), os.path.join(tmp, "out.csv")
        with open(src, "wb") as fh:
            fh.write(data)
        capsys.readouterr()
        try:
            main(["predict", model_dir, src, "-o", out, "-q"])
            status = 0
        except SystemExit as exc:
            status = exc.code
        err = capsys.readouterr().err
        event(f"{suffix} exit {status}")
        assert status in (0, 2), err
        assert "Traceback" not in err
        if status == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("qsarmil: error: "), err
            assert os.listdir(tmp) == [f"in{suffix}"]
            return
        with open(out, encoding="utf-8", newline="") as fh:
            got = list(csv.reader(fh, strict=True))
        expected = _records(suffix, data)
        if expected is not None and not (suffix == ".xlsx" and re.search(rb"<f", data)):
            assert len(got) - 1 == expected, (len(got) - 1, expected)
    import resource

    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < _PEAK_KB


@pytest.mark.parametrize("suffix", list(VALID))
def test_mutated_files_end_in_rows_or_one_line(small_model_dir, capsys, count_case, suffix):
    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=mutated(VALID[suffix]))
    def check(data):
        count_case(f"mutated {suffix} files through qsarmil predict")
        _run(small_model_dir, suffix, data, capsys)

    check()


def test_the_valid_files_read_whole(small_model_dir, capsys):
    for suffix, data in VALID.items():
        assert _records(suffix, data) == (3 if suffix == ".xlsx" else 4)
    with zipfile.ZipFile(io.BytesIO(VALID[".xlsx"])) as zf:
        assert "xl/worksheets/sheet1.xml" in zf.namelist()
