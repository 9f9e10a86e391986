"""HTML report: IDs and names, numeric sortable predictions, failed rows, baseline stated once,
the applicability-domain flag, and the domain columns of predict_table behind it."""

import re

import numpy as np
import pytest

from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.report import render_report, write_report

ALKANOLS = ["CCO", "CCCO", "CCCCO", "CC(C)O", "CCCCCO", "CC(C)CO", "OCCO", "CCC(C)O"]
QUINOLINE = "c1ccc2ncccc2c1"  # rings and aromatic nitrogen: nothing like the training set


@pytest.fixture(scope="module")
def alkanol_model():
    model = QSARModel(bagger=MoleculeBagger(morgan_size=256, progress=False),
                      target_name="logS", units="log mol/L")
    return model.fit(ALKANOLS, [1.1, 0.6, -0.1, 0.4, -0.6, 0.1, 1.5, 0.0])


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body)


def test_domain_flag_fires_for_unseen_fragments(alkanol_model):
    table = alkanol_model.predict_table([QUINOLINE, "CCCO", "nope("])
    start = list(table.columns).index("in_domain")
    assert list(table.columns)[start:start + 7] == [
        "in_domain", "max_similarity", "unseen_fraction", "prediction_in_range", "domain_note",
        "in_training_set", "training_value"]
    quinoline, seen, failed = table.itertuples(index=False)
    assert quinoline.in_domain is False and quinoline.unseen_fraction == 1.0
    assert "100% of its atom environments never seen in training" in quinoline.domain_note
    assert seen.in_training_set is True and seen.domain_note == ""
    assert seen.in_domain is True and seen.max_similarity == 1.0
    assert seen.prediction_in_range is True
    assert failed.in_domain is None and np.isnan(failed.max_similarity)
    assert list(alkanol_model.predict_table([]).columns) == list(table.columns)
    e = alkanol_model.explain(QUINOLINE)
    assert e.domain["in_domain"] is False and "outside domain" in e.caption()
    assert (e.target_name, e.units) == ("logS", "log mol/L")


def test_chunked_scoring_gives_the_same_domain_columns(alkanol_model):
    smiles = [QUINOLINE, "CCCO", "nope(", "CCCCCCO", "c1ccccc1"]
    whole = alkanol_model.predict_table(smiles)
    chunked = alkanol_model.predict_table(iter(smiles), chunk_size=2)
    assert chunked.equals(whole)


def test_domain_survives_save_and_load(alkanol_model, tmp_path):
    smiles = [QUINOLINE, "CCCO", "nope(", "OCCCCO"]
    alkanol_model.save(tmp_path / "m")
    assert (tmp_path / "m" / "domain.json").is_file()
    loaded = QSARModel.load(tmp_path / "m")
    assert loaded.predict_table(smiles).equals(alkanol_model.predict_table(smiles))
    assert (loaded.target_name, loaded.units) == ("logS", "log mol/L")


def test_report_rows_ids_numeric_predictions_and_failures(alkanol_model):
    smiles = ["CCCO", "nope(", QUINOLINE]
    page = render_report(alkanol_model, smiles, ids=["X-1", "X-2", "X-3"],
                         names=["propanol", "broken", "quinoline"])
    rows = _rows(page)
    assert len(rows) == 3
    predictions = alkanol_model.predict(smiles)
    for row, ident, name in zip(rows, ["X-1", "X-2", "X-3"], ["propanol", "broken", "quinoline"]):
        assert f"<td>{ident}</td><td>{name}</td>" in row
    value = float(re.search(r"data-sort='([^']*)'", rows[0]).group(1))
    assert value == predictions[0]  # full precision, sortable as a number
    assert "failed" in rows[1] and "RDKit cannot parse this SMILES" in rows[1]
    assert "data-sort=''" in rows[1]  # no prediction: sorts last
    assert "outside:" in rows[2] and "class='outside'" in rows[2]
    assert ">in<" in rows[0]
    assert "<th>domain</th>" in page and "<script" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched


def test_report_states_baseline_and_units_once(alkanol_model):
    page = render_report(alkanol_model, ["CCCO", "CCCCO", "OCCO"])
    baseline = alkanol_model.reference_prediction_  # the mean training prediction
    assert page.count("baseline") == 1
    assert f"baseline {baseline:.3f} (mean training prediction)" in page
    assert page.count("log mol/L") >= 1 and "Predicted: logS (log mol/L)." in page
    assert page.count("<section") == 3 and page.count("<svg") == 3
    assert page.count("<img") >= 3  # top fragments as pictures


def test_report_from_explanations_shares_one_scale(alkanol_model, tmp_path):
    explanations = alkanol_model.explain(["CCCO", "OCCO", "nope("])
    path = tmp_path / "r.html"
    write_report(explanations, path, ids=[1, 2, 3])
    page = path.read_text()
    assert len(_rows(page)) == 3 and "<td>1</td>" in page
    assert "one scale for every picture" in page
    with pytest.raises(ValueError, match="2 ids for 3 molecules"):
        render_report(explanations, ids=[1, 2])
    with pytest.raises(TypeError, match="path is missing"):
        write_report(alkanol_model, path)


