"""Text-exact table readers and writers: CSV, TSV and XLSX in; CSV, TSV and XLSX out.

Every cell comes back as it was written: CSV/TSV cells are read as text (no type or missing-value
guessing: ``00042``, ``1e5``, ``NA`` stay themselves), XLSX cells keep their stored value (strings
stay strings, numbers stay numbers). Rows stream: a reader yields :class:`Row` objects one at a
time and :func:`write_table` consumes any iterable, so memory does not grow with the file.

A row whose number of fields differs from the header's is never shifted: it keeps the header's
number of cells (shorter rows padded with empty cells, the extra fields of longer rows quoted in
:attr:`Row.problem`) and carries a ``problem`` that says why it cannot be used.

Formats are chosen by extension: :func:`open_table` picks the reader, ``_WRITERS`` maps output
extensions to writer functions (another format is one entry more).
"""

from __future__ import annotations

import codecs
import csv
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from milearn_core.persist import atomic_path

__all__ = ["TableError", "Row", "Table", "open_table", "write_table", "output_format",
           "OUTPUT_FORMATS"]

OUTPUT_FORMATS = (".csv", ".tsv", ".xlsx")
_TSV = (".tsv", ".tab")
_XLSX = (".xlsx", ".xlsm")
_UNREADABLE = {".xls": "old binary Excel", ".xlsb": "binary Excel", ".ods": "OpenDocument"}
_XLSX_MAX_CHARS = 32767  # the most text one XLSX cell holds


class TableError(ValueError):
    """A table file cannot be read or written as asked; the message names the file."""


@dataclass(frozen=True)
class Row:
    """One data row: exactly as many cells as the header.

    ``where`` says where the row is as the user sees it (``"line 7"`` of a text file, ``"row 7"``
    of a sheet); ``problem`` is empty for a usable row, else the reason it cannot be used.
    """

    cells: list
    where: str
    problem: str = ""


@dataclass
class Table:
    """A table being read: its header and an iterator over its data rows (read once)."""

    path: str
    header: list[str]
    rows: Iterator[Row]


def output_format(path: str | os.PathLike) -> str:
    """The writer's format for ``path`` (``.csv``, ``.tsv`` or ``.xlsx``); else a TableError."""
    suffix = Path(path).suffix.lower()
    suffix = ".tsv" if suffix in _TSV else suffix
    if suffix not in OUTPUT_FORMATS:
        raise TableError(f"{path}: cannot write {suffix or 'a file without extension'}; "
                         f"give an output name ending in {', '.join(OUTPUT_FORMATS)} (or .tab)")
    return suffix


@contextmanager
def open_table(path: str | os.PathLike) -> Iterator[Table]:
    """Open a CSV, TSV (``.tsv``/``.tab``) or XLSX table; rows stream while the context is open.

    Blank lines of a text file and wholly empty sheet rows are not rows. Files with a UTF-8 BOM
    or none are read as UTF-8; a UTF-16/32 BOM selects that encoding.

    Raises
    ------
    TableError
        Not a table of a supported kind: empty, binary, not UTF-8, a corrupt workbook, a folder.
    OSError
        The file cannot be opened (missing, no permission).
    """
    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix in _UNREADABLE:
        raise TableError(f"{path}: {_UNREADABLE[suffix]} files are not supported; save it as .xlsx "
                         "or CSV")
    if os.path.isdir(path):
        raise TableError(f"{path}: is a folder, not a table file")
    reader = _read_xlsx if suffix in _XLSX else _read_text
    with reader(path, "\t" if suffix in _TSV else ",") as table:
        yield table


def write_table(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Write a table atomically (temp file beside ``path``, renamed when complete).

    The format follows the extension (:func:`output_format`). Strings are written as text, also
    in XLSX (a cell starting with ``=`` stays text, never a formula); ``None`` is an empty cell.
    Returns the number of data rows written.
    """
    writer = _WRITERS[output_format(path)]
    if os.path.isdir(path):
        raise TableError(f"{path}: is a folder; give a file name to write to")
    folder = Path(path).parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise TableError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        with atomic_path(path) as tmp:
            return writer(tmp, list(header), rows)
    except OSError as exc:
        if _concerns(exc, Path(path)):
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def _concerns(exc: OSError, target: Path) -> bool:
    """Whether an OSError is about the output file, its temp file or its folder."""
    if not exc.filename:
        return False
    name = Path(os.fsdecode(exc.filename))
    return name.parent == target.parent or name in (target, *target.parents)


# ----------------------------------------------------------------------------- reading text


def _fit(cells: list, width: int, where: str, empty) -> Row:
    """A row of exactly ``width`` cells; a ragged one carries the reason it is not used."""
    if len(cells) == width:
        return Row(cells, where)
    problem = f"{where} has {len(cells)} fields, the header has {width}"
    if len(cells) < width:
        return Row(cells + [empty] * (width - len(cells)), where, problem)
    extra = ", ".join(repr(c) for c in cells[width:])
    return Row(cells[:width], where, f"{problem}; extra fields: {extra}")


def _encoding(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _bad_byte(path: str, encoding: str) -> tuple[int, int]:
    """Offset and value of the first byte that does not decode (a second, rare pass)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 16)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                return offset - len(pending) + exc.start, data[exc.start] if data else -1
            if not chunk:
                return offset, -1
            offset += len(chunk)


