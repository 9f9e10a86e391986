"""Hostile reliability.json files and qsarmil.json keys (format versions 6-8).

A saved model folder may come from anyone: loading must refuse a tampered file with one
:class:`~milearn_core.persist.ModelFileError` (never another exception type), and a model that
does load must score molecules without a traceback. One tiny regression model and one tiny
classifier (40 solubility molecules) are fitted once per module; each attack edits a copy.

The first tests reproduce what a review found (each failed before its fix: huge JSON integers,
text measured values in a regression model, lone surrogates, a bool version, parsed files far
larger than their model, a 200 MB read buffer per file); the parametrized tables keep the
attacks that were handled from the start.
"""

from __future__ import annotations

import json
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from milearn_core.persist import ModelFileError
from qsarmil import QSARModel, load_dataset

SMILES = ["CCO", "c1ccccc1O", "CCCCC", "CC(=O)Nc1ccc(O)cc1"]
BIG_INT = 10**400  # valid JSON (309+ digits, under Python's 4300-digit limit), not a float
DEL = object()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{"r": regression folder, "c": classification folder}, each with a reliability.json."""
    root = tmp_path_factory.mktemp("reliability_attacks")
    data = load_dataset("solubility").head(40)
    QSARModel().fit(data.smiles, data.target).save(root / "r")
    labels = (data.target > data.target.median()).map({True: "high", False: "low"})
    QSARModel(task="classification").fit(data.smiles, labels).save(root / "c")
    return {"r": root / "r", "c": root / "c"}


def _copy(saved, kind: str, tmp_path: Path) -> Path:
    folder = tmp_path / kind
    shutil.copytree(saved[kind], folder)
    return folder


def _reliability(folder: Path) -> dict:
    return json.loads((folder / "reliability.json").read_text())


def _set(state: dict, path: tuple, value) -> None:
    node = state
    for key in path[:-1]:
        node = node[key]
    if value is DEL:
        del node[path[-1]]
    elif callable(value):
        node[path[-1]] = value(node[path[-1]])
    else:
        node[path[-1]] = value


def _edit_reliability(folder: Path, path: tuple, value) -> None:
    state = _reliability(folder)
    _set(state, path, value)
    (folder / "reliability.json").write_text(json.dumps(state))


def _edit_config(folder: Path, key: str, value) -> None:
    config = json.loads((folder / "qsarmil.json").read_text())
    _set(config, (key,), value)
    (folder / "qsarmil.json").write_text(json.dumps(config))


def _outcome(folder: Path) -> str:
    """"refused" (ModelFileError at load) or "ok" (loaded and scored); anything else raises."""
    try:
        model = QSARModel.load(folder)
    except ModelFileError:
        return "refused"
    table = model.predict_table(SMILES)
    assert len(table) == len(SMILES)
    return "ok"


# --- bugs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,path,value", [
    ("r", ("neighbours", "measured"), lambda v: [BIG_INT] + v[1:]),
    ("c", ("neighbours", "measured"), lambda v: [BIG_INT] + v[1:]),
    ("r", ("neighbours", "errors"), lambda v: [BIG_INT] + v[1:]),
    ("r", ("intervals", "scores"), lambda v: v[:-1] + [BIG_INT]),
    ("c", ("sets", "scores"), lambda v: [v[0][:-1] + [BIG_INT]] + v[1:]),
], ids=["regression-measured", "classifier-measured", "errors", "interval-scores", "set-scores"])
def test_integer_too_large_for_a_float_in_reliability(saved, tmp_path, kind, path, value):
    """An integer literal beyond float range (10**400) is an int to Python's json: the checks
    call math.isfinite / np.asarray(dtype=float64) on it -> OverflowError: int too large to
    convert to float (qsarmil/neighbours.py _numbers, milearn_core/uncertainty.py _scores_from)."""
    folder = _copy(saved, kind, tmp_path)
    _edit_reliability(folder, path, value)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("key,value", [("reference_prediction", BIG_INT),
                                       ("reference_prediction", -BIG_INT),
                                       ("contribution_scale", BIG_INT)],
                         ids=["reference-1e400", "reference--1e400", "scale-1e400"])
def test_integer_too_large_for_a_float_in_config(saved, tmp_path, kind, key, value):
    """np.isfinite(10**400) -> TypeError: ufunc 'isfinite' not supported for the input types
    (qsarmil/model_folder.py read_config)."""
    folder = _copy(saved, kind, tmp_path)
    _edit_config(folder, key, value)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


def test_text_measured_values_in_a_regression_model(saved, tmp_path):
    """A regression model's neighbour table with class labels as measured values loads, then
    every predict_table raises ValueError: could not convert string to float: 'lab'
    (qsarmil/reliability.py Reliability.columns, training_value / nearest_j_value)."""
    folder = _copy(saved, "r", tmp_path)
    _edit_reliability(folder, ("neighbours", "measured"), lambda v: ["lab"] * len(v))
    assert _outcome(folder) in ("refused", "ok")


@pytest.mark.parametrize("kind,where,value", [
    ("r", ("reliability", ("neighbours", "ids")), lambda v: ["\ud800"] * len(v)),
    ("c", ("reliability", ("neighbours", "measured")), lambda v: ["\ud800"] * len(v)),
    ("r", ("config", "units"), "\ud800"),
], ids=["neighbour-ids", "classifier-labels", "units"])
def test_lone_surrogates_make_every_output_unwritable(saved, tmp_path, kind, where, value):
    """JSON "\\ud800" is a lone surrogate: it loads and is copied into predict_table
    (nearest_j_id, nearest_j_value / training_value, domain_note's units), so every CSV, TSV and
    SDF output of `qsarmil predict` fails: "qsarmil: error: 'utf-8' codec can't encode
    character '\\ud800' ...: surrogates not allowed". Refuse at load, or never output it."""
    folder = _copy(saved, kind, tmp_path)
    file, key = where
    if file == "reliability":
        _edit_reliability(folder, key, value)
    else:
        _edit_config(folder, key, value)
    try:
        model = QSARModel.load(folder)
    except ModelFileError:
        return
    # ibuprofen-like far molecules get the "expected error ... <units>" note
    table = model.predict_table(SMILES + ["CC(C)Cc1ccc(cc1)C(C)C(=O)O", "ClC(Cl)(Cl)Cl"])
    table.to_csv(index=False).encode("utf-8")


@pytest.mark.parametrize("version", [True, 1.0])
def test_reliability_version_accepts_bool_and_float(saved, tmp_path, version):
    """Reliability.from_dict compares ``state["version"] == 1``, so ``true`` and ``1.0`` pass,
    unlike qsarmil.json's version (bool/float refused by read_config)."""
    folder = _copy(saved, "r", tmp_path)
    _edit_reliability(folder, ("version",), version)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


def _rss_growth_mb(load) -> float:
    """Peak resident memory added by ``load()`` (Linux: VmHWM reset through clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("needs /proc/self/clear_refs (Linux) to measure peak memory")

    def status(key: str) -> int:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
        return int(line.split()[1])  # kB

    before = status("VmRSS:")
    load()
    return (status("VmHWM:") - before) / 1024


def test_reliability_file_allocates_far_beyond_its_model(saved, tmp_path):
    """reliability.json is capped at the domain's 200 MB whatever the model's size, and parsed
    in full before any length is checked: 3-byte ``[],`` items cost ~64 bytes each, so a
    200 MB file for a 40-molecule model takes ~5 GB before "ids: a list of 40 texts"
    (measured: a 28.6 MB file, 720 MB). Here a 1.5 MB file (a 40-molecule model's is ~3.4 KB)
    must not cost 16 MB."""
    folder = _copy(saved, "r", tmp_path)
    body = json.dumps(_reliability(folder), separators=(",", ":"))
    assert '"ids":[' in body
    (folder / "reliability.json").write_text(body.replace('"ids":[', '"ids":[' + "[]," * 500_000, 1))
    QSARModel.load(saved["r"])  # lazy imports done before measuring
    growth = _rss_growth_mb(lambda: pytest.raises(ModelFileError, QSARModel.load, folder))
    assert growth < 16, f"loading took {growth:.0f} MB"


def test_every_json_file_read_allocates_a_200_mb_buffer(saved):
    """_read_json reads with ``fh.read(_MAX_DOMAIN_BYTES + 1)``: CPython allocates a 200 MB
    bytes object before reading a 4 KB file, twice per load (domain.json, reliability.json);
    under an address-space limit (ulimit -v) that is a MemoryError, not a ModelFileError."""
    QSARModel.load(saved["r"])  # lazy imports done before measuring
    tracemalloc.start()
    try:
        QSARModel.load(saved["r"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2, f"loading a 550 KB model allocated {peak / 1024**2:.0f} MB"


# --- attacks already handled ----------------------------------------------------------------

N = ("neighbours",)
_REFUSED = [
    # (kind, path in reliability.json, new value)
    ("r", ("version",), 3), ("r", ("format",), ["qsarmil.reliability"]), ("r", ("extra",), 1),
    ("r", ("similarity_edges",), DEL), ("r", ("similarity_edges",), [0.5]),  # no groups to match
    ("r", ("similarity_edges",), "0.5"), ("r", ("similarity_edges",), {}),
    ("r", ("intervals",), lambda v: {**v, "groups": [v["scores"]]}),  # groups without edges
    ("c", ("similarity_edges",), [0.5]), ("c", ("similarity_edges",), None),
    ("c", ("similarity_edges",), False), ("c", ("similarity_edges",), 0), ("c", ("similarity_edges",), {}),
    ("r", ("floor",), DEL),
    ("r", ("level",), 0), ("r", ("level",), 1), ("r", ("level",), float("nan")),
    ("r", ("level",), float("inf")), ("r", ("level",), -0.0), ("r", ("level",), True),
    ("r", ("level",), "0.9"), ("r", ("level",), None), ("r", ("level",), BIG_INT),
    ("r", ("n_neighbours",), -1), ("r", ("n_neighbours",), 21), ("r", ("n_neighbours",), True),
    ("r", ("n_neighbours",), 3.0), ("r", ("n_neighbours",), BIG_INT),
    ("r", ("k_difficulty",), 0), ("r", ("k_difficulty",), 1001), ("r", ("k_difficulty",), True),
    ("r", ("k_difficulty",), 20.0), ("r", ("k_difficulty",), "20"), ("r", ("k_difficulty",), BIG_INT),
    ("r", ("floor",), 0.0), ("r", ("floor",), -1.0), ("r", ("floor",), 1), ("r", ("floor",), float("nan")),
    ("r", ("floor",), float("inf")), ("r", ("floor",), True), ("r", ("floor",), None),
    ("r", ("error_threshold",), "0.1"), ("r", ("error_threshold",), [0.1]),
    ("r", ("intervals",), None), ("r", ("sets",), {"scores": [[0.1], [0.2]]}),
    ("r", ("intervals", "scores"), []), ("r", ("intervals", "scores"), lambda v: v[::-1]),
    ("r", ("intervals", "scores"), lambda v: v + v[-1:]),
    ("r", ("intervals", "scores"), lambda v: v[:-1] + [float("nan")]),
    ("r", ("intervals", "scores"), lambda v: [True] + v[1:]),
    ("r", ("intervals", "scores"), lambda v: [v]),
    ("r", N, None), ("r", N + ("extra",), 1),
    ("r", N + ("ids",), lambda v: v[:-1]), ("r", N + ("ids",), lambda v: v + v[:1]),
    ("r", N + ("ids",), []), ("r", N + ("ids",), {}), ("r", N + ("ids",), "abc"),
    ("r", N + ("ids",), lambda v: list(range(len(v)))), ("r", N + ("ids",), lambda v: v * 1000),
    ("r", N + ("smiles",), lambda v: ["x" * 501] + v[1:]),
    ("r", N + ("keys",), lambda v: [[k] for k in v]),
    ("r", N + ("measured",), lambda v: v[:-1]), ("r", N + ("measured",), lambda v: ["a"] + v[1:]),
    ("r", N + ("measured",), lambda v: [float("nan")] + v[1:]),
    ("r", N + ("measured",), lambda v: [True] + v[1:]), ("r", N + ("measured",), lambda v: [None] + v[1:]),
    ("r", N + ("errors",), None), ("r", N + ("errors",), lambda v: v[:-1]),
    ("r", N + ("errors",), lambda v: [-1.0] + v[1:]),
    ("r", N + ("errors",), lambda v: [float("inf")] + v[1:]),
    ("c", ("floor",), 0.1), ("c", ("intervals",), {"scores": [0.1]}), ("c", ("sets",), None),
    ("c", ("sets", "scores"), lambda v: v[:1]), ("c", ("sets", "scores"), lambda v: v + v[:1]),
    ("c", ("sets", "scores"), lambda v: [[]] + v[1:]), ("c", ("sets", "scores"), lambda v: v[0]),
    ("c", ("sets", "scores"), lambda v: [v[0][:-1] + [1.5]] + v[1:]),
    ("c", ("sets", "scores"), lambda v: [v[0] + v[0][-1:] * 40, v[1]]),
    ("c", N + ("measured",), lambda v: ["x" * 501] + v[1:]),
    ("c", N + ("measured",), lambda v: [1.5] + v[1:]),
    ("c", N + ("measured",), lambda v: [1.0] * len(v)),  # a classifier's are class labels (text)
]


def _ids(table: list) -> list[str]:
    return [f"{k}-{'.'.join(p)}-{i}" for i, (k, p, _) in enumerate(table)]


@pytest.mark.parametrize("kind,path,value", _REFUSED, ids=_ids(_REFUSED))
def test_tampered_reliability_values_are_refused(saved, tmp_path, kind, path, value):
    folder = _copy(saved, kind, tmp_path)
    _edit_reliability(folder, path, value)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


def _mondrian(state: dict, edges: list, split: int) -> dict:
    """``state`` with two similarity bins: the first ``split`` scores and the rest."""
    scores = state["intervals"]["scores"]
    state["similarity_edges"] = edges
    state["intervals"]["groups"] = [scores[:split], scores[split:]]
    return state


def _write(folder: Path, state: dict) -> None:
    (folder / "reliability.json").write_text(json.dumps(state))


@pytest.mark.parametrize("edit", [
    lambda s: _mondrian(s, [1.5], 20), lambda s: _mondrian(s, [float("nan")], 20),
    lambda s: _mondrian(s, [True], 20), lambda s: _mondrian(s, [0.4, 0.3], 20),
    lambda s: _mondrian(s, [0.1] * 16, 20), lambda s: _mondrian(s, [0.5, 0.6], 20),
    lambda s: {**_mondrian(s, [0.5], 20), "version": 1},
    lambda s: _mondrian(s, [0.5], 0),  # an empty group
    lambda s: {**_mondrian(s, [0.5], 20), "intervals": {**s["intervals"], "groups": [
        s["intervals"]["scores"][:20], s["intervals"]["scores"][21:]]}},  # a score missing
    lambda s: {**_mondrian(s, [0.5], 20), "intervals": {**s["intervals"], "groups": [
        s["intervals"]["scores"][:1]] * 17}},
    lambda s: {**_mondrian(s, [0.5], 20), "intervals": {**s["intervals"], "groups": [
        s["intervals"]["scores"][:20], [float("nan")] * 20]}},
    lambda s: {**_mondrian(s, [0.5], 20), "intervals": {**s["intervals"], "groups": [
        s["intervals"]["scores"][:20], [1e308] * 20]}},  # as many scores, not the same ones
], ids=lambda f: "edit")
def test_tampered_similarity_bins_are_refused(saved, tmp_path, edit):
    folder = _copy(saved, "r", tmp_path)
    _write(folder, edit(_reliability(folder)))
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


def test_similarity_bins_and_version_1_files_load(saved, tmp_path):
    """Two consistent bins load and score per bin; a version-1 file (before the bins) loads
    with one bin and the same intervals as the file it came from."""
    folder = _copy(saved, "r", tmp_path)
    state = _reliability(folder)
    assert state["version"] == 2 and state["similarity_edges"] == []  # 40 molecules: one bin
    before = QSARModel.load(folder).predict_table(["CCO", "c1ccccc1O"])
    old = {k: v for k, v in state.items() if k != "similarity_edges"}
    _write(folder, {**old, "version": 1})
    same = QSARModel.load(folder).predict_table(["CCO", "c1ccccc1O"])
    assert np.allclose(same.prediction_upper, before.prediction_upper)
    scores = state["intervals"]["scores"]
    _write(folder, _mondrian(state, [0.0], 30))  # bin 0: the 30 lowest scores; bin 1: the top 10
    binned = QSARModel.load(folder).predict_table(["CCO", "c1ccccc1O"])
    # Every similarity is >= 0, so both queries fall in bin 1: its 90 % quantile (the 10th of
    # 10, the largest score) replaces the pooled one (the 37th of 40).
    ratio = (binned.prediction_upper - binned.prediction) / (before.prediction_upper - before.prediction)
    assert np.allclose(ratio, scores[-1] / scores[36]) and scores[-1] > scores[36]


_LOADS = [
    ("r", ("level",), 1e-308), ("r", ("n_neighbours",), 0), ("r", ("n_neighbours",), 20),
    ("r", ("k_difficulty",), 1), ("r", ("k_difficulty",), 1000),
    ("r", ("floor",), 1e308), ("r", ("error_threshold",), 5e-324),
    ("r", ("intervals", "scores"), lambda v: [1e308] * len(v)),
    ("r", ("intervals", "scores"), lambda v: v[:1]),
    ("r", N + ("errors",), lambda v: [1e308] * len(v)),
    ("r", N + ("measured",), lambda v: [1e308, -1e308, -0.0] + v[3:]),
    ("r", N + ("keys",), lambda v: ["CCCCC"] * len(v)),
    ("c", ("n_neighbours",), 0),
]


@pytest.mark.parametrize("kind,path,value", _LOADS, ids=_ids(_LOADS))
def test_odd_but_valid_reliability_values_load_and_score(saved, tmp_path, kind, path, value):
    folder = _copy(saved, kind, tmp_path)
    _edit_reliability(folder, path, value)
    assert _outcome(folder) == "ok"


def _raw(text: bytes | str):
    def write(folder: Path) -> None:
        data = text(folder) if callable(text) else text
        (folder / "reliability.json").write_bytes(data if isinstance(data, bytes) else data.encode())
    return write


def _replace(old: str, new: str):
    def edit(folder: Path) -> str:
        body = (folder / "reliability.json").read_text()
        assert old in body
        return body.replace(old, new, 1)
    return _raw(edit)


def _swap_for(target: str):
    def swap(folder: Path) -> None:
        os.remove(folder / "reliability.json")
        if target == "fifo":
            os.mkfifo(folder / "reliability.json")
        elif target == "dir":
            os.mkdir(folder / "reliability.json")
        elif target == "missing":
            pass
        else:
            os.symlink(target, folder / "reliability.json")
    return swap


def _copy_other_kind(folder: Path) -> None:
    """Replaced in the test by the other task's reliability.json (needs the fixture)."""


_FILE_ATTACKS = {
    "empty": _raw(b""),
    "list": _raw("[1, 2]"),
    "null": _raw("null"),
    "deep-array": _raw("[" * 100_000 + "]" * 100_000),
    "deep-object": _raw('{"a":' * 100_000 + "1" + "}" * 100_000),
    "bad-utf8": _raw(b'{"format": "\xff"}'),
    "bom": _raw(lambda f: b"\xef\xbb\xbf" + (f / "reliability.json").read_bytes()),
    "utf16": _raw(lambda f: (f / "reliability.json").read_text().encode("utf-16")),
    "trailing-garbage": _raw(lambda f: (f / "reliability.json").read_text() + "xx"),
    "5000-digit-int": _replace('"k_difficulty":20', '"k_difficulty":' + "9" * 5000),
    "nan-literal": _replace('"floor":', '"floor":NaN,"x":'),
    "duplicate-key-bad-last": _replace('"level":0.9', '"level":0.9,"level":5'),
    "symlink-dev-zero": _swap_for("/dev/zero"),
    "symlink-sibling": _swap_for("domain.json"),
    "fifo": _swap_for("fifo"),
    "directory": _swap_for("dir"),
    "missing": _swap_for("missing"),
    "other-task's-file": _copy_other_kind,
}


@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("attack", list(_FILE_ATTACKS))
def test_hostile_reliability_files_are_refused(saved, tmp_path, kind, attack):
    folder = _copy(saved, kind, tmp_path)
    if attack == "other-task's-file":
        shutil.copy(saved["c" if kind == "r" else "r"] / "reliability.json", folder / "reliability.json")
    else:
        _FILE_ATTACKS[attack](folder)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


_CONFIG_REFUSED = [
    ("reliability_file", "../r/reliability.json"), ("reliability_file", ["reliability.json"]),
    ("reliability_file", True), ("reliability_file", "domain.json"),
    ("domain_file", None),  # a reliability file without a domain
    ("version", 5),  # version 5 has no reliability_file key
    ("version", 8.0), ("version", True),
    ("reference_prediction", True), ("reference_prediction", "1.0"), ("reference_prediction", [1.0]),
    ("reference_prediction", float("nan")), ("reference_prediction", float("inf")),
    ("reference_prediction", DEL),
    ("contribution_scale", -1.0), ("contribution_scale", float("inf")), ("contribution_scale", True),
    ("contribution_scale", {}), ("contribution_scale", DEL),
]


@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("key,value", _CONFIG_REFUSED)
def test_tampered_config_keys_are_refused(saved, tmp_path, kind, key, value):
    folder = _copy(saved, kind, tmp_path)
    _edit_config(folder, key, value)
    with pytest.raises(ModelFileError):
        QSARModel.load(folder)


@pytest.mark.parametrize("key,value", [
    ("reliability_file", None), ("reference_prediction", None), ("reference_prediction", 1e308),
    ("reference_prediction", -1e308), ("reference_prediction", 0), ("contribution_scale", 0.0),
    ("contribution_scale", 5e-324), ("contribution_scale", 1e308), ("contribution_scale", None),
])
def test_odd_but_valid_config_values_load_score_and_explain(saved, tmp_path, key, value):
    folder = _copy(saved, "r", tmp_path)
    _edit_config(folder, key, value)
    assert _outcome(folder) == "ok"
    explanation = QSARModel.load(folder).explain("c1ccccc1O")
    assert explanation.status == "ok"


def test_reliability_shrunk_with_its_domain_to_one_molecule_scores(saved, tmp_path):
    """A domain and neighbour table of one molecule (fewer than the neighbours shown)."""
    folder = _copy(saved, "r", tmp_path)
    domain = json.loads((folder / "domain.json").read_text())
    domain["fingerprints"] = domain["fingerprints"][:1]
    (folder / "domain.json").write_text(json.dumps(domain))
    state = _reliability(folder)
    for key in ("ids", "smiles", "keys", "measured", "errors"):
        state["neighbours"][key] = state["neighbours"][key][:1]
    state["intervals"]["scores"] = state["intervals"]["scores"][:1]
    (folder / "reliability.json").write_text(json.dumps(state))
    assert _outcome(folder) == "ok"
