"""Command line: ``qsarmil train`` and ``qsarmil predict``.

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
import io
import math
import os
import signal
import sys
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice

from .io import (
    OUTPUT_FORMATS,
    PICTURE_SIZE,
    STDIN,
    Record,
    Row,
    input_format,
    open_table,
    output_format,
    write_table,
)

OUR_COLUMNS = ("prediction", "status", "error")
EXPLAIN_COLUMNS = ("top_fragment", "top_contribution", "fragments")
PICTURE_COLUMN = "picture"
# Looked for, ignoring case, when --smiles-col is not given; the first name present wins.
SMILES_NAMES = ("smiles", "canonical_smiles", "isomeric_smiles", "mol", "smi")
TASKS = ("regression", "classification")
_PREFIX = "qsarmil_"
_CHUNK = 2000  # rows scored per call: memory stays bounded by the chunk, not the file
_EXPLAIN_CHUNK = 500  # explanations hold instance tables and molecules: smaller chunks
_TOP_FRAGMENTS = 3
_MAX_PICTURES = 1000  # openpyxl holds pictures in memory until the workbook is saved
# What a user can cause: bad files and values (ValueError covers UnicodeError, ModelFileError,
# BagError, MoleculeError and TableError), missing or unwritable paths.
_EXPECTED = (OSError, ValueError, csv.Error, zipfile.BadZipFile)

PREDICT_HELP = f"""\
Every input row comes back, in order, with columns added: prediction, proba_<class> per class
(classifiers), status ("ok" or "failed") and error (why a row failed); --explain adds
top_fragment, top_contribution and fragments (the top {_TOP_FRAGMENTS} as "SMILES:+0.12; ...",
by absolute contribution, or by weight for models without signed contributions). Cells are
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
first --max-pictures rows ({_MAX_PICTURES} by default: pictures stay in memory until the
workbook is saved). The output is written to a temporary file beside it and renamed into place
when complete; it may not be the input file."""


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


def find_column(header: Sequence[str], name: str, path: str) -> int:
    """Index of the column ``name`` (exact, else the one column equal ignoring case); a clear
    error listing the columns if there is none."""
    hits = [i for i, h in enumerate(header) if h == name]
    if not hits:
        hits = [i for i, h in enumerate(header) if h.strip().casefold() == name.strip().casefold()]
    if not hits:
        raise CommandError(f"{path}: no column {name!r} (columns: {list(header)})")
    if len(hits) > 1:
        raise CommandError(f"{path}: {len(hits)} columns are named {name!r}; rename all but one")
    return hits[0]


def smiles_column(header: Sequence[str], requested: str | None, path: str) -> int:
    """The SMILES column: ``requested``, else the first of :data:`SMILES_NAMES` present."""
    if requested:
        return find_column(header, requested, path)
    folded = [h.strip().casefold() for h in header]
    for name in SMILES_NAMES:
        hits = [i for i, h in enumerate(folded) if h == name]
        if len(hits) > 1:
            raise CommandError(f"{path}: {len(hits)} columns are named {name!r} (ignoring case: "
                               f"{[header[i] for i in hits]}); choose one with --smiles-col")
        if hits:
            return hits[0]
    raise CommandError(f"{path}: no SMILES column (looked for {', '.join(SMILES_NAMES)}, ignoring "
                       f"case; columns: {list(header)}); name it with --smiles-col")


def _cell_text(value) -> str:
    """A cell as the text a model reads (XLSX numbers as they print; an empty cell is "")."""
    return "" if value is None else str(value)


def _where(row: Row, id_at: int | None) -> str:
    """Where a row is, with its id where the user named an id column: ``line 7 (id ABC-1)``."""
    if id_at is None:
        return row.where
    return f"{row.where} (id {_cell_text(row.cells[id_at])})"


# ----------------------------------------------------------------------------- molecules


class UnreadableMolecule(ValueError):
    """An SD record's molblock that RDKit cannot read (its message says why)."""


