"""``qsarmil train``: read and check a training table (or a bundled data set), cross-validate,
fit a QSARModel and save it. Heavy libraries are imported inside functions."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .batch_predict import _classes, _plain, _source
from .cli_errors import CommandError
from .columns import _cell_text, _where, find_column, input_limits
from .io import DEFAULT_LIMITS, Limits, open_table

TASKS = ("regression", "classification")


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
    ids: list | None = None  # where each training row came from (id cell, else "line 7")
    bad_targets: list[str] | None = None  # rows left out by --skip-bad-targets, with the reason


def read_training_table(path: str, smiles_requested: str | None, target_column: str,
                        task: str | None = "regression", id_column: str | None = None,
                        limits: Limits = DEFAULT_LIMITS, skip_bad_targets: bool = False
                        ) -> TrainingData:
    """Molecules and targets of a training table, every row checked before anything is fitted.

    ``task=None`` lets the targets decide (:func:`training_targets`); blank lines are no
    training rows; the file is read within ``limits``. Every bad row is reported at once;
    with ``skip_bad_targets`` rows whose target is bad are left out (and listed) instead.
    """
    molecules, cells, errors, skipped, ids = [], [], [], 0, []
    with open_table(path, limits) as table:
        source = _source(table, smiles_requested, id_column, path)
        t_at = find_column(table.header, target_column, path)
        for row in table.rows:
            where = _where(row, source.id_at)
            if row.blank:
                continue
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
            ids.append(_cell_text(row.cells[source.id_at]) if source.id_at is not None else row.where)
    bad: list[str] = []
    if skip_bad_targets:
        keep, bad = _good_targets(cells, task)
        molecules, ids = [molecules[i] for i in keep], [ids[i] for i in keep]
        cells = [cells[i] for i in keep]
    task, targets = training_targets(cells, task, errors)
    if errors:
        raise CommandError(f"{path}: {_listed(errors, 'bad row')}")
    if not molecules:
        raise CommandError(f"{path}: no data rows to train on"
                           + (f" ({_listed(bad, 'bad target')})" if bad else ""))
    return TrainingData(molecules, targets, task, skipped=skipped, ids=ids, bad_targets=bad)


def _listed(problems: list[str], what: str, shown: int = 10) -> str:
    """Every problem of a run on one line: ``3 bad rows: line 2: ...; line 5: ...``."""
    if len(problems) == 1:
        return problems[0]
    more = len(problems) - shown
    tail = f"; and {more} more" if more > 0 else ""
    return f"{len(problems)} {what}s: " + "; ".join(problems[:shown]) + tail


def _good_targets(cells: list[tuple[object, str]], task: str | None) -> tuple[list[int], list[str]]:
    """Which rows have a usable target (``--skip-bad-targets``), and why the others do not.
    Without a task, targets are numbers where most cells are numbers, else class labels."""
    def is_number(value, where) -> bool:
        try:
            regression_target(value, where)
            return True
        except ValueError:
            return False

    numeric = task == "regression" or (
        task is None and 2 * sum(is_number(v, w) for v, w in cells) > len(cells))
    parse = regression_target if numeric else class_label
    keep, bad = [], []
    for k, (value, where) in enumerate(cells):
        try:
            parse(value, where)
            keep.append(k)
        except ValueError as exc:
            bad.append(str(exc))
    return keep, bad


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
    # The seed of the network, or of the regression model's selection subset.
    estimator = default_estimator(task, args.bag_type).set_params(random_state=args.seed)
    if "n_jobs" in estimator.get_params():  # threads for the kernel model's landmark fit
        estimator.set_params(n_jobs=args.n_jobs)
    name, units = getattr(args, "target_name", None), getattr(args, "units", None)
    if getattr(args, "dataset", None) and name is None and units is None:
        from .data import dataset_target

        name, units = dataset_target(args.dataset)
    return QSARModel(bagger=bagger, estimator=estimator, task=task, search=args.search,
                     target_name=name, units=units, scheduler=getattr(args, "scheduler", None))


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
    return _table_metrics(model, model.predict_table(molecules), targets, task)


def _table_metrics(model, table, targets: list, task: str) -> dict[str, float]:
    classes = _classes(model)
    proba = table[[f"proba_{c}" for c in classes]].to_numpy() if classes else None
    return fold_metrics(task, targets, table.prediction.to_numpy(), proba, classes)


def scaffold_groups(molecules: Sequence) -> list[str]:
    """Each molecule's Bemis-Murcko scaffold (SMILES; "" for a molecule without rings, and for
    one RDKit cannot read, so that such molecules share one group)."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    out = []
    for molecule in molecules:
        mol = Chem.MolFromSmiles(molecule) if isinstance(molecule, str) else molecule
        try:
            out.append(MurckoScaffold.MurckoScaffoldSmiles(mol=mol) if mol is not None else "")
        except (ValueError, RuntimeError):
            out.append("")
    return out


