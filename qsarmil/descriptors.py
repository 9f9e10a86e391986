"""Per-instance descriptors: 2-D sets for fragments, 3-D sets for conformers.

``"morgan_parent"`` (the default for fragments) counts the Morgan environments centred on the
fragment's atoms *inside the parent molecule*: an environment may reach across a cut bond and
sees the real neighbour there, and the fragments' fingerprints add up to nearly the molecule's
(RDKit drops an environment that covers the same bonds as another; across a cut both are kept:
methyl acetate's fragments hold 12 environments, the molecule 11). On the
fragment-logP task (additive model, 32768 bits) it gave KID 0.916 against 0.886 for
``"morgan"``, which describes the fragment cut out, and about halved the unexplained variance
of the per-fragment contributions (instance R² 0.975 against 0.958).

Dummy atoms at cut points (``dummy_atoms``): ``"keep"`` (default) describes the fragment with its
``*`` atoms, whose isotope carries the BRICS type of the cut, so a fragment's descriptors know
what it was attached to (this gave the better fragment-logP fit); ``"cap"`` replaces every ``*``
by hydrogen and describes the capped piece. SMILES and drawings always keep the ``*``.
Non-finite values (a descriptor RDKit cannot compute) become 0 and are reported to the caller
with their names.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain, combinations_with_replacement
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from rdkit import Chem, RDConfig, RDLogger
from rdkit.Chem import ChemicalFeatures, Descriptors, rdFingerprintGenerator, rdMolDescriptors

from .conformers import TimeLimit
from .custom_descriptors import custom_name, describe_custom, is_custom

__all__ = ["COUNT_FINGERPRINTS", "COUNT_LIKE", "DESCRIPTORS_2D", "DESCRIPTORS_3D", "PHYSCHEM_COLUMNS",
           "SUMMABLE_OVER_FRAGMENTS", "WHOLE_OVER_FRAGMENTS", "physchem_per_atom", "cap_dummies",
           "describe_fragment", "describe_fragments_sparse", "describe_summed", "describe_conformer",
           "descriptor_names"]

_FAMILIES = ("Donor", "Acceptor", "NegIonizable", "PosIonizable", "Aromatic", "LumpedHydrophobe")
_PAIRS = list(combinations_with_replacement(range(len(_FAMILIES)), 2))
_TOPO_BINS = (1, 3, 5, 8)  # bond-count bin edges (lower bounds)
_DIST_BINS = (0.0, 3.0, 5.0, 7.0, 10.0)  # angstrom bin edges (lower bounds)


def cap_dummies(mol: Chem.Mol) -> Chem.Mol:
    """Remove dummy atoms, giving each attachment atom a hydrogen (the capped fragment).

    Falls back to the fragment with its dummies (ring information initialised) when the capped
    piece cannot be sanitised.
    """
    dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    rw = Chem.RWMol(mol)
    for idx in sorted(dummies, reverse=True):
        for nbr in rw.GetAtomWithIdx(idx).GetNeighbors():
            # Atoms with a fixed H count (bracket atoms, aromatic heteroatoms) need the H spelt out;
            # the others regain it as an implicit hydrogen.
            if nbr.GetNoImplicit() or (nbr.GetIsAromatic() and nbr.GetAtomicNum() != 6):
                nbr.SetNumExplicitHs(nbr.GetNumExplicitHs() + 1)
        rw.RemoveAtom(idx)
    capped = rw.GetMol()
    RDLogger.DisableLog("rdApp.*")
    try:
        Chem.SanitizeMol(capped)
        return capped
    except Exception:
        return keep_dummies(mol)
    finally:
        RDLogger.EnableLog("rdApp.*")


@lru_cache(maxsize=8)
def _morgan(radius: int, size: int, redundant: bool = False):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size,
                                                     includeRedundantEnvironments=redundant)


def _morgan_atoms(parent: Chem.Mol, atoms, radius: int, size: int) -> dict[int, int]:
    """Every Morgan environment centred on ``atoms`` in the parent, none dropped as redundant:
    a count per atom and radius, so any partition of the atoms adds up to the molecule."""
    generator = _morgan(radius, size, True)
    if len(atoms) == parent.GetNumAtoms():
        return generator.GetCountFingerprint(parent).GetNonzeroElements()
    return generator.GetCountFingerprint(parent, fromAtoms=list(atoms)).GetNonzeroElements()


@lru_cache(maxsize=1)
def _feature_factory():
    return ChemicalFeatures.BuildFeatureFactory(str(Path(RDConfig.RDDataDir) / "BaseFeatures.fdef"))


def _features(mol: Chem.Mol):
    return [(f.GetFamily(), f.GetAtomIds()) for f in _feature_factory().GetFeaturesForMol(mol)
            if f.GetFamily() in _FAMILIES]


def _pharmacophore(mol: Chem.Mol, distances: np.ndarray, bins: Sequence[float],
                   point=lambda ids: ids) -> np.ndarray:
    """Family counts plus family-pair counts binned by distance between feature centres."""
    feats = _features(mol)
    counts = np.zeros(len(_FAMILIES))
    pair_counts = np.zeros((len(_PAIRS), len(bins)))
    fam = [_FAMILIES.index(f) for f, _ in feats]
    for f in fam:
        counts[f] += 1
    pair_index = {p: k for k, p in enumerate(_PAIRS)}
    for i in range(len(feats)):
        for j in range(i + 1, len(feats)):
            d = distances(feats[i][1], feats[j][1])
            b = int(np.searchsorted(bins, d, side="right")) - 1
            pair_counts[pair_index[tuple(sorted((fam[i], fam[j])))], max(b, 0)] += 1
    return np.concatenate([counts, pair_counts.ravel()])


def _pharmacophore_2d(mol: Chem.Mol) -> np.ndarray:
    topo = Chem.GetDistanceMatrix(mol)
    return _pharmacophore(mol, lambda a, b: topo[np.ix_(a, b)].min(), _TOPO_BINS)


def _pharmacophore_3d(mol: Chem.Mol, conf_id: int) -> np.ndarray:
    pos = mol.GetConformer(conf_id).GetPositions()
    return _pharmacophore(
        mol, lambda a, b: float(np.linalg.norm(pos[list(a)].mean(0) - pos[list(b)].mean(0))),
        _DIST_BINS)


_RDKIT_2D = [(name, fn) for name, fn in Descriptors._descList]


def _rdkit_2d(mol: Chem.Mol) -> np.ndarray:
    values = []
    for _, fn in _RDKIT_2D:
        try:
            values.append(float(fn(mol)))
        except Exception:  # a descriptor that fails on this (fragment) molecule
            values.append(np.nan)
    return np.asarray(values)


@lru_cache(maxsize=4)
def _atom_pairs(size: int):
    return rdFingerprintGenerator.GetAtomPairGenerator(fpSize=size)


# Weight of one atom pair: a molecule has about five times as many atom pairs as radius-2 Morgan
# environments, and at 1/10 the pairs weigh about half as much as the environments in a MinMax
# kernel over both (1/10 beat 1, 1/3 and 1/30 on ten MoleculeACE sets).
ATOM_PAIR_WEIGHT = 0.1


_LAST_PARENT = threading.local()  # per thread: (parent, size, its atom-pair bits per atom)


def _atom_pair_bits(parent: Chem.Mol, size: int):
    """The parent's atom-pair bits per atom, computed once for all its fragments (the parent
    itself is kept with them, so that its id cannot be reused while cached)."""
    last = getattr(_LAST_PARENT, "value", (None, None, None))
    if last[0] is not parent or last[1] != size:
        info = rdFingerprintGenerator.AdditionalOutput()
        info.AllocateAtomToBits()
        _atom_pairs(size).GetCountFingerprint(parent, additionalOutput=info)
        last = _LAST_PARENT.value = (parent, size, info.GetAtomToBits())
    return last[2]


def _atom_pairs_parent(parent: Chem.Mol, atoms, size: int) -> dict[int, float]:
    """Atom-pair counts of the parent, each pair split equally between its two atoms: the
    fragment's share is half a pair per end it holds, so the fragments' shares add up to the
    molecule's (weighted) atom-pair fingerprint."""
    if len(atoms) == parent.GetNumAtoms():  # the whole molecule: both ends of every pair
        pairs = _atom_pairs(size).GetCountFingerprint(parent).GetNonzeroElements()
        return {bit: n * ATOM_PAIR_WEIGHT for bit, n in pairs.items()}
    per_atom = _atom_pair_bits(parent, size)
    share = 0.5 * ATOM_PAIR_WEIGHT
    return {bit: n * share for bit, n in Counter(chain.from_iterable(per_atom[a] for a in atoms)).items()}