def molecule_from_block(molblock: str):
    """An RDKit Mol from an SD record's molblock, read by RDKit's SD reader; else an
    :class:`UnreadableMolecule` with RDKit's message."""
    from rdkit import Chem, rdBase

    with rdBase.CaptureErrorLog() as log:
        record = io.BytesIO(molblock.encode("utf-8") + b"$$$$\n")
        mol = next(Chem.ForwardSDMolSupplier(record), None)
    if mol is None:
        details = _rdkit_message(log.messages)
        raise UnreadableMolecule("RDKit cannot read the molblock" + (f": {details}" if details else ""))
    return mol


def _rdkit_message(messages: str) -> str:
    """The SD reader's log as one line, without its "moving to the next molecule" notes."""
    from .standardize import rdkit_reason

    kept = [line.replace("ERROR: ", "", 1) for line in messages.splitlines()
            if "moving to the beginning of the next molecule" not in line]
    return rdkit_reason("\n".join(kept))


def molblock_for(item, name: str = "") -> str | None:
    """A molblock for the SDF output: the input record's, or one made from a SMILES (2-D
    coordinates; None where RDKit cannot parse it). ``name`` becomes the title line."""
    from rdkit import Chem, rdBase

    if isinstance(item, str):
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(item.strip()) if item.strip() else None
        if mol is None:
            return None
        mol.SetProp("_Name", " ".join(name.splitlines()))
        return Chem.MolToMolBlock(mol)
    return None


@dataclass
class Source:
    """Where the molecule of each input row is: a SMILES column or the SD record's molblock."""

    smiles_at: int | None
    id_at: int | None

    def molecule(self, row: Row):
        """The row's molecule (SMILES text or Mol); a ValueError says why there is none."""
        if row.problem:
            raise ValueError(row.problem)
        if self.smiles_at is not None:
            return _cell_text(row.cells[self.smiles_at])
        try:
            return molecule_from_block(row.molblock or "")
        except UnreadableMolecule as exc:
            raise UnreadableMolecule(f"{row.where}: {exc}") from None

    def title(self, row: Row) -> str:
        return "" if self.id_at is None else _cell_text(row.cells[self.id_at])


def _source(table, smiles_requested: str | None, id_requested: str | None, path: str) -> Source:
    """The SMILES and id columns of a table (an SDF's molecule is its molblock)."""
    sdf = input_format(path)[0] == ".sdf"
    smiles_at = None if sdf and not smiles_requested else smiles_column(
        table.header, smiles_requested, path)
    id_at = find_column(table.header, id_requested, path) if id_requested else None
    return Source(smiles_at, id_at)


# ----------------------------------------------------------------------------- predict


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _plain(value):
    """A prediction as a plain Python value for the writers (NaN and None are empty)."""
    value = value.item() if hasattr(value, "item") else value
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


@dataclass
class Block:
    """A chunk of input rows, the molecules of its usable rows, and why the others failed."""

    rows: list[Row]
    molecules: list
    problems: dict[int, str]  # position in ``rows`` -> reason
    unreadable: set[int]  # positions of SD records whose molblock RDKit cannot read


def _blocks(rows: Iterable[Row], source: Source, size: int) -> Iterator[Block]:
    for chunk in _chunks(rows, size):
        molecules, problems, unreadable = [], {}, set()
        for k, row in enumerate(chunk):
            try:
                molecules.append(source.molecule(row))
            except ValueError as exc:
                problems[k] = str(exc)
                if isinstance(exc, UnreadableMolecule):
                    unreadable.add(k)
        yield Block(chunk, molecules, problems, unreadable)


