"""Explanations: atom values, real pictures, the HTML report, and a check on meaning."""

import io

import numpy as np
import pytest
from PIL import Image
from rdkit import Chem
from rdkit.Chem import AllChem
from rdkit.Chem.Draw import rdMolDraw2D

from milearn_core import BagKernelRegressor, MILRegressor, kid_accuracy
from qsarmil.data import load_chembl_sample, make_fragment_logp
from qsarmil.explain import (
    FLAT_RATIO,
    WEIGHT_COLOR,
    _blend,
    _prepare,
    atom_colors,
    atom_values,
    conformers_html,
    draw_grid,
    draw_molecule,
    is_flat,
    shared_vmax,
    view_conformers,
)
from qsarmil.featurize import MoleculeBagger
from qsarmil.fragments import brics_fragments
from qsarmil.model import QSARModel
from qsarmil.report import render_report, write_report

SMILES = "CCOC(=O)c1ccc(NC(=O)c2ccccc2)cc1"


def test_atom_values_spread_and_combine():
    atoms = [(0, 1), (2,), (1, 2, 3)]
    np.testing.assert_allclose(atom_values(4, atoms, [0.5, 0.2, 0.3]), [0.5, 0.8, 0.5, 0.3])
    np.testing.assert_allclose(atom_values(4, atoms, [0.5, 0.2, -0.3], combine="max"),
                               [0.5, 0.5, -0.3, -0.3])
    with pytest.raises(ValueError, match="3 instances but 2 values"):
        atom_values(4, atoms, [1, 2])


def test_equal_weights_look_equal():
    colors = atom_colors(np.array([0.4, 0.4, 0.1, 0.0]))
    assert colors[0] == colors[1] and colors[2] != colors[0] and 3 not in colors
    signed = atom_colors(np.array([1.0, -1.0]), signed=True)
    assert signed[0][0] > signed[0][2] and signed[1][2] > signed[1][0]  # red vs blue


def _pixel_coords(mol, size):
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    drawer.DrawMolecule(_prepare(mol))
    drawer.FinishDrawing()
    return [drawer.GetDrawCoords(i) for i in range(mol.GetNumAtoms())]