def _lines(path: str, fh) -> Iterator[str]:
    """The file's lines, refusing text that does not decode and NUL bytes (binary files)."""
    try:
        for number, line in enumerate(fh, 1):
            if "\x00" in line:
                raise TableError(f"{path}: NUL byte on line {number}: a binary file, not a text "
                                 "table")
            yield line
    except UnicodeDecodeError:
        offset, byte = _bad_byte(path, fh.encoding)
        what = f"byte 0x{byte:02X}" if byte >= 0 else "an incomplete character"
        hint = "; an XLSX workbook? name it .xlsx" if _is_zip(path) else "; save it as UTF-8"
        raise TableError(f"{path}: not UTF-8 text ({what} at byte offset {offset}){hint}") from None


def _is_zip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


@contextmanager
def _read_text(path: str, delimiter: str) -> Iterator[Table]:
    with open(path, encoding=_encoding(path), newline="") as fh:
        records = _records(path, csv.reader(_lines(path, fh), delimiter=delimiter, strict=True))
        header = next((cells for cells, _ in records), None)
        if header is None:
            raise TableError(f"{path}: the file is empty (no header row)")
        width = len(header)
        yield Table(path, header, (_fit(cells, width, where, "") for cells, where in records))


def _records(path: str, reader) -> Iterator[tuple[list[str], str]]:
    """Non-blank records with the line each starts on; csv errors name the file and line."""
    end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TableError(f"{path}: line {end + 1}: {exc}") from None
        start, end = end + 1, reader.line_num
        if cells:
            yield cells, f"line {start}"


# ----------------------------------------------------------------------------- reading XLSX

# What openpyxl raises on a corrupt or fake workbook (a zip without a workbook raises KeyError;
# broken XML raises ParseError, a SyntaxError).
_XLSX_ERRORS = (zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, IndexError,
                SyntaxError, EOFError)


@contextmanager
def _read_xlsx(path: str, delimiter: str) -> Iterator[Table]:
    """The first sheet; cell values as openpyxl reads them (str, int, float, bool, datetime)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise TableError(f"{path}: not an XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise TableError(f"{path}: the workbook has no worksheet")
        sheet.reset_dimensions()  # trust the cells, not the stored sheet size
        records = _sheet_records(path, sheet.iter_rows(values_only=True))
        header = next((cells for cells, _ in records), None)
        if header is None:
            raise TableError(f"{path}: the first sheet is empty (no header row)")
        header = ["" if v is None else str(v) for v in header]
        width = len(header)
        # A sheet row ends at its last value: shorter rows are padded, longer ones are ragged.
        padded = ((cells + [None] * (width - len(cells)), where) for cells, where in records)
        yield Table(path, header, (_fit(cells, width, where, None) for cells, where in padded))
    finally:
        book.close()


def _sheet_records(path: str, rows) -> Iterator[tuple[list, str]]:
    """Rows with at least one value, trailing empty cells dropped, with their sheet row number."""
    number = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except _XLSX_ERRORS as exc:
            raise TableError(f"{path}: corrupt sheet after row {number} "
                             f"({type(exc).__name__}: {exc})") from None
        number += 1
        cells = list(values)
        while cells and cells[-1] is None:
            cells.pop()
        if cells:
            yield cells, f"row {number}"


# ----------------------------------------------------------------------------- writing


def _text(value) -> str:
    """A cell as CSV text: ``None`` is empty, floats in their shortest exact form."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def _write_text(tmp: Path, header: list[str], rows: Iterable[Sequence], delimiter: str) -> int:
    count = 0
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)  # \r\n ends records; \r and \n are quoted
        writer.writerow(header)
        for row in rows:
            writer.writerow([_text(v) for v in row])
            count += 1
    return count


def _write_csv(tmp: Path, header: list[str], rows: Iterable[Sequence]) -> int:
    return _write_text(tmp, header, rows, ",")


def _write_tsv(tmp: Path, header: list[str], rows: Iterable[Sequence]) -> int:
    return _write_text(tmp, header, rows, "\t")


def _write_xlsx(tmp: Path, header: list[str], rows: Iterable[Sequence]) -> int:
    """One sheet; strings are forced to text cells (never formulas or error codes)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    count = 0
    try:
        sheet.append(_xlsx_cells(sheet, header, header, "the header"))
        for count, row in enumerate(rows, 1):
            sheet.append(_xlsx_cells(sheet, row, header, f"output row {count}"))
    except BaseException:
        _abandon(sheet)
        raise
    book.save(tmp)
    return count


def _abandon(sheet) -> None:
    """Close a half-written write-only sheet: no noise at garbage collection, no temp file left."""
    with suppress(Exception):
        sheet.close()
        sheet._writer.cleanup()  # openpyxl streams rows through a temp file of its own


def _xlsx_cells(sheet, values: Sequence, header: Sequence[str], where: str) -> list:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cells = []
    for name, value in zip(header, values):
        if value is None or value == "":
            cells.append(None)
            continue
        if isinstance(value, str) and (len(value) > _XLSX_MAX_CHARS or ILLEGAL_CHARACTERS_RE.search(value)):
            reason = (f"more than {_XLSX_MAX_CHARS} characters" if len(value) > _XLSX_MAX_CHARS
                      else "a control character")
            raise TableError(f"{where}, column {name!r}: the cell holds {reason}, which an XLSX "
                             "cell cannot store; write CSV or TSV instead")
        cell = WriteOnlyCell(sheet, value)
        if isinstance(value, str):
            cell.data_type = "s"  # openpyxl makes "=..." a formula and "#N/A" an error code
        cells.append(cell)
    return cells


_WRITERS = {".csv": _write_csv, ".tsv": _write_tsv, ".xlsx": _write_xlsx}
