"""Standardisation, fragments and descriptors on tricky molecules."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from qsarmil.data import fragment_contributions, load_chembl_sample, make_fragment_logp
from qsarmil.descriptors import (
    describe_conformer,
    describe_fragment,
    describe_fragments_sparse,
    descriptor_names,
)
from qsarmil.fragments import brics_fragments, fragment_molecule, recap_fragments
from qsarmil.standardize import MoleculeError, parse_molecule, parse_molecules, prepare_molecule

TRICKY = {
    "charged": "C[N+](C)(C)CCOC(=O)c1ccccc1",
    "stereo": "C[C@H](N)C(=O)N[C@@H](Cc1ccccc1)C(=O)O",
    "macrocycle": "C1CCCCCCCCCCCC(=O)OCCCCCCCCC1",
    "single_atom": "C",
    "metal_salt": "CC(=O)[O-].[Na+]",
    "large": "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)[C@H](CCCNC(N)=N)NC(=O)[C@@H](N)CO)"
             "C(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)N[C@@H](CCC(N)=O)C(=O)NCC(=O)N1CCC[C@H]1C(=O)O",
}


def test_parse_failures_are_records_naming_the_row():
    mols, failures = parse_molecules(["CCO", "C1CC", "", None, 42])
    assert mols[0] is not None and mols[1:] == [None] * 4
    assert [f.index for f in failures] == [1, 2, 3, 4]
    assert "cannot parse" in failures[0].reason and failures[0].input == "C1CC"
    with pytest.raises(MoleculeError, match=r"row 1 \('C1CC'\)"):
        parse_molecules(["CCO", "C1CC"], strict=True)


def test_standardize_keeps_largest_fragment_and_neutralises():
    mol = parse_molecule(TRICKY["metal_salt"], standardize=True)
    assert Chem.MolToSmiles(mol) == "CC(=O)O"
    assert Chem.MolToSmiles(parse_molecule("[O-]c1ccccc1", standardize=True)) == "Oc1ccccc1"
    cisplatin = parse_molecule("N.N.Cl[Pt]Cl", standardize=True)  # not reduced to ammonia
    assert sorted(a.GetSymbol() for a in cisplatin.GetAtoms()) == ["Cl", "Cl", "N", "N", "Pt"]


IMIPRAMINE = "CN(C)CCCN1c2ccccc2CCc2ccccc21"


@pytest.mark.parametrize("smiles, parent, stripped", [
    ("CC(=O)[O-].[Na+]", "CC(=O)O", "Na+"),  # counter-ion removed, parent neutralised
    ("CC(=O)O[Na]", "CC(=O)O", "Na+"),  # sodium drawn bonded: disconnected first
    (f"{IMIPRAMINE}.Cl", IMIPRAMINE, "HCl"),
    ("C[N+](C)(C)CCOC(=O)C.[Cl-]", "CC(=O)OCC[N+](C)(C)C", "Cl-"),  # a quaternary N stays
    ("NCCCCN.Cl.Cl", "NCCCCN", "HCl, HCl"),
    ("O.O.CCOC(=O)c1ccccc1", "CCOC(=O)c1ccccc1", "H2O, H2O"),  # solvent
    ("N.N.Cl[Pt]Cl", "N.N.Cl[Pt]Cl", ""),  # a metal complex stays whole
    ("[Na+].[Cl-]", "[Na+].[Cl-]", ""),  # no carbon anywhere: nothing to choose
    ("CC(=O)[O-]", "CC(=O)O", ""),  # a lone anion is neutralised too
    ("C[C@H](N)C(=O)O", "C[C@H](N)C(=O)O", ""),  # untouched (stereo kept)
])
def test_salts_are_stripped_to_the_parent(smiles, parent, stripped):
    mol, removed = prepare_molecule(Chem.MolFromSmiles(smiles))
    assert Chem.MolToSmiles(mol) == Chem.CanonSmiles(parent) and removed == stripped
    untouched, nothing = prepare_molecule(Chem.MolFromSmiles(smiles), salts=False)
    assert Chem.MolToSmiles(untouched) == Chem.CanonSmiles(smiles) and nothing == ""


@pytest.mark.parametrize("smiles, reason", [
    ("CN(C)(C)(C)C", "RDKit cannot parse this SMILES: Explicit valence for atom # 1 N, 5, is "
                     "greater than permitted"),
    ("c1cccc1", "RDKit cannot parse this SMILES: Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4"),
    ("C1CC", "RDKit cannot parse this SMILES: unclosed ring"),
    ("CC(", "RDKit cannot parse this SMILES: syntax error while parsing: CC(; check for mistakes "
            "around position 3"),
])
def test_rdkit_messages_are_the_reason(smiles, reason, capfd):
    _, failures = parse_molecules([smiles])
    assert failures[0].reason == reason
    assert capfd.readouterr().err == ""  # RDKit's log is kept off the console


@pytest.mark.parametrize("name", sorted(TRICKY))
@pytest.mark.parametrize("method", ["brics", "recap"])
def test_fragments_partition_the_parent_atoms(name, method):
    mol = Chem.MolFromSmiles(TRICKY[name])
    fragments = fragment_molecule(mol, method)
    covered = sorted(a for f in fragments for a in f.atoms)
    assert covered == list(range(mol.GetNumAtoms()))  # every atom once, none twice
    for frag in fragments:
        real = [a for a in frag.mol.GetAtoms() if a.GetAtomicNum() > 0]
        # The fragment's real atoms are the parent's atoms it claims, element by element.
        assert sorted(a.GetSymbol() for a in real) == sorted(
            mol.GetAtomWithIdx(i).GetSymbol() for i in frag.atoms)


def test_repeated_fragments_stay_separate_and_whole_molecule_option():
    mol = Chem.MolFromSmiles("c1ccccc1Cc1ccccc1")
    smiles = [f.smiles for f in brics_fragments(mol)]
    assert smiles.count("[16*]c1ccccc1") == 2
    with_whole = fragment_molecule(mol, "brics", include_whole=True)
    assert len(with_whole) == 4 and with_whole[-1].atoms == tuple(range(13))
    single = fragment_molecule(Chem.MolFromSmiles("C"), "brics", include_whole=True)
    assert len(single) == 1


def test_recap_cuts_amides_and_esters():
    mol = Chem.MolFromSmiles("CCOC(=O)c1ccc(NC(=O)c2ccccc2)cc1")
    assert len(recap_fragments(mol)) == 3
    with pytest.raises(ValueError, match="unknown fragmentation"):
        fragment_molecule(mol, "retro")


def test_fragment_descriptors_and_reported_nonfinite_values():
    frag = brics_fragments(Chem.MolFromSmiles("CCOc1ccccc1"))[0]
    values, issues = describe_fragment(frag.mol, ["morgan", "rdkit2d", "pharmacophore"], 2, 1024,
                                       dummy_atoms="cap")
    assert values.shape == (1024 + len(descriptor_names("rdkit2d"))
                            + len(descriptor_names("pharmacophore")),)
    assert np.isfinite(values).all() and issues == []
    # A lone ion: RDKit's BCUT descriptors are undefined and must be reported, not hidden.
    values, issues = describe_fragment(Chem.MolFromSmiles("[Na+]"), ["rdkit2d"])
    assert np.isfinite(values).all() and any("BCUT" in name for name in issues)
    # Kept dummy atoms have no partial charge: charge-based values are reported, set to 0.
    values, issues = describe_fragment(frag.mol, ["rdkit2d"], dummy_atoms="keep")
    assert np.isfinite(values).all() and "MaxPartialCharge" in issues
    donors = describe_fragment(Chem.MolFromSmiles("OCCO"), ["pharmacophore"])[0]
    assert donors[0] == 2  # two hydroxyl donors


def test_dummy_handling_is_explicit():
    frag = brics_fragments(Chem.MolFromSmiles("CCOc1ccccc1"))[-1]
    assert frag.smiles == "[16*]c1ccccc1"
    kept = describe_fragment(frag.mol, ["morgan"], dummy_atoms="keep")[0]
    capped = describe_fragment(frag.mol, ["morgan"], dummy_atoms="cap")[0]
    plain = describe_fragment(Chem.MolFromSmiles("c1ccccc1"), ["morgan"])[0]
    np.testing.assert_array_equal(capped, plain)  # capped fragment = benzene
    assert not np.array_equal(kept, capped)
    with pytest.raises(ValueError, match="dummy_atoms"):
        describe_fragment(frag.mol, ["morgan"], dummy_atoms="drop")


def test_3d_descriptor_sets():
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1"))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    kinds = ["shape", "autocorr3d", "rdf", "morse", "whim", "getaway", "usr", "usrcat",
             "pharmacophore3d"]
    values, issues = describe_conformer(mol, 0, kinds)
    assert values.shape == (sum(len(descriptor_names(k)) for k in kinds),)
    assert np.isfinite(values).all()


def test_fragment_logp_task_is_molLogP_split_by_fragment():
    task = make_fragment_logp(load_chembl_sample(60))
    assert len(task.smiles) > 40
    assert any("." in smi for smi in task.smiles)  # a salt: labelled by its parent
    for smi, y, contrib, keys in zip(task.smiles, task.y, task.contributions, task.key_instances):
        mol, _ = prepare_molecule(Chem.MolFromSmiles(smi))
        assert y == pytest.approx(Descriptors.MolLogP(mol), abs=1e-9)
        np.testing.assert_allclose(contrib, fragment_contributions(mol))
        assert keys[np.argmax(np.abs(contrib))]


@pytest.mark.parametrize("name", ["charged", "stereo", "macrocycle", "large", "single_atom"])
def test_in_parent_morgan_counts_add_up_to_the_molecule(name):
    mol = Chem.MolFromSmiles(TRICKY[name])
    parts = [describe_fragment(f.mol, ["morgan_parent"], 2, 4096, parent=mol, atoms=f.atoms)[0]
             for f in brics_fragments(mol)]
    whole = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=4096)
    np.testing.assert_array_equal(np.sum(parts, axis=0), whole.GetCountFingerprintAsNumPy(mol))


def test_in_parent_counts_see_across_the_cut():
    ether, amine = (Chem.MolFromSmiles(s) for s in ("COc1ccccc1", "CNc1ccccc1"))
    rings = [next(f for f in brics_fragments(m) if f.smiles == "[16*]c1ccccc1") for m in (ether, amine)]
    cut_out = [describe_fragment(f.mol, ["morgan"])[0] for f in rings]
    np.testing.assert_array_equal(*cut_out)  # the phenyl cut out looks the same in both
    in_parent = [describe_fragment(f.mol, ["morgan_parent"], parent=m, atoms=f.atoms)[0]
                 for f, m in zip(rings, (ether, amine))]
    assert not np.array_equal(*in_parent)  # in its molecule it knows its O or N neighbour
    with pytest.raises(ValueError, match="parent molecule"):
        describe_fragment(rings[0].mol, ["morgan_parent"])


def test_sparse_bag_holds_the_same_values_as_dense_rows():
    mol = Chem.MolFromSmiles(TRICKY["stereo"])
    frags = brics_fragments(mol)
    kinds = ["morgan_parent", "pharmacophore", "morgan"]
    bag, issues = describe_fragments_sparse(frags, mol, kinds, 2, 512)
    dense = [describe_fragment(f.mol, kinds, 2, 512, parent=mol, atoms=f.atoms)[0] for f in frags]
    assert bag.shape == (len(frags), len(dense[0])) and issues == []
    np.testing.assert_array_equal(bag.toarray(), np.vstack(dense))
