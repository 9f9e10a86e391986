"""Text-exact table readers and writers: CSV, TSV, SDF and XLSX in and out.

Every cell comes back as it was written: CSV/TSV cells and SD properties are read as text (no
type or missing-value guessing: ``00042``, ``1e5``, ``NA`` stay themselves), XLSX cells keep
their stored value (strings stay strings, numbers stay numbers). Rows stream: a reader yields
:class:`Row` objects one at a time and :func:`write_table` consumes any iterable, so memory does
not grow with the file.

A row whose number of fields differs from the header's is never shifted: it keeps the header's
number of cells (shorter rows padded with empty cells, the extra fields of longer rows quoted in
:attr:`Row.problem`) and carries a ``problem`` that says why it cannot be used.

Inputs: CSV, TSV (``.tsv``/``.tab``), either gzip-compressed (``.csv.gz``), XLSX (first sheet),
SDF (``.sdf``/``.sd``, also ``.sdf.gz``) and ``-`` for CSV on standard input. An SDF record's
properties are its cells (the header is every property name met in the file, in order; a
record without one has an empty cell) and its molblock, as written, is :attr:`Row.molblock`.
The file is read twice (names first, then records), so memory stays flat.

Outputs by extension (:func:`output_format`): CSV, TSV, XLSX and SDF. An output row is a list
of cells or a :class:`Record`, which adds a molblock (SDF) and a PNG picture (XLSX).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TableError", "Row", "Record", "Table", "open_table", "write_table", "output_format",
           "input_format", "OUTPUT_FORMATS", "STDIN", "EMPTY_MOLBLOCK"]

OUTPUT_FORMATS = (".csv", ".tsv", ".xlsx", ".sdf")
STDIN = "-"  # the input name that reads CSV from standard input
_TSV = (".tsv", ".tab")
_XLSX = (".xlsx", ".xlsm")
_SDF = (".sdf", ".sd")
_UNREADABLE = {".xls": "old binary Excel", ".xlsb": "binary Excel", ".ods": "OpenDocument"}
_XLSX_MAX_CHARS = 32767  # the most text one XLSX cell holds
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
# What a failed SDF row carries: a molecule without atoms (reads back as an empty molecule).
EMPTY_MOLBLOCK = "\n     qsarmil\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n"
# Picture cells in XLSX: size in pixels, and the row height / column width that hold it.
PICTURE_SIZE = (400, 300)
_PICTURE_ROW_POINTS = PICTURE_SIZE[1] * 0.75 + 4
_PICTURE_COLUMN_CHARS = PICTURE_SIZE[0] / 7 + 2


class TableError(ValueError):
    """A table file cannot be read or written as asked; the message names the file."""


@dataclass(frozen=True)
class Row:
    """One data row: exactly as many cells as the header.

    ``where`` says where the row is as the user sees it (``"line 7"`` of a text file, ``"row 7"``
    of a sheet, ``"record 3 (line 40)"`` of an SDF); ``problem`` is empty for a usable row, else
    the reason it cannot be used. ``molblock`` is an SDF record's molecule text, as written.
    """

    cells: list
    where: str
    problem: str = ""
    molblock: str | None = None


@dataclass
class Record:
    """An output row: its cells plus what some formats add.

    ``molblock`` is the molecule of an SDF record (None or "" writes :data:`EMPTY_MOLBLOCK`);
    ``picture`` is PNG bytes shown in the picture column of an XLSX sheet.
    """

    cells: list
    molblock: str | None = None
    picture: bytes | None = None


@dataclass
class Table:
    """A table being read: its header and an iterator over its data rows (read once)."""

    path: str
    header: list[str]
    rows: Iterator[Row]


def output_format(path: str | os.PathLike) -> str:
    """The writer's format for ``path`` (``.csv``, ``.tsv``, ``.xlsx`` or ``.sdf``); else a
    TableError."""
    suffix = Path(path).suffix.lower()
    suffix = ".tsv" if suffix in _TSV else ".sdf" if suffix in _SDF else suffix
    if suffix not in OUTPUT_FORMATS:
        raise TableError(f"{path}: cannot write {suffix or 'a file without extension'}; "
                         f"give an output name ending in {', '.join(OUTPUT_FORMATS)} (or .tab)")
    return suffix


def input_format(path: str | os.PathLike) -> tuple[str, bool]:
    """The reader for ``path``: (``.csv``, ``.tsv``, ``.xlsx`` or ``.sdf``, gzip-compressed?).

    A name ending ``.gz`` is decompressed on the fly and read by the extension before it; any
    other extension is read as CSV. ``-`` is CSV on standard input.
    """
    if str(path) == STDIN:
        return ".csv", False
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    suffix = Path(name[:-3] if gz else name).suffix
    if suffix in _UNREADABLE:
        raise TableError(f"{path}: {_UNREADABLE[suffix]} files are not supported; save it as .xlsx "
                         "or CSV")
    if suffix in _XLSX:
        if gz:
            raise TableError(f"{path}: a compressed workbook; unpack it (XLSX is compressed already)")
        return ".xlsx", False
    return (".tsv" if suffix in _TSV else ".sdf" if suffix in _SDF else ".csv"), gz


@contextmanager
def open_table(path: str | os.PathLike) -> Iterator[Table]:
    """Open a CSV, TSV, SDF or XLSX table (see :func:`input_format`); rows stream while the
    context is open.

    Blank lines of a text file and wholly empty sheet rows are not rows. Files with a UTF-8 BOM
    or none are read as UTF-8; a UTF-16/32 BOM selects that encoding.

    Raises
    ------
    TableError
        Not a table of a supported kind: empty, binary, not UTF-8, a corrupt workbook or gzip
        stream, a folder.
    OSError
        The file cannot be opened (missing, no permission).
    """
    path = str(path)
    kind, gz = input_format(path)
    if path != STDIN and os.path.isdir(path):
        raise TableError(f"{path}: is a folder, not a table file")
    if kind == ".xlsx":
        reader = _read_xlsx(path, ",")
    elif kind == ".sdf":
        reader = _read_sdf(path, gz)
    else:
        reader = _read_text(path, "\t" if kind == ".tsv" else ",", gz)
    with reader as table:
        yield table


def write_table(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence | Record],
                picture_column: str | None = None) -> int:
    """Write a table atomically (temp file beside ``path``, renamed when complete).

    The format follows the extension (:func:`output_format`). Strings are written as text, also
    in XLSX (a cell starting with ``=`` stays text, never a formula); ``None`` is an empty cell.
    ``picture_column`` names the XLSX column where a :class:`Record`'s picture is shown (other
    formats ignore pictures; only SDF writes molblocks). Returns the number of data rows written.
    """
    from milearn_core.persist import atomic_path  # imports torch: not needed for --help

    kind = output_format(path)
    if os.path.isdir(path):
        raise TableError(f"{path}: is a folder; give a file name to write to")
    folder = Path(path).parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise TableError(f"cannot write {path}: {existing} is a file, not a folder")
    header = list(header)
    picture_at = header.index(picture_column) if picture_column in header else None
    try:
        with atomic_path(path) as tmp:
            if kind == ".xlsx":
                return _write_xlsx(tmp, header, rows, picture_at)
            return _WRITERS[kind](tmp, header, rows)
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


def _parts(item: Sequence | Record) -> Record:
    """An output row as a :class:`Record`."""
    return item if isinstance(item, Record) else Record(list(item))


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


@contextmanager
def _binary(path: str, gz: bool) -> Iterator:
    """The file's bytes, decompressed where ``gz``; standard input for ``-`` (left open)."""
    if path == STDIN:
        stream = sys.stdin.buffer
        yield stream if hasattr(stream, "peek") else io.BufferedReader(stream)
        return
    with open(path, "rb") as raw:
        if not gz:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            yield unpacked


