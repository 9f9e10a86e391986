"""Size budgets for reading untrusted table files: one place for every limit.

Every reader checks its budget while it streams, before it keeps anything: a line, a cell, a
record (a CSV record, an SD record, a sheet row), the columns of the header, the gap between
two sheet rows, and the bytes a compressed file or workbook member unpacks to. Over budget is a
:class:`~qsarmil.io.errors.BudgetError` that names the line, record or cell and the limit
(``qsarmil: error: ...`` with exit status 2 on the command line); nothing is left half-read.

The defaults cover real files (a 1M-record vendor SDF, a 300-column ELN export, a protein
molblock of 100 000 atoms) and keep the memory of one record far under a gigabyte. Raise one
with ``Limits(max_columns=50_000)`` or ``qsarmil predict --limit max_columns=50000``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

__all__ = ["Limits", "DEFAULT_LIMITS", "LIMITS_HELP", "parse_limit"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class Limits:
    """What one input file may hold. Characters are counted after decoding.

    Attributes
    ----------
    max_cell_chars : int
        One cell: a CSV/TSV field, an SD property value, a sheet cell or shared string.
    max_record_chars : int
        One record: a CSV/TSV record (its lines), an SD record (molblock and properties), a
        sheet row (its cells' text); also all SD property names together.
    max_columns : int
        Columns of the header (distinct SD property names; the last column a sheet cell names).
        16 384 is Excel's own limit (column XFD).
    max_row_gap : int
        Sheet rows skipped between two stored rows (``<row r="2000000000">``). 1 048 576 is
        Excel's row count.
    max_expansion : int
        Bytes a compressed input (``.gz``, ``.bz2``, ``.xz``, an XLSX member) may unpack to
        per compressed byte, beyond ``expansion_floor``.
    expansion_floor : int
        Unpacked bytes always allowed, whatever the ratio (small files compress well).
    max_shared_strings_bytes : int
        A workbook's shared-string table, as UTF-8 bytes (it is held for the whole read).
    max_shared_strings : int
        Entries of that table.
    max_part_bytes : int
        Any other workbook part read whole (workbook, relationships, styles), unpacked.
    max_zip_members : int
        Members of a workbook.
    max_markup_bytes : int
        One XML tag (its attributes included), comment, processing instruction or declaration
        of a workbook part, as bytes. The XML parser holds an unfinished one whole and scans it
        again each time more bytes arrive, so a long one costs time by its square.
    """

    max_cell_chars: int = 1024**2
    max_record_chars: int = 16 * 1024**2
    max_columns: int = 16_384
    max_row_gap: int = 1_048_576
    max_expansion: int = 100
    expansion_floor: int = 64 * 1024**2
    max_shared_strings_bytes: int = 256 * 1024**2
    max_shared_strings: int = 8_000_000
    max_part_bytes: int = 32 * 1024**2
    max_zip_members: int = 10_000
    max_markup_bytes: int = 4 * 1024**2

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{f.name} must be a positive whole number, got {value!r}")

    def unpacked_budget(self, packed_bytes: int) -> int:
        """Unpacked bytes allowed for ``packed_bytes`` of compressed input."""
        return max(self.expansion_floor, self.max_expansion * packed_bytes)

    def with_settings(self, settings: list[str]) -> Limits:
        """These limits with ``NAME=VALUE`` settings applied (see :func:`parse_limit`)."""
        return replace(self, **dict(parse_limit(s) for s in settings))


DEFAULT_LIMITS = Limits()
LIMITS_HELP = "Defaults: " + ", ".join(f"{f.name}={getattr(DEFAULT_LIMITS, f.name)}"
                                        for f in fields(Limits)) + "."
_SETTING = re.compile(r"^\s*([a-z_]+)\s*=\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_limit(setting: str) -> tuple[str, int]:
    """``"max_columns=50000"`` or ``"max_record_chars=64M"`` (K, M, G: powers of 1024) ->
    (name, value); a ValueError lists the names."""
    names = [f.name for f in fields(Limits)]
    found = _SETTING.match(setting)
    if not found or found.group(1) not in names:
        raise ValueError(f"--limit {setting!r}: expected NAME=NUMBER (K, M or G may follow), NAME "
                         f"one of {', '.join(names)}")
    return found.group(1), int(found.group(2)) * _UNITS[found.group(3).lower()]


def limit_hint(name: str) -> str:
    """How to raise one limit, for messages."""
    return f"limit {name}; raise it with --limit {name}=N"
