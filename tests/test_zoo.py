import json

import numpy as np
import pytest
from rdkit import Chem
from sklearn.linear_model import Ridge

from milearn_core import AdditiveRegressor, BagKernelRegressor, BagWrapper
from qsarmil.data import load_chembl_sample, load_dataset, make_fragment_logp
from qsarmil.fragments import brics_fragments
from qsarmil.model import QSARModel
from qsarmil.standardize import prepare_molecule
from qsarmil.zoo import ModelZoo

DESCRIPTORS = {"morgan": "morgan_parent", "pharm": "pharmacophore"}
ESTIMATORS = {"additive": AdditiveRegressor(cv=3), "bag_ridge": BagWrapper(Ridge(), pool="mean")}


@pytest.fixture(scope="module")
def solubility():
    data = load_dataset("solubility").iloc[:60]
    return list(data.smiles), data.target.to_numpy()


def _zoo(folder, **kw):
    settings = dict(bag_types=("brics",), descriptor_sets=DESCRIPTORS, estimators=ESTIMATORS,
                    progress=False)
    return ModelZoo(folder, **{**settings, **kw})


class _Stop(Exception):
    pass


def test_an_interrupted_zoo_resumes_without_refitting(tmp_path, solubility):
    smiles, y = solubility
    folder = tmp_path / "zoo"
    done = []

    def stop_after_first(row):
        done.append(row["name"])
        raise _Stop  # as if the run were killed right after the first model was saved

    with pytest.raises(_Stop):
        _zoo(folder, callback=stop_after_first).run(smiles, y)
    first = done[0]
    saved = folder / "models" / first / "estimator.safetensors"
    assert saved.is_file() and len(list((folder / "models").iterdir())) == 1
    stamp = saved.stat().st_mtime_ns
    rows = []
    zoo = _zoo(folder, callback=rows.append)
    table = zoo.run(smiles, y)
    status = dict(zip(table.name, table.status))
    assert status[first] == "loaded" and saved.stat().st_mtime_ns == stamp  # not refit
    assert status["brics-morgan-bag_ridge"] == "skipped"  # a wrapper needs dense bags
    assert sorted(n for n, s in status.items() if s == "trained") == sorted(
        {"brics-morgan-additive", "brics-pharm-additive", "brics-pharm-bag_ridge"} - {first})
    assert [r["name"] for r in rows if r["status"] == "loaded"] == [first]
    # Ranked by validation R², best first; the saved table is the returned one.
    fitted = table[table.status.isin(["trained", "loaded"])]
    assert list(fitted.score) == sorted(fitted.score, reverse=True) and list(fitted["rank"]) == [1, 2, 3]
    assert (fitted.fit_seconds > 0).all() and (fitted.metric == "r2").all()
    trained = table[table.status == "trained"]
    assert (trained.featurize_seconds > 0).all()  # bagging timed apart, summed bags included
    assert len(zoo.validation_index_) == 12 and len(zoo.train_index_) == 48
    # A third run loads everything.
    again = _zoo(folder).run(smiles, y)
    assert set(again.status) == {"loaded", "skipped"}
    np.testing.assert_allclose(again.score.dropna(), fitted.score)


def test_top_models_and_consensus(tmp_path, solubility):
    smiles, y = solubility
    zoo = _zoo(tmp_path / "zoo", descriptor_sets={"pharm": "pharmacophore"})
    table = zoo.run(smiles, y)
    models = zoo.top_models(2)
    assert all(isinstance(m, QSARModel) for m in models) and len(models) == 2
    query = smiles[:5] + ["not a smiles"]
    best = QSARModel.load(tmp_path / "zoo" / "models" / table.name[0])
    np.testing.assert_allclose(models[0].predict(smiles[:5]), best.predict(smiles[:5]))
    mean = np.mean([m.predict(query) for m in models], axis=0)
    consensus = zoo.consensus_predict(query, k=2)
    np.testing.assert_allclose(consensus[:5], mean[:5])
    assert np.isnan(consensus[5])
    reopened = _zoo(tmp_path / "zoo", descriptor_sets={"pharm": "pharmacophore"})  # reads table.csv
    np.testing.assert_allclose(reopened.consensus_predict(smiles[:5], k=2), consensus[:5])
    with pytest.raises(ValueError, match="positive integer"):
        zoo.top_models(0)