@dataclass
class Scoring:
    """What ``qsarmil predict`` adds per row, and how it computes it."""

    model: object
    classes: list
    explain: bool
    pictures: int  # rows that get a picture (0: none)
    sdf_out: bool
    n_jobs: int = 1
    scheduler: str | None = None
    model_path: str | None = None
    passed: list[str] = field(default_factory=list)  # the model's columns after "error"

    def columns(self) -> list[str]:
        names = ["prediction", *(f"proba_{c}" for c in self.classes), "status", "error",
                 *self.passed]
        if self.explain:
            names += EXPLAIN_COLUMNS
        if self.pictures:
            names.append(PICTURE_COLUMN)
        return names

    @property
    def status_at(self) -> int:
        """Position of ``status`` among our columns (``error`` follows it)."""
        return 1 + len(self.classes)

    def failed(self, problem: str) -> list:
        """Our values for a row that is not scored."""
        added = [None] * len(self.columns())
        added[self.status_at], added[self.status_at + 1] = "failed", problem
        return added

    def results(self, blocks: Iterable[Block]) -> Iterator[tuple[Block, list[list] | None]]:
        """Each block with one list of added values per usable row (None when it has none)."""
        pending: deque[Block] = deque()

        def feed() -> Iterator[list]:
            for block in blocks:
                pending.append(block)
                if block.molecules:
                    yield block.molecules

        for values in self._values(feed()):
            while not pending[0].molecules:
                yield pending.popleft(), None
            yield pending.popleft(), values
        while pending:
            yield pending.popleft(), None

    def _values(self, chunks: Iterator[list]) -> Iterator[list[list]]:
        if self.explain:
            done = 0
            for chunk in chunks:
                yield self._explained(chunk, done)
                done += len(chunk)
            return
        for chunk, table in self._tables(chunks):
            yield self._predicted(chunk, table)

    def _tables(self, chunks: Iterator[list]):
        """(chunk, result table) pairs, through :mod:`qsarmil.scale` where it is available."""
        scale = _scale_module()
        if scale is None:
            if self.scheduler:
                raise CommandError("--scheduler needs qsarmil.scale, which this version lacks")
            for chunk in chunks:
                yield chunk, self.model.predict_table(chunk)
            return
        held: deque[list] = deque()

        def keep(chunk_stream):
            for chunk in chunk_stream:
                held.append(chunk)
                yield chunk

        try:
            tables = scale.predict_chunks(self.model, keep(chunks), n_jobs=self.n_jobs,
                                          scheduler=self.scheduler, model_path=self.model_path)
            for table in tables:
                yield held.popleft(), table
        except ImportError as exc:  # Dask asked for but not installed
            raise CommandError(str(exc)) from exc

    def _predicted(self, chunk: list, table) -> list[list]:
        proba = self._probabilities(chunk, table)
        passed = table[self.passed].to_numpy(dtype=object)
        out = []
        for k, res in enumerate(table.itertuples(index=False)):
            extra = [] if proba is None else [_plain(p) for p in proba[k]]
            out.append([_plain(res.prediction), *extra, res.status, res.error,
                        *(_plain(v) for v in passed[k])])
        return out

    def _probabilities(self, chunk: list, table):
        """Class probabilities per row: the table's ``proba_*`` columns, else predict_proba."""
        if not self.classes:
            return None
        names = [f"proba_{c}" for c in self.classes]
        if all(n in table.columns for n in names):
            return table[names].to_numpy()
        return self.model.predict_proba(chunk)

    def _explained(self, chunk: list, done: int) -> list[list]:
        out = []
        proba = self.model.predict_proba(chunk) if self.classes else None
        passed = (self.model.predict_table(chunk)[self.passed].to_numpy(dtype=object)
                  if self.passed else None)
        for k, e in enumerate(self.model.explain(chunk)):
            extra = [] if proba is None else [_plain(p) for p in proba[k]]
            more = [] if passed is None else [_plain(v) for v in passed[k]]
            values = [_plain(e.prediction), *extra, e.status, e.error, *more,
                      *top_fragments(e.instances)]
            if self.pictures:
                values.append(Picture(_picture(e)) if done + k < self.pictures else None)
            out.append(values)
        return out


@dataclass
class Picture:
    """PNG bytes travelling in the picture column until the row becomes a Record."""

    png: bytes | None


def _picture(explanation) -> bytes | None:
    """The structure picture of one explained row (None for a failed row)."""
    if explanation.status != "ok":
        return None
    try:
        return explanation.draw(signed=explanation.has_signed, fmt="png", size=PICTURE_SIZE)
    except (ValueError, RuntimeError):  # a molecule RDKit cannot lay out: no picture
        return None


