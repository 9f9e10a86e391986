"""Text-exact table readers and writers: CSV, TSV, SDF and XLSX in and out, on a budget.

Every cell comes back as it was written: CSV/TSV cells and SD properties are read as text (no
type or missing-value guessing: ``00042``, ``1e5``, ``NA`` stay themselves), XLSX cells keep
their stored value (strings stay strings, numbers stay numbers, a formula comes back as its
text; see :mod:`qsarmil.io.xlsx`). Rows stream: a reader yields :class:`Row` objects one at a
time and :func:`write_table` consumes any iterable, so memory does not grow with the file.

Every reader holds the file to a :class:`~qsarmil.io.limits.Limits` budget while it streams
(line, cell, record, columns, row gaps, unpacked bytes); over budget is a
:class:`BudgetError` naming where and which limit.

A row whose number of fields differs from the header's is never shifted: it keeps the header's
number of cells (shorter rows padded with empty cells, the extra fields of longer rows quoted in
:attr:`Row.problem`) and carries a ``problem`` that says why it cannot be used. So does a blank
line of a CSV/TSV file after the header.

Inputs: CSV, TSV (``.tsv``/``.tab``), either compressed (``.gz``, ``.bz2``, ``.xz``), XLSX
(first sheet), SDF (``.sdf``/``.sd``, also compressed) and ``-`` for CSV on standard input. An
SDF record's properties are its cells (the header is every property name met in the file, in
order; a record without one has an empty cell) and its molblock, as written, is
:attr:`Row.molblock`. The file is read twice (names first, then records), so memory stays flat.

Outputs by extension (:func:`output_format`): CSV, TSV, XLSX and SDF. An output row is a list
of cells or a :class:`Record`, which adds a molblock (SDF) and a PNG picture (XLSX).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BudgetError, TableError
from .limits import DEFAULT_LIMITS, Limits
from .rows import Row, Table
from .sdf import read_sdf
from .streams import COMPRESSIONS, STDIN
from .text import read_text
from .writers import (
    EMPTY_MOLBLOCK,
    OUTPUT_FORMATS,
    PICTURE_SIZE,
    XLSX_MAX_CHARS,
    Record,
    output_format,
    write_table,
    xlsx_cell_problem,
    xlsx_storable,
)
from .xlsx import read_xlsx

__all__ = ["TableError", "BudgetError", "Limits", "DEFAULT_LIMITS", "Row", "Record", "Table",
           "open_table", "write_table", "output_format", "input_format", "OUTPUT_FORMATS", "STDIN",
           "EMPTY_MOLBLOCK", "PICTURE_SIZE", "XLSX_MAX_CHARS", "xlsx_cell_problem", "xlsx_storable"]

_TSV = (".tsv", ".tab")
_XLSX = (".xlsx", ".xlsm")
_SDF = (".sdf", ".sd")
_UNREADABLE = {".xls": "old binary Excel", ".xlsb": "binary Excel", ".ods": "OpenDocument"}
_ARCHIVES = {".zip": "zip", ".7z": "7-Zip", ".rar": "RAR", ".zst": "Zstandard", ".lz4": "LZ4"}


def input_format(path: str | os.PathLike) -> tuple[str, str | None]:
    """The reader for ``path``: (``.csv``, ``.tsv``, ``.xlsx`` or ``.sdf``, its compression).

    A name ending ``.gz``, ``.bz2`` or ``.xz`` is unpacked on the fly (compression ``"gzip"``,
    ``"bzip2"`` or ``"xz"``) and read by the extension before it; any other extension is read
    as CSV. ``-`` is CSV on standard input.
    """
    if str(path) == STDIN:
        return ".csv", None
    name = Path(path).name.lower()
    packed = Path(name).suffix
    compression = COMPRESSIONS.get(packed)
    suffix = Path(name[:-len(packed)] if compression else name).suffix
    if packed in _ARCHIVES:
        raise TableError(f"{path}: {_ARCHIVES[packed]} archives are not read; unpack it (gzip, bzip2 "
                         "and xz files are)")
    if suffix in _UNREADABLE:
        raise TableError(f"{path}: {_UNREADABLE[suffix]} files are not supported; save it as .xlsx "
                         "or CSV")
    if suffix in _XLSX:
        if compression:
            raise TableError(f"{path}: a compressed workbook; unpack it (XLSX is compressed already)")
        return ".xlsx", None
    return (".tsv" if suffix in _TSV else ".sdf" if suffix in _SDF else ".csv"), compression


@contextmanager
def open_table(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Iterator[Table]:
    """Open a CSV, TSV, SDF or XLSX table (see :func:`input_format`); rows stream while the
    context is open, each held to ``limits``.

    Blank lines before a text file's header and wholly empty sheet rows are not rows; a blank
    line after the header is a row that failed. Files with a UTF-8 BOM or none are read as
    UTF-8; a UTF-16/32 BOM selects that encoding.

    Raises
    ------
    BudgetError
        The file holds more than ``limits`` allow (raised when the reader gets there).
    TableError
        Not a table of a supported kind: empty, binary, not UTF-8, a corrupt workbook or
        compressed stream, a folder.
    OSError
        The file cannot be opened (missing, no permission).
    """
    path = str(path)
    kind, compression = input_format(path)
    if path != STDIN and os.path.isdir(path):
        raise TableError(f"{path}: is a folder, not a table file")
    if kind == ".xlsx":
        reader = read_xlsx(path, limits)
    elif kind == ".sdf":
        reader = read_sdf(path, compression, limits)
    else:
        reader = read_text(path, "\t" if kind == ".tsv" else ",", compression, limits)
    with reader as table:
        yield table
