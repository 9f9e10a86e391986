"""Hostile model files and careless saves: each attack must fail safely with a clear error.

Payloads would create a marker file; every test asserts the marker is absent and the error is
a ModelFileError (or FileExistsError for saves) with a message that says what was refused.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from sklearn.ensemble import RandomForestRegressor
from sklearn.svm import SVC

from milearn_core import AdditiveRegressor, BagWrapper, MILClassifier, MILRegressor, ModelFileError
from milearn_core.persist import load_model
from qsarmil.data import load_dataset
from qsarmil.model import QSARModel


@pytest.fixture(scope="module")
def bags():
    rng = np.random.RandomState(0)
    X = [rng.rand(rng.randint(1, 5), 4) for _ in range(40)]
    return X, np.array([b.sum() for b in X])


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload in a model file ran"


def _payload(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('x')"


def _read(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        return json.loads(fh.metadata()["milearn_core"]), {k: fh.get_tensor(k) for k in fh.keys()}


def _write(path: Path, config: dict, tensors: dict) -> Path:
    save_file(tensors, str(path), metadata={"milearn_core": json.dumps(config)})
    return path


def _saved(model, tmp_path: Path) -> tuple[dict, dict]:
    model.save(tmp_path / "good.safetensors")
    return _read(tmp_path / "good.safetensors")


# -- code in a classical model's state ------------------------------------------------------------
def _reduce_nodes(marker: Path) -> list[dict]:
    """Ways a serialised state could ask for a call: skops-style reduce/function nodes, and our
    own tags naming builtins, NumPy or os functions."""
    code = _payload(marker)
    return [
        {"__module__": "builtins", "__class__": "exec", "__loader__": "ConstructorFromReduceNode",
         "content": [code]},
        {"__module__": "builtins", "__class__": "eval", "__loader__": "ReduceNode", "content": [code]},
        {"__object__": "builtins.exec", "state": {"__dict__": [["source", code]]}},
        {"__object__": "builtins.open", "state": {"__dict__": [["file", str(marker)], ["mode", "w"]]}},
        {"__object__": "numpy.load", "state": {"__dict__": [["allow_pickle", True]]}},
        {"__object__": "os.system", "state": {"__dict__": [["command", f"touch {marker}"]]}},
        {"__object__": "sklearn.utils._testing.ignore_warnings", "state": {"__dict__": []}},
        {"__object__": "builtins.__import__", "state": {"__dict__": [["name", "os"]]}},
        {"__object__": "numpy._core.multiarray._reconstruct", "state": {"__dict__": []}},
        {"__function__": "builtins.exec", "args": [code]},
        {"__reduce__": ["builtins.exec", [code]]},
        {"__scalar__": "|O", "value": code},
        {"__dtype__": "|O"},
        {"__text_array__": [code], "kind": "V", "shape": [1]},
        # A nested reduce: an allowed class whose state holds a call.
        {"__object__": "sklearn.svm.SVR", "state": {"__dict__": [[
            "kernel", {"__object__": "builtins.exec", "state": {"__dict__": [["x", code]]}}]]}},
    ]


@pytest.mark.parametrize("k", range(15))
def test_code_nodes_hidden_in_a_real_model_are_refused(tmp_path, marker, bags, k):
    config, tensors = _saved(BagWrapper(SVC()).fit(bags[0], bags[1] > bags[1].mean()), tmp_path)
    node = _reduce_nodes(marker)[k]
    # Hidden as an extra attribute of the inner, fitted SVC: the rest of the model is intact.
    inner = dict(config["state"]["state"]["__dict__"])["estimator_"]
    inner["state"]["__dict__"].append(["extra_payload_", node])
    path = _write(tmp_path / "evil.safetensors", config, tensors)
    with pytest.raises(ModelFileError):
        BagWrapper.load(path)


@pytest.mark.parametrize("k", range(15))
def test_code_nodes_as_the_whole_model_are_refused(tmp_path, marker, k):
    node = _reduce_nodes(marker)[k]
    config = {"format": "milearn_core.classical", "version": 1, "class": node.get("__object__"),
              "state": node}
    with pytest.raises(ModelFileError):
        load_model(_write(tmp_path / "evil.safetensors", config, {}))


def test_state_may_not_shadow_methods_or_dunders(tmp_path, bags):
    config, tensors = _saved(AdditiveRegressor().fit(*bags), tmp_path)
    for key in ("predict", "__class__", "__dict__", "fit"):
        evil = json.loads(json.dumps(config))
        evil["state"]["state"]["__dict__"].append([key, 1])
        with pytest.raises(ModelFileError, match="not allowed"):
            load_model(_write(tmp_path / "evil.safetensors", evil, tensors))


def test_unknown_tags_and_classes_are_refused_with_a_clear_message(tmp_path, bags):
    config, tensors = _saved(AdditiveRegressor().fit(*bags), tmp_path)
    evil = json.loads(json.dumps(config))
    evil["class"] = evil["state"]["__object__"] = "milearn_core.persist.PersistMixin"
    with pytest.raises(ModelFileError, match="not allowed in a model file"):
        load_model(_write(tmp_path / "evil.safetensors", evil, tensors))


# -- other container formats ----------------------------------------------------------------------
class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _foreign_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    files = {}
    files["pickle"] = tmp_path / "model.pkl"
    files["pickle"].write_bytes(pickle.dumps(_Exploit(marker)))
    files["npy"] = tmp_path / "model.npy"
    np.save(files["npy"], np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    files["skops-zip"] = tmp_path / "model.skops"
    with zipfile.ZipFile(files["skops-zip"], "w") as zf:
        zf.writestr("schema.json", json.dumps({"__module__": "builtins", "__class__": "exec",
                                               "__loader__": "ConstructorFromReduceNode",
                                               "content": [_payload(marker)]}))
    files["zip-bomb"] = tmp_path / "bomb.skops"
    with zipfile.ZipFile(files["zip-bomb"], "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", b"0" * 50_000_000)
    files["torch"] = tmp_path / "model.pt"
    import torch

    torch.save({"x": _Exploit(marker)}, files["torch"])
    files["json"] = tmp_path / "model.json"
    files["json"].write_text(json.dumps({"format": "milearn_core.classical"}))
    files["empty"] = tmp_path / "empty"
    files["empty"].write_bytes(b"")
    files["garbage"] = tmp_path / "garbage"
    files["garbage"].write_bytes(os.urandom(4096))
    files["huge-header"] = tmp_path / "huge-header"
    files["huge-header"].write_bytes((2**40).to_bytes(8, "little") + b"{}")
    return files


@pytest.mark.parametrize("kind", ["pickle", "npy", "skops-zip", "zip-bomb", "torch", "json",
                                  "empty", "garbage", "huge-header"])
def test_other_container_formats_are_refused(tmp_path, marker, kind):
    path = _foreign_files(tmp_path, marker)[kind]
    with pytest.raises(ModelFileError):
        load_model(path)
    with pytest.raises(ModelFileError):
        MILRegressor.load(path)


def test_folders_devices_and_oversized_files_are_refused(tmp_path, bags):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model("/dev/zero")
    AdditiveRegressor().fit(*bags).save(tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="larger than"):
        load_model(tmp_path / "m.safetensors", max_bytes=100)


def test_declared_tensor_larger_than_the_file_is_refused(tmp_path, bags):
    """A header may claim any shape: safetensors checks it against the bytes that are there."""
    path = tmp_path / "m.safetensors"
    AdditiveRegressor().fit(*bags).save(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [10**6, 10**6]
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    with pytest.raises(ModelFileError):
        load_model(path)


# -- neural networks: sizes checked before anything is built --------------------------------------
@pytest.fixture(scope="module")
def neural(bags, tmp_path_factory):
    path = tmp_path_factory.mktemp("neural") / "net.safetensors"
    MILRegressor(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(*bags).save(path)
    return _read(path)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("sizes", [[30000], [100000, 100000], [60000, 60000, 60000], [0], [-5],
                                   ["8"], [8.5], "8", [True]])
def test_declared_network_sizes_are_checked_before_allocation(tmp_path, neural, sizes):
    config, tensors = json.loads(json.dumps(neural[0])), neural[1]
    config["params"]["hidden_layer_sizes"] = sizes
    path = _write(tmp_path / "bomb.safetensors", config, tensors)
    assert path.stat().st_size < 10_000
    before = _peak_rss_mb()
    with pytest.raises(ModelFileError):
        MILRegressor.load(path)
    assert _peak_rss_mb() - before < 500  # a [30000] network alone would take ~4 GB to build


@pytest.mark.parametrize("change", [
    ("class", "MILClassifier"), ("class", "os.system"), ("version", 99), ("format", "pickle"),
    ("params", ["a", "list"]), ("params", {"hidden_layer_sizes": [8]}), ("fitted", None),
    ("history", "x"),
])
def test_malformed_neural_configs_raise_model_file_error(tmp_path, neural, change):
    config, tensors = json.loads(json.dumps(neural[0])), neural[1]
    config[change[0]] = change[1]
    path = _write(tmp_path / "bad.safetensors", config, tensors)
    with pytest.raises(ModelFileError):
        load_model(path)


@pytest.mark.parametrize("param, value", [
    ("unknown_param", 1), ("pooling", "os.system"), ("activation", "exec"),
    ("pooling_kwargs", {"n_iterations": 10**9}), ("pooling_kwargs", {"evil": 1}),
    ("dropout", "nan"), ("random_state", -1),
])
def test_neural_parameters_are_checked_by_type_and_range(tmp_path, neural, param, value):
    config, tensors = json.loads(json.dumps(neural[0])), neural[1]
    config["params"][param] = value
    with pytest.raises(ModelFileError):
        load_model(_write(tmp_path / "bad.safetensors", config, tensors))


def test_regressor_weights_declared_as_classifier_are_refused_at_load(tmp_path, neural):
    config, tensors = json.loads(json.dumps(neural[0])), neural[1]
    config["class"] = "MILClassifier"
    path = _write(tmp_path / "bad.safetensors", config, tensors)
    with pytest.raises(ModelFileError):
        MILClassifier.load(path)
    with pytest.raises(ModelFileError, match="not a MILClassifier"):
        MILClassifier.load(_write(tmp_path / "reg.safetensors", neural[0], tensors))


def test_extra_or_missing_weights_are_refused(tmp_path, neural):
    config, tensors = neural
    extra = dict(tensors, hidden=np.zeros(3, np.float32))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(_write(tmp_path / "extra.safetensors", config, extra))
    missing = dict(list(tensors.items())[1:])
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(_write(tmp_path / "missing.safetensors", config, missing))


# -- compiled predictors trust sizes: trees and SVMs are checked ----------------------------------
def test_tree_with_out_of_range_child_is_refused(tmp_path, bags):
    config, tensors = _saved(BagWrapper(RandomForestRegressor(3, random_state=0)).fit(*bags), tmp_path)
    text = json.dumps(config)
    key = json.loads(text[text.index('{"__tree__"'):].split(', "values"')[0].split('"left_child": ')[1]
                     .split("}")[0] + "}")["__array__"]
    bad = dict(tensors)
    bad[key] = tensors[key].copy()
    bad[key][0] = 10**9
    with pytest.raises(ModelFileError, match="tree nodes are inconsistent"):
        load_model(_write(tmp_path / "tree.safetensors", config, bad))


def test_svm_with_inconsistent_support_is_refused(tmp_path, bags):
    config, tensors = _saved(BagWrapper(SVC()).fit(bags[0], bags[1] > bags[1].mean()), tmp_path)
    inner = dict(dict(config["state"]["state"]["__dict__"])["estimator_"]["state"]["__dict__"])
    key = inner["support_vectors_"]["__array__"]
    bad = dict(tensors, **{key: tensors[key][:-1]})  # one support vector fewer than declared
    with pytest.raises(ModelFileError, match="inconsistent fitted state"):
        load_model(_write(tmp_path / "svm.safetensors", config, bad))


# -- QSARModel folders ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qsar_folder(tmp_path_factory):
    data = load_dataset("solubility").head(60)
    model = QSARModel().fit(data.smiles, data.target)
    path = tmp_path_factory.mktemp("qsar") / "model"
    model.save(path)
    return model, path, list(data.smiles[:5])


def _copy_with(folder: Path, tmp_path: Path, **changes) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    config = json.loads((target / "qsarmil.json").read_text())
    config.update(changes)
    (target / "qsarmil.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize("changes", [
    {"estimator_file": "../outside.safetensors"}, {"estimator_file": "/etc/passwd"},
    {"estimator_file": "estimator.skops"}, {"version": 99}, {"version": True},
    {"task": "os.system"}, {"format": "other"}, {"bagger": {"bag_type": "brics", "evil": 1}},
    {"bagger": {"morgan_size": 2**40}}, {"bagger": {"descriptors": "os.system"}},
    {"bagger": {"max_heavy_atoms": 10**12}}, {"bagger": {"time_limit": -1}},
    {"bagger": {"n_conformers": {"__object__": "builtins.exec"}}}, {"bagger": []},
    {"scaler": {"mean": [0.0], "scale": [1.0]}}, {"scaler": "x"}, {"scale_features": "yes"},
    {"extra_key": 1}, {"reference_prediction": "os.system"}, {"reference_prediction": float("inf")},
    {"reference_prediction": True}, {"contribution_scale": -1.0}, {"contribution_scale": "1e309"},
    {"contribution_scale": float("nan")}, {"contribution_scale": False},
    {"contribution_scale": [1.0]},
])
def test_malformed_model_folders_raise_model_file_error(tmp_path, qsar_folder, changes):
    _, folder, _ = qsar_folder
    outside = tmp_path / "outside.safetensors"
    shutil.copy(folder / "estimator.safetensors", outside)  # a real model, but outside the folder
    with pytest.raises(ModelFileError):
        QSARModel.load(_copy_with(folder, tmp_path, **changes))


def test_model_folder_config_must_be_an_object_with_every_key(tmp_path, qsar_folder):
    _, folder, _ = qsar_folder
    target = _copy_with(folder, tmp_path)
    for text in ("[1, 2]", '"x"', "{}", json.dumps({"format": "qsarmil.QSARModel"}), "{" * 100_000):
        (target / "qsarmil.json").write_text(text)
        with pytest.raises(ModelFileError):
            QSARModel.load(target)


def test_saved_folder_round_trips_and_honours_the_umask(tmp_path, qsar_folder):
    model, folder, smiles = qsar_folder
    np.testing.assert_array_equal(QSARModel.load(folder).predict(smiles), model.predict(smiles))
    old = os.umask(0o022)
    try:
        model.save(tmp_path / "shared")
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "shared").iterdir()} == {0o644}


# -- saves never delete what they did not write ---------------------------------------------------
def test_save_refuses_a_foreign_folder_and_keeps_its_files(tmp_path, qsar_folder):
    model = qsar_folder[0]
    victim = tmp_path / "victim"
    (victim / "data").mkdir(parents=True)
    (victim / "notes.txt").write_text("mine")
    (victim / "data" / "results.csv").write_text("a,b\n1,2\n")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a saved qsarmil model"):
            model.save(victim, overwrite=overwrite)
    assert (victim / "notes.txt").read_text() == "mine"
    assert (victim / "data" / "results.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in victim.iterdir()) == ["data", "notes.txt"]


def test_save_refuses_the_working_directory_and_its_parents(tmp_path, qsar_folder, monkeypatch):
    model = qsar_folder[0]
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work)
    for target in (".", str(work), "..", str(tmp_path)):
        with pytest.raises(FileExistsError):
            model.save(target, overwrite=True)
    assert (work / "keep.txt").read_text() == "keep"


def test_save_replaces_only_its_own_files_in_a_previous_model(tmp_path, qsar_folder):
    model, _, smiles = qsar_folder
    target = tmp_path / "m"
    model.save(target)
    (target / "README.txt").write_text("my notes on this model")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(target)
    model.save(target, overwrite=True)
    assert (target / "README.txt").read_text() == "my notes on this model"
    assert sorted(p.name for p in target.iterdir()) == ["README.txt", "domain.json",
                                                         "estimator.safetensors", "qsarmil.json",
                                                         "reliability.json"]
    np.testing.assert_array_equal(QSARModel.load(target).predict(smiles), model.predict(smiles))


def test_save_into_an_empty_folder_or_onto_a_file(tmp_path, qsar_folder):
    model = qsar_folder[0]
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")
    assert (tmp_path / "empty" / "qsarmil.json").is_file()
    (tmp_path / "file").write_text("data")
    with pytest.raises(FileExistsError, match="not a folder"):
        model.save(tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "data"
    assert not [p for p in tmp_path.iterdir() if ".tmp." in p.name]


@pytest.mark.parametrize("header_size", [0x4B50, 0x4B50 + 0x10000, 0x10080, 0x9380])
def test_real_models_whose_header_length_looks_like_another_format_load(tmp_path, bags, header_size):
    """The header length's bytes may read "PK" or 0x80 (pickle's first byte): still a model."""
    path = tmp_path / "m.safetensors"
    model = AdditiveRegressor().fit(*bags)
    model.save(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n <= header_size
    padded = raw[8:8 + n] + b" " * (header_size - n)
    path.write_bytes(header_size.to_bytes(8, "little") + padded + raw[8 + n:])
    assert path.read_bytes()[:1] in (b"P", b"\x80")
    np.testing.assert_array_equal(load_model(path).predict(bags[0]), model.predict(bags[0]))


# -- domain.json: the applicability domain saved beside the estimator -----------------------------
def _domain_state(folder: Path) -> dict:
    return json.loads((folder / "domain.json").read_text())


@pytest.mark.parametrize("text", ["[1, 2]", "null", '"x"', "{", "{" * 100_000, "\xff\xfe",
                                  json.dumps({"format": "qsarmil.domain"})])
def test_malformed_domain_file_is_refused(tmp_path, qsar_folder, text):
    _, folder, _ = qsar_folder
    target = _copy_with(folder, tmp_path)
    (target / "domain.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(ModelFileError, match="domain"):
        QSARModel.load(target)


@pytest.mark.parametrize("lie", ["bit_too_large", "bits_unsorted", "too_many_bits", "no_molecules",
                                 "environment_negative", "n_bits_huge", "range_reversed",
                                 "bool_as_int", "extra_key"])
def test_domain_file_whose_lengths_or_values_lie_is_refused(tmp_path, qsar_folder, lie):
    _, folder, _ = qsar_folder
    target = _copy_with(folder, tmp_path)
    state = _domain_state(target)
    n_bits = state["params"]["n_bits"]
    change = {
        "bit_too_large": lambda s: s["fingerprints"][0].append(n_bits + 5),
        "bits_unsorted": lambda s: s["fingerprints"][0].reverse(),
        "too_many_bits": lambda s: s["fingerprints"].__setitem__(0, list(range(n_bits + 1))),
        "no_molecules": lambda s: s.__setitem__("fingerprints", []),
        "environment_negative": lambda s: s["environments"].insert(0, -1),
        "n_bits_huge": lambda s: s["params"].__setitem__("n_bits", 2**40),
        "range_reversed": lambda s: s.__setitem__("target_range", [5.0, -5.0]),
        "bool_as_int": lambda s: s["params"].__setitem__("radius", True),
        "extra_key": lambda s: s.__setitem__("__class__", "builtins.exec"),
    }[lie]
    change(state)
    (target / "domain.json").write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="applicability domain"):
        QSARModel.load(target)


def test_oversized_domain_file_is_refused_before_reading(tmp_path, qsar_folder):
    _, folder, _ = qsar_folder
    target = _copy_with(folder, tmp_path)
    with open(target / "domain.json", "r+b") as fh:  # sparse: no disk, no memory
        fh.truncate(200 * 1024**2 + 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError, match="larger than 209715200 bytes"):
        QSARModel.load(target)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB


@pytest.mark.parametrize("name", ["../domain.json", "/etc/passwd", "estimator.safetensors", 7])
def test_domain_file_name_must_be_the_plain_name(tmp_path, qsar_folder, name):
    _, folder, _ = qsar_folder
    with pytest.raises(ModelFileError, match="domain file"):
        QSARModel.load(_copy_with(folder, tmp_path, domain_file=name))


@pytest.mark.parametrize("name", ["estimator.safetensors", "domain.json", "reliability.json"])
def test_linked_or_missing_model_files_are_refused(tmp_path, qsar_folder, name):
    _, folder, _ = qsar_folder
    target = _copy_with(folder, tmp_path)
    elsewhere = tmp_path / f"elsewhere-{name}"
    (target / name).rename(elsewhere)
    (target / name).symlink_to(elsewhere)
    with pytest.raises(ModelFileError, match=f"no regular file '{name}'"):
        QSARModel.load(target)
    (target / name).unlink()
    with pytest.raises(ModelFileError, match=f"no regular file '{name}'"):
        QSARModel.load(target)


@pytest.mark.parametrize("changes", [{"target_name": ["x"]}, {"units": "u" * 201},
                                     {"version": 2}, {"version": 3}, {"version": 4}, {"version": 5},
                                     {"custom_widths": []}, {"custom_widths": {"f": 0}},
                                     {"reliability_file": "../reliability.json"},
                                     {"reliability_file": "domain.json"},
                                     {"domain_file": None}])
def test_version_3_to_6_keys_are_checked(tmp_path, qsar_folder, changes):
    _, folder, _ = qsar_folder
    with pytest.raises(ModelFileError):
        QSARModel.load(_copy_with(folder, tmp_path, **changes))


@pytest.mark.parametrize("version", [1, 2])
def test_folders_saved_before_the_domain_load_without_it(tmp_path, qsar_folder, version):
    model, folder, smiles = qsar_folder
    target = _copy_with(folder, tmp_path, version=version)
    config = json.loads((target / "qsarmil.json").read_text())
    for key in ("domain_file", "target_name", "units", "n_training_molecules", "custom_widths",
                "reliability_file", "reference_prediction", "contribution_scale"):
        del config[key]
    (target / "qsarmil.json").write_text(json.dumps(config))
    (target / "domain.json").unlink()
    (target / "reliability.json").unlink()
    old = QSARModel.load(target)
    assert old.domain_ is None and "in_domain" not in old.predict_table(smiles)
    assert old.reliability_ is None and "prediction_lower" not in old.predict_table(smiles)
    np.testing.assert_array_equal(old.predict(smiles), model.predict(smiles))
    explained = old.explain(smiles[0])  # no mean training prediction kept: from the intercept
    assert explained.baseline_name in ("intercept", "")
    old.save(target, overwrite=True)  # saved again (current version), still without a domain
    assert not (target / "domain.json").exists()
    assert QSARModel.load(target).domain_ is None