def top_fragments(instances) -> tuple[str | None, float | None, str | None]:
    """``top_fragment, top_contribution, fragments`` of one molecule's instance table.

    Ranked by absolute contribution where the model gives signed contributions (then
    ``fragments`` reads ``"SMILES:+0.12; SMILES:-0.30"``), else by weight (``"SMILES:0.45"``,
    and no ``top_contribution``). Conformer instances are named ``conformer <id>``.
    """
    if instances is None or not len(instances):
        return None, None, None
    signed = "contribution" in instances
    values = instances["contribution" if signed else "weight"].astype(float)
    order = values.abs().sort_values(ascending=False, kind="stable").index[:_TOP_FRAGMENTS]
    labels = (instances.conformer_id.map(lambda c: f"conformer {c}") if "conformer_id" in instances
              else instances.smiles)
    shown = "; ".join(f"{labels[i]}:{values[i]:+.2f}" if signed else f"{labels[i]}:{values[i]:.2f}"
                      for i in order)
    top = order[0]
    return labels[top], (float(values[top]) if signed else None), shown


def _scale_module():
    """:mod:`qsarmil.scale` where it provides ``predict_chunks``, else None."""
    try:
        from . import scale
    except ImportError:
        return None
    return scale if hasattr(scale, "predict_chunks") else None


def _records(scoring: Scoring, blocks: Iterable[Block], source: Source, tally: Tally
             ) -> Iterator[Record]:
    """One output Record per input row, in order."""
    for block, values in scoring.results(blocks):
        results = iter(values or ())
        for k, row in enumerate(block.rows):
            added = scoring.failed(block.problems[k]) if k in block.problems else next(results)
            tally.count(row, added, scoring, source)
            yield _record(row, added, scoring, source, k in block.unreadable)


def _record(row: Row, added: list, scoring: Scoring, source: Source, unreadable: bool) -> Record:
    """The output row: input cells, our values, the picture and (SDF output) the molecule: the
    input record's (an empty one where RDKit cannot read it) or one made from the SMILES."""
    picture = None
    if scoring.pictures:
        last = added[-1]
        picture = last.png if isinstance(last, Picture) else None
        added = [*added[:-1], None]
    molblock = None
    if scoring.sdf_out and not unreadable:
        molblock = row.molblock if row.molblock is not None else molblock_for(
            _cell_text(row.cells[source.smiles_at]), source.title(row))
    return Record([*row.cells, *added], molblock, picture)


class Tally:
    """Counts failed rows as they stream past and remembers the first one."""

    def __init__(self):
        self.failed = 0
        self.first = ""

    def count(self, row: Row, added: list, scoring: Scoring, source: Source) -> None:
        if added[scoring.status_at] != "failed":
            return
        self.failed += 1
        if not self.first:
            error = str(added[scoring.status_at + 1])
            if error.startswith(row.where):  # ragged rows and SD records say where they are
                error = error[len(row.where):].lstrip(": ")
            self.first = f"{_where(row, source.id_at)}: {error}"


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _output_path(args) -> str:
    if args.output and args.output_option:
        raise CommandError("give the output file once: as OUTPUT or as -o OUTPUT")
    output = args.output or args.output_option
    if not output:
        raise CommandError("no output file: give -o OUTPUT (.csv, .tsv, .xlsx or .sdf)")
    return output


def _progress(rows: Iterable, quiet: bool, what: str) -> Iterator:
    """A progress bar on stderr when it is a terminal (and not ``--quiet``)."""
    from tqdm.auto import tqdm

    return tqdm(rows, desc=what, unit=" rows", disable=quiet or not sys.stderr.isatty(),
                file=sys.stderr)


