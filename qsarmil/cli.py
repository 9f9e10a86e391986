"""Command line: the parsers of ``qsarmil train`` and ``qsarmil predict``, and how a command ends.

The commands themselves are :func:`qsarmil.batch_train.train` and
:func:`qsarmil.batch_predict.predict`.

Problems with a whole file (missing, empty, not UTF-8, a fake workbook, a folder that is not a
model, ...) end in one line ``qsarmil: error: ...`` on stderr and exit status 2; set
``QSARMIL_DEBUG=1`` to see the traceback instead. Ctrl-C exits 130 and SIGTERM 143; a file being
written is then removed, never left half-written.

Heavy libraries (torch, RDKit, scikit-learn, pandas) are imported only once a command runs, so
``qsarmil --help`` answers at once.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import sys
import threading
import zipfile
from contextlib import contextmanager

from .batch_predict import MAX_PICTURES, TOP_FRAGMENTS, predict
from .batch_train import TASKS, train
from .cli_errors import CommandError, Terminated
from .columns import CHARGES, SMILES_NAMES
from .io import OUTPUT_FORMATS
from .io.limits import LIMITS_HELP

# What a user can cause: bad files and values (ValueError covers UnicodeError, ModelFileError,
# BagError, MoleculeError and TableError), missing or unwritable paths.
_EXPECTED = (OSError, ValueError, csv.Error, zipfile.BadZipFile)

PREDICT_HELP = f"""\
Every input row comes back, in order, with columns added: prediction, proba_<class> per class
(classifiers), status ("ok" or "failed") and error (why a row failed); --explain adds
top_fragment, top_contribution and fragments (the top {TOP_FRAGMENTS} as "SMILES:+0.12; ...",
by absolute contribution, or by weight for models without signed contributions). Then the
model's own columns: stripped salts; for regression prediction_lower, prediction_upper,
interval_level (--interval, default 0.9) and expected_error; for classification
prediction_set, set_size and set_level; the applicability domain (in_domain, similarity,
unseen environments, domain_note saying why in words); in_training_set and training_value; and
the nearest training molecules (nearest_<j>_id, _similarity, _value). Cells are
copied as text, exactly as written (00042, 1e5, NA stay as they are); XLSX cells keep their
values, and text is written as text, never as a formula. If the input already has a column named
prediction, status or error (ignoring case), ours is called qsarmil_prediction
(qsarmil_status, qsarmil_error; the prefix repeats until the name is free). A row with more or
fewer fields than the header is a failed row: its cells are kept (padded, or the extra fields
quoted in the error) and it is not scored. A file with a header and no rows gives an output with
the header only.

Input: CSV, TSV (.tsv/.tab), either gzip-compressed (.csv.gz), XLSX (first sheet), SDF
(.sdf, .sdf.gz: every SD property is a text column, the molblock is the molecule; a record RDKit
cannot read is a failed row, its properties kept), or - for CSV on standard input. The SMILES
column is --smiles-col, else the first of {", ".join(SMILES_NAMES)} (ignoring case).

