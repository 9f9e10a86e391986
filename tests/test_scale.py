"""qsarmil.scale: the same table in the same order in-process, on local workers and on Dask."""

from __future__ import annotations

import subprocess
import sys
from itertools import count, islice

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.scale import DASK_HINT, load_cached, predict_chunks

CHUNK = 40


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = load_dataset("solubility")
    train = data.head(120)
    with threadpool_limits(1):  # multi-threaded BLAS crawls on a busy machine (0.9 s vs 40 s)
        model = QSARModel(bagger=MoleculeBagger(progress=False)).fit(train.smiles, train.target)
    path = tmp_path_factory.mktemp("scale") / "model"
    model.save(path)
    smiles = list(data.smiles[120:420])
    for row in range(5, len(smiles), 37):  # failures spread over several chunks
        smiles[row] = "not a smiles"
    return model, path, smiles


@pytest.fixture(scope="module")
def expected(fitted):
    model, _, smiles = fitted
    return model.predict_table(smiles)


def chunked(items: list, size: int = CHUNK) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def assert_same_rows(tables, expected: pd.DataFrame) -> None:
    tables = list(tables)
    assert [len(t) for t in tables] == [len(c) for c in chunked(list(expected.smiles))]
    pd.testing.assert_frame_equal(pd.concat(tables), expected)


def test_in_process_equals_predict_table(fitted, expected):
    model, _, smiles = fitted
    assert (expected.status == "failed").sum() == 8
    assert_same_rows(predict_chunks(model, chunked(smiles)), expected)


@pytest.mark.parametrize("source", ["object", "path", "path only"])
def test_two_local_workers_give_the_same_rows_in_order(fitted, expected, source):
    model, path, smiles = fitted
    kwargs = {"object": dict(model=model), "path": dict(model=model, model_path=path),
              "path only": dict(model=None, model_path=path)}[source]
    assert_same_rows(predict_chunks(chunks=chunked(smiles), n_jobs=2, **kwargs), expected)


def test_empty_chunks_and_empty_streams(fitted):
    model, _, _ = fitted
    assert list(predict_chunks(model, [])) == []
    tables = list(predict_chunks(model, [["CCO"], [], ["CCN", "x"]]))
    assert [list(t.index) for t in tables] == [[0], [], [1, 2]]
    assert list(tables[1].columns) == list(tables[0].columns)


@pytest.mark.filterwarnings("ignore:.*still being processed by the workers have been cancelled")
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_the_stream_is_consumed_lazily(fitted, n_jobs):
    model, _, _ = fitted
    pulled = count()

    def endless():
        for i in count():
            next(pulled)
            yield ["CCO", "c1ccccc1"] if i % 2 else ["CCN"]

    first = list(islice(predict_chunks(model, endless(), n_jobs=n_jobs), 3))
    assert [list(t.index) for t in first] == [[0], [1, 2], [3]]
    assert next(pulled) <= 3 + 4 * n_jobs  # at most a window of chunks was read ahead


def test_bad_arguments(fitted, tmp_path):
    model, _, _ = fitted
    with pytest.raises(ValueError, match="model_path"):
        predict_chunks(None, [["CCO"]])
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        predict_chunks(None, [["CCO"]], model_path=tmp_path / "missing")
    with pytest.raises(ValueError, match="n_jobs"):
        predict_chunks(model, [["CCO"]], n_jobs=0)
    with pytest.raises(TypeError, match="lists of SMILES"):
        list(predict_chunks(model, ["CCO"]))


def test_the_model_folder_is_loaded_once_and_again_when_it_changes(fitted, tmp_path):
    model, _, _ = fitted
    model.save(tmp_path / "m")
    first = load_cached(tmp_path / "m")
    assert load_cached(str(tmp_path / "m")) is first
    model.save(tmp_path / "m", overwrite=True)
    assert load_cached(tmp_path / "m") is not first


def test_import_does_not_pull_in_dask_or_torch():
    code = ("import sys, qsarmil.scale; "
            "print(sorted(m for m in ('dask', 'distributed', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scheduler_without_dask_says_how_to_install_it(fitted, monkeypatch):
    model, _, _ = fitted
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install qsarmil\[dask\]") as info:
        predict_chunks(model, [["CCO"]], scheduler="tcp://127.0.0.1:1")
    assert str(info.value) == DASK_HINT


# ----------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="Dask's distributed scheduler is not "
                                      "installed (pip install qsarmil[dask])")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield cluster, client


@pytest.mark.xdist_group("dask")
@pytest.mark.parametrize("source", ["scattered object", "model folder"])
def test_dask_client_gives_the_local_rows_in_order(fitted, expected, cluster, source):
    model, path, smiles = fitted
    _, client = cluster
    model, model_path = (None, path) if source == "model folder" else (model, path)
    tables = predict_chunks(model, iter(chunked(smiles)), scheduler=client, model_path=model_path)
    assert_same_rows(tables, expected)
    assert client.status == "running"  # a client we were given stays open


@pytest.mark.xdist_group("dask")
def test_dask_scheduler_address(fitted, expected, cluster):
    model, path, smiles = fitted
    local_cluster, _ = cluster
    tables = predict_chunks(None, chunked(smiles), scheduler=local_cluster.scheduler_address,
                            model_path=path)
    assert_same_rows(tables, expected)


@pytest.mark.xdist_group("dask")
def test_dask_stops_when_the_caller_does(fitted, cluster):
    model, path, _ = fitted
    _, client = cluster
    stream = (["CCO", "CCN"] for _ in count())
    first = list(islice(predict_chunks(None, stream, scheduler=client, model_path=path), 2))
    assert [list(t.index) for t in first] == [[0, 1], [2, 3]]


@pytest.fixture(scope="module")
def training_rows():
    data = load_dataset("solubility").iloc[420:540]
    smiles = list(data.smiles)
    smiles[7] = "not a smiles"  # a failure keeps its input row
    return smiles, list(data.target)


@pytest.mark.xdist_group("dask")
@pytest.mark.parametrize("how", ["client", "address"])
def test_training_featurised_on_dask_gives_the_local_model(training_rows, cluster, how):
    smiles, target = training_rows
    local_cluster, client = cluster
    scheduler = client if how == "client" else local_cluster.scheduler_address
    with threadpool_limits(1):
        local = QSARModel(bagger=MoleculeBagger(progress=False)).fit(smiles, target)
        remote = QSARModel(bagger=MoleculeBagger(progress=False), scheduler=scheduler).fit(smiles, target)
    assert [f.index for f in remote.training_failures_] == [f.index for f in local.training_failures_] == [7]
    assert list(remote.bagger_.valid_index_) == list(local.bagger_.valid_index_)
    queries = smiles[:30]
    pd.testing.assert_frame_equal(remote.predict_table(queries), local.predict_table(queries))
    assert client.status == "running"


def test_training_on_dask_without_dask_says_how_to_install_it(training_rows, monkeypatch):
    smiles, target = training_rows
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install qsarmil\[dask\]"):
        QSARModel(scheduler="tcp://127.0.0.1:1").fit(smiles[:20], target[:20])