# Atom-additive physicochemical values ("physchem_atoms"): per heavy atom, its hydrogens folded
# in, Crippen logP split into its positive and negative parts (both nonnegative, so the MinMax
# kernel takes them), Crippen molar refractivity, TPSA and Labute ASA. A fragment's values are its
# atoms' sums, so the fragments add up to the molecule's (MolLogP, MolMR and TPSA exactly; Labute
# ASA as of the molecule with explicit hydrogens) and contributions stay exact. Each column is
# divided by its mean per heavy atom on the bundled solubility training set, so that a heavy atom
# weighs about 1 in each column, as one Morgan environment does (this weight beat 0.3, 0.5 and 2
# on the leave-one-out error of the solubility and FreeSolv training sets; see
# benchmarks/physchem.py).
PHYSCHEM_COLUMNS = ("crippen_logp_pos", "crippen_logp_neg", "crippen_mr", "tpsa", "labute_asa")
_PHYSCHEM_PER_ATOM = np.array([0.25, 0.07, 4.0, 2.8, 7.5])
_LAST_PHYSCHEM = threading.local()  # per thread: (parent, its physchem values per atom)


def physchem_per_atom(parent: Chem.Mol) -> np.ndarray:
    """Unscaled atom-additive values of each heavy atom of ``parent`` (rows) in the order of
    ``PHYSCHEM_COLUMNS``; each hydrogen's Crippen and Labute contributions go to its atom."""
    with_h = Chem.AddHs(parent)  # heavy atoms keep their indices; the added Hs come after
    n = parent.GetNumAtoms()
    owner = [a.GetIdx() if a.GetIdx() < n else a.GetNeighbors()[0].GetIdx() for a in with_h.GetAtoms()]
    crippen = np.array(rdMolDescriptors._CalcCrippenContribs(with_h), dtype=np.float64).reshape(-1, 2)
    labute = np.asarray(rdMolDescriptors._CalcLabuteASAContribs(with_h, includeHs=True)[0])
    table = np.zeros((n, len(PHYSCHEM_COLUMNS)))
    for column, values in ((0, crippen[:, 0]), (2, crippen[:, 1]), (4, labute)):
        np.add.at(table[:, column], owner, values)
    table[:, 1] = np.clip(-table[:, 0], 0.0, None)
    table[:, 0] = np.clip(table[:, 0], 0.0, None)
    table[:, 3] = rdMolDescriptors._CalcTPSAContribs(parent)
    return table