def predict(args) -> None:
    """Score a table of molecules; every input row comes back (see ``qsarmil predict --help``)."""
    output = _output_path(args)
    kind = output_format(output)
    input_format(args.input)
    if args.input != STDIN and _same_file(args.input, output):
        raise CommandError(f"{output} is the input file; write the predictions to another file")
    pictures = args.pictures if args.pictures is not None else args.explain and kind == ".xlsx"
    if pictures and kind != ".xlsx":
        raise CommandError("--pictures needs an .xlsx output")
    if args.scheduler and (args.explain or pictures):
        raise CommandError("--explain runs in this process, not on a Dask cluster; drop --scheduler")
    with open_table(args.input) as table:
        source = _source(table, args.smiles_column, args.id_column, args.input)
        model = _load_model(args.model)
        _configure(model, args.n_jobs)
        scoring = Scoring(model, _classes(model), explain=args.explain or pictures,
                          pictures=args.max_pictures if pictures else 0, sdf_out=kind == ".sdf",
                          n_jobs=args.n_jobs, scheduler=args.scheduler, model_path=args.model,
                          passed=_passed_columns(model))
        names = added_columns(table.header, scoring.columns())
        header = [*table.header, *names]
        tally = Tally()
        size = _EXPLAIN_CHUNK if scoring.explain else _CHUNK
        records = _records(scoring, _blocks(table.rows, source, size), source, tally)
        n = write_table(output, header, _progress(records, args.quiet, "scoring"),
                        picture_column=names[-1] if pictures else None)
    note = " (the input has no data rows)" if n == 0 else ""
    first = f"; first: {tally.first}" if tally.first else ""
    print(f"wrote {n} rows to {output} ({tally.failed} failed{first}){note}")
    if pictures and n > args.max_pictures and not args.quiet:
        print(f"pictures for the first {args.max_pictures} rows only (--max-pictures)", file=sys.stderr)


def _configure(model, n_jobs: int) -> None:
    """Bag with ``n_jobs`` processes and without per-chunk progress bars."""
    bagger = getattr(model, "bagger_", None)
    if bagger is not None:
        bagger.set_params(n_jobs=n_jobs, progress=False)


def _passed_columns(model) -> list[str]:
    """The model's own table columns after ``error`` (``stripped``, applicability domain, ...),
    copied to the output as they are."""
    columns = list(model.predict_table([]).columns)
    return columns[columns.index("error") + 1:]


def _classes(model) -> list:
    """A classifier's class labels when it gives probabilities, else []."""
    if getattr(model, "task_", None) != "classification" or not hasattr(model, "predict_proba"):
        return []
    return [_plain(c) for c in model.classes_]


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


def class_label(value, where: str) -> str:
    """A class label cell as text (surrounding spaces removed); empty is a ValueError."""
    text = _cell_text(value).strip()
    if not text:
        raise ValueError(f"{where}: class label is empty")
    return text


@dataclass
class TrainingData:
    """Molecules and targets to fit on, and a test split where the data set has one."""

    molecules: list
    targets: list
    task: str
    test_molecules: list | None = None
    test_targets: list | None = None
    skipped: int = 0  # SD records RDKit could not read


def read_training_table(path: str, smiles_requested: str | None, target_column: str,
                        task: str | None = "regression", id_column: str | None = None
                        ) -> TrainingData:
    """Molecules and targets of a training table, every row checked before anything is fitted.

    ``task=None`` lets the targets decide (:func:`training_task`).
    """
    molecules, cells, errors, skipped = [], [], [], 0
    with open_table(path) as table:
        source = _source(table, smiles_requested, id_column, path)
        t_at = find_column(table.header, target_column, path)
        for row in table.rows:
            where = _where(row, source.id_at)
            if row.problem:
                errors.append(row.problem)
                continue
            try:
                molecule = source.molecule(row)
            except ValueError:  # an SD record RDKit cannot read: left out, like a bad SMILES
                skipped += 1
                continue
            molecules.append(molecule)
            cells.append((row.cells[t_at], where))
    task, targets = training_targets(cells, task, errors)
    if errors:
        more = len(errors) - 1
        more = f" (and {more} more bad row{'s' if more > 1 else ''})" if more else ""
        raise CommandError(f"{path}: {errors[0]}{more}")
    if not molecules:
        raise CommandError(f"{path}: no data rows to train on")
    return TrainingData(molecules, targets, task, skipped=skipped)