def cv_folds(data: TrainingData, folds: int, seed: int, split: str = "random") -> list:
    """Seeded (train, test) index pairs: shuffled k-fold (stratified for classification where
    every class has ``folds`` rows), or ``split="scaffold"``: whole Bemis-Murcko scaffold
    groups in each fold (stratified by class where possible)."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    stratify = (data.task == "classification"
                and min(_class_counts(data.targets).values()) >= folds)
    if split == "scaffold":
        groups = scaffold_groups(data.molecules)
        if len(set(groups)) < folds:
            raise CommandError(f"--split scaffold: the molecules have {len(set(groups))} "
                               f"scaffolds, fewer than the {folds} folds")
        splitter = (StratifiedGroupKFold(folds, shuffle=True, random_state=seed) if stratify
                    else GroupKFold(folds, shuffle=True, random_state=seed))
        return list(splitter.split(data.molecules, data.targets, groups))
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if stratify
                else KFold(folds, shuffle=True, random_state=seed))
    return list(splitter.split(data.molecules, data.targets))


@dataclass
class OutOfFold:
    """Each training row's prediction by the fold model that did not see it."""

    fold: list
    prediction: list
    proba: dict  # column name -> values


def cross_validate(model, data: TrainingData, folds: int, seed: int, steps: Steps,
                   split: str = "random") -> tuple[list[dict[str, float]], OutOfFold]:
    """Metrics per fold (see :func:`cv_folds`), and every row's out-of-fold prediction."""
    from sklearn.base import clone

    n = len(data.molecules)
    oof = OutOfFold([None] * n, [None] * n, {})
    scores = []
    for k, (train, test) in enumerate(cv_folds(data, folds, seed, split), 1):
        with steps.step(f"cross-validation fold {k}/{folds}"):
            # Fold models are scored, never asked how sure: no intervals to calibrate.
            fold = clone(model).set_params(bagger__progress=False, uncertainty=None)
            fold.fit([data.molecules[i] for i in train], [data.targets[i] for i in train])
            table = fold.predict_table([data.molecules[i] for i in test])
            scores.append(_table_metrics(fold, table, [data.targets[i] for i in test], data.task))
            for name in [c for c in table if c.startswith("proba_")]:
                column = oof.proba.setdefault(name, [None] * n)
                for i, value in zip(test, table[name]):
                    column[i] = value
            for i, value in zip(test, table.prediction):
                oof.fold[i], oof.prediction[i] = k, _plain(value)
    return scores, oof


