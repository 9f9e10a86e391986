"""One execution layer for scoring: in-process, local worker processes, or a Dask cluster.

:func:`predict_chunks` takes chunks of SMILES and yields one result table per chunk, in input
order, whichever engine runs them:

- ``n_jobs=1`` (default): in this process;
- ``n_jobs > 1`` (or -1 for every core): local worker processes (joblib);
- ``scheduler=`` a Dask scheduler address (``"tcp://host:8786"``) or a
  ``dask.distributed.Client``: the chunks are tasks on the cluster. Dask is optional
  (``pip install qsarmil[dask]``) and is only imported here.

Each worker gets the model once. Local workers load ``model_path`` (a folder saved with
:meth:`QSARModel.save`, read through the safe loader and cached per worker process; without
one, the model is saved once to a temporary folder). Dask workers, which may not share this
machine's disks, get one copy of the model object each (``client.scatter``), or load
``model_path`` when only a path is given. At most a few
chunks per worker are in flight, and a chunk is only submitted once the caller has taken the
result of an earlier one, so memory does not grow with the stream, however slow the consumer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .execution import DASK_HINT, IN_FLIGHT_PER_WORKER, dask_client, dask_client_class, in_order, window_for

if TYPE_CHECKING:  # heavy imports stay out of `import qsarmil.scale`
    import pandas as pd

    from .model import QSARModel

__all__ = ["predict_chunks", "load_cached", "DASK_HINT"]



def predict_chunks(model: QSARModel | None, chunks: Iterable[Sequence[str]], *, n_jobs: int = 1,
                   scheduler: Any = None, model_path: str | os.PathLike | None = None,
                   level: float | None = None) -> Iterator[pd.DataFrame]:
    """Score chunks of SMILES; one table per chunk, in input order.

    Parameters
    ----------
    model : QSARModel or None
        A fitted model; may be None when ``model_path`` is given.
    chunks : iterable of lists of SMILES
        Consumed lazily: only the chunks in flight are held in memory.
    n_jobs : int
        Local worker processes (-1: one per core); ignored when ``scheduler`` is given.
    scheduler : str or dask.distributed.Client, optional
        Run on this Dask cluster (an address is connected to, and closed after the stream).
    model_path : path, optional
        The model's saved folder. Local workers load it once each (without it, from a copy
        saved to a temporary folder). Dask workers get ``model`` scattered once to each, and
        load ``model_path`` only when ``model`` is None (then they must be able to read it).
    level : float, optional
        Interval / prediction-set level (default: the model's ``interval_level``).

    Yields
    ------
    DataFrame
        As ``model.predict_table(chunk)``, indexed by input row over the whole stream (as
        :meth:`QSARModel.iter_predict`).

    Raises
    ------
    ImportError
        ``scheduler`` given but Dask's distributed scheduler is not installed.
    """
    if model is None and model_path is None:
        raise ValueError("give a fitted model or the folder it was saved to (model_path)")
    if model_path is not None and not Path(model_path).is_dir():
        raise FileNotFoundError(f"{model_path}: no such model folder")
    tasks = _numbered(chunks)
    if scheduler is not None:
        dask_client_class()  # Dask missing: say so now, not at the first result
        return _on_dask(scheduler, model, model_path, tasks, level)
    workers = _n_workers(n_jobs)
    if workers > 1:
        return _on_local_workers(workers, model, model_path, tasks, level)
    return _in_process(model if model is not None else load_cached(model_path), tasks, level)


def load_cached(path: str | os.PathLike) -> QSARModel:
    """``QSARModel.load(path)``, loaded once per process (again only if the folder changed)."""
    path = os.path.realpath(path)
    return _load(path, _folder_stamp(path))


@lru_cache(maxsize=4)
def _load(path: str, stamp: tuple) -> QSARModel:
    from .model import QSARModel

    return QSARModel.load(path)


def _folder_stamp(path: str) -> tuple:
    """Names, sizes and modification times of a folder's files: changes when a model is re-saved."""
    with os.scandir(path) as entries:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries))


def score_chunk(model: QSARModel | str, smiles: list[str], start: int, level: float | None = None
                ) -> pd.DataFrame:
    """``predict_table`` of one chunk, indexed from ``start``; ``model`` may be a folder path."""
    import pandas as pd

    if isinstance(model, str):
        model = load_cached(model)
    table = next(model.iter_predict(smiles, chunk_size=max(len(smiles), 1), level=level), None)
    if table is None:  # an empty chunk
        table = model.predict_table([], level=level)
    table.index = pd.RangeIndex(start, start + len(smiles))
    return table


def _numbered(chunks: Iterable[Sequence[str]]) -> Iterator[tuple[list[str], int]]:
    """Each chunk as a list, with the input row its first molecule has in the whole stream."""
    start = 0
    for chunk in chunks:
        if isinstance(chunk, (str, bytes)):
            raise TypeError("chunks must be lists of SMILES, got a single string as a chunk")
        chunk = list(chunk)
        yield chunk, start
        start += len(chunk)


def _n_workers(n_jobs: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    from joblib import effective_n_jobs

    return effective_n_jobs(n_jobs)


def _in_process(model: QSARModel, tasks: Iterator[tuple[list[str], int]], level: float | None
                ) -> Iterator[pd.DataFrame]:
    for smiles, start in tasks:
        yield score_chunk(model, smiles, start, level)


def _on_local_workers(n_workers: int, model: QSARModel | None, model_path, tasks,
                      level: float | None = None) -> Iterator[pd.DataFrame]:
    """Local worker processes (joblib, pool kept across calls); each loads the model folder once.

    Chunks go out in windows of a few per worker: joblib's generator dispatches a new task
    whenever one finishes, not when the caller takes a result, so one call over the whole
    stream would buffer results without bound behind a slow consumer.
    """
    from joblib import Parallel, delayed

    with tempfile.TemporaryDirectory(prefix="qsarmil-model-") as tmp:
        if model_path is None:  # saved once, rather than pickled with every chunk
            model_path = Path(tmp) / "model"
            model.save(model_path)
        path = os.path.realpath(model_path)
        with Parallel(n_jobs=n_workers, return_as="generator") as parallel:
            for window in _windows(tasks, IN_FLIGHT_PER_WORKER * n_workers):
                yield from parallel(delayed(score_chunk)(path, *task, level) for task in window)


def _windows(tasks: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while window := list(islice(tasks, size)):
        yield window


def _on_dask(scheduler, model: QSARModel | None, model_path, tasks,
             level: float | None = None) -> Iterator[pd.DataFrame]:
    """Chunks as tasks on a Dask cluster, results back in input order."""
    with dask_client(scheduler) as client:
        source = (client.scatter(model, broadcast=True, hash=False) if model is not None
                  else os.path.realpath(model_path))

        def submit(smiles, start):
            return client.submit(score_chunk, source, smiles, start, level, pure=False)

        yield from in_order(submit, tasks, window_for(client))