def _physchem_atoms(parent: Chem.Mol, atoms) -> np.ndarray:
    """The fragment's atoms' physchem values, summed and scaled (see ``PHYSCHEM_COLUMNS``);
    the parent's table is computed once for all its fragments."""
    last = getattr(_LAST_PHYSCHEM, "value", (None, None))
    if last[0] is not parent:
        last = _LAST_PHYSCHEM.value = (parent, physchem_per_atom(parent) / _PHYSCHEM_PER_ATOM)
    return last[1][list(atoms)].sum(axis=0)


# Count fingerprints as {bit: count}: (fragment with its cut points handled, parent, the
# fragment's atoms in it, radius, size) -> dict. "morgan_parent" counts the environments centred
# on the fragment's atoms, taken in the parent molecule; "atompair_parent" the fragment's share of
# the parent's atom pairs (see _atom_pairs_parent).
_COUNT_FINGERPRINTS = {
    "morgan_parent": lambda frag, parent, atoms, radius, size: _morgan(radius, size)
    .GetCountFingerprint(parent, fromAtoms=list(atoms)).GetNonzeroElements(),
    "morgan_atoms": lambda frag, parent, atoms, radius, size: _morgan_atoms(parent, atoms, radius, size),
    "morgan": lambda frag, parent, atoms, radius, size: _morgan(radius, size)
    .GetCountFingerprint(frag).GetNonzeroElements(),
    "atompair_parent": lambda frag, parent, atoms, radius, size: _atom_pairs_parent(parent, atoms, size),
}
COUNT_FINGERPRINTS = tuple(_COUNT_FINGERPRINTS)
# Sets treated as counts: nonnegative and additive over atoms, so kept sparse and unscaled, and
# fit for the MinMax kernel.
COUNT_LIKE = COUNT_FINGERPRINTS + ("physchem_atoms",)
# Sets described in the parent molecule: they need it and the fragment's atom indices.
_PARENT_SETS = {"morgan_parent", "morgan_atoms", "atompair_parent", "physchem_atoms"}
# Sets whose sum over a molecule's fragments follows from the fragments' atoms alone (no cut-out
# fragment needed): describe_summed adds them up from the atom partition.
SUMMABLE_OVER_FRAGMENTS = ("morgan_parent", "morgan_atoms", "atompair_parent", "physchem_atoms")
# ... and those whose sum is the whole molecule's, so that no cut is needed at all.
WHOLE_OVER_FRAGMENTS = ("morgan_atoms", "atompair_parent", "physchem_atoms")


