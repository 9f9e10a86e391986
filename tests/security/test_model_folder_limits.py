"""Issue 19, hostile model folders: declared sizes that would amplify, and saves that delete.

- A domain.json of a million empty 16384-bit fingerprints (3 MB) took 2.7 GB to load and made
  scoring 20 times slower: the domain may hold no more molecules than the model was trained on,
  and in memory it costs what the file holds.
- A bagger of 2**26-bit dense fingerprints allocated GBs before the estimator refused its
  width: the widths are compared at load, from settings alone.
- ``save(overwrite=True)`` deleted a legacy ``estimator.skops``: a save now deletes nothing.

Peak memory is measured in a child process (``ru_maxrss`` covers RDKit's C++ allocations) or
with ``tracemalloc`` (NumPy's allocations are traced).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from cli_support import run, write_csv
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from milearn_core import ModelFileError
from qsarmil.data import load_dataset
from qsarmil.domain import ApplicabilityDomain
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.model_folder import bagger_n_features

N_TRAIN = 40  # molecules of the small_model_dir fixture
MB = 1024**2


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    return list(load_dataset("solubility").smiles[40:90])


def _copy(folder: str | Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


def _edit_json(file: Path, change) -> None:
    state = json.loads(file.read_text())
    change(state)
    file.write_text(json.dumps(state, separators=(",", ":")))


def _as_version_3(folder: Path) -> None:
    """Make ``folder`` look saved before n_training_molecules was recorded."""
    def change(config):
        config["version"] = 3
        del config["n_training_molecules"], config["custom_widths"], config["reliability_file"]
        del config["reference_prediction"], config["contribution_scale"]
    _edit_json(folder / "qsarmil.json", change)
    (folder / "reliability.json").unlink()


def _without_reliability(folder: Path) -> None:
    """Make ``folder`` look saved before reliability.json (version 5)."""
    def change(config):
        config["version"] = 5
        del config["reliability_file"], config["reference_prediction"], config["contribution_scale"]
    _edit_json(folder / "qsarmil.json", change)
    (folder / "reliability.json").unlink()


def _fill_domain(folder: Path, n_molecules: int, n_bits: int = 16384) -> None:
    """The attack: ``n_molecules`` empty fingerprints of ``n_bits`` bits (valid, and small)."""
    def change(state):
        state["params"]["n_bits"] = n_bits
        state["fingerprints"] = [[] for _ in range(n_molecules)]
    _edit_json(folder / "domain.json", change)


def _assert_one_line_error(capsys, status: int) -> str:
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("qsarmil: error: "), err
    return err


_CHILD = """
import json, resource, sys, time
from milearn_core import ModelFileError
from qsarmil.model import QSARModel
good, evil, n_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
QSARModel.load(good).predict_table(["CCO"])  # imports and first use happen before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"error": None, "seconds": None}
try:
    model = QSARModel.load(evil)
    start = time.perf_counter()
    model.predict_table(["c1ccccc1O", "CCN", "CC(=O)O", "CCCCCl"] * (n_rows // 4))
    out["seconds"] = time.perf_counter() - start
except ModelFileError as exc:
    out["error"] = str(exc)
out["grown_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(out))
"""


def _load_in_child(good: str, evil: Path, n_rows: int = 0) -> dict:
    """Load ``evil`` (and score ``n_rows`` molecules) in a fresh interpreter: its error, the
    peak memory it grew by (MB) and the seconds scoring took."""
    done = subprocess.run([sys.executable, "-c", _CHILD, good, str(evil), str(n_rows)],
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- A1: the applicability domain ---------------------------------------------------------------
@pytest.mark.parametrize("version", [4, 3])
def test_a_domain_larger_than_the_training_set_is_refused(small_model_dir, tmp_path, version):
    """Version 4 records the training size; version 3 folders of a bag-kernel model are held
    to the training bags the estimator keeps."""
    folder = _copy(small_model_dir, tmp_path / "evil")
    if version == 3:
        _as_version_3(folder)
    _fill_domain(folder, N_TRAIN + 1)
    with pytest.raises(ModelFileError, match=rf"domain\.json: .*fingerprints of {N_TRAIN + 1} "
                                             rf"molecules, more than the {N_TRAIN} the model"):
        QSARModel.load(folder)


def test_qsarmil_predict_refuses_the_domain_in_one_line(small_model_dir, tmp_path, capsys):
    folder = _copy(small_model_dir, tmp_path / "evil")
    _fill_domain(folder, N_TRAIN + 1)
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    err = _assert_one_line_error(capsys, run("predict", folder, tmp_path / "in.csv",
                                             "-o", tmp_path / "out.csv"))
    assert "domain.json" in err and f"more than the {N_TRAIN}" in err
    assert not (tmp_path / "out.csv").exists()


def test_a_million_empty_fingerprints_are_refused_without_amplification(small_model_dir,
                                                                        tmp_path):
    folder = _copy(small_model_dir, tmp_path / "evil")
    _fill_domain(folder, 1_000_000)
    assert (folder / "domain.json").stat().st_size < 4 * MB
    out = _load_in_child(small_model_dir, folder)
    assert out["grown_mb"] < 300  # 2300 MB before (a 2 KB bit vector per empty fingerprint)
    assert "fingerprints of 1000000 molecules, more than the 40" in (out["error"] or "")


def test_a_forged_training_size_costs_only_what_the_file_holds(small_model_dir, tmp_path):
    """With the training size forged as well, the domain loads, in memory proportional to what
    the file holds (not to n_bits), and scores quickly."""
    folder = _copy(small_model_dir, tmp_path / "evil")
    _fill_domain(folder, 1_000_000)
    _edit_json(folder / "qsarmil.json", lambda c: c.update(n_training_molecules=1_000_000))
    _without_reliability(folder)  # (its 40 rows against a million: refused, test_uncertainty.py)
    out = _load_in_child(small_model_dir, folder, n_rows=40)
    assert out["error"] is None
    assert out["grown_mb"] < 300  # 2300 MB before
    assert out["seconds"] < 8  # 11 s before (0.27 s per molecule against 1M bit vectors)


def test_empty_fingerprints_cost_no_bits():
    state = ApplicabilityDomain().fit(["CCO", "CCN"]).to_dict()
    state["params"]["n_bits"] = 16384
    state["fingerprints"] = [[] for _ in range(10_000)] + [[3, 16383]]
    domain = ApplicabilityDomain.from_dict(state)
    held = domain.fingerprints_
    assert held.shape == (10_001, 16384) and held.nnz == 2
    assert held.data.nbytes + held.indices.nbytes + held.indptr.nbytes < 100_000
    assert domain.to_dict() == state


def test_the_compact_domain_scores_exactly_as_rdkit(smiles):
    train = list(load_dataset("solubility").smiles[:200])
    domain = ApplicabilityDomain().fit(train)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    reference = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in train]
    expected = [max(DataStructs.BulkTanimotoSimilarity(generator.GetFingerprint(
        Chem.MolFromSmiles(s)), reference)) for s in smiles]
    np.testing.assert_array_equal(domain.score(smiles).max_similarity.to_numpy(), expected)


@pytest.mark.parametrize("value", ["40", True, 0, -1, 2.5, None])
def test_the_recorded_training_size_is_checked(small_model_dir, tmp_path, value):
    folder = _copy(small_model_dir, tmp_path / "evil")
    _edit_json(folder / "qsarmil.json", lambda c: c.update(n_training_molecules=value))
    with pytest.raises(ModelFileError, match=r"qsarmil\.json: n_training_molecules"):
        QSARModel.load(folder)


def test_the_training_size_is_recorded_and_survives_old_folders(small_model_dir, tmp_path):
    assert QSARModel.load(small_model_dir).n_training_molecules_ == N_TRAIN
    folder = _copy(small_model_dir, tmp_path / "old")
    _as_version_3(folder)
    old = QSARModel.load(folder)
    assert old.n_training_molecules_ == N_TRAIN
    old.save(folder, overwrite=True)
    assert json.loads((folder / "qsarmil.json").read_text())["n_training_molecules"] == N_TRAIN


def test_save_refuses_a_domain_larger_than_the_training_set(small_model_dir, tmp_path):
    model = QSARModel.load(small_model_dir)
    model.domain_ = ApplicabilityDomain().fit(load_dataset("solubility").smiles[:N_TRAIN + 5])
    with pytest.raises(ValueError, match=f"domain_ holds {N_TRAIN + 5} molecules, more than "
                                         f"the {N_TRAIN}"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- A2: the bagger's width ---------------------------------------------------------------------
@pytest.mark.parametrize("bagger, made", [
    ({"morgan_size": 2**26, "sparse": False}, 2 * 2**26),
    ({"morgan_size": 1024}, 2048),
    ({"descriptors": ["morgan_atoms"]}, 32768),
])
def test_a_bagger_wider_than_the_estimator_is_refused_before_it_builds(small_model_dir, tmp_path,
                                                                       bagger, made):
    folder = _copy(small_model_dir, tmp_path / "evil")
    _edit_json(folder / "qsarmil.json", lambda c: c["bagger"].update(bagger))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=rf"qsarmil\.json: the bagger settings make "
                                                 rf"{made} features per instance, but "
                                                 rf"estimator\.safetensors takes 65536"):
            QSARModel.load(folder).predict(["CCO"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * MB  # 8.9 GB at predict before (dense 2**27-wide rows)


def test_qsarmil_predict_refuses_the_wide_bagger_in_one_line(small_model_dir, tmp_path, capsys):
    folder = _copy(small_model_dir, tmp_path / "evil")
    _edit_json(folder / "qsarmil.json",
               lambda c: c["bagger"].update(morgan_size=2**26, sparse=False))
    write_csv(tmp_path / "in.csv", [["smiles"], ["CCO"]])
    err = _assert_one_line_error(capsys, run("predict", folder, tmp_path / "in.csv",
                                             "-o", tmp_path / "out.csv"))
    assert "qsarmil.json" in err and "134217728" in err and "65536" in err


@pytest.mark.parametrize("params", [
    {},
    {"descriptors": ("morgan_parent", "rdkit2d", "pharmacophore"), "morgan_size": 64},
    {"descriptors": "morgan", "morgan_radius": 3, "morgan_size": 128, "sparse": False},
    {"bag_type": "conformers", "descriptors": ("shape", "usr", "whim"), "n_conformers": 1},
])
def test_bagger_n_features_is_what_the_bagger_makes(params):
    bagger = MoleculeBagger(**params)
    assert bagger_n_features(bagger) == bagger.transform(["CCO"])[0].shape[1]


# -- B: a save deletes nothing ------------------------------------------------------------------
def test_overwrite_keeps_a_legacy_estimator_and_other_files(small_model_dir, tmp_path, smiles):
    folder = _copy(small_model_dir, tmp_path / "m")
    (folder / "estimator.skops").write_bytes(b"PK\x03\x04 the user's qsarmil 0.1 model")
    (folder / "notes.txt").write_text("mine")
    model = QSARModel.load(small_model_dir)
    model.save(folder, overwrite=True)
    assert (folder / "estimator.skops").read_bytes() == b"PK\x03\x04 the user's qsarmil 0.1 model"
    assert (folder / "notes.txt").read_text() == "mine"
    np.testing.assert_array_equal(QSARModel.load(folder).predict(smiles), model.predict(smiles))


def test_qsarmil_train_force_keeps_a_legacy_estimator(small_model_dir, tmp_path):
    folder = _copy(small_model_dir, tmp_path / "m")
    (folder / "estimator.skops").write_bytes(b"old model")
    data = load_dataset("solubility").iloc[:30]
    write_csv(tmp_path / "train.csv", [["smiles", "target"], *zip(data.smiles, data.target)])
    assert run("train", tmp_path / "train.csv", "--cv", "0", "-q", "--force", "-o", folder) == 0
    assert (folder / "estimator.skops").read_bytes() == b"old model"
    assert QSARModel.load(folder).n_training_molecules_ == 30


def test_overwrite_without_a_domain_keeps_the_old_domain_file(small_model_dir, tmp_path):
    folder = _copy(small_model_dir, tmp_path / "m")
    before = (folder / "domain.json").read_bytes()
    model = QSARModel.load(small_model_dir)
    model.domain_ = None
    model.save(folder, overwrite=True)
    assert (folder / "domain.json").read_bytes() == before
    assert json.loads((folder / "qsarmil.json").read_text())["domain_file"] is None
    assert QSARModel.load(folder).domain_ is None


@pytest.mark.parametrize("name", ["estimator.safetensors", "domain.json", "qsarmil.json"])
def test_overwrite_refuses_a_link_in_place_of_its_files(small_model_dir, tmp_path, name):
    folder = _copy(small_model_dir, tmp_path / "m")
    elsewhere = tmp_path / f"users-{name}"
    (folder / name).rename(elsewhere)
    (folder / name).symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        QSARModel.load(small_model_dir).save(folder, overwrite=True)
    assert (folder / name).is_symlink() and elsewhere.read_bytes() == (
        Path(small_model_dir) / name).read_bytes()


@pytest.mark.parametrize("name", ["estimator.safetensors", "domain.json"])
def test_overwrite_refuses_a_folder_in_place_of_its_files(small_model_dir, tmp_path, name):
    folder = _copy(small_model_dir, tmp_path / "m")
    estimator = (folder / "estimator.safetensors").read_bytes()
    (folder / name).unlink()
    (folder / name).mkdir()
    (folder / name / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a regular file"):
        QSARModel.load(small_model_dir).save(folder, overwrite=True)
    assert (folder / name / "keep.txt").read_text() == "mine"
    if name != "estimator.safetensors":  # nothing was replaced before the refusal
        assert (folder / "estimator.safetensors").read_bytes() == estimator
