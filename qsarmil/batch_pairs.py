"""``qsarmil predict --pairs``: one pair of analogues per input row, each compared with
:func:`qsarmil.pairs.compare` (the predicted difference a - b split exactly into the changed
atoms' part and the context's).

It reads and writes through the same streaming code as scoring one molecule per row, so every
input row comes back, in order, its cells unchanged, with the pair's columns, a status and an
error: a row whose SMILES cannot be read or whose measured value is not a number fails alone,
with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .cli_errors import CommandError
from .columns import PAIR_COLUMNS, _cell_text, find_column, printable

__all__ = ["PAIR_COLUMNS", "PairScoring", "PairSource", "check_pair_options", "pair_source"]

MISSING = {"", "na", "n/a", "nan", "null", "none"}  # a measured cell read as "not measured"


def check_pair_options(args, output_kind: str) -> None:
    """Refuse what ``--pairs`` cannot combine with, before any file is read."""
    for option, given in (("--measured", args.measured), ("--charge", args.charge)):
        if given and not args.pairs:
            raise CommandError(f"{option} goes with --pairs (the pair columns); give --pairs too")
    clashes = [name for name, given in (("--explain", args.explain), ("--pictures", args.pictures),
                                        ("--interval", args.interval is not None),
                                        ("--scheduler", args.scheduler is not None),
                                        ("--smiles-col", args.smiles_column is not None)) if given]
    if clashes:
        raise CommandError(f"--pairs does not combine with {', '.join(clashes)}: a pair row gets "
                           "the split of its predicted difference (see --help)")
    if output_kind == ".sdf":
        raise CommandError("--pairs writes two molecules per row: give a .csv, .tsv or .xlsx output")


@dataclass
class PairSource:
    """Where a row's pair is: two SMILES columns and, optionally, two measured-value columns."""

    a_at: int
    b_at: int
    measured_at: tuple[int, int] | None
    id_at: int | None
    header: list[str] = field(default_factory=list)

    def molecule(self, row) -> tuple:
        """The row's ``(smiles_a, smiles_b, measured_a, measured_b)``; a ValueError says why
        there is none."""
        if row.problem:
            raise ValueError(row.problem)
        measured = (None, None) if self.measured_at is None else tuple(
            self._number(row, k) for k in self.measured_at)
        return (_cell_text(row.cells[self.a_at]), _cell_text(row.cells[self.b_at]), *measured)

    def _number(self, row, k: int) -> float | None:
        text = _cell_text(row.cells[k]).strip()
        if text.casefold() in MISSING:
            return None
        try:  # float() alone also takes "1_5" (training refuses it too) and non-ASCII digits
            value = float(text) if text.isascii() and "_" not in text else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"column {printable(self.header[k], 80)!r}: "
                             f"{printable(text, 80)!r} is not a finite number")
        return value

    def title(self, row) -> str:
        return "" if self.id_at is None else _cell_text(row.cells[self.id_at])


def pair_source(table, args, path: str) -> PairSource:
    """The pair's columns in ``table`` (names from ``--pairs``, ``--measured``, ``--id-col``)."""
    a_at, b_at = (find_column(table.header, name, path) for name in args.pairs)
    if a_at == b_at:
        raise CommandError(f"--pairs names the same column twice ({args.pairs[0]!r})")
    measured = (tuple(find_column(table.header, name, path) for name in args.measured)
                if args.measured else None)
    id_at = find_column(table.header, args.id_column, path) if args.id_column else None
    return PairSource(a_at, b_at, measured, id_at, list(table.header))


@dataclass
class PairScoring:
    """What ``--pairs`` adds per row (the interface of ``batch_predict.Scoring``)."""

    model: object
    charge: str | None = None  # None: the default rule, wherever the model splits pairs
    xlsx_out: bool = False
    pictures: int = 0  # no pictures, molecules or explanations in pair mode
    sdf_out: bool = False
    explain: bool = False

    def __post_init__(self):
        if getattr(self.model, "task_", None) != "regression":
            raise CommandError("--pairs needs a regression model (a classifier's pairs: explain "
                               "each molecule)")
        from .attribution import pair_level_available
        from .pairs import compare

        try:  # a model without signed contributions would fail every row: say so once
            compare(self.model, "CCO", "CCN")
        except ValueError as exc:
            raise CommandError(f"--pairs: this model cannot split a predicted difference ({exc})"
                               ) from None
        if self.charge is not None and not pair_level_available(self.model):
            raise CommandError("--charge applies to the pair split, which this model cannot give "
                               "(its pairs are split molecule by molecule); drop --charge")

    def columns(self) -> list[str]:
        return list(PAIR_COLUMNS)

    @property
    def status_at(self) -> int:
        return PAIR_COLUMNS.index("status")

    def failed(self, problem: str) -> list:
        added = [None] * len(PAIR_COLUMNS)
        added[self.status_at], added[self.status_at + 1] = "failed", problem
        return added

    def results(self, blocks: Iterable) -> Iterator[tuple[object, list[list] | None]]:
        for block in blocks:
            yield block, ([self._compared(pair) for pair in block.molecules]
                          if block.molecules else None)

    def _compared(self, pair: tuple) -> list:
        from .pairs import compare

        try:
            values = compare(self.model, *pair, charge=self.charge or "change").to_dict()
        except ValueError as exc:  # MoleculeError included: the row fails, not the file
            return self.failed(_which_molecule(" ".join(str(exc).splitlines()), pair[:2]))
        measured = values["measured_difference"]
        if math.isinf(measured):
            return self.failed("the measured difference is too large for a number")
        values["measured_difference"] = None if math.isnan(measured) else measured
        values["atom_level"] = "yes" if values["atom_level"] else "no"
        return [values[name] for name in PAIR_COLUMNS]


def _which_molecule(message: str, smiles: tuple[str, str]) -> str:
    """``message`` with a leading quoted SMILES named as molecule a or b and shortened, so the
    reason stays readable when the SMILES is long."""
    for name, text in zip("ab", smiles):
        quoted = repr(printable(text, 60))  # as Explanation quotes it
        if message.startswith(quoted):
            return f"molecule {name} ({printable(text, 60)}){message[len(quoted):]}"
    return message
