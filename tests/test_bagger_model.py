"""MoleculeBagger, conformers and QSARModel end to end on real molecules."""

import time

import numpy as np
import pytest
import scipy.sparse as sp
from rdkit import Chem
from test_chem_inputs import TRICKY

from milearn_core import BagKernelRegressor, MILRegressor, kid_accuracy
from qsarmil.conformers import ConformerError, ConformerSettings, generate_conformers
from qsarmil.data import list_datasets, load_chembl_sample, load_dataset, make_fragment_logp
from qsarmil.featurize import BaggingError, MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.standardize import prepare_molecule

INPUTS = [*TRICKY.values(), "not a smiles", "C1CC"]
HALICHONDRIN_LIKE = load_chembl_sample(9)[8]  # 52 heavy atoms, 10 rings: slow to embed


@pytest.mark.parametrize("bag_type", ["brics", "recap"])
def test_fragment_bags_with_provenance_and_failures(bag_type):
    bagger = MoleculeBagger(bag_type=bag_type, descriptors=("morgan", "pharmacophore"),
                            morgan_size=512)
    bags = bagger.fit_transform(INPUTS)
    assert bagger.valid_index_.tolist() == list(range(len(TRICKY)))
    assert [(f.index, f.input) for f in bagger.failures_] == [(6, "not a smiles"), (7, "C1CC")]
    for bag, prov in zip(bags, bagger.provenance_):
        mol = prepare_molecule(Chem.MolFromSmiles(INPUTS[prov.index]))[0]  # salts: the parent
        assert Chem.MolToSmiles(prov.mol) == Chem.MolToSmiles(mol)
        assert bag.shape == (len(prov.atoms), 512 + 90)
        assert sorted(a for atoms in prov.atoms for a in atoms) == list(range(mol.GetNumAtoms()))
    assert [p.stripped for p in bagger.provenance_] == ["Na+" if s == TRICKY["metal_salt"] else ""
                                                        for s in TRICKY.values()]


def test_strict_mode_raises_on_first_failure():
    with pytest.raises(BaggingError, match=r"row 6 \('not a smiles'\)"):
        MoleculeBagger(strict=True).fit_transform(INPUTS)


def test_parallel_bagging_matches_serial():
    smiles = load_chembl_sample(30)
    serial = MoleculeBagger(morgan_size=256).fit_transform(smiles)
    parallel = MoleculeBagger(morgan_size=256, n_jobs=2).fit_transform(smiles)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_bad_descriptor_choice():
    with pytest.raises(ValueError, match="do not apply to brics bags"):
        MoleculeBagger(descriptors="whim").fit(["CCO"])


def test_conformer_bags_on_tricky_molecules():
    bagger = MoleculeBagger(bag_type="conformers", n_conformers=3, descriptors=("shape", "usr"),
                            time_limit=20)
    bags = bagger.fit_transform(INPUTS)
    failed = {f.index for f in bagger.failures_}
    assert {6, 7} <= failed
    for bag, prov in zip(bags, bagger.provenance_):
        assert bag.shape == (len(prov.conformer_ids), 11 + 12)
        assert prov.mol.GetNumConformers() == len(prov.conformer_ids)
        assert np.isfinite(bag).all()


def test_conformers_are_seeded_and_energy_window_prunes():
    mol = Chem.MolFromSmiles("CCCCOc1ccccc1C(=O)NCC")
    a, energies = generate_conformers(mol, ConformerSettings(n_conformers=6, random_seed=7))
    b, _ = generate_conformers(mol, ConformerSettings(n_conformers=6, random_seed=7))
    np.testing.assert_allclose(a.GetConformer(0).GetPositions(), b.GetConformer(0).GetPositions())
    assert len(energies) == a.GetNumConformers() >= 2
    narrow, kept = generate_conformers(
        mol, ConformerSettings(n_conformers=6, random_seed=7, energy_window=0.0))
    assert narrow.GetNumConformers() == len(kept) == 1


def test_time_limit_turns_a_hard_macrocycle_into_a_failure():
    start = time.perf_counter()
    with pytest.raises(ConformerError, match="time limit"):
        generate_conformers(Chem.MolFromSmiles(HALICHONDRIN_LIKE),
                            ConformerSettings(n_conformers=10, time_limit=2))
    assert time.perf_counter() - start < 4
    bagger = MoleculeBagger(bag_type="conformers", time_limit=2, descriptors="shape")
    assert bagger.fit_transform([HALICHONDRIN_LIKE, "CCO"]) and bagger.failures_[0].index == 0


def test_bundled_datasets():
    names = list_datasets()
    assert "solubility" in names and "freesolv" in names
    assert sum(n.startswith("CHEMBL") for n in names) == 30
    sol = load_dataset("solubility")
    assert list(sol.columns) == ["smiles", "target", "split"]
    assert set(sol.split) == {"train", "test"} and len(sol) > 1000
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("tox21")


@pytest.fixture(scope="module")
def solubility_model():
    data = load_dataset("solubility")
    train = data[data.split == "train"].head(300)
    model = QSARModel(bagger=MoleculeBagger(morgan_size=512),
                      estimator=MILRegressor(pooling="instance_sum", max_epochs=30, random_state=0))
    return model.fit(train.smiles, train.target), data[data.split == "test"].head(60)


def test_qsar_model_predicts_every_row(solubility_model):
    model, test = solubility_model
    smiles = [*test.smiles, "garbage(", "CCO"]
    table = model.predict_table(smiles)
    assert len(table) == len(smiles)
    assert table.status.tolist().count("failed") == 1 and "cannot parse" in table.error.iloc[-2]
    assert np.isnan(table.prediction.iloc[-2]) and np.isfinite(table.prediction.iloc[-1])
    assert np.corrcoef(table.prediction.iloc[:-2].astype(float), test.target)[0, 1] > 0.5