def write_out_of_fold(path: str, data: TrainingData, oof: OutOfFold, id_name: str | None) -> None:
    """The out-of-fold predictions as CSV, one row per training row, written atomically."""
    import pandas as pd

    from milearn_core.persist import atomic_path

    ids = data.ids or [f"row {k + 1}" for k in range(len(data.molecules))]
    frame = pd.DataFrame({id_name or "row": ids,
                          "smiles": [m if isinstance(m, str) else "" for m in data.molecules],
                          "target": data.targets, "fold": oof.fold, "prediction": oof.prediction,
                          **oof.proba})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


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
    from .featurize import conformer_cache
    from .model import check_save_folder

    path = _training_path(args)
    check_save_folder(args.out, args.force)  # refuse --out before minutes of fitting
    data = (_bundled(args.dataset, args.task or "regression") if args.dataset else
            read_training_table(path, args.smiles_column, args.target_column, args.task,
                                args.id_column, input_limits(args), args.skip_bad_targets))
    if args.oof and (data.test_molecules is not None or args.cv < 2):
        raise CommandError("--oof needs cross-validation: a table (not a bundled set with a test "
                           "split) and --cv 2 or more")
    if args.oof and path and _same_file(args.oof, path):
        raise CommandError(f"--oof {args.oof} is the training file; choose another file")
    if data.bad_targets:
        print(f"left out {len(data.bad_targets)} rows with a bad target (--skip-bad-targets): "
              f"{_listed(data.bad_targets, 'row')}", file=sys.stderr)
    steps = Steps(args.quiet)
    model = _new_model(data.task, args)
    note = expected_time_note(model, len(data.molecules), args.cv if data.test_molecules is None else 0)
    if note and not args.quiet:
        print(note, file=sys.stderr, flush=True)
    with conformer_cache():  # conformer bags embedded once for the folds and the final fit
        if data.test_molecules is None and args.cv > 1:
            scores, oof = cross_validate(model, data, args.cv, args.seed, steps, args.split)
            scores = [s for s in scores if s]
            if scores:
                how = "shuffled" if args.split == "random" else "scaffold split"
                print(f"{args.cv}-fold cross-validation ({how}, seed {args.seed}, "
                      f"{len(data.molecules)} molecules): {format_metrics(scores)}")
            if args.oof:
                write_out_of_fold(args.oof, data, oof, args.id_column)
                print(f"out-of-fold predictions written to {args.oof}")
        with steps.step(f"fitting the model on {len(data.molecules)} molecules"):
            model.fit(data.molecules, data.targets, ids=data.ids)
    failed = len(model.training_failures_) + data.skipped
    print(f"trained on {len(data.molecules) - len(model.training_failures_)} molecules "
          f"({failed} could not be bagged)")
    if data.test_molecules is not None:
        scores = _evaluate(model, data.test_molecules, data.test_targets, data.task)
        print(f"test set: {len(data.test_molecules)} molecules, {format_metrics([scores])}")
    model.save(args.out, overwrite=args.force)
    print(f"model saved to {args.out}")


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# Seconds per molecule, measured on this project's 2-core machine with the network defaults of
# 2026-12-05: one network fit on fragment bags, bagging included (CHEMBL204_Ki, 2754 molecules:
# 33 s); on conformer bags, the network fit alone (solubility: 7 s for 1282), and making the
# conformer bags (10 conformers a molecule: 219 s), done once for all folds (conformer_cache).
_NETWORK_SECONDS = {"brics": 0.012, "recap": 0.012, "conformers": 0.006}
_CONFORMER_SECONDS = 0.17


def expected_time_note(model, n_molecules: int, folds: int) -> str | None:
    """A line warning that fitting will take minutes, or None where it will not."""
    from milearn_core import MILClassifier, MILRegressor

    fits = 1 + (folds if folds > 1 else 0)
    bag_type = model.bagger.bag_type if model.bagger is not None else "brics"
    # Work shared by every fit: the conformer embedding (conformer_cache).
    once = _CONFORMER_SECONDS * n_molecules if bag_type == "conformers" else 0.0
    if isinstance(model.estimator, (MILClassifier, MILRegressor)):
        seconds = _NETWORK_SECONDS.get(bag_type, 0.012) * n_molecules
        kind = "a neural network"
        if model.uncertainty == "cv":  # intervals: 5 out-of-fold refits (smaller sets)
            fits += 4
    else:  # kernel models: exact up to 8 000 molecules (n², 8 000: ~35 s), then on landmarks
        # (about linear: benchmarks/scale.py, 2 cores, 16 000-100 000: 2 ms a molecule; one
        # process bags and fits more slowly, hence 3 ms)
        limit = getattr(model.estimator, "exact_limit", 8_000) or n_molecules
        seconds = (120.0 * (n_molecules / 16_000) ** 2 if n_molecules <= limit
                   else 3e-3 * n_molecules)
        kind = "the kernel model"
    if once + seconds * fits < 60:
        return None
    parts = ([f"{folds} folds"] if folds > 1 else []) + ["the final model"]
    if fits > 1 + (folds if folds > 1 else 0):
        parts.append("about 4 for its intervals (5 out-of-fold refits)")
    folds_text = (f" ({fits} fits: {', '.join(parts[:-1])} and {parts[-1]})" if fits > 1 else "")
    embed_text = (f"; making the conformers takes {_minutes(once)}, once for all fits"
                  if once else "")
    return (f"note: {kind} on {n_molecules} molecules takes {_minutes(seconds)} per fit on "
            f"2 cores{folds_text}{embed_text}; expect {_minutes(once + seconds * fits)} in all")


def _minutes(seconds: float) -> str:
    return "under a minute" if seconds < 60 else f"about {seconds / 60:.0f} min"


def _training_path(args) -> str | None:
    if args.data and args.input:
        raise CommandError("give the training file once: as DATA or as --input")
    path = args.data or args.input
    if bool(path) == bool(args.dataset):
        raise CommandError("give a training file (DATA) or a bundled data set (--dataset), not "
                           "both" if path else "give a training file (DATA) or --dataset NAME")
    return path