def test_models_without_a_domain_report_and_predict_without_its_columns(alkanol_model):
    from sklearn.base import clone

    old = clone(alkanol_model)
    old.__dict__.update({k: v for k, v in alkanol_model.__dict__.items() if k.endswith("_")})
    old.domain_ = None
    table = old.predict_table(["CCCO"])
    assert "in_domain" not in table and list(table.columns)[-1] == "stripped"
    page = render_report(old, ["CCCO", "nope("])
    assert "<th>domain</th>" not in page and len(_rows(page)) == 2


def test_classifier_report_keeps_probabilities():
    data = load_dataset("solubility").head(40)
    labels = (data.target > data.target.median()).astype(int)
    model = QSARModel(bagger=MoleculeBagger(morgan_size=256, progress=False),
                      task="classification").fit(data.smiles, labels)
    page = render_report(model, [data.smiles.iloc[0], "nope("])
    assert "<th>proba_0</th><th>proba_1</th>" in page and "in_domain" not in page
    assert "prediction_in_range" not in model.predict_table([]).columns


def test_conformer_model_report_has_offline_3d_views_with_weights():
    from milearn_core import MILRegressor

    model = QSARModel(bagger=MoleculeBagger(bag_type="conformers", n_conformers=3, optimize=None,
                                            descriptors=("shape",), progress=False),
                      estimator=MILRegressor(pooling="attention", hidden_layer_sizes=(8,),
                                             max_epochs=3, random_state=0))
    model.fit(ALKANOLS, [1.1, 0.6, -0.1, 0.4, -0.6, 0.1, 1.5, 0.0])
    page = render_report(model, ["CCCCCO", "CCCCO", "not a smiles"])
    assert len(re.findall(r'<div id="3dmolviewer_\d+"', page)) == 2  # one per scored molecule
    assert page.count("$3Dmolpromise = Promise.resolve()") == 1  # 3Dmol.js inlined once
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing loaded from the network
    assert "conformer" in page and "failed" in page
    weights = model.explain("CCCCCO").instances.weight.to_numpy()
    assert f"{weights.max():.2f}" in page                 # each conformer's weight is shown


def test_stripped_salts_are_named_in_explanations_and_the_report(alkanol_model):
    salt, plain = alkanol_model.explain(["CCCCO.Cl", "CCCO"])
    assert (salt.stripped, plain.stripped) == ("HCl", "")
    assert "stripped: HCl" in salt.caption()
    page = render_report([salt, plain], ids=["S1", "P1"])
    assert "<th>stripped</th>" in page and "1 predicted without the counter-ions" in page
    first, second = _rows(page)
    assert "<td>HCl</td>" in first and "HCl" not in second
    assert "stripped: HCl" in page.split("id='mol0'", 1)[1]  # the drawing's legend
    assert "<th>stripped</th>" not in render_report([plain])


def test_pairs_section_splits_each_difference_and_keeps_failed_pairs(alkanol_model):
    smiles = ["CCCCO", "CCCCCO", "nope(", "OCCO"]
    page = render_report(alkanol_model, smiles, ids=["A", "B", "X", "G"],
                         measured=[-0.1, -0.6, None, None], pairs=[(1, 0), (0, 2), (3, 0)])
    section = page.split("<h2 id='pairs'>", 1)[1].split("<section id='mol0'>", 1)[0]
    rows = _rows(section)
    assert len(rows) == 3 and "failed" in rows[1] and "failed" not in rows[0] + rows[2]
    predicted = alkanol_model.predict(["CCCCCO", "CCCCO"])
    numbers = [float(v) for v in re.findall(r"data-sort='([^']+)'", rows[0])]
    difference, change, context, measured = numbers
    assert difference == pytest.approx(predicted[0] - predicted[1])
    assert change + context == pytest.approx(difference, abs=1e-6)
    assert measured == pytest.approx(-0.5)
    assert section.count("<svg") == 2  # one drawing per compared pair
    # Each drawing: the pair split's legend (the difference on the atoms it comes from).
    assert section.count("on the atoms each difference comes from") == 2
    assert "<h2 id='pairs'>" not in render_report(alkanol_model, smiles)
    with pytest.raises(ValueError, match="compared with itself"):
        render_report(alkanol_model, smiles, pairs=[(1, 1)])
    with pytest.raises(ValueError, match="not a molecule position"):
        render_report(alkanol_model, smiles, pairs=[(0, 4)])
    with pytest.raises(TypeError, match="pairs need the model"):
        render_report(alkanol_model.explain(smiles[:2]), pairs=[(0, 1)])
