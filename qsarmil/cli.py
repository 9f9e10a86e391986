"""Command line: ``qsarmil train`` and ``qsarmil predict``.

Problems with a whole file (missing, empty, not UTF-8, a fake workbook, a folder that is not a
model, ...) end in one line ``qsarmil: error: ...`` on stderr and exit status 2; set
``QSARMIL_DEBUG=1`` to see the traceback instead. Ctrl-C exits 130 and SIGTERM 143; a file being
written is then removed, never left half-written.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from .data import list_datasets
from .io import OUTPUT_FORMATS, Row, open_table, output_format, write_table

OUR_COLUMNS = ("prediction", "status", "error")
_PREFIX = "qsarmil_"
_CHUNK = 5000  # rows scored per call: memory stays bounded by the chunk, not the file
# What a user can cause: bad files and values (ValueError covers UnicodeError, ModelFileError,
# BagError, MoleculeError and TableError), missing or unwritable paths.
_EXPECTED = (OSError, ValueError, csv.Error, zipfile.BadZipFile)

PREDICT_HELP = """\
Every input row comes back, in order, with three columns added: prediction, status ("ok" or
"failed") and error (why a row failed). Cells are copied as text, exactly as written (00042, 1e5,
NA stay as they are); XLSX cells keep their values, and text is written as text, never as a
formula. If the input already has a column named prediction, status or error (ignoring case),
ours is called qsarmil_prediction (qsarmil_status, qsarmil_error; the prefix repeats until the
name is free). A row with more or fewer fields than the header is a failed row: its cells are
kept (padded, or the extra fields quoted in the error) and it is not scored. A file with a header
and no rows gives an output with the header only. Input: CSV, TSV (.tsv/.tab) or XLSX (first
sheet); output by extension: """ + ", ".join(OUTPUT_FORMATS) + """. The output is written to a
temporary file beside it and renamed into place when complete; it may not be the input file."""


class CommandError(SystemExit):
    """Exit status 2 with a message (``str(exc)``), printed as one line on stderr by :func:`main`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(code)
        self.message = " ".join(str(message).splitlines())

    def __str__(self) -> str:
        return self.message


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that ``finally`` blocks and temp-file cleanup run."""


# ----------------------------------------------------------------------------- columns


def added_columns(header: Sequence[str], names: Sequence[str] = OUR_COLUMNS) -> list[str]:
    """Our column names, each prefixed with ``qsarmil_`` until no input column has it.

    Names are compared ignoring case and surrounding spaces, so ``Prediction`` also clashes.
    """
    taken = {h.strip().casefold() for h in header}
    out = []
    for name in names:
        while name.casefold() in taken:
            name = _PREFIX + name
        taken.add(name.casefold())
        out.append(name)
    return out


def _column(header: Sequence[str], name: str, path: str) -> int:
    """Index of the column ``name``; a clear error listing the columns if it is absent."""
    hits = [i for i, h in enumerate(header) if h == name]
    if not hits:
        raise CommandError(f"{path}: no column {name!r} (columns: {list(header)})")
    if len(hits) > 1:
        raise CommandError(f"{path}: {len(hits)} columns are named {name!r}; rename all but one")
    return hits[0]


def _cell_text(value) -> str:
    """A cell as the text a model reads (XLSX numbers as they print; an empty cell is "")."""
    return "" if value is None else str(value)


# ----------------------------------------------------------------------------- predict


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _plain(value):
    """A prediction as a plain Python value for the writers (NaN and None are empty)."""
    value = value.item() if hasattr(value, "item") else value
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def scored_rows(model, rows: Iterable[Row], smiles_at: int, chunk: int = _CHUNK) -> Iterator[list]:
    """Each input row's cells followed by prediction, status and error; rows keep their order.

    Rows with a ``problem`` (ragged) are failed rows and are not scored.
    """
    for block in _chunks(rows, chunk):
        usable = [r for r in block if not r.problem]
        smiles = [_cell_text(r.cells[smiles_at]) for r in usable]
        results = model.predict_table(smiles).itertuples(index=False) if usable else iter(())
        for row in block:
            if row.problem:
                yield [*row.cells, None, "failed", row.problem]
            else:
                res = next(results)
                yield [*row.cells, _plain(res.prediction), res.status, res.error]


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def predict(args) -> None:
    """Score a table of SMILES; every input row comes back (see ``qsarmil predict --help``)."""
    output_format(args.output)
    if _same_file(args.input, args.output):
        raise CommandError(f"{args.output} is the input file; write the predictions to another file")
    with open_table(args.input) as table:
        smiles_at = _column(table.header, args.smiles_column, args.input)
        model = _load_model(args.model)
        header = [*table.header, *added_columns(table.header)]
        counter = _FailureCount()
        n = write_table(args.output, header, counter.watch(scored_rows(model, table.rows, smiles_at)))
    note = " (the input has no data rows)" if n == 0 else ""
    print(f"wrote {n} rows to {args.output} ({counter.failed} failed; see the "
          f"{header[-1]!r} column){note}")


class _FailureCount:
    """Counts failed rows as they stream past (status is the second-to-last cell)."""

    def __init__(self):
        self.failed = 0

    def watch(self, rows: Iterable[list]) -> Iterator[list]:
        for row in rows:
            self.failed += row[-2] == "failed"
            yield row


def _load_model(path: str):
    """QSARModel.load, imported late (torch is slow to import)."""
    from .model import QSARModel

    return QSARModel.load(path)


# ----------------------------------------------------------------------------- train


def regression_target(value, where: str) -> float:
    """A target cell as a finite float; else a ValueError naming the row and the cell."""
    if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int, float))):
        raise ValueError(f"{where}: target {value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = (value or "").strip()
        if not text:
            raise ValueError(f"{where}: target is empty")
        if text[0] in "<>≤≥~":
            raise ValueError(f"{where}: censored target {value!r} is not supported "
                             "(remove the row or give a number)")
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is None or "_" in text:  # float() also takes "1_000"
            raise ValueError(f"{where}: target {value!r} is not a number")
    if not math.isfinite(number):
        raise ValueError(f"{where}: target {value!r} is not a finite number")
    return number


def read_training_table(path: str, smiles_column: str, target_column: str
                        ) -> tuple[list[str], list[float]]:
    """SMILES and targets of a training table, every row checked before anything is fitted."""
    smiles, targets, errors = [], [], []
    with open_table(path) as table:
        s_at = _column(table.header, smiles_column, path)
        t_at = _column(table.header, target_column, path)
        for row in table.rows:
            try:
                if row.problem:
                    raise ValueError(row.problem)
                targets.append(regression_target(row.cells[t_at], row.where))
                smiles.append(_cell_text(row.cells[s_at]))
            except ValueError as exc:
                errors.append(str(exc))
    if errors:
        more = len(errors) - 1
        more = f" (and {more} more bad row{'s' if more > 1 else ''})" if more else ""
        raise CommandError(f"{path}: {errors[0]}{more}")
    if not smiles:
        raise CommandError(f"{path}: no data rows to train on")
    return smiles, targets


def train(args) -> None:
    """Fit a QSARModel on a bundled data set or a table and save it to ``--out``."""
    import numpy as np
    from sklearn.metrics import mean_squared_error, r2_score

    from .data import load_dataset
    from .featurize import MoleculeBagger
    from .model import QSARModel, check_save_folder, default_estimator

    check_save_folder(args.out, args.force)  # refuse --out before minutes of fitting
    if args.dataset:
        data = load_dataset(args.dataset)
        train_rows = data[data.split == "train"] if "split" in data else data
        test_rows = data[data.split == "test"] if "split" in data else data.iloc[:0]
        smiles, targets = train_rows.smiles.tolist(), train_rows.target.to_numpy()
    else:
        smiles, targets = read_training_table(args.input, args.smiles_column, args.target_column)
        test_rows = None
    bagger = MoleculeBagger(bag_type=args.bag_type, n_jobs=args.n_jobs)
    # The seed of the network, or of the additive model's CV-fold shuffling.
    estimator = default_estimator("regression", args.bag_type).set_params(random_state=args.seed)
    model = QSARModel(bagger=bagger, estimator=estimator)
    model.fit(smiles, targets)
    print(f"trained on {len(smiles) - len(model.training_failures_)} molecules "
          f"({len(model.training_failures_)} could not be bagged)")
    if test_rows is not None and len(test_rows):
        pred = model.predict(test_rows.smiles).astype(float)
        ok = ~np.isnan(pred)
        rmse = np.sqrt(mean_squared_error(test_rows.target[ok], pred[ok]))
        print(f"test set: {ok.sum()} molecules, RMSE {rmse:.3f}, "
              f"R² {r2_score(test_rows.target[ok], pred[ok]):.3f}")
    model.save(args.out, overwrite=args.force)
    print(f"model saved to {args.out}")


# ----------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qsarmil", description="Multi-instance QSAR models.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a QSARModel and save it to a folder")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=list_datasets(), help="a bundled data set")
    src.add_argument("--input", help="CSV, TSV or XLSX with SMILES and target columns; every "
                     "target must be a finite number (censored values such as '>5' are refused)")
    t.add_argument("--smiles-column", default="smiles")
    t.add_argument("--target-column", default="target")
    t.add_argument("--bag-type", default="brics", choices=["brics", "recap", "conformers"])
    t.add_argument("--n-jobs", type=int, default=1)
    t.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    t.add_argument("--out", required=True, help="folder to save the model in")
    t.add_argument("--force", action="store_true", help="replace a model previously saved in "
                   "that folder; never a folder that holds anything else")
    t.set_defaults(func=train)
    p = sub.add_parser("predict", help="score a CSV/TSV/XLSX of SMILES; every row comes back",
                       description=PREDICT_HELP)
    p.add_argument("model", help="folder written by 'qsarmil train'")
    p.add_argument("input", help="CSV, TSV (.tsv/.tab) or XLSX with a SMILES column")
    p.add_argument("output", help=f"file to write ({', '.join(OUTPUT_FORMATS)}); not the input")
    p.add_argument("--smiles-column", default="smiles", help="name of the SMILES column")
    p.set_defaults(func=predict)
    return parser


def _describe(exc: BaseException) -> str:
    """One line for an expected error: the file and what is wrong with it."""
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{os.fsdecode(exc.filename)}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        message = str(exc) or type(exc).__name__
    return " ".join(message.splitlines())


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Run ``qsarmil``; expected problems end in one stderr line and exit status 2."""
    args = _parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        args.func(args)
    except CommandError as exc:
        _fail(exc.message, exc.code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Terminated:
        _fail("terminated", 143)
    except _EXPECTED as exc:
        if os.environ.get("QSARMIL_DEBUG") == "1":
            raise
        _fail(_describe(exc), 2, cause=exc)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _fail(message: str, code: int, cause: BaseException | None = None) -> None:
    print(f"qsarmil: error: {message}", file=sys.stderr)
    raise CommandError(message, code) from cause


if __name__ == "__main__":
    main(sys.argv[1:])
