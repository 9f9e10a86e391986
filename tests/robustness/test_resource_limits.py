"""Per-molecule limits of MoleculeBagger: size checked before parsing, heavy atoms, time."""

import json
import subprocess
import sys
import textwrap

import pytest
from rdkit import Chem

from qsarmil.data import list_datasets, load_chembl_sample, load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.standardize import MoleculeError, parse_molecule

POLYMER = "CC(=O)O" + "CCOC(=O)" * 500 + "C"  # 2505 heavy atoms: 160 s and climbing before limits

PROBE = textwrap.dedent("""
    import resource, sys, time
    from qsarmil.featurize import MoleculeBagger
    smiles = {"polymer": "CC(=O)O" + "CCOC(=O)" * 500 + "C", "alkane": "C" * 5_000_000}[sys.argv[1]]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    bagger = MoleculeBagger()
    bags = bagger.fit_transform(["CCO", smiles])
    seconds = time.perf_counter() - start
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(len(bags), bagger.failures_[0].index, bagger.failures_[0].reason, f"{seconds:.3f}", f"{grew:.1f}",
          sep="|")
""")


@pytest.mark.parametrize("kind, reason", [
    ("polymer", "2505 heavy atoms, over max_heavy_atoms=500"),
    ("alkane", "SMILES of 5000000 characters, over max_smiles_length=5000"),
])
def test_oversized_molecules_fail_fast_with_little_memory(kind, reason):
    out = subprocess.run([sys.executable, "-c", PROBE, kind], capture_output=True, text=True, timeout=120)
    n_bags, index, got, seconds, grew_mb = out.stdout.strip().split("|")
    assert (n_bags, index, got) == ("1", "1", reason), out.stderr
    assert float(seconds) < 3 and float(grew_mb) < 150, (seconds, grew_mb)


def test_limits_are_parameters_and_row_errors():
    bagger = MoleculeBagger(max_heavy_atoms=3, max_smiles_length=8, strict=True)
    with pytest.raises(MoleculeError, match=r"row 1 \('CCCC'\): 4 heavy atoms, over max_heavy_atoms=3"):
        bagger.fit_transform(["CC", "CCCC"])
    with pytest.raises(MoleculeError, match=r"row 0 .*: SMILES of 9 characters, over max_smiles_length=8"):
        bagger.fit_transform(["CCCCCCCCC"])
    unlimited = MoleculeBagger(max_heavy_atoms=None, max_smiles_length=None)
    assert len(unlimited.fit_transform([POLYMER[:400]])) == 1


def test_heavy_atom_limit_applies_to_mol_inputs_and_long_inputs_are_shortened_in_messages():
    with pytest.raises(MoleculeError, match=r"2505 heavy atoms, over max_heavy_atoms=500") as info:
        parse_molecule(Chem.MolFromSmiles(POLYMER), 7, max_heavy_atoms=500)
    assert str(info.value).startswith("row 7 (") and len(str(info.value)) < 200


def test_time_limit_turns_slow_fragment_bags_into_failures():
    bagger = MoleculeBagger(time_limit=1e-9)
    assert bagger.fit_transform(["CCOC(=O)c1ccccc1", "CCO"]) == []
    assert [f.reason for f in bagger.failures_] == [
        "went past the time limit (1e-09 s) while cutting fragments (4 made)",
        "went past the time limit (1e-09 s) while cutting fragments (1 made)"]


@pytest.mark.parametrize("params", [{"max_heavy_atoms": 0}, {"max_smiles_length": "long"},
                                    {"max_heavy_atoms": 2.5}, {"time_limit": 0}, {"time_limit": None}])
def test_bad_limit_values_are_refused(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        MoleculeBagger(**params).fit(["CCO"])


def test_limit_parameters_survive_json_like_a_saved_model():
    bagger = MoleculeBagger(max_heavy_atoms=120, max_smiles_length=900, time_limit=5.0)
    restored = MoleculeBagger(**json.loads(json.dumps(bagger.get_params())))
    assert restored.get_params() == bagger.get_params()
    assert {"max_heavy_atoms": 500, "max_smiles_length": 5000, "time_limit": 30.0}.items() <= \
        MoleculeBagger().get_params().items()


def test_default_limits_keep_every_bundled_molecule():
    params = MoleculeBagger().get_params()
    sets = {name: load_dataset(name).smiles for name in list_datasets()}
    sets["fragment-logP source (ChEMBL sample)"] = load_chembl_sample()
    for name, smiles in sets.items():
        assert max(map(len, smiles)) <= params["max_smiles_length"], name
        heavy = max(Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in smiles)
        assert heavy <= params["max_heavy_atoms"], (name, heavy)
