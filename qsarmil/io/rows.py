"""What every reader yields: :class:`Row` (exactly as many cells as the header) and
:class:`Table`; how a ragged row keeps its place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One data row: exactly as many cells as the header.

    ``where`` says where the row is as the user sees it (``"line 7"`` of a text file, ``"row 7"``
    of a sheet, ``"record 3 (line 40)"`` of an SDF); ``problem`` is empty for a usable row, else
    the reason it cannot be used. ``molblock`` is an SDF record's molecule text, as written;
    ``blank`` marks a blank line of a text file (its cells empty, its problem saying so).
    """

    cells: list
    where: str
    problem: str = ""
    molblock: str | None = None
    blank: bool = False


@dataclass
class Table:
    """A table being read: its header and an iterator over its data rows (read once)."""

    path: str
    header: list[str]
    rows: Iterator[Row]


def fit_row(cells: list, width: int, where: str, empty) -> Row:
    """A row of exactly ``width`` cells; a ragged one carries the reason it is not used."""
    if len(cells) == width:
        return Row(cells, where)
    problem = f"{where} has {len(cells)} fields, the header has {width}"
    if len(cells) < width:
        return Row(cells + [empty] * (width - len(cells)), where, problem)
    extra = ", ".join(repr(c) for c in cells[width:])
    return Row(cells[:width], where, f"{problem}; extra fields: {extra}")