def _colour_strength(png: bytes, point) -> float:
    """How far from grey/white (max - min channel) the pixels around ``point`` are."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    x, y = int(round(point.x)), int(round(point.y))
    patch = image[y - 4 : y + 5, x - 4 : x + 5]
    return float((patch.max(axis=-1) - patch.min(axis=-1)).mean())


def test_png_shows_high_weight_fragment_stronger():
    mol = Chem.MolFromSmiles(SMILES)
    fragments = brics_fragments(mol)
    ring_a, ring_b = (f for f in fragments if "c1cc" in f.smiles)
    size = (500, 400)
    coords = _pixel_coords(mol, size)
    high_a = atom_values(mol.GetNumAtoms(), [ring_a.atoms, ring_b.atoms], [0.9, 0.1])
    high_b = atom_values(mol.GetNumAtoms(), [ring_a.atoms, ring_b.atoms], [0.1, 0.9])
    png_a = draw_molecule(mol, high_a, fmt="png", size=size, colorbar=False)
    png_b = draw_molecule(mol, high_b, fmt="png", size=size, colorbar=False)
    assert png_a[:4] == b"\x89PNG" and png_a != png_b
    atom_a, atom_b = coords[ring_a.atoms[0]], coords[ring_b.atoms[0]]
    assert _colour_strength(png_a, atom_a) > _colour_strength(png_b, atom_a) + 20
    assert _colour_strength(png_b, atom_b) > _colour_strength(png_a, atom_b) + 20


def test_flat_rule():
    assert is_flat([0.1] * 10) and is_flat([0.104] + [0.096] * 9 + [0.0] * 0)
    assert is_flat([1.0]) and is_flat([0.0, 0.0]) and is_flat([])
    assert not is_flat([0.7, 0.1, 0.1, 0.1])
    assert is_flat([0.27, 0.22, 0.25, 0.26])  # classifier weights 0.22-0.27: nothing stands out
    n = 4
    assert not is_flat([FLAT_RATIO / n, *[(1 - FLAT_RATIO / n) / 3] * 3])  # at the limit


def test_one_label_per_fragment():
    mol = _prepare(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))  # aspirin, 4 BRICS fragments
    fragments = [f.atoms for f in brics_fragments(mol)]
    values = atom_values(mol.GetNumAtoms(), fragments, [-0.01, 0.02, -2.22, 0.2])
    from qsarmil.explain import ColorScale, _highlights

    _highlights(mol, values, ColorScale(True, 2.22), True, fragments)
    notes = {a.GetIdx(): a.GetProp("atomNote") for a in mol.GetAtoms() if a.HasProp("atomNote")}
    assert sorted(notes.values()) == ["+0.02", "+0.20", "-0.01", "-2.22"]
    ring = next(f for f in fragments if len(f) == 6)
    assert [a for a, text in notes.items() if text == "-2.22"][0] in ring
    plain = _prepare(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
    _highlights(plain, values, ColorScale(True, 2.22), False, fragments)
    assert not any(a.HasProp("atomNote") for a in plain.GetAtoms())
    # without instances, atoms of equal value joined by bonds count as one fragment
    derived = _prepare(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
    _highlights(derived, values, ColorScale(True, 2.22), True)
    assert sum(a.HasProp("atomNote") for a in derived.GetAtoms()) == 4


def test_cut_bonds_between_equal_fragments_stay_plain():
    mol = Chem.MolFromSmiles("c1ccccc1Cc1ccccc1")
    fragments = brics_fragments(mol)
    atoms = [f.atoms for f in fragments]
    values = atom_values(mol.GetNumAtoms(), atoms, [1.0, 1.0, 1.0])
    by_value = draw_molecule(mol, values)
    by_fragment = draw_molecule(mol, values, instances=atoms)
    # The two ring-CH2 cut bonds lose their highlight; the atoms keep theirs.
    full = _hex(WEIGHT_COLOR)
    assert by_fragment.count(full) < by_value.count(full)


def _hex(color):
    return "#" + "".join(f"{int(c * 255):02X}" for c in color)  # RDKit truncates


def test_svg_carries_the_highlight_colours():
    mol = Chem.MolFromSmiles(SMILES)
    values = np.zeros(mol.GetNumAtoms())
    values[[5, 6, 7, 8, 18, 19]] = 1.0
    values[[12, 13]] = 0.5
    svg = draw_molecule(mol, values, legend="prediction 1.0", fmt="svg").upper()
    assert _hex(WEIGHT_COLOR) in svg and _hex(_blend(WEIGHT_COLOR, 0.5)) in svg
    # the legend and the colour bar's title, readable in the SVG's <title>
    assert "<TITLE>PREDICTION 1.0 | INSTANCE WEIGHT (SUMS TO 1 PER MOLECULE)</TITLE>" in svg
    # the older grid form (molecules + atom values) still works, on one shared scale
    grid = draw_grid([mol, Chem.MolFromSmiles("CCO")], [values, [0.0, 0.5, 0.0]],
                     legends=["a", "b"])
    assert grid.count("<svg") == 1 and _hex(WEIGHT_COLOR) in grid.upper()
    assert _hex(_blend(WEIGHT_COLOR, 0.5)) in grid.upper()


@pytest.fixture(scope="module")
def logp_model():
    """A model on the synthetic fragment-logP task, with known key fragments."""
    task = make_fragment_logp(load_chembl_sample(1200))
    n_train = 900
    # The additive (linear-kernel) model: exact contributions, fitted in seconds (the
    # instance_sum network this used took ~50 s; networks' contributions: test_neural.py).
    model = QSARModel(bagger=MoleculeBagger(morgan_radius=1, progress=False),
                      estimator=BagKernelRegressor(kernels=("linear",)))
    model.fit(task.smiles[:n_train], task.y[:n_train])
    return model, task, n_train


def test_explain_table_and_drawings(logp_model):
    model, task, _ = logp_model
    explanation = model.explain(SMILES)
    table = explanation.instances
    assert list(table.columns) == ["instance", "atoms", "smiles", "weight", "contribution"]
    assert table.weight.sum() == pytest.approx(1.0)
    assert explanation.baseline + table.contribution.sum() == pytest.approx(explanation.prediction,
                                                                            abs=1e-6)
    assert "<svg" in explanation.draw() and explanation.draw(fmt="png")[:4] == b"\x89PNG"
    signed = explanation.atom_values(signed=True, level="fragments")
    own = explanation.atom_values(signed=True)  # atom level: each atom its own share
    for atoms, contribution in zip(table.atoms, table.contribution):
        np.testing.assert_allclose(signed[list(atoms)], contribution)
        assert own[list(atoms)].sum() == pytest.approx(contribution, abs=1e-6)
    with pytest.raises(ValueError, match="conformer bags"):
        explanation.view3d()
    failed = model.explain([SMILES, "nonsense("])[1]
    assert failed.status == "failed" and "failed" in failed._repr_html_()


def test_default_view_legends_and_grid_of_explanations(logp_model):
    model, _, _ = logp_model
    a, b, failed = model.explain([SMILES, "c1ccccc1O", "nonsense("])
    a.target_name, a.units = "logP", "log units"
    assert a.draw() == a.draw(signed=True)  # the model gives contributions: signed by default
    assert "contribution to logP (log units)" in a.draw()
    a.baseline = 0.11
    total = a.instances.contribution.sum()
    assert a.caption("aspirin", short=True) == (
        f"aspirin: {a.prediction:.2f} = 0.11 + ({total:.2f})")
    assert "baseline 0.11" in a.legend()
    grid = draw_grid([a, b, failed], ids=["M1", "M2", "M3"], names=["ester", "phenol", "bad"])
    assert grid.count("<svg") == 1
    assert "M1 ester:" in grid and "M3 bad: failed" in grid
    assert "prediction = baseline + (sum of contributions)" in grid
    with pytest.raises(ValueError, match="2 ids for 3 explanations"):
        draw_grid([a, b, failed], ids=["x", "y"])
    vmax = shared_vmax([a, b, failed])
    assert vmax == pytest.approx(max(np.abs(e.atom_values(True)).max() for e in (a, b)))
    assert a.draw(vmax=2 * vmax) != a.draw(vmax=vmax)
    a.domain = {"max_similarity": 0.12, "unseen_fraction": 0.5, "in_domain": False,
                "prediction_in_range": False}
    assert "outside domain" in a.caption() and "outside the training range" in a.caption()


def test_darkest_fragment_is_the_key_fragment_as_often_as_kid_says(logp_model):
    model, task, n_train = logp_model
    smiles = task.smiles[n_train:]
    explanations = model.explain(smiles)
    kept = [i for i, e in enumerate(explanations) if e.status == "ok"]
    weights = [explanations[i].instances.weight.to_numpy() for i in kept]
    keys = [task.key_instances[n_train + i] for i in kept]
    kid = kid_accuracy(weights, keys)
    hits = []
    for i, key in zip(kept, keys):
        e = explanations[i]
        darkest_atom = int(np.argmax(e.atom_values()))
        drawn = [k for k, atoms in enumerate(e.instances.atoms) if darkest_atom in atoms]
        hits.append(key[drawn[0]])
    assert np.mean(hits) >= kid - 1e-9
    assert kid > 0.6  # the drawings mean something: far above picking a fragment at random


def test_html_report_holds_every_molecule(logp_model, tmp_path):
    model, task, _ = logp_model
    smiles = [SMILES, "c1ccccc1O", "not-a-molecule", "CCN(CC)CC"]
    path = tmp_path / "report.html"
    write_report(model, smiles, path, title="test report")
    page = path.read_text()
    for i, smi in enumerate(smiles):
        assert f"id='mol{i}'" in page and smi in page
    # a drawing per scored molecule, and the interval bar of each in the table
    assert page.count("<svg") == 3 + page.count("aria-label='interval ") == 6 and "failed" in page
    assert page.count("<script") == 1  # the table sorter only: no 3-D views for fragments
    assert render_report(model, smiles[:1]).count("<section") == 1


def test_conformer_explanation_and_3d_html(tmp_path):
    from qsarmil.data import load_dataset

    data = load_dataset("solubility").head(40)
    model = QSARModel(bagger=MoleculeBagger(bag_type="conformers", n_conformers=4,
                                            descriptors=("shape", "usr"), progress=False),
                      estimator=MILRegressor(pooling="attention", max_epochs=5, random_state=0))
    model.fit(data.smiles, data.target)
    e = model.explain("CCCCOc1ccccc1")
    assert "conformer_id" in e.instances and e.mol.GetNumConformers() == len(e.instances)
    view = e.view3d()
    assert view.startjs.count("addModel") == e.mol.GetNumConformers()
    assert view.startjs.count("addLabel") == 1 + e.mol.GetNumConformers()  # note + weights
    page = e.to_html(tmp_path / "view.html")
    assert (tmp_path / "view.html").read_text() == page
    assert "$3Dmol" in page and "cdn.jsdelivr" not in page.split("var $3Dmolpromise")[0][-200:]
    assert page.count("addModel") >= e.mol.GetNumConformers()
    # a conformer that stands out is marked key; flat weights mark none and say so
    four = Chem.AddHs(Chem.MolFromSmiles("CCCCOc1ccccc1"))
    assert len(AllChem.EmbedMultipleConfs(four, 4, randomSeed=0)) == 4
    html = conformers_html(four, [0.7, 0.1, 0.1, 0.1])
    assert "orangeCarbon" in html and "opacity" in html and "key conformer 0" in html
    assert "conformer 0: weight 0.700" in html
    flat = view_conformers(four, [0.26, 0.24, 0.25, 0.25]).startjs
    assert "orangeCarbon" not in flat and "no conformer stands out" in flat
    assert "weights per conformer" in e.caption(signed=False)  # 2-D: nothing per atom to show
    assert e.draws_neutral(signed=False)