def _dense_counts(counts: dict, size: int) -> np.ndarray:
    values = np.zeros(size, dtype=np.float64)
    values[np.fromiter(counts, np.int64, len(counts))] = np.fromiter(counts.values(), np.float64,
                                                                      len(counts))
    return values


# Every set maps (fragment with its cut points handled, parent, atoms, radius, size) to a vector.
# The fragment is None when only sets described in the parent are asked for.
DESCRIPTORS_2D = {
    **{kind: (lambda *args, f=f: _dense_counts(f(*args), args[-1]))
       for kind, f in _COUNT_FINGERPRINTS.items()},
    "physchem_atoms": lambda frag, parent, atoms, *_: _physchem_atoms(parent, atoms),
    "rdkit2d": lambda frag, *_: _rdkit_2d(frag),
    "pharmacophore": lambda frag, *_: _pharmacophore_2d(frag),
}

_SHAPE = ("CalcPMI1", "CalcPMI2", "CalcPMI3", "CalcNPR1", "CalcNPR2", "CalcRadiusOfGyration",
          "CalcAsphericity", "CalcEccentricity", "CalcInertialShapeFactor",
          "CalcSpherocityIndex", "CalcPBF")

DESCRIPTORS_3D = {
    "shape": lambda m, c: np.array([getattr(rdMolDescriptors, f)(m, confId=c) for f in _SHAPE]),
    "autocorr3d": lambda m, c: np.array(rdMolDescriptors.CalcAUTOCORR3D(m, confId=c)),
    "rdf": lambda m, c: np.array(rdMolDescriptors.CalcRDF(m, confId=c)),
    "morse": lambda m, c: np.array(rdMolDescriptors.CalcMORSE(m, confId=c)),
    "whim": lambda m, c: np.array(rdMolDescriptors.CalcWHIM(m, confId=c)),
    "getaway": lambda m, c: np.array(rdMolDescriptors.CalcGETAWAY(m, confId=c)),
    "usr": lambda m, c: np.array(rdMolDescriptors.GetUSR(m, confId=c)),
    "usrcat": lambda m, c: np.array(rdMolDescriptors.GetUSRCAT(m, confId=c)),
    "pharmacophore3d": _pharmacophore_3d,
}


def descriptor_names(kind: str, radius: int = 2, size: int = 2048) -> list[str]:
    """Column names of one descriptor set."""
    if kind == "atompair_parent":
        return [f"{kind}_{i}" for i in range(size)]
    if kind in COUNT_FINGERPRINTS:
        return [f"{kind}{radius}_{i}" for i in range(size)]
    if kind == "physchem_atoms":
        return list(PHYSCHEM_COLUMNS)
    if kind == "rdkit2d":
        return [name for name, _ in _RDKIT_2D]
    if kind in ("pharmacophore", "pharmacophore3d"):
        bins = _TOPO_BINS if kind == "pharmacophore" else _DIST_BINS
        pairs = [f"{_FAMILIES[a]}-{_FAMILIES[b]}@{lo}" for a, b in _PAIRS for lo in bins]
        return [f"{kind}:{f}" for f in _FAMILIES] + [f"{kind}:{p}" for p in pairs]
    if kind == "shape":
        return [f.removeprefix("Calc") for f in _SHAPE]
    if kind in DESCRIPTORS_3D:
        probe = Chem.AddHs(Chem.MolFromSmiles("CCO"))
        from rdkit.Chem import AllChem

        AllChem.EmbedMolecule(probe, randomSeed=1)
        return [f"{kind}_{i}" for i in range(len(DESCRIPTORS_3D[kind](probe, -1)))]
    raise ValueError(f"unknown descriptor set {kind!r}")


