"""Property-based: random, mutated and odd molecule inputs into MoleculeBagger.

Every input ends as a bag (finite, one row per fragment, atoms inside the molecule) or a failure
record with a reason; nothing raises out of RDKit, and the output stays aligned with the input.
"""

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from rdkit import Chem

from qsarmil.featurize import MoleculeBagger

ALPHABET = "CNOSPFIBrcnosp()[]=#@+-123456789%0/\\.*Hl: "
SEEDS = ["CCOC(=O)c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "c1ccc2c(c1)[nH]c1ccccc12", "O=C(O)CCc1ccccc1",
         "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "C[C@H](N)C(=O)O", "FC(F)(F)c1ccc(Oc2ccccc2)cc1",
         "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O", "[Na+].[O-]C(=O)c1ccccc1", "C1CC2CCC1C2",
         "OC1=CC=CC=C1N=NC1=CC=CC=C1", "CSc1nc2ccccc2s1", "O=[N+]([O-])c1ccc(Cl)cc1", "C#CCO",
         "c1ccc(-c2ccncc2)cc1", "CC(=O)OC1=CC=CC=C1C(=O)O"]
SETTINGS = st.fixed_dictionaries({
    "bag_type": st.sampled_from(["brics", "recap"]),
    "include_whole": st.booleans(),
    "standardize": st.booleans(),
    "descriptors": st.sampled_from([None, None, "morgan", "pharmacophore", ("morgan_parent", "rdkit2d")]),
})


@st.composite
def mutated_smiles(draw):
    """A valid SMILES with a few characters inserted, deleted, replaced or a piece repeated."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "repeat", "join"]))
        char = draw(st.sampled_from(ALPHABET))
        if op == "insert":
            text = text[:pos] + char + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1:]
        elif op == "replace":
            text = text[:pos] + char + text[pos + 1:]
        elif op == "repeat":
            text = text + text[pos:pos + 6] * draw(st.integers(1, 30))
        else:
            text = text + "." + draw(st.sampled_from(SEEDS))
    return text


random_smiles = st.text(alphabet=ALPHABET, max_size=40)
odd_items = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=10), st.just(""),
                      st.just("   "), st.sampled_from(SEEDS).map(Chem.MolFromSmiles),
                      st.text(max_size=10), st.just("C" * 6000), st.just("C" * 600))
molecules = st.lists(st.one_of(mutated_smiles(), random_smiles, odd_items), min_size=1, max_size=5)


def _check_output(bagger, items, bags):
    failed = [f.index for f in bagger.failures_]
    assert sorted(failed + bagger.valid_index_.tolist()) == list(range(len(items)))
    assert len(bags) == len(bagger.provenance_) == len(bagger.valid_index_)
    assert all(f.reason for f in bagger.failures_)
    for bag, prov in zip(bags, bagger.provenance_):
        values = bag.data if sp.issparse(bag) else bag
        assert bag.ndim == 2 and bag.shape[0] == len(prov.atoms) >= 1
        assert np.isfinite(values).all()
        n_atoms = prov.mol.GetNumAtoms()
        assert all(0 <= a < n_atoms for atoms in prov.atoms for a in atoms)
    return failed


@given(items=molecules, settings=SETTINGS)
def test_bagger_turns_every_input_into_a_bag_or_a_failure(count_case, items, settings):
    count_case("MoleculeBagger.fit_transform on random/mutated/odd inputs")
    bagger = MoleculeBagger(**settings)
    bags = bagger.fit_transform(items)
    failed = _check_output(bagger, items, bags)
    for index in failed:
        if isinstance(items[index], str) and len(items[index]) > 5000:
            reason = next(f.reason for f in bagger.failures_ if f.index == index)
            assert reason == f"SMILES of {len(items[index])} characters, over max_smiles_length=5000"


@given(items=st.lists(mutated_smiles(), min_size=1, max_size=4))
def test_transform_is_repeatable_and_strict_mode_raises_only_bagging_errors(count_case, items):
    count_case("MoleculeBagger.transform repeatable / strict")
    bagger = MoleculeBagger().fit(items)
    first = bagger.transform(items)
    _check_output(bagger, items, first)
    second = bagger.transform(items)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert (a != b).nnz == 0
    try:
        MoleculeBagger(strict=True).fit_transform(items)
    except ValueError as exc:  # BaggingError names the row
        assert type(exc).__name__ == "BaggingError" and str(exc).startswith("row "), exc
        assert bagger.failures_
