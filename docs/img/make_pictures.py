"""Redraw the issue-11 "after" pictures: ``python docs/img/make_pictures.py [model_folder]``.

Trains the default fragment model on the bundled solubility training split (about a minute)
unless a saved model folder is given, then draws aspirin, sodium acetate and imatinib alone,
erythromycin with fragment labels, a grid of 12 drugs on one shared colour scale, and
18-crown-6 flagged as outside the applicability domain.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qsarmil.data import load_dataset
from qsarmil.domain import ApplicabilityDomain
from qsarmil.explain import draw_grid
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel

OUT = Path(__file__).parent
DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "sodium acetate": "CC(=O)[O-].[Na+]",
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "ibuprofen": "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "naproxen": "COc1ccc2cc(C(C)C(=O)O)ccc2c1",
    "metformin": "CN(C)C(=N)NC(=N)N",
    "warfarin": "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O",
    "atenolol": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "chloramphenicol": "OCC(NC(=O)C(Cl)Cl)C(O)c1ccc([N+](=O)[O-])cc1",
}
CROWN = "C1COCCOCCOCCOCCOCCO1"
ERYTHROMYCIN = ("CC[C@@H]1[C@@]([C@@H]([C@H](C(=O)[C@@H](C[C@@]([C@@H]([C@H]([C@@H]([C@H]"
                "(C(=O)O1)C)O[C@H]2C[C@@]([C@H]([C@@H](O2)C)O)(C)OC)C)O[C@H]3[C@@H]([C@H]"
                "(C[C@H](O3)C)N(C)C)O)(C)O)C)C)O)(C)O")


def _model(folder: str | None) -> QSARModel:
    if folder:
        return QSARModel.load(folder)
    data = load_dataset("solubility")
    train = data[data.split == "train"]
    return QSARModel(bagger=MoleculeBagger(progress=False)).fit(train.smiles, train.target)


def _explain(model: QSARModel, smiles: list[str]) -> list:
    explanations = model.explain(smiles)
    for e in explanations:  # phase 2: the model passes these itself
        e.target_name, e.units = "logS", "log mol/L"
    return explanations


def main(folder: str | None = None) -> None:
    model = _model(folder)
    names = list(DRUGS)
    explanations = _explain(model, list(DRUGS.values()))
    for name, e in zip(names[:3], explanations[:3]):
        key = name.replace(" ", "_")
        (OUT / f"after_{key}.png").write_bytes(e.draw(fmt="png", name=name, atom_labels=True))
        (OUT / f"after_{key}_weights.png").write_bytes(
            e.draw(signed=False, fmt="png", name=name))
    (ery,) = _explain(model, [ERYTHROMYCIN])
    (OUT / "after_erythromycin_labels.png").write_bytes(
        ery.draw(fmt="png", name="erythromycin", atom_labels=True))
    data = load_dataset("solubility")
    train = data[data.split == "train"]
    domain = ApplicabilityDomain().fit(train.smiles, train.target)
    (crown,) = _explain(model, [CROWN])
    crown.domain = domain.score([CROWN], [crown.prediction]).iloc[0].to_dict()
    (OUT / "after_18-crown-6_domain.png").write_bytes(
        crown.draw(fmt="png", name="18-crown-6", atom_labels=True))
    (OUT / "after_grid_12_drugs.png").write_bytes(draw_grid(explanations, names=names, fmt="png"))
    (OUT / "after_grid_12_drugs_labels.png").write_bytes(
        draw_grid(explanations, names=names, fmt="png", atom_labels=True))


if __name__ == "__main__":
    main(*sys.argv[1:2])
