"""``qsarmil predict``: read a table of molecules in chunks, score (and explain) them, and write
every input row back with our columns added. Heavy libraries are imported inside functions."""

from __future__ import annotations

import io
import math
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .batch_pairs import PairScoring, check_pair_options, pair_source
from .cli_errors import CommandError
from .columns import (
    EXPLAIN_COLUMNS,
    PICTURE_COLUMN,
    _cell_text,
    _where,
    added_columns,
    clip,
    find_column,
    input_limits,
    printable,
    smiles_column,
)
from .io import (
    PICTURE_SIZE,
    STDIN,
    Record,
    Row,
    input_format,
    open_table,
    output_format,
    write_table,
    xlsx_cell_problem,
    xlsx_storable,
)
from .io.writers import sd_storable, sd_value_problem

_CHUNK = 2000  # rows scored per call: memory stays bounded by the chunk, not the file
_CHUNK_CHARS = 32 * 1024**2  # ... and by the text its rows hold (rows may be megabytes each)
_EXPLAIN_CHUNK = 500  # explanations hold instance tables and molecules: smaller chunks
TOP_FRAGMENTS = 3
MAX_PICTURES = 1000  # openpyxl holds pictures in memory until the workbook is saved


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
    header: list[str] = field(default_factory=list)

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
    return Source(smiles_at, id_at, list(table.header))


# ----------------------------------------------------------------------------- predict


# What one cell costs beyond its text while a chunk is scored and written (the Python objects
# and references of the row, the table and the output row): 2000 rows of 16 000 empty cells
# weighed by their text alone were one chunk of ~2 GB.
_CELL_COST = 64


def _row_chars(row: Row) -> int:
    """A row's weight in a chunk: its text plus a fixed cost per cell."""
    return len(row.molblock or "") + sum((len(c) if isinstance(c, str) else 8) + _CELL_COST
                                         for c in row.cells)