def _encoding(path: str, raw) -> str:
    """The text encoding from a byte-order mark at the start of ``raw`` (not consumed)."""
    try:
        head = raw.peek(4)[:4]
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from None
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _gzip_error(path: str, exc: BaseException) -> TableError:
    return TableError(f"{path}: not a readable gzip file ({type(exc).__name__}: {exc})")


def _bad_byte(path: str, gz: bool, encoding: str) -> tuple[int, int]:
    """Offset and value of the first byte that does not decode (a second, rare pass)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with _binary(path, gz) as fh:
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


def _lines(path: str, gz: bool, fh) -> Iterator[str]:
    """The file's lines, refusing text that does not decode, NUL bytes (binary files) and
    broken gzip streams."""
    try:
        for number, line in enumerate(fh, 1):
            if "\x00" in line:
                raise TableError(f"{path}: NUL byte on line {number}: a binary file, not a text "
                                 "table")
            yield line
    except UnicodeDecodeError as exc:
        if path == STDIN:  # cannot be read twice
            offset, byte = None, exc.object[exc.start] if exc.start < len(exc.object) else -1
        else:
            offset, byte = _bad_byte(path, gz, fh.encoding)
        what = f"byte 0x{byte:02X}" if byte >= 0 else "an incomplete character"
        where = f" at byte offset {offset}" if offset is not None else ""
        hint = "; an XLSX workbook? name it .xlsx" if _is_zip(path) else "; save it as UTF-8"
        raise TableError(f"{path}: not UTF-8 text ({what}{where}){hint}") from None
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from None


def _is_zip(path: str) -> bool:
    if path == STDIN:
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


@contextmanager
def _text_lines(path: str, gz: bool) -> Iterator[Iterator[str]]:
    """Decoded lines of a text file (line endings kept), read lazily while the context is open."""
    with _binary(path, gz) as raw:
        fh = io.TextIOWrapper(raw, encoding=_encoding(path, raw), newline="")
        try:
            yield _lines(path, gz, fh)
        finally:
            fh.detach()  # the binary stream is closed by _binary (standard input stays open)


@contextmanager
def _read_text(path: str, delimiter: str, gz: bool = False) -> Iterator[Table]:
    with _text_lines(path, gz) as lines:
        records = _records(path, csv.reader(lines, delimiter=delimiter, strict=True))
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


# ----------------------------------------------------------------------------- reading SDF

_SD_NAME = re.compile(r"<([^>]*)>")


@dataclass
class _SDRecord:
    molblock: str
    properties: list[tuple[str, str]]
    where: str


def _sd_records(lines: Iterable[str]) -> Iterator[_SDRecord]:
    """Records of an SD file as written: the molblock text (through ``M  END``) and the
    properties in order, each value its data lines joined by LF (line endings dropped)."""
    block: list[str] = []
    start = number = 0
    for number, line in enumerate(lines, 1):
        if line.rstrip("\r\n") == "$$$$":
            yield _sd_record(block, start)
            block = []
        else:
            if not block:
                start = number
            block.append(line)
    if any(line.strip() for line in block):  # a last record without its "$$$$" line
        yield _sd_record(block, start)


def _sd_record(lines: list[str], start: int) -> _SDRecord:
    """One record's text split into molblock and properties."""
    end = next((k + 1 for k, line in enumerate(lines) if line.rstrip() == "M  END"), None)
    if end is None:  # a broken molblock: it ends where the first property starts
        end = next((k for k, line in enumerate(lines)
                    if line.startswith(">") and _SD_NAME.search(line)), len(lines))
    properties, k = [], end
    while k < len(lines):
        line = lines[k].rstrip("\r\n")
        k += 1
        if not line.startswith(">"):
            continue
        found = _SD_NAME.search(line)
        name = found.group(1) if found else line[1:].strip()
        values = []
        while k < len(lines) and lines[k].rstrip("\r\n") != "":
            values.append(lines[k].rstrip("\r\n"))
            k += 1
        properties.append((name, "\n".join(values)))
    return _SDRecord("".join(lines[:end]), properties, f"line {start}")


