"""Table writers: CSV, TSV, XLSX and SDF, each written to a temp file and renamed when complete.

Strings are written as text, also in XLSX (a cell starting with ``=`` stays text, never a
formula; as Excel writes them, a literal ``_xHHHH_`` is escaped as ``_x005F_xHHHH_`` and a
carriage return as ``_x000D_``, so that both read back as they were). CSV/TSV cells are written
as they are unless ``escape_formulas`` is asked for: then a text cell that a spreadsheet would
run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and not
a plain number) gets a leading ``'``, as OWASP advises for CSV injection. That changes bytes, so
it is off by default.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from .errors import TableError

OUTPUT_FORMATS = (".csv", ".tsv", ".xlsx", ".sdf")
_TSV = (".tsv", ".tab")
_SDF = (".sdf", ".sd")
XLSX_MAX_CHARS = 32767  # the most text one XLSX cell holds
# What a failed SDF row carries: a molecule without atoms (reads back as an empty molecule).
EMPTY_MOLBLOCK = "\n     qsarmil\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n"
# Picture cells in XLSX: size in pixels, and the row height / column width that hold it.
PICTURE_SIZE = (400, 300)
_PICTURE_ROW_POINTS = PICTURE_SIZE[1] * 0.75 + 4
_PICTURE_COLUMN_CHARS = PICTURE_SIZE[0] / 7 + 2
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINE_END = re.compile(r"\r\n?")
_OOXML_LITERAL = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")  # an underscore XLSX would read as an escape
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass
class Record:
    """An output row: its cells plus what some formats add.

    ``molblock`` is the molecule of an SDF record (None or "" writes :data:`EMPTY_MOLBLOCK`);
    ``picture`` is PNG bytes shown in the picture column of an XLSX sheet.
    """

    cells: list
    molblock: str | None = None
    picture: bytes | None = None


def output_format(path: str | os.PathLike) -> str:
    """The writer's format for ``path`` (``.csv``, ``.tsv``, ``.xlsx`` or ``.sdf``); else a
    TableError."""
    suffix = Path(path).suffix.lower()
    suffix = ".tsv" if suffix in _TSV else ".sdf" if suffix in _SDF else suffix
    if suffix not in OUTPUT_FORMATS:
        raise TableError(f"{path}: cannot write {suffix or 'a file without extension'}; "
                         f"give an output name ending in {', '.join(OUTPUT_FORMATS)} (or .tab)")
    return suffix


def xlsx_cell_problem(value) -> str | None:
    """Why an XLSX cell cannot store ``value`` as it is (too long, a control character), or
    None."""
    if not isinstance(value, str):
        return None
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if len(value) > XLSX_MAX_CHARS:
        return f"{len(value)} characters, more than the {XLSX_MAX_CHARS} an XLSX cell holds"
    if ILLEGAL_CHARACTERS_RE.search(value):
        return "a control character, which an XLSX cell cannot hold"
    return None


def xlsx_storable(value: str) -> str:
    """``value`` made storable in an XLSX cell: control characters as U+FFFD, cut to fit with a
    note of how long it was."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if len(value) <= XLSX_MAX_CHARS:
        return value
    note = f" [cut: {len(value)} characters]"
    return value[:XLSX_MAX_CHARS - len(note)] + note


def write_table(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence | Record],
                picture_column: str | None = None, escape_formulas: bool = False) -> int:
    """Write a table atomically (temp file beside ``path``, renamed when complete).

    The format follows the extension (:func:`output_format`); ``None`` is an empty cell.
    ``picture_column`` names the XLSX column where a :class:`Record`'s picture is shown (other
    formats ignore pictures; only SDF writes molblocks). ``escape_formulas`` guards CSV/TSV
    cells against spreadsheet formula injection (see the module docstring). Returns the number
    of data rows written.
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
            if kind == ".sdf":
                return _write_sdf(tmp, header, rows)
            return _write_text(tmp, header, rows, "\t" if kind == ".tsv" else ",", escape_formulas)
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


def cell_text(value) -> str:
    """A cell as CSV text: ``None`` is empty, floats in their shortest exact form."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def escape_formula(text: str) -> str:
    """``text`` with a leading ``'`` where a spreadsheet would read it as a formula."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _write_text(tmp: Path, header: list[str], rows: Iterable, delimiter: str,
                escape_formulas: bool = False) -> int:
    shown = (lambda v: escape_formula(cell_text(v))) if escape_formulas else cell_text
    count = 0
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)  # \r\n ends records; \r and \n are quoted
        writer.writerow([shown(v) for v in header])
        for row in rows:
            writer.writerow([shown(v) for v in _parts(row).cells])
            count += 1
    return count


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

    cells = []
    for name, value in zip(header, values):
        if value is None or value == "":
            cells.append(None)
            continue
        problem = xlsx_cell_problem(value)
        if problem:
            raise TableError(f"{where}, column {name!r}: the cell holds {problem}; write CSV or "
                             "TSV instead")
        if isinstance(value, str):  # as Excel escapes text: "_x0041_" would read back as "A",
            # and XML reads a raw carriage return as a line feed
            value = _OOXML_LITERAL.sub("_x005F_", value).replace("\r", "_x000D_")
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
                fh.write(f">  <{name}>\n{_sd_value(cell_text(value), name, count)}\n")
            fh.write("$$$$\n")
    return count


def _molblock_text(molblock: str | None) -> str:
    """A molblock with LF line endings and a final line break; the empty molecule if none.

    Only CR and LF end a line, as RDKit and the SD reader split them (``str.splitlines`` would
    also split at U+2028, NEL or a form feed in a title and shift every line below it)."""
    if not molblock or not molblock.strip():
        return EMPTY_MOLBLOCK
    text = _LINE_END.sub("\n", molblock)
    return text if text.endswith("\n") else text + "\n"


def sd_value_problem(text: str) -> str | None:
    """Why an SD property cannot hold ``text`` (an empty line or a ``$$$$`` line would end it)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if text and ("" in lines or any(line.startswith("$$$$") for line in lines)):
        return "an empty line or a line starting '$$$$', which ends an SD property"
    return None


def sd_storable(text: str) -> str:
    """``text`` made storable as an SD property: blank lines dropped, ``$$$$`` lines indented."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(" " + line if line.startswith("$$$$") else line for line in lines if line)


def _sd_value(text: str, name: str, count: int) -> str:
    """A property value as data lines; values an SD file cannot hold raise a TableError."""
    problem = sd_value_problem(text)
    if problem:
        raise TableError(f"output row {count}, column {name!r}: the value holds {problem}; write "
                         "CSV, TSV or XLSX instead")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(lines) + ("\n" if text else "")