def test_predict_with_weights_tables(solubility_model):
    model, test = solubility_model
    table, instances = model.predict_with_weights(["CCOC(=O)c1ccccc1", "nope"])
    frame = instances[0]
    assert instances[1] is None
    assert list(frame.columns) == ["instance", "atoms", "smiles", "weight", "contribution"]
    assert frame.weight.sum() == pytest.approx(1)
    assert frame.contribution.sum() == pytest.approx(table.prediction.iloc[0], abs=1e-4)


def test_qsar_model_save_load_scores_new_smiles(solubility_model, tmp_path):
    model, test = solubility_model
    model.save(tmp_path / "sol_model")
    loaded = QSARModel.load(tmp_path / "sol_model")
    np.testing.assert_array_equal(loaded.predict(test.smiles), model.predict(test.smiles))
    assert loaded.bagger_.get_params() == model.bagger_.get_params()
    with pytest.raises(ValueError, match="not a saved QSARModel"):
        QSARModel.load(tmp_path)


def test_conformer_model_scales_descriptors_and_round_trips(tmp_path):
    data = load_dataset("solubility").head(60)
    model = QSARModel(bagger=MoleculeBagger(bag_type="conformers", n_conformers=3, optimize=None,
                                            descriptors=("shape", "rdf"), progress=False),
                      estimator=MILRegressor(pooling="attention", max_epochs=10, random_state=0))
    model.fit(data.smiles, data.target)
    assert model.scaler_ is not None  # 3-D descriptors span orders of magnitude
    scaled = np.vstack(model._scale(model.bagger_.transform(data.smiles[:20])))
    assert abs(scaled.mean()) < 1 and scaled.std() < 5
    model.save(tmp_path / "conf_model")
    loaded = QSARModel.load(tmp_path / "conf_model")
    np.testing.assert_allclose(loaded.predict(data.smiles[:10]), model.predict(data.smiles[:10]),
                               rtol=1e-5)


def test_morgan_counts_are_not_scaled(solubility_model):
    model, _ = solubility_model
    assert model.scaler_ is None


def test_count_fingerprint_bags_are_sparse_others_dense():
    smiles = load_chembl_sample(5)
    sparse = MoleculeBagger(progress=False).fit_transform(smiles)
    assert all(sp.issparse(b) and b.shape[1] == 32768 for b in sparse)
    mixed = MoleculeBagger(descriptors=("morgan", "pharmacophore"), morgan_size=512,
                           progress=False).fit_transform(smiles)
    assert all(isinstance(b, np.ndarray) for b in mixed)
    assert MoleculeBagger(sparse=False, progress=False).fit_transform(smiles)[0].shape[1] == 2048
    dense = MoleculeBagger(sparse=False, morgan_size=32768, progress=False).fit_transform(smiles)
    for a, b in zip(sparse, dense):
        np.testing.assert_array_equal(a.toarray(), b)
    with pytest.raises(ValueError, match="sparse must be"):
        MoleculeBagger(sparse="yes").fit_transform(smiles)


def test_default_fragment_model_finds_key_fragments_better_in_parent_context():
    """Fragment-logP on 1000 training molecules: the default beats cut-out fragment features."""
    task = make_fragment_logp(load_chembl_sample())
    kid = {}
    for kind in ("morgan_parent", "morgan"):
        model = QSARModel(bagger=MoleculeBagger(descriptors=kind, progress=False))
        model.fit(task.smiles[:1000], task.y[:1000])
        _, instances = model.predict_with_weights(task.smiles[1000:])
        kid[kind] = kid_accuracy([f.weight.to_numpy() for f in instances], task.key_instances[1000:])
        # An additive target: the default kernel model picks its linear (additive) kernel.
        assert isinstance(model.estimator_, BagKernelRegressor) and model.estimator_.kernel_ == "linear"
    assert kid["morgan_parent"] > kid["morgan"] and kid["morgan_parent"] > 0.85


def test_default_fragment_model_explains_with_a_baseline_and_round_trips(tmp_path):
    data = load_dataset("solubility")
    train, test = data[data.split == "train"].head(300), data[data.split == "test"].head(40)
    model = QSARModel().fit(train.smiles, train.target)
    assert isinstance(model.estimator_, BagKernelRegressor) and model.scaler_ is None
    assert model.bagger_.descriptors == ("morgan_atoms", "atompair_parent")
    assert np.corrcoef(model.predict(test.smiles).astype(float), test.target)[0, 1] > 0.7
    e = model.explain("CCOC(=O)c1ccc(NC(=O)c2ccccc2)cc1")
    # Measured from the mean training prediction, not the kernel's intercept.
    assert e.baseline == pytest.approx(float(np.mean(model.predict(train.smiles))), abs=1e-6)
    assert e.baseline + e.instances.contribution.sum() == pytest.approx(e.prediction, abs=1e-6)
    assert "baseline" in e.legend() and "<svg" in e.draw(signed=True)
    model.save(tmp_path / "default_model")
    loaded = QSARModel.load(tmp_path / "default_model")
    np.testing.assert_array_equal(loaded.predict(test.smiles), model.predict(test.smiles))
    assert loaded.explain(e.smiles).baseline == e.baseline


def test_moleculeace_sets_ship_their_activity_cliff_column():
    data = load_dataset("CHEMBL2835_Ki")
    assert list(data.columns) == ["smiles", "target", "split", "cliff_mol"]
    assert set(data.cliff_mol.unique()) == {0, 1}
    assert set(data.split.unique()) == {"train", "test"}
    cliffs = data[(data.split == "test") & (data.cliff_mol == 1)]
    assert 0 < len(cliffs) < (data.split == "test").sum()
