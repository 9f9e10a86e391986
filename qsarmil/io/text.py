"""CSV and TSV tables: every cell as text, records to the record budget, blank lines kept."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import BudgetError, TableError
from .limits import Limits, limit_hint
from .rows import Row, Table, fit_row
from .streams import Lines, text_lines


def check_columns(path: str, width: int, limits: Limits, what: str = "the header") -> None:
    if width > limits.max_columns:
        raise BudgetError(f"{path}: {what} has {width} columns, more than {limits.max_columns} "
                          f"({limit_hint('max_columns')})")


@contextmanager
def read_text(path: str, delimiter: str, compression: str | None, limits: Limits) -> Iterator[Table]:
    """Rows of a CSV/TSV file. Blank lines before the header are skipped; after it, a blank
    line is a failed row (so output row k is still input line k + 1 where no record spans
    lines)."""
    # The csv module's field limit is global; raise it to the record budget, which Lines holds.
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_record_chars))
    with text_lines(path, compression, limits) as lines:
        records = _records(path, lines, delimiter, limits)
        header = next((cells for cells, _ in records if cells), None)
        if header is None:
            raise TableError(f"{path}: the file is empty (no header row)")
        check_columns(path, len(header), limits)
        width = len(header)
        yield Table(path, header, (fit_row(cells, width, where, "") if cells
                                   else Row([""] * width, where, f"{where}: a blank line", blank=True)
                                   for cells, where in records))


def _records(path: str, lines: Lines, delimiter: str, limits: Limits
             ) -> Iterator[tuple[list[str], str]]:
    """Records (``[]`` for a blank line) with the line each starts on; csv errors and cells over
    budget name the file and line."""
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    end = 0
    cap = limits.max_cell_chars
    while True:
        lines.mark()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TableError(f"{path}: line {end + 1}: {exc}") from None
        start, end = end + 1, reader.line_num
        for k, cell in enumerate(cells):
            if len(cell) > cap:
                raise BudgetError(f"{path}: line {start}, field {k + 1} holds {len(cell)} "
                                  f"characters, more than {cap} ({limit_hint('max_cell_chars')})")
        yield cells, f"line {start}"