def training_targets(cells: list[tuple[object, str]], task: str | None, errors: list[str]
                     ) -> tuple[str, list]:
    """Targets from ``(cell, where)`` pairs, and the task: numbers for regression, text labels
    for classification. With ``task=None``, cells that are all numbers go to QSARModel's
    :func:`~qsarmil.model.detect_task` (two whole values are classes), all text is classes, and
    a mix is refused naming the first cell that is not a number. Bad cells go to ``errors``."""
    if task == "classification":
        return task, _collect(class_label, cells, errors)
    if task == "regression":
        return task, _collect(regression_target, cells, errors)
    numbers, labels, problems = [], [], []
    for value, where in cells:
        try:
            numbers.append(regression_target(value, where))
        except ValueError as exc:
            problems.append(str(exc))
        labels.append(_cell_text(value).strip())
    if not numbers:
        return "classification", _collect(class_label, cells, errors)
    if problems:
        errors.append(f"{problems[0]} (the other targets are numbers; for class labels pass "
                      "--task classification)")
        return "regression", []
    from .model import detect_task

    try:
        task = detect_task(numbers)
    except ValueError as exc:
        message = str(exc).replace("task='classification'", "--task classification")
        errors.append(message.replace("task='regression'", "--task regression"))
        return "regression", []
    return task, (numbers if task == "regression" else labels)  # classes as written: 0/1


def _collect(parse, cells: list[tuple[object, str]], errors: list[str]) -> list:
    out = []
    for value, where in cells:
        try:
            out.append(parse(value, where))
        except ValueError as exc:
            errors.append(str(exc))
    return out


def _bundled(name: str, task: str) -> TrainingData:
    """A bundled data set, split into train and test where it has a split."""
    from .data import list_datasets, load_dataset

    if name not in list_datasets():
        raise CommandError(f"unknown data set {name!r}; choose one of {', '.join(list_datasets())}")
    data = load_dataset(name)
    train = data[data.split == "train"] if "split" in data else data
    test = data[data.split == "test"] if "split" in data else data.iloc[:0]
    convert = float if task == "regression" else str
    return TrainingData(train.smiles.tolist(), [convert(t) for t in train.target], task,
                        test.smiles.tolist() if len(test) else None,
                        [convert(t) for t in test.target] if len(test) else None)


class Steps:
    """One line per long step on stderr (``--quiet``: none): ``fitting ... done in 3.2 s``."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        if not self.quiet:
            print(f"{what} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        yield
        if not self.quiet:
            print(f"{what}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def _new_model(task: str, args):
    """An unfitted QSARModel for the command-line settings."""
    from .featurize import MoleculeBagger
    from .model import QSARModel, default_estimator

    bagger = MoleculeBagger(bag_type=args.bag_type, n_jobs=args.n_jobs,
                            progress=False if args.quiet else "auto")
    # The seed of the network, or of the additive model's CV-fold shuffling.
    estimator = default_estimator(task, args.bag_type).set_params(random_state=args.seed)
    return QSARModel(bagger=bagger, estimator=estimator, task=task)


def fold_metrics(task: str, y_true: Sequence, predicted: Sequence, proba=None,
                 classes: Sequence | None = None) -> dict[str, float]:
    """RMSE and R² (regression) or accuracy, balanced accuracy and ROC AUC (classification)
    over the rows with a prediction; ROC AUC is NaN where it is undefined or unavailable."""
    import numpy as np
    from sklearn import metrics

    ok = np.array([_plain(p) is not None for p in predicted], dtype=bool)
    if not ok.any():
        return {}
    y = np.asarray(y_true, dtype=object)[ok]
    pred = np.asarray(predicted, dtype=object)[ok]
    if task == "regression":
        y, pred = y.astype(float), pred.astype(float)
        return {"RMSE": float(np.sqrt(metrics.mean_squared_error(y, pred))),
                "R²": float(metrics.r2_score(y, pred)) if len(y) > 1 else float("nan")}
    y, pred = y.astype(str), pred.astype(str)
    out = {"accuracy": float(metrics.accuracy_score(y, pred)),
           "balanced accuracy": float(metrics.balanced_accuracy_score(y, pred)),
           "ROC AUC": float("nan")}
    if proba is not None and len(set(y)) > 1:
        scores = np.asarray(proba, dtype=float)[ok]
        labels = [str(c) for c in classes]
        out["ROC AUC"] = float(metrics.roc_auc_score(y, scores[:, 1]) if len(labels) == 2 else
                               metrics.roc_auc_score(y, scores, multi_class="ovr", labels=labels))
    return out


def _evaluate(model, molecules: list, targets: list, task: str) -> dict[str, float]:
    """Metrics of a fitted model on held-out molecules."""
    table = model.predict_table(molecules)
    classes = _classes(model)
    proba = table[[f"proba_{c}" for c in classes]].to_numpy() if classes else None
    return fold_metrics(task, targets, table.prediction.to_numpy(), proba, classes)


def cross_validate(model, data: TrainingData, folds: int, seed: int, steps: Steps
                   ) -> list[dict[str, float]]:
    """Metrics per fold of a shuffled, seeded k-fold split (stratified for classification)."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = KFold(folds, shuffle=True, random_state=seed)
    if data.task == "classification" and min(_class_counts(data.targets).values()) >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = []
    for k, (train, test) in enumerate(splitter.split(data.molecules, data.targets), 1):
        with steps.step(f"cross-validation fold {k}/{folds}"):
            fold = clone(model).set_params(bagger__progress=False)
            fold.fit([data.molecules[i] for i in train], [data.targets[i] for i in train])
            scores.append(_evaluate(fold, [data.molecules[i] for i in test],
                                    [data.targets[i] for i in test], data.task))
    return scores