@contextmanager
def _read_sdf(path: str, gz: bool) -> Iterator[Table]:
    """SD records as rows: properties are text cells, the molblock travels in ``Row.molblock``."""
    names: dict[str, None] = {}
    count = 0
    with _text_lines(path, gz) as lines:
        for record in _sd_records(lines):
            count += 1
            names.update((name, None) for name, _ in record.properties)
    if not count:
        raise TableError(f"{path}: the file is empty (no SD records)")
    header = list(names)
    with _text_lines(path, gz) as lines:
        yield Table(path, header, (_sd_row(record, k, header)
                                   for k, record in enumerate(_sd_records(lines), 1)))


def _sd_row(record: _SDRecord, number: int, header: list[str]) -> Row:
    where = f"record {number} ({record.where})"
    cells = dict.fromkeys(header, "")
    problem = ""
    seen = set()
    for name, value in record.properties:
        if name in seen and not problem:
            problem = f"{where}: property {name!r} appears more than once"
        elif name not in seen:
            cells[name] = value
        seen.add(name)
    return Row(list(cells.values()), where, problem, record.molblock)


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


def _write_text(tmp: Path, header: list[str], rows: Iterable, delimiter: str) -> int:
    count = 0
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)  # \r\n ends records; \r and \n are quoted
        writer.writerow(header)
        for row in rows:
            writer.writerow([_text(v) for v in _parts(row).cells])
            count += 1
    return count