Output by extension: {", ".join(OUTPUT_FORMATS)}. SDF output: each row is a record whose
molecule is the input record's or is made from the SMILES, with every column as an SD property;
a failed row is a record with an empty molecule. XLSX with --explain shows a structure picture
per row, the fragments coloured by contribution (red raises, blue lowers) or weight, for the
first --max-pictures rows ({MAX_PICTURES} by default: pictures stay in memory until the
workbook is saved). The output is written to a temporary file beside it and renamed into place
when complete; it may not be the input file."""


# ----------------------------------------------------------------------------- main


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train a QSARModel and save it to a folder",
                       description="Train a model on a table of molecules (or a bundled data set), "
                       "print its cross-validated metrics (or test-set metrics for a bundled set "
                       "with a split) and save it.")
    t.add_argument("data", nargs="?", help="CSV, TSV, XLSX or SDF (also .csv.gz) with molecules and "
                   "targets; regression targets must be finite numbers (censored values such as "
                   "'>5' are refused)")
    t.add_argument("--input", help=argparse.SUPPRESS)  # the former name of DATA
    t.add_argument("--dataset", help="a bundled data set instead of a file: solubility, freesolv, "
                   "or a MoleculeACE set (qsarmil.data.list_datasets())")
    t.add_argument("--smiles-col", "--smiles-column", dest="smiles_column",
                   help=f"SMILES column (default: the first of {', '.join(SMILES_NAMES)}, ignoring "
                   "case; SDF: the molblock)")
    t.add_argument("--target-col", "--target-column", dest="target_column", default="target",
                   help="target column (default: target)")
    t.add_argument("--id-col", "--id-column", dest="id_column",
                   help="an id column, named in error messages")
    t.add_argument("--task", choices=TASKS, help="default: from the targets - text labels or "
                   "two whole numbers (0/1) are classes, other numbers a regression; 3 to 10 whole "
                   "numbers are refused as ambiguous. Class labels are read as text")
    t.add_argument("--bags", "--bag-type", dest="bag_type", default="brics",
                   choices=["brics", "recap", "conformers"], help="how a molecule becomes a bag")
    t.add_argument("--cv", type=int, default=5, help="folds of the cross-validation run when the "
                   "data have no test split (shuffled, seeded by --seed; 0 or 1: none)")
    t.add_argument("--split", choices=["random", "scaffold"], default="random",
                   help="how the cross-validation folds are drawn: shuffled rows (random), or whole "
                   "Bemis-Murcko scaffolds per fold (scaffold: closer to predicting new series)")
    t.add_argument("--oof", metavar="FILE", help="write each training row's out-of-fold "
                   "prediction (CSV: id or row, smiles, target, fold, prediction, probabilities)")
    t.add_argument("--target-name", help="what the target is, e.g. 'logS' or 'hERG block'; "
                   "shown on pictures and in reports")
    t.add_argument("--units", help="the target's units, e.g. 'log mol/L'; shown with the name")
    t.add_argument("--skip-bad-targets", action="store_true", help="leave out rows whose target is "
                   "empty or not a number (they are listed) instead of stopping")
    t.add_argument("--search", choices=["stepwise"], help="tune the model's hyperparameters by a "
                   "stepwise search (seeded 5-fold CV on the training data; slower)")
    t.add_argument("--n-jobs", type=int, default=1, help="processes for bagging molecules "
                   "(and threads for the kernel model above 8000 molecules)")
    t.add_argument("--scheduler", metavar="ADDRESS", help="bag the training molecules on a Dask "
                   "cluster, e.g. tcp://host:8786 (pip install qsarmil[dask])")
    t.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    t.add_argument("-o", "--out", required=True, help="folder to save the model in")
    t.add_argument("--force", action="store_true", help="replace a model previously saved in "
                   "that folder; never a folder that holds anything else")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress lines or bars")
    _limit_option(t)
    t.set_defaults(func=train)


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="score a CSV/TSV/SDF/XLSX of molecules; every row comes back",
                       description=PREDICT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="folder written by 'qsarmil train'")
    p.add_argument("input", help="CSV, TSV, SDF (also .gz) or XLSX; - reads CSV from stdin")
    p.add_argument("output", nargs="?", help=argparse.SUPPRESS)  # the former form of -o
    p.add_argument("-o", "--output", dest="output_option", metavar="OUTPUT",
                   help=f"file to write ({', '.join(OUTPUT_FORMATS)}); not the input")
    p.add_argument("--smiles-col", "--smiles-column", dest="smiles_column",
                   help=f"SMILES column (default: the first of {', '.join(SMILES_NAMES)}, ignoring "
                   "case; SDF: the molblock)")
    p.add_argument("--id-col", "--id-column", dest="id_column",
                   help="an id column, named in messages about failed rows")
    p.add_argument("--explain", action="store_true",
                   help="add top_fragment, top_contribution and fragments columns")
    p.add_argument("--pictures", action=argparse.BooleanOptionalAction, default=None,
                   help="XLSX: a structure picture per row (default: on with --explain)")
    p.add_argument("--max-pictures", type=int, default=MAX_PICTURES,
                   help=f"rows that get a picture (default {MAX_PICTURES})")
    p.add_argument("--interval", type=float, metavar="LEVEL",
                   help="level of the prediction intervals (regression) or conformal class sets "
                        "(classification), e.g. 0.8; default: the model's (0.9)")
    p.add_argument("--pairs", nargs=2, metavar=("SMILES_A", "SMILES_B"),
                   help="each row is a pair of analogues in these two SMILES columns: adds "
                   "prediction_a, prediction_b, predicted_difference (a - b), changed_part and "
                   "context_part (its exact split over the atoms outside and inside the common "
                   "substructure), measured_difference, common_atoms, changed_atoms_a/_b "
                   "(atom indices), atom_level, split (pair: each molecule against the other; "
                   "molecules: each from the mean training prediction), charge (see --charge), "
                   "status and error; "
                   "regression models only, "
                   "CSV/TSV/XLSX output, scored in this process")
    p.add_argument("--charge", choices=CHARGES,
                   help="with --pairs: where a shared atom's share of a difference is drawn: on the "
                   "changed atoms it depends on (change, the default) or left on the shared atom "
                   "that holds it (holder)")
    p.add_argument("--measured", nargs=2, metavar=("VALUE_A", "VALUE_B"),
                   help="with --pairs: the two measured-value columns (for measured_difference)")
    p.add_argument("--n-jobs", type=int, default=1, help="processes for scoring (-1: every core)")
    p.add_argument("--scheduler", help="score on a Dask cluster: its address (tcp://host:8786)")
    p.add_argument("--escape-formulas", action="store_true",
                   help="CSV/TSV output: put a ' before text cells that a spreadsheet would run as "
                   "a formula (starting =, +, -, @, tab or CR; plain numbers are left alone). Off "
                   "by default because it changes cells; XLSX output never holds formulas")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    _limit_option(p)
    p.set_defaults(func=predict)


def _limit_option(parser) -> None:
    parser.add_argument("--limit", action="append", metavar="NAME=N", default=[],
                        help=f"raise or lower one input size budget (repeatable; K, M, G = "
                        f"powers of 1024). {LIMITS_HELP}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qsarmil", description="Multi-instance QSAR models: "
                                     "train on molecules, score tables of them.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _predict_parser(sub)
    return parser


def _describe(exc: BaseException) -> str:
    """One line for an expected error: the file and what is wrong with it."""
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{os.fsdecode(exc.filename)}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        message = str(exc) or type(exc).__name__
    return " ".join(message.splitlines())


@contextmanager
def _rdkit_quiet():
    """RDKit's log off the console while a command runs: a failed row carries RDKit's words in
    its error cell, and stderr keeps to our one line."""
    from rdkit import rdBase

    blocker = rdBase.BlockLogs()
    try:
        yield
    finally:
        del blocker


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Run ``qsarmil``; expected problems end in one stderr line and exit status 2."""
    args = _parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        with _rdkit_quiet():
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
