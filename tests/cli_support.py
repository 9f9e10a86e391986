"""Helpers shared by the command-line tests: run ``qsarmil`` in-process, read and write CSV."""

from __future__ import annotations

import csv
import functools

from qsarmil.cli import main


def run(*argv) -> int:
    """``qsarmil`` with ``argv`` -> exit status (0 when it returns)."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code
    return 0


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)


def read_csv(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=delimiter, strict=True))


@functools.cache
def model_columns(model_dir: str) -> tuple[str, ...]:
    """A saved model's own table columns after ``error`` (stripped, applicability domain)."""
    from qsarmil.model import QSARModel

    columns = list(QSARModel.load(model_dir).predict_table([]).columns)
    return tuple(columns[columns.index("error") + 1:])