def _write_csv(tmp: Path, header: list[str], rows: Iterable) -> int:
    return _write_text(tmp, header, rows, ",")


def _write_tsv(tmp: Path, header: list[str], rows: Iterable) -> int:
    return _write_text(tmp, header, rows, "\t")


def _write_xlsx(tmp: Path, header: list[str], rows: Iterable, picture_at: int | None = None) -> int:
    """One sheet; strings are forced to text cells (never formulas or error codes).

    A :class:`Record`'s picture is anchored in column ``picture_at`` of its row, and that row is
    made tall enough to show it. openpyxl keeps pictures in memory until the file is saved, so
    the caller bounds how many it passes.
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    if picture_at is not None:  # column widths must be set before the first row
        sheet.column_dimensions[get_column_letter(picture_at + 1)].width = _PICTURE_COLUMN_CHARS
    count = 0
    try:
        sheet.append(_xlsx_cells(sheet, header, header, "the header"))
        for count, item in enumerate(rows, 1):
            row = _parts(item)
            if row.picture is not None and picture_at is not None:
                _add_picture(sheet, row.picture, count + 1, picture_at)
            sheet.append(_xlsx_cells(sheet, row.cells, header, f"output row {count}"))
    except BaseException:
        _abandon(sheet)
        raise
    book.save(tmp)
    return count


def _add_picture(sheet, png: bytes, row: int, column: int) -> None:
    """Anchor a PNG in a cell of the row about to be appended, and make the row tall enough."""
    from openpyxl.drawing.image import Image
    from openpyxl.utils import get_column_letter

    picture = Image(io.BytesIO(png))
    picture.anchor = f"{get_column_letter(column + 1)}{row}"
    sheet.add_image(picture)
    sheet.row_dimensions[row].height = _PICTURE_ROW_POINTS


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


def _write_sdf(tmp: Path, header: list[str], rows: Iterable) -> int:
    """One SD record per row: the row's molblock (empty molecule if none), then every column as
    a property (an empty cell is an empty property). Line breaks are written as LF."""
    for name in header:
        if not name or any(c in name for c in "<>\r\n"):
            raise TableError(f"column {name!r} cannot be an SD property name (empty, or holds <, > "
                             "or a line break); write CSV, TSV or XLSX instead")
    count = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for count, item in enumerate(rows, 1):
            row = _parts(item)
            fh.write(_molblock_text(row.molblock))
            for name, value in zip(header, row.cells):
                fh.write(f">  <{name}>\n{_sd_value(_text(value), name, count)}\n")
            fh.write("$$$$\n")
    return count


def _molblock_text(molblock: str | None) -> str:
    """A molblock with LF line endings and a final line break; the empty molecule if none."""
    if not molblock or not molblock.strip():
        return EMPTY_MOLBLOCK
    return "".join(line.rstrip("\r\n") + "\n" for line in molblock.splitlines(keepends=True))


def _sd_value(text: str, name: str, count: int) -> str:
    """A property value as data lines; values an SD file cannot hold raise a TableError."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if text and ("" in lines or "$$$$" in lines):
        raise TableError(f"output row {count}, column {name!r}: the value holds an empty line or "
                         "a '$$$$' line, which ends an SD property; write CSV, TSV or XLSX instead")
    return "\n".join(lines) + ("\n" if text else "")


_WRITERS = {".csv": _write_csv, ".tsv": _write_tsv, ".xlsx": _write_xlsx, ".sdf": _write_sdf}
