"""Which atoms each atom's descriptor features depend on: the occurrences match the bag's
columns atom for atom, and the dependency sets follow the features' definitions."""

import numpy as np
import pytest
from rdkit import Chem

from qsarmil.attribution import atom_bag
from qsarmil.feature_support import depends_on, feature_occurrences
from qsarmil.featurize import MoleculeBagger

SMILES = ("c1ccc2ncccc2c1CCN1CCNCC1", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[O-]C(=O)CCl")


@pytest.mark.parametrize("kinds", [("morgan_atoms", "atompair_parent"),
                                   ("morgan_atoms", "atompair_parent", "physchem_atoms")])
def test_the_occurrences_are_the_bags_columns(kinds):
    bagger = MoleculeBagger(progress=False, descriptors=kinds).fit(["CCO"])
    config = bagger._config()
    for smiles in SMILES:
        mol = Chem.MolFromSmiles(smiles)
        bag = atom_bag(bagger, mol).tocsr()
        held = feature_occurrences(mol, config["descriptors"], config["morgan_radius"],
                                   config["morgan_size"])
        counted = 2 * config["morgan_size"]  # the count sets; per-atom values may be 0
        for atom in range(mol.GetNumAtoms()):
            columns = set(bag[atom].indices.tolist())
            assert columns <= set(held[atom])
            assert {c for c in held[atom] if c < counted} == {c for c in columns if c < counted}
            # Morgan: one occurrence per environment counted at the atom.
            row = bag[atom].toarray().ravel()
            for column, occurrences in held[atom].items():
                if column < config["morgan_size"]:
                    assert row[column] == len(occurrences)


def test_what_an_occurrence_depends_on():
    mol = Chem.MolFromSmiles("CCCCCC")  # a chain: atom k is k bonds from atom 0
    distances = Chem.GetDistanceMatrix(mol)
    # A radius-1 environment reads its atoms' neighbours too: two bonds from the centre.
    assert depends_on(("morgan", 2, 1), distances).tolist() == [0, 1, 2, 3, 4]
    assert depends_on(("morgan", 0, 0), distances).tolist() == [0, 1]
    assert depends_on(("atom", 5, 0), distances).tolist() == [3, 4, 5]  # Crippen reads 2 bonds
    # An atom pair: the path between its ends and the ends' neighbours.
    assert depends_on(("pair", 1, 3), distances).tolist() == [0, 1, 2, 3, 4]
    # Read at the matched atoms of another molecule; an unmatched end gives nothing.
    assert depends_on(("morgan", 0, 0), distances, {0: 5}).tolist() == [4, 5]
    assert depends_on(("pair", 0, 3), distances, {0: 0}).size == 0


def test_an_unknown_set_is_refused():
    with pytest.raises(ValueError, match="not held at atoms"):
        feature_occurrences(Chem.MolFromSmiles("CCO"), ("rdkit2d",), 2, 2048)
    assert np.all(depends_on(("morgan", 1, 0), Chem.GetDistanceMatrix(Chem.MolFromSmiles("CCO")))
                  == [0, 1, 2])
    assert depends_on(("morgan", 0, 0), Chem.GetDistanceMatrix(Chem.MolFromSmiles("CCCO"))).tolist() == [0, 1]
