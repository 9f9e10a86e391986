"""One colour scale per output file: the training atoms' 99th percentile |contribution|, kept
with the model (checked on load), used by every picture of ``qsarmil predict --explain``."""

import json
import shutil
import zipfile

import numpy as np
import pytest
from cli_support import run, write_csv

from qsarmil.batch_predict import file_scale
from qsarmil.data import load_dataset
from qsarmil.io import PICTURE_SIZE
from qsarmil.model import QSARModel

GLUCOSE, DICLOFENAC = "OCC1OC(O)C(O)C(O)C1O", "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    data = load_dataset("solubility").iloc[:60]
    model = QSARModel(uncertainty=None, target_name="logS", units="log mol/L")
    model.fit(list(data.smiles), data.target.to_numpy())
    folder = tmp_path_factory.mktemp("scale") / "model"
    model.save(folder)
    return model, folder, list(data.smiles)


def test_the_scale_is_the_training_atoms_99th_percentile(saved):
    model, folder, smiles = saved
    explained = [e for e in model.explain(smiles) if e.status == "ok"]
    values = np.abs(np.concatenate([e.atom_contributions for e in explained]))
    assert len(explained) == len(smiles) <= 100  # every training molecule is in the sample
    assert model.contribution_scale_ == pytest.approx(np.quantile(values, 0.99), rel=1e-9)
    assert 0 < model.contribution_scale_ < values.max()  # an outlier does not set it
    assert QSARModel.load(folder).contribution_scale_ == model.contribution_scale_


def test_xlsx_pictures_share_the_stored_scale(saved, tmp_path):
    model, folder, _ = saved
    write_csv(tmp_path / "q.csv", [["smiles"], [GLUCOSE], ["bad("], [DICLOFENAC]])
    assert run("predict", folder, tmp_path / "q.csv", "--explain", "-q",
               "-o", tmp_path / "out.xlsx") == 0
    with zipfile.ZipFile(tmp_path / "out.xlsx") as zf:
        pictures = [zf.read(n) for n in sorted(zf.namelist()) if n.startswith("xl/media/")]
    note = "one scale per file: training atoms' 99th percentile"
    expected = [e.draw(fmt="png", size=PICTURE_SIZE, vmax=model.contribution_scale_, note=note)
                for e in model.explain([GLUCOSE, DICLOFENAC])]
    assert sorted(pictures) == sorted(expected)
    own = [e.draw(fmt="png", size=PICTURE_SIZE) for e in model.explain([GLUCOSE, DICLOFENAC])]
    assert not set(own) & set(pictures)  # each on its own scale they would differ


def _as_version_7(folder, target):
    shutil.copytree(folder, target)
    config = json.loads((target / "qsarmil.json").read_text())
    config["version"] = 7
    del config["contribution_scale"]
    (target / "qsarmil.json").write_text(json.dumps(config))
    return target


def test_older_folders_fall_back_to_the_first_rows(saved, tmp_path):
    model, folder, _ = saved
    old = QSARModel.load(_as_version_7(folder, tmp_path / "old"))
    assert old.contribution_scale_ is None
    explained = old.explain([GLUCOSE, DICLOFENAC])
    scale = file_scale(old, explained)
    assert scale.vmax == pytest.approx(max(np.abs(e.atom_contributions).max() for e in explained))
    assert "first 2 rows" in scale.note
    assert file_scale(model, explained).vmax == model.contribution_scale_