def test_a_model_saved_without_its_record_is_scored_again_not_refit(tmp_path, solubility):
    smiles, y = solubility
    folder = tmp_path / "zoo"
    zoo = _zoo(folder, descriptor_sets={"pharm": "pharmacophore"},
               estimators={"additive": AdditiveRegressor()})
    score = zoo.run(smiles, y).score[0]
    (folder / "records" / "brics-pharm-additive.json").unlink()
    table = zoo.run(smiles, y)
    assert table.status[0] == "loaded" and np.isnan(table.fit_seconds[0])
    assert table.score[0] == pytest.approx(score)
    record = json.loads((folder / "records" / "brics-pharm-additive.json").read_text())
    assert record["r2"] == pytest.approx(score)


def test_a_zoo_folder_refuses_other_data_and_bad_settings(tmp_path, solubility):
    smiles, y = solubility
    zoo = _zoo(tmp_path / "zoo", descriptor_sets={"pharm": "pharmacophore"},
               estimators={"a": AdditiveRegressor()})
    zoo.run(smiles, y)
    with pytest.raises(ValueError, match="other data"):
        zoo.run(smiles, y + 1.0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no model zoo"):
        _zoo(tmp_path / "other").run(smiles, y)
    with pytest.raises(ValueError, match="bag_types"):
        _zoo(tmp_path / "z2", bag_types=("rings",)).run(smiles, y)
    with pytest.raises(ValueError, match="do not apply"):
        _zoo(tmp_path / "z3", descriptor_sets={"x": "shape"}).run(smiles, y)
    with pytest.raises(ValueError, match="estimator name"):
        _zoo(tmp_path / "z4", estimators={"a/b": AdditiveRegressor()}).run(smiles, y)
    with pytest.raises(ValueError, match="scoring 'accuracy' does not apply"):
        _zoo(tmp_path / "z5", scoring="accuracy").run(smiles, y)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_kid_from_key_atoms_and_two_local_workers(tmp_path):
    task = make_fragment_logp(load_chembl_sample(200))
    keys, chance = [], []
    for smi, flags in zip(task.smiles, task.key_instances):
        mol, _ = prepare_molecule(Chem.MolFromSmiles(smi))
        keys.append([f.atoms for f, key in zip(brics_fragments(mol), flags) if key])
        chance.append(flags.mean())  # a random top fragment is a key one this often
    settings = dict(descriptor_sets={"morgan": "morgan_parent"}, estimators={"additive": AdditiveRegressor()},
                    bag_types=("brics", "recap"))
    one_zoo = _zoo(tmp_path / "one", **settings)
    one = one_zoo.run(task.smiles, task.y, key_atoms=keys)
    two = _zoo(tmp_path / "two", n_jobs=2, **settings).run(task.smiles, task.y, key_atoms=keys)
    assert list(one.name) == list(two.name)
    np.testing.assert_allclose(one.score, two.score)
    np.testing.assert_allclose(one.kid, two.kid)
    brics = one.set_index("name").loc["brics-morgan-additive"]
    # The additive model finds the key fragment far more often than chance.
    assert brics.r2 > 0.5 and brics.kid > np.mean([chance[i] for i in one_zoo.validation_index_]) + 0.2


@pytest.mark.xdist_group("dask")
def test_dask_path_gives_the_local_table(tmp_path, solubility):
    distributed = pytest.importorskip("distributed")
    smiles, y = solubility
    settings = dict(descriptor_sets={"pharm": "pharmacophore"})
    local = _zoo(tmp_path / "local", **settings).run(smiles, y)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = _zoo(tmp_path / "dask", scheduler=client, **settings).run(smiles, y)
    assert list(remote.name) == list(local.name) and set(remote.status) == {"trained"}
    np.testing.assert_allclose(remote.score, local.score)
    assert (tmp_path / "dask" / "models" / remote.name[0] / "qsarmil.json").is_file()


def test_the_kernel_model_is_skipped_on_descriptors_that_are_not_counts(tmp_path, solubility):
    smiles, y = solubility
    table = _zoo(tmp_path / "zoo", descriptor_sets={"pharm": "pharmacophore"},
                 estimators={"kernel": BagKernelRegressor()}).run(smiles, y)
    assert list(table.status) == ["skipped"] and "count fingerprints" in table.error[0]