def _class_counts(labels: Sequence) -> dict:
    counts: dict = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def format_metrics(scores: list[dict[str, float]]) -> str:
    """``RMSE 0.612 ± 0.040, R² 0.810 ± 0.020`` over folds (one fold: no spread)."""
    import numpy as np

    names = [n for n in scores[0] if any(math.isfinite(s.get(n, float("nan"))) for s in scores)]
    parts = []
    for name in names:
        values = np.array([s.get(name, np.nan) for s in scores], dtype=float)
        values = values[np.isfinite(values)]
        spread = f" ± {values.std():.3f}" if len(scores) > 1 else ""
        parts.append(f"{name} {values.mean():.3f}{spread}")
    return ", ".join(parts)


def train(args) -> None:
    """Fit a QSARModel on a bundled data set or a table and save it to ``--out``."""
    from .model import check_save_folder

    path = _training_path(args)
    check_save_folder(args.out, args.force)  # refuse --out before minutes of fitting
    data = (_bundled(args.dataset, args.task or "regression") if args.dataset else
            read_training_table(path, args.smiles_column, args.target_column, args.task,
                                args.id_column))
    steps = Steps(args.quiet)
    model = _new_model(data.task, args)
    if data.test_molecules is None and args.cv > 1:
        scores = cross_validate(model, data, args.cv, args.seed, steps)
        scores = [s for s in scores if s]
        if scores:
            print(f"{args.cv}-fold cross-validation (shuffled, seed {args.seed}, "
                  f"{len(data.molecules)} molecules): {format_metrics(scores)}")
    with steps.step(f"fitting the model on {len(data.molecules)} molecules"):
        model.fit(data.molecules, data.targets)
    failed = len(model.training_failures_) + data.skipped
    print(f"trained on {len(data.molecules) - len(model.training_failures_)} molecules "
          f"({failed} could not be bagged)")
    if data.test_molecules is not None:
        scores = _evaluate(model, data.test_molecules, data.test_targets, data.task)
        print(f"test set: {len(data.test_molecules)} molecules, {format_metrics([scores])}")
    model.save(args.out, overwrite=args.force)
    print(f"model saved to {args.out}")


def _training_path(args) -> str | None:
    if args.data and args.input:
        raise CommandError("give the training file once: as DATA or as --input")
    path = args.data or args.input
    if bool(path) == bool(args.dataset):
        raise CommandError("give a training file (DATA) or a bundled data set (--dataset), not "
                           "both" if path else "give a training file (DATA) or --dataset NAME")
    return path


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
    t.add_argument("--n-jobs", type=int, default=1, help="processes for bagging molecules")
    t.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    t.add_argument("-o", "--out", required=True, help="folder to save the model in")
    t.add_argument("--force", action="store_true", help="replace a model previously saved in "
                   "that folder; never a folder that holds anything else")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress lines or bars")
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
    p.add_argument("--max-pictures", type=int, default=_MAX_PICTURES,
                   help=f"rows that get a picture (default {_MAX_PICTURES})")
    p.add_argument("--n-jobs", type=int, default=1, help="processes for scoring (-1: every core)")
    p.add_argument("--scheduler", help="score on a Dask cluster: its address (tcp://host:8786)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    p.set_defaults(func=predict)


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