def _finite(values: np.ndarray, names_of) -> tuple[np.ndarray, list[str]]:
    if values.dtype.kind in "iu":  # counts are always finite
        return values, []
    bad = ~np.isfinite(values)
    if not bad.any():
        return values, []
    names = names_of()
    return np.where(bad, 0.0, values), [names[i] for i in np.flatnonzero(bad)]


def keep_dummies(mol: Chem.Mol) -> Chem.Mol:
    """The fragment with its dummy atoms, property cache and ring information initialised."""
    mol = Chem.Mol(mol)
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    return mol


DUMMY_HANDLING = {"keep": keep_dummies, "cap": cap_dummies}


def _check_fragment_args(kinds: Sequence[str], dummy_atoms: str, parent, atoms) -> None:
    if dummy_atoms not in DUMMY_HANDLING:
        raise ValueError(f"dummy_atoms must be 'keep' or 'cap', got {dummy_atoms!r}")
    unknown = [k for k in kinds if not is_custom(k) and k not in DESCRIPTORS_2D]
    if unknown:
        raise ValueError(f"unknown 2-D descriptor set {unknown[0]!r}; choose from {sorted(DESCRIPTORS_2D)}")
    needs_parent = sorted(_PARENT_SETS & {k for k in kinds if isinstance(k, str)})
    if needs_parent and (parent is None or atoms is None):
        raise ValueError(f"the {needs_parent[0]!r} descriptors need the parent molecule and the "
                         "fragment's atom indices")


def _cut_out(mol: Chem.Mol, kinds: Sequence[str], dummy_atoms: str) -> Chem.Mol | None:
    # Only the sets that describe the fragment cut out need its cut points handled.
    return None if all(k in _PARENT_SETS for k in kinds) else DUMMY_HANDLING[dummy_atoms](mol)


def _dense_set(kind, capped: Chem.Mol | None, parent, atoms, radius: int, size: int
               ) -> tuple[np.ndarray, list[str]]:
    """One fragment's values of one set (named or custom), non-finite values set to 0."""
    if is_custom(kind):
        values = describe_custom(kind, capped, parent, atoms)
        return _finite(values, lambda: [f"{custom_name(kind)}_{i}" for i in range(len(values))])
    return _finite(DESCRIPTORS_2D[kind](capped, parent, atoms, radius, size),
                   lambda: descriptor_names(kind, radius, size))


