"""Where work runs: tasks in input order with a bounded number in flight, and Dask clients.

Shared by scoring (:mod:`qsarmil.scale`), training featurisation (:func:`bag_on_dask`) and the
model zoo. Dask is optional (``pip install qsarmil[dask]``) and only imported when asked for.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["DASK_HINT", "bag_on_dask", "dask_client", "in_order"]

DASK_HINT = "scheduler= needs Dask's distributed scheduler: pip install qsarmil[dask]"
IN_FLIGHT_PER_WORKER = 4  # tasks per worker thread in flight: workers stay busy, memory bounded
_BAG_CHUNK = 500  # molecules per featurisation task


def in_order(submit: Callable[..., Any], tasks: Iterable[tuple], window: int) -> Iterator[Any]:
    """Results of ``submit(*task)`` futures in task order, at most ``window`` in flight.

    Works with ``concurrent.futures`` and Dask futures alike; futures still pending when the
    caller stops early are cancelled.
    """
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(submit(*task))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def dask_client_class() -> type:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(DASK_HINT) from exc
    return Client


@contextmanager
def dask_client(scheduler) -> Iterator[Any]:
    """A client for ``scheduler``: an address (connected here, closed on exit) or a
    ``dask.distributed.Client`` (used as given, left open)."""
    client_class = dask_client_class()
    own = isinstance(scheduler, (str, os.PathLike))
    client = client_class(str(scheduler), set_as_default=False) if own else scheduler
    try:
        yield client
    finally:
        if own:
            client.close()


def window_for(client) -> int:
    """Tasks in flight on ``client``: a few per worker thread."""
    return max(2, IN_FLIGHT_PER_WORKER * (sum(client.nthreads().values()) or 1))


def bag_on_dask(bagger, molecules, summed: bool, scheduler) -> list:
    """``bagger.transform`` (``summed``: ``transform_summed``) with the molecules bagged on a
    Dask cluster in chunks: the same bags, provenance and failures as in-process."""
    from .featurize import bag_chunk

    def run(items: list, config: dict) -> Iterator:
        with dask_client(scheduler) as client:
            def submit(chunk, start):
                return client.submit(bag_chunk, chunk, start, config, pure=False)

            chunks = ((items[lo:lo + _BAG_CHUNK], lo) for lo in range(0, len(items), _BAG_CHUNK))
            for results in in_order(submit, chunks, window_for(client)):
                yield from results

    return bagger.transform_with(molecules, summed, run)
