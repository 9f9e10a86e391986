"""SD files as tables: each record's properties are text cells, its molblock travels in
:attr:`Row.molblock`. The file is read twice (property names first, then records), so memory
stays flat; each record is held to the record budget while it is read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import BudgetError, TableError
from .limits import Limits, limit_hint
from .rows import Row, Table
from .streams import Lines, text_lines
from .text import check_columns

_SD_NAME = re.compile(r"<([^>]*)>")
DELIMITER = "$$$$"  # a line that starts with it ends a record, as RDKit reads it


@dataclass
class _SDRecord:
    molblock: str
    properties: list[tuple[str, str]]
    where: str


def _sd_records(lines: Lines, limits: Limits) -> Iterator[_SDRecord]:
    """Records of an SD file as written: the molblock text (through ``M  END``) and the
    properties in order, each value its data lines joined by LF (line endings dropped)."""
    block: list[str] = []
    start = 0
    lines.mark()
    for line in lines:
        if line.startswith(DELIMITER):  # an empty record is where its delimiter is
            yield _sd_record(lines.path, block, start if block else lines.number, limits)
            block = []
            lines.mark()
        else:
            if not block:
                start = lines.number
            block.append(line)
    if any(line.strip() for line in block):  # a last record without its "$$$$" line
        yield _sd_record(lines.path, block, start, limits)


def _sd_record(path: str, lines: list[str], start: int, limits: Limits) -> _SDRecord:
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
        value = "\n".join(values)
        if len(value) > limits.max_cell_chars:
            raise BudgetError(f"{path}: record at line {start}, property {name[:80]!r} holds "
                              f"{len(value)} characters, more than {limits.max_cell_chars} "
                              f"({limit_hint('max_cell_chars')})")
        properties.append((name, value))
    return _SDRecord("".join(lines[:end]), properties, f"line {start}")


@contextmanager
def read_sdf(path: str, compression: str | None, limits: Limits) -> Iterator[Table]:
    """SD records as rows (see the module docstring)."""
    names: dict[str, None] = {}
    count = name_chars = 0
    with text_lines(path, compression, limits) as lines:
        for record in _sd_records(lines, limits):
            count += 1
            for name, _ in record.properties:
                if name not in names:
                    names[name] = None
                    name_chars += len(name)
            check_columns(path, len(names), limits, f"record {count} ({record.where}): the header")
            if name_chars > limits.max_record_chars:
                raise BudgetError(f"{path}: record {count} ({record.where}): the property names "
                                  f"hold more than {limits.max_record_chars} characters together "
                                  f"({limit_hint('max_record_chars')})")
    if not count:
        raise TableError(f"{path}: the file is empty (no SD records)")
    header = list(names)
    with text_lines(path, compression, limits) as lines:
        yield Table(path, header, (_sd_row(record, k, header)
                                   for k, record in enumerate(_sd_records(lines, limits), 1)))


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
