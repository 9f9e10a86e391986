import numpy as np
import pandas as pd
import pytest

from milearn_core import MILClassifier
from qsarmil.alerts import make_alert_task, top_fragment_hits
from qsarmil.data import load_chembl_sample
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel


def test_alerts_label_molecules_and_give_their_atoms():
    smiles = ["O=[N+]([O-])c1ccc(CC2CO2)cc1",   # nitro + epoxide
              "C=CC(=O)Nc1ccccc1",               # acrylamide: Michael acceptor, kept whole by BRICS
              "O=C(C=Cc1ccccc1)N1CCCC1",         # cinnamamide: BRICS cuts its C=C
              "c1ccccc1CCO", "not a smiles"]
    task = make_alert_task(smiles)
    assert task.smiles == smiles[:4] and list(task.y) == [1, 1, 1, 0]
    assert set(task.alert_names[0]) == {"nitro_group", "Three-membered_heterocycle"}
    assert (0, 1, 2) in task.alert_atoms[0] and (8, 9, 10) in task.alert_atoms[0]
    assert task.alert_atoms[1] == [(0, 1, 2, 3)] and task.alert_atoms[3] == []
    assert list(task.reachable) == [True, True, False, False]
    own = make_alert_task(smiles[:4], alerts=None, smarts={"aromatic_nitro": "c[N+](=O)[O-]"})
    assert list(own.y) == [1, 0, 0, 0] and own.alert_atoms[0] == [(0, 1, 2, 3)]
    assert list(task.subset([3, 0]).y) == [0, 1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(alerts=["no_such_alert"]), "not in RDKit's BRENK catalog"),
    (dict(catalog="NOPE"), "catalog must be one of"),
    (dict(alerts=None), "no alert to look for"),
    (dict(alerts=None, smarts={"bad": "C(("}), "cannot parse the SMARTS"),
    (dict(bag_type="conformers"), "bag_type must be"),
])
def test_bad_alert_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_alert_task(["CCO"], **kwargs)


def test_top_fragment_hits():
    frames = [pd.DataFrame({"atoms": [(0, 1), (2, 3, 4)], "weight": [0.2, 0.8]}),
              pd.DataFrame({"atoms": [(0, 1), (2, 3, 4)], "weight": [0.9, 0.1]}),
              None]
    hits = top_fragment_hits(frames, [[(2, 3)], [(5,), (2, 3)], [(0,)]])
    assert list(hits) == [True, False, False]
    with pytest.raises(ValueError, match="2 instance tables but 1"):
        top_fragment_hits(frames[:2], [[(0,)]])


def test_a_classifier_points_at_the_alert_on_a_small_set(one_torch_thread):
    task = make_alert_task(load_chembl_sample())
    train, test = task.balanced_split(0.7, random_state=0)
    model = QSARModel(bagger=MoleculeBagger(morgan_size=2048, progress=False),
                      estimator=MILClassifier(hidden_layer_sizes=(32,), random_state=0))
    model.fit(train.smiles, train.y)
    table, instances = model.predict_with_weights(test.smiles)
    accuracy = np.mean(table.prediction.to_numpy().astype(int) == test.y)
    found = np.flatnonzero((test.y == 1) & test.reachable)
    hits = top_fragment_hits([instances[i] for i in found], [test.alert_atoms[i] for i in found])
    chance = np.mean([np.mean([any(set(m) <= set(a) for m in test.alert_atoms[i])
                               for a in instances[i].atoms]) for i in found])
    assert len(found) >= 20 and accuracy > 0.8
    assert hits.mean() > 0.8 and hits.mean() > chance + 0.4


def test_a_balanced_split_holds_every_positive_and_as_many_negatives():
    task = make_alert_task(load_chembl_sample())
    train, test = task.balanced_split(0.7, random_state=0)
    n_pos = int(task.y.sum())
    assert train.y.sum() + test.y.sum() == n_pos and len(train.y) + len(test.y) == 2 * n_pos
    assert len(train.y) == int(0.7 * 2 * n_pos) and not set(train.smiles) & set(test.smiles)
    again = task.balanced_split(0.7, random_state=0)
    assert again[0].smiles == train.smiles and task.balanced_split(0.7, 1)[0].smiles != train.smiles