def describe_fragment(mol: Chem.Mol, kinds: Sequence[str], radius: int = 2, size: int = 2048,
                      dummy_atoms: str = "keep", parent: Chem.Mol | None = None,
                      atoms: Sequence[int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Concatenated 2-D descriptor sets of one fragment.

    ``parent`` and ``atoms`` (the fragment's atom indices in it) are needed by
    ``"morgan_parent"``. Returns the vector and the names of values that were not finite (set
    to 0).
    """
    _check_fragment_args(kinds, dummy_atoms, parent, atoms)
    capped = _cut_out(mol, kinds, dummy_atoms)
    parts, issues = [], []
    for kind in kinds:
        values, bad = _dense_set(kind, capped, parent, atoms, radius, size)
        parts.append(values)
        issues += bad
    return (parts[0] if len(parts) == 1 else np.concatenate(parts, dtype=np.float64)), issues


def describe_fragments_sparse(fragments: Sequence, parent: Chem.Mol, kinds: Sequence[str],
                              radius: int = 2, size: int = 2048, dummy_atoms: str = "keep",
                              time_limit: TimeLimit | None = None) -> tuple[sp.csr_matrix, list[str]]:
    """One CSR bag (a row per fragment) of the same values as :func:`describe_fragment`.

    Count fingerprints go straight from RDKit's sparse vectors into the matrix, which keeps
    wide fingerprints cheap. ``fragments`` are :class:`qsarmil.fragments.Fragment` objects of
    ``parent``. Issues are reported as "instance k: name". ``time_limit`` (the molecule's
    running budget) is checked before each fragment (:class:`~qsarmil.conformers.TimeLimitError`).
    """
    _check_fragment_args(kinds, dummy_atoms, parent, ())
    indptr, indices, data, issues, width = [0], [], [], [], 0
    for k, frag in enumerate(fragments):
        if time_limit is not None:
            time_limit.check(f"describing fragments ({k} of {len(fragments)} done)")
        capped = _cut_out(frag.mol, kinds, dummy_atoms)
        offset = stored = 0
        for kind in kinds:
            if kind in _COUNT_FINGERPRINTS:
                items = _COUNT_FINGERPRINTS[kind](capped, parent, frag.atoms, radius, size)
                cols, values, n = np.fromiter(items, np.int64), np.fromiter(items.values(), np.float32), size
            else:
                dense, bad = _dense_set(kind, capped, parent, frag.atoms, radius, size)
                cols, n = np.flatnonzero(dense), len(dense)
                values = dense[cols]
                issues += [f"instance {k}: {name}" for name in bad]
            indices.append(cols + offset)
            data.append(values.astype(np.float32))
            offset += n
            stored += len(cols)
        indptr.append(indptr[-1] + stored)
        width = offset
    bag = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr),
                        shape=(len(fragments), width))
    bag.sort_indices()
    return bag, issues


def describe_summed(parent: Chem.Mol, parts: Sequence[tuple[int, ...]], kinds: Sequence[str],
                    radius: int = 2, size: int = 2048,
                    time_limit: TimeLimit | None = None) -> sp.csr_matrix:
    """One CSR row: the sum of :func:`describe_fragments_sparse`'s rows for fragments whose
    parent atoms are ``parts`` (a partition of ``parent``'s atoms), computed without the
    fragments. ``kinds``: sets in ``SUMMABLE_OVER_FRAGMENTS`` only.

    ``"morgan_parent"`` counts are summed part by part (each part drops its own duplicate
    environments, as its fragment does); the other sets are the whole molecule's.
    ``time_limit`` (the molecule's running budget) is checked before each part and set.
    """
    not_summable = [k for k in kinds if k not in SUMMABLE_OVER_FRAGMENTS]
    if not_summable:
        raise ValueError(f"{not_summable[0]!r} descriptors do not add up over fragments")
    indices, data, offset = [], [], 0
    check = time_limit.check if time_limit is not None else (lambda what: None)
    whole = range(parent.GetNumAtoms())
    for kind in kinds:
        check(f"describing the molecule ({kind})")
        if kind == "morgan_parent":
            counts = Counter()
            for k, atoms in enumerate(parts):
                check(f"describing fragments ({k} of {len(parts)} done)")
                counts.update(_COUNT_FINGERPRINTS[kind](None, parent, atoms, radius, size))
            width = size
        elif kind in _COUNT_FINGERPRINTS:
            counts, width = _COUNT_FINGERPRINTS[kind](None, parent, whole, radius, size), size
        else:  # atom-additive values: the whole molecule's
            dense = DESCRIPTORS_2D[kind](None, parent, whole, radius, size)
            counts, width = {int(i): float(dense[i]) for i in np.flatnonzero(dense)}, len(dense)
        indices.append(np.fromiter(counts, np.int64, len(counts)) + offset)
        data.append(np.fromiter(counts.values(), np.float64, len(counts)))
        offset += width
    row = sp.csr_matrix((np.concatenate(data).astype(np.float32), np.concatenate(indices),
                         [0, sum(map(len, data))]), shape=(1, offset))
    row.sort_indices()
    return row


def describe_conformer(mol: Chem.Mol, conf_id: int, kinds: Sequence[str]
                       ) -> tuple[np.ndarray, list[str]]:
    """Concatenated 3-D descriptor sets of one conformer (``mol`` with explicit Hs)."""
    parts, issues = [], []
    for kind in kinds:
        if kind not in DESCRIPTORS_3D:
            raise ValueError(f"unknown 3-D descriptor set {kind!r}; choose from {sorted(DESCRIPTORS_3D)}")
        values, bad = _finite(np.asarray(DESCRIPTORS_3D[kind](mol, conf_id), dtype=np.float64),
                              lambda k=kind: descriptor_names(k))
        parts.append(values)
        issues += bad
    return np.concatenate(parts), issues