def _bounded_chunks(rows: Iterable[Row], size: int, max_chars: int = _CHUNK_CHARS
                    ) -> Iterator[list[Row]]:
    """Chunks of at most ``size`` rows and (but for one large row) ``max_chars`` characters."""
    chunk, chars = [], 0
    for row in rows:
        weight = _row_chars(row)
        if chunk and (len(chunk) >= size or chars + weight > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(row)
        chars += weight
    if chunk:
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
    for chunk in _bounded_chunks(rows, size):
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
    xlsx_out: bool = False
    n_jobs: int = 1
    scheduler: str | None = None
    model_path: str | None = None
    level: float | None = None
    passed: list[str] = field(default_factory=list)  # the model's columns after "error"
    scale: FileScale | None = None  # the pictures' one colour scale (set at the first picture)

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
            # Every block goes through, an empty one too: holding back blocks without a usable
            # row until the next usable one kept a whole file of failed rows in memory.
            for block in blocks:
                pending.append(block)
                yield block.molecules

        for values in self._values(feed()):
            block = pending.popleft()
            yield block, (values if block.molecules else None)

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
                yield chunk, self.model.predict_table(chunk, level=self.level)
            return
        held: deque[list] = deque()

        def keep(chunk_stream):
            for chunk in chunk_stream:
                held.append(chunk)
                yield chunk

        try:
            tables = scale.predict_chunks(self.model, keep(chunks), n_jobs=self.n_jobs,
                                          scheduler=self.scheduler, model_path=self.model_path,
                                          level=self.level)
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
        # One table gives both the probabilities and the model's own columns (one bagging).
        table = (self.model.predict_table(chunk, level=self.level) if self.classes or self.passed
                 else None)
        proba = self._probabilities(chunk, table)
        passed = table[self.passed].to_numpy(dtype=object) if self.passed else None
        explanations = self.model.explain(chunk)
        if self.pictures and self.scale is None:
            self.scale = file_scale(self.model, explanations[: max(0, self.pictures - done)])
        for k, e in enumerate(explanations):
            extra = [] if proba is None else [_plain(p) for p in proba[k]]
            more = [] if passed is None else [_plain(v) for v in passed[k]]
            values = [_plain(e.prediction), *extra, e.status, e.error, *more,
                      *top_fragments(e.instances)]
            if self.pictures:
                values.append(Picture(_picture(e, self.scale)) if done + k < self.pictures
                              else None)
            out.append(values)
        return out


@dataclass
class Picture:
    """PNG bytes travelling in the picture column until the row becomes a Record."""

    png: bytes | None


@dataclass(frozen=True)
class FileScale:
    """One colour scale for every picture of an output file: the |value| of full colour and
    where it comes from (stated under each picture's colour bar)."""

    vmax: float
    note: str


def file_scale(model, explanations: list) -> FileScale:
    """The pictures' scale: the model's ``contribution_scale_`` (the training atoms' 99th
    percentile |contribution|, kept at fit) where it has one, else the largest |value| among
    the first chunk's pictures (models without atom contributions, folders saved before it)."""
    from .explain import shared_vmax

    stored = getattr(model, "contribution_scale_", None)
    ok = [e for e in explanations if e.status == "ok"]
    if stored is not None and ok and all(e.has_signed and e.has_atom_level for e in ok):
        return FileScale(float(stored), "one scale per file: training atoms' 99th percentile")
    return FileScale(shared_vmax(ok), f"one scale per file: max of the first {len(explanations)} rows")


def _picture(explanation, scale: FileScale | None = None) -> bytes | None:
    """The structure picture of one explained row (None for a failed row), on the file's
    colour scale."""
    if explanation.status != "ok":
        return None
    try:
        return explanation.draw(signed=explanation.has_signed, fmt="png", size=PICTURE_SIZE,
                                vmax=scale.vmax if scale else None,
                                note=scale.note if scale else "")
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
    order = values.abs().sort_values(ascending=False, kind="stable").index[:TOP_FRAGMENTS]
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
            record = _record(row, added, scoring, source, k in block.unreadable)
            tally.count(row, record.cells[len(row.cells):], scoring, source)
            yield record


def _record(row: Row, added: list, scoring: Scoring, source: Source, unreadable: bool) -> Record:
    """The output row: input cells, our values, the picture and (SDF output) the molecule: the
    input record's (an empty one where RDKit cannot read it) or one made from the SMILES.

    An input cell the output format cannot store as it is (XLSX: over 32 767 characters or a
    control character; SDF: a blank or ``$$$$`` line) fails its row, not the file: the row says
    which cell and how it was changed to fit. Our own text cells are cut to
    :data:`~qsarmil.columns.MAX_OUR_CHARS` characters, saying so.
    """
    picture = None
    if scoring.pictures:
        last = added[-1]
        picture = last.png if isinstance(last, Picture) else None
        added = [*added[:-1], None]
    cells = list(row.cells)
    problem = _unstorable(cells, scoring, source.header)
    if problem:
        added = scoring.failed(problem)
        if scoring.pictures:
            picture = None
    added = [clip(v) if isinstance(v, str) else v for v in added]
    if scoring.xlsx_out:
        added = [xlsx_storable(v) if isinstance(v, str) else v for v in added]
    molblock = None
    if scoring.sdf_out and not unreadable and not problem:
        molblock = row.molblock if row.molblock is not None else molblock_for(
            _cell_text(row.cells[source.smiles_at]), source.title(row))
    return Record([*cells, *added], molblock, picture)


def _unstorable(cells: list, scoring: Scoring, header: list[str]) -> str:
    """Make ``cells`` storable in the output format (in place); why the row fails, or ""."""
    if not (scoring.xlsx_out or scoring.sdf_out):
        return ""
    first = ""
    for k, value in enumerate(cells):
        if scoring.xlsx_out:
            problem = xlsx_cell_problem(value)
            if problem:
                cells[k] = xlsx_storable(value)
                how = "cut to fit" if "characters" in problem else "control characters as U+FFFD"
        else:
            problem = sd_value_problem(_cell_text(value))
            if problem:
                cells[k] = sd_storable(_cell_text(value))
                how = "blank lines dropped, '$$$$' lines indented"
        if problem and not first:
            first = (f"column {printable(header[k], 80)!r} holds {problem}; written here {how} "
                     "(write CSV or TSV to keep it whole)")
    return first


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
            self.first = printable(f"{_where(row, source.id_at)}: {error}", 300)


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _stdin_is(path: str) -> bool:
    """Whether standard input is the file at ``path`` (``< same.csv``)."""
    try:
        return os.path.exists(path) and os.path.samestat(os.fstat(sys.stdin.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no real stdin
        return False


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
    if _same_file(args.input, output) if args.input != STDIN else _stdin_is(output):
        raise CommandError(f"{output} is the input file; write the predictions to another file")
    limits = input_limits(args)
    pictures = args.pictures if args.pictures is not None else args.explain and kind == ".xlsx"
    if pictures and kind != ".xlsx":
        raise CommandError("--pictures needs an .xlsx output")
    if args.scheduler and (args.explain or pictures):
        raise CommandError("--explain runs in this process, not on a Dask cluster; drop --scheduler")
    pairs = any(getattr(args, name, None) is not None for name in ("pairs", "measured", "charge"))
    if pairs:
        check_pair_options(args, kind)
    with open_table(args.input, limits) as table:
        source = (pair_source(table, args, args.input) if pairs
                  else _source(table, args.smiles_column, args.id_column, args.input))
        model = _load_model(args.model)
        _configure(model, 1 if pairs else args.n_jobs)  # pairs are compared in this process
        scoring = (PairScoring(model, args.charge, xlsx_out=kind == ".xlsx") if pairs else
                   Scoring(model, _classes(model), explain=args.explain or pictures,
                           pictures=args.max_pictures if pictures else 0, sdf_out=kind == ".sdf",
                           xlsx_out=kind == ".xlsx", n_jobs=args.n_jobs, scheduler=args.scheduler,
                           model_path=args.model, passed=_passed_columns(model),
                           level=_interval_level(args, model)))
        names = added_columns(table.header, scoring.columns())
        header = [*table.header, *names]
        tally = Tally()
        size = _EXPLAIN_CHUNK if scoring.explain or pairs else _CHUNK
        records = _records(scoring, _blocks(table.rows, source, size), source, tally)
        n = write_table(output, header, _progress(records, args.quiet, "scoring"),
                        picture_column=names[-1] if pictures else None,
                        escape_formulas=getattr(args, "escape_formulas", False))
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


def _interval_level(args, model) -> float | None:
    """``--interval``, checked: a level in (0, 1), for a model that has intervals or sets."""
    level = getattr(args, "interval", None)
    if level is None:
        return None
    if not 0.0 < level < 1.0:
        raise CommandError(f"--interval must lie between 0 and 1 (e.g. 0.9), got {level:g}")
    if getattr(model, "reliability_", None) is None:
        raise CommandError(f"{args.model}: this model has no intervals (trained without them, or "
                           f"by an older qsarmil); train it again for --interval")
    model.set_params(interval_level=level)  # explanations' legends too
    return level


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
