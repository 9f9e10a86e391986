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


def read_training_table(path: str, smiles_requested: str | None, target_column: str,
                        task: str | None = "regression", id_column: str | None = None,
                        limits: Limits = DEFAULT_LIMITS) -> TrainingData:
    """Molecules and targets of a training table, every row checked before anything is fitted.

    ``task=None`` lets the targets decide (:func:`training_task`); blank lines are no training
    rows; the file is read within ``limits``.
    """
    molecules, cells, errors, skipped = [], [], [], 0
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
    # The seed of the network, or of the regression model's selection subset.
    estimator = default_estimator(task, args.bag_type).set_params(random_state=args.seed)
    return QSARModel(bagger=bagger, estimator=estimator, task=task, search=args.search)


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
                                args.id_column, input_limits(args)))
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
