"""Applicability domain: is a molecule like the training molecules, is a prediction in range?

Two numbers per molecule, both from RDKit Morgan fingerprints (radius 2):

- ``max_similarity``: the largest Tanimoto similarity (2048-bit fingerprints) to any training
  molecule;
- ``unseen_fraction``: the share of the molecule's atom environments (radius 0-2, counted
  with multiplicity: unhashed Morgan count keys) that no training molecule has. The atom
  invariants are RDKit's connectivity (ECFP) invariants plus the size of the atom's smallest
  ring, so a ring size never seen in training (a macrocycle) counts as new.

A molecule is ``in_domain`` when ``max_similarity >= min_similarity`` (default 0.3) and
``unseen_fraction <= max_unseen_fraction`` (default 0.25). Chosen on the bundled solubility
set (domain fitted on its 1025 training molecules, default fragment model): 28 of the 257 test
molecules (10.9 %) are flagged; their test RMSE is 1.08 against 0.65 for the others (0.71 in
all). A limit of 0.2 flagged 16 % for a smaller gap (0.93 / 0.66); 0.4 flagged 8.6 %.
18-crown-6 is flagged: its max similarity is 0.56 (to linear polyethers), but every one of its
environments sits in an 18-membered ring, never seen in training (unseen_fraction 1.0).
Separately, :meth:`ApplicabilityDomain.prediction_in_range` flags predictions outside the
training targets' range (18-crown-6 is predicted at +3.0 logS; the training maximum is 1.58).

Pass the molecules the model sees (after standardisation), for fitting and scoring alike.
The fitted state is plain JSON (:meth:`~ApplicabilityDomain.to_dict`), checked in full by
:meth:`~ApplicabilityDomain.from_dict`, so it can travel inside an untrusted model folder. In
memory it costs what the file holds, not what it declares: fingerprints are one sparse matrix
(a stored entry per on-bit, so an empty fingerprint costs one row pointer, whatever ``n_bits``)
and environments one sorted array of 64-bit keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from milearn_core.persist import ModelFileError
from milearn_core.safe_state import is_finite_number

from .neighbours import nearest

__all__ = ["ApplicabilityDomain", "MIN_SIMILARITY", "MAX_UNSEEN_FRACTION"]

MIN_SIMILARITY = 0.3
MAX_UNSEEN_FRACTION = 0.25
FORMAT = "qsarmil.domain"
VERSION = 1
MAX_MOLECULES = 1_000_000      # training molecules a saved domain may hold
MAX_ENVIRONMENTS = 20_000_000  # distinct training environments a saved domain may hold
_MAX_KEY = 2**64               # Morgan keys are unsigned 64-bit
_PARAMS = {"min_similarity": (0.0, 1.0), "max_unseen_fraction": (0.0, 1.0),
           "radius": (1, 4), "n_bits": (64, 16384)}


def _invariants(mol: Chem.Mol) -> list[int]:
    """ECFP connectivity invariants mixed with each atom's smallest ring size (0: no ring)."""
    rings = mol.GetRingInfo()
    return [(inv ^ (rings.MinAtomRingSize(i) * 0x9E3779B1)) & 0xFFFFFFFF
            for i, inv in enumerate(rdMolDescriptors.GetConnectivityInvariants(mol))]


def _environments(mol: Chem.Mol, generator) -> dict[int, int]:
    """Unhashed Morgan environment key -> count, on ring-size-aware invariants."""
    fp = generator.GetSparseCountFingerprint(mol, customAtomInvariants=_invariants(mol))
    return fp.GetNonzeroElements()


def _as_mols(molecules: Iterable) -> list[Chem.Mol | None]:
    """RDKit molecules from molecules or SMILES (None where a SMILES does not parse)."""
    return [Chem.MolFromSmiles(m) if isinstance(m, str) else m for m in molecules]


class ApplicabilityDomain(BaseEstimator):
    """Similarity- and environment-based applicability domain of a QSAR model.

    Parameters
    ----------
    min_similarity : float
        Lowest max-Tanimoto similarity to the training set that counts as in domain.
    max_unseen_fraction : float
        Largest share of never-seen atom environments that counts as in domain.
        (Defaults and the numbers behind them: see the module docstring.)
    radius, n_bits : int
        Morgan radius (environments of radius 0..radius) and bit-vector length.

    Attributes
    ----------
    fingerprints_ : scipy.sparse.csr_matrix of shape (n_molecules, n_bits)
        Training fingerprints, a stored 1 per on-bit (molecules that failed to parse are
        skipped).
    environments_ : ndarray of uint64
        Unhashed Morgan environment keys (ring-size-aware invariants) seen in training, sorted,
        each once.
    target_range_ : tuple of float or None
        (min, max) of the training targets, where given to :meth:`fit`.
    """

    def __init__(self, min_similarity: float = MIN_SIMILARITY,
                 max_unseen_fraction: float = MAX_UNSEEN_FRACTION, radius: int = 2,
                 n_bits: int = 2048):
        self.min_similarity = min_similarity
        self.max_unseen_fraction = max_unseen_fraction
        self.radius = radius
        self.n_bits = n_bits

    def _generator(self):
        return rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.n_bits)

    def fit(self, X: Sequence, y: Sequence[float] | None = None) -> ApplicabilityDomain:
        """Store the training molecules' fingerprints, environments and target range.

        ``X``: RDKit molecules or SMILES; ``y``: numeric training targets (optional).
        """
        generator = self._generator()
        mols = [m for m in _as_mols(X) if m is not None]
        if not mols:
            raise ValueError("no valid training molecule")
        self.fingerprints_ = self.fingerprint_rows(mols)
        environments = set()
        for m in mols:
            environments.update(_environments(m, generator))
        self.environments_ = _key_array(sorted(environments))
        self.target_range_ = None
        if y is not None:
            y = np.asarray(y, dtype=float)
            y = y[np.isfinite(y)]
            if len(y):
                self.target_range_ = (float(y.min()), float(y.max()))
        return self

    def fingerprint_rows(self, mols: Sequence[Chem.Mol]) -> sp.csr_matrix:
        """The molecules' fingerprints as the domain holds its training ones: a CSR matrix of
        ``n_bits`` columns, a stored 1 per on-bit (:func:`qsarmil.neighbours.nearest` compares
        them with ``fingerprints_``)."""
        generator = self._generator()
        return _bit_matrix([list(generator.GetFingerprint(m).GetOnBits()) for m in mols],
                           self.n_bits)

    def search(self, mols: Sequence[Chem.Mol], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` (at least 1) most similar training molecules of each molecule: indices
        and similarities, most similar first (:func:`qsarmil.neighbours.nearest`)."""
        check_is_fitted(self, "fingerprints_")
        return nearest(self.fingerprints_, self.fingerprint_rows(mols), max(1, k))

    def score(self, X: Sequence, predictions: Sequence[float] | None = None,
              found: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
        """One row per molecule: ``max_similarity``, ``unseen_fraction``, ``in_domain``
        (False for a molecule that does not parse), plus ``prediction_in_range`` when
        ``predictions`` are given. ``found``: :meth:`search` of these molecules, where the
        caller has it (the search is most of the cost)."""
        check_is_fitted(self, "fingerprints_")
        generator = self._generator()
        mols = list(_as_mols(X))
        usable = [i for i, m in enumerate(mols) if m is not None and m.GetNumAtoms() > 0]
        similarity, unseen = np.full(len(mols), math.nan), np.full(len(mols), math.nan)
        if usable:  # one batched search: per-molecule products cost 3x as much
            if found is None or len(usable) != len(mols):
                found = self.search([mols[i] for i in usable], 1)
            similarity[usable] = found[1][:, 0]
            unseen[usable] = [_unseen_fraction(self.environments_, _environments(mols[i], generator))
                              for i in usable]
        table = pd.DataFrame({"max_similarity": similarity, "unseen_fraction": unseen})
        table["in_domain"] = ((table.max_similarity >= self.min_similarity)
                              & (table.unseen_fraction <= self.max_unseen_fraction))
        if predictions is not None:
            if len(predictions) != len(table):
                raise ValueError(f"{len(predictions)} predictions for {len(table)} molecules")
            table["prediction_in_range"] = self.prediction_in_range(predictions)
        return table

    def prediction_in_range(self, predictions: Sequence[float], margin: float = 0.0
                            ) -> np.ndarray:
        """Whether each prediction lies within the training targets' range, widened by
        ``margin`` x the range's width on each side (all True when no targets were given;
        False for a missing or non-finite prediction)."""
        check_is_fitted(self, "fingerprints_")
        values = pd.to_numeric(pd.Series(list(predictions), dtype=object),
                               errors="coerce").to_numpy(dtype=float)
        if self.target_range_ is None:
            return np.ones(len(values), dtype=bool)
        low, high = self.target_range_
        pad = margin * (high - low)
        with np.errstate(invalid="ignore"):
            return np.isfinite(values) & (values >= low - pad) & (values <= high + pad)

    def to_dict(self) -> dict:
        """The fitted state as plain JSON-serialisable data."""
        check_is_fitted(self, "fingerprints_")
        return {"format": FORMAT, "version": VERSION,
                "params": {k: getattr(self, k) for k in _PARAMS},
                "fingerprints": [row.tolist() for row in np.split(
                    self.fingerprints_.indices, self.fingerprints_.indptr[1:-1])],
                "environments": self.environments_.tolist(),
                "target_range": list(self.target_range_) if self.target_range_ else None}

    @classmethod
    def from_dict(cls, state: object, max_molecules: int | None = None) -> ApplicabilityDomain:
        """Rebuild from :meth:`to_dict` output, checking every field, type, length and range.

        Parameters
        ----------
        state : object
            Parsed JSON, untrusted.
        max_molecules : int, optional
            Most training molecules the domain may hold (a model folder passes the number
            its model was trained on); at most :data:`MAX_MOLECULES` in any case.

        Raises
        ------
        ModelFileError
            If anything in ``state`` is missing, extra, of the wrong type or out of range.

        Notes
        -----
        Every size is checked against what ``state`` holds (each bit below ``n_bits``, the
        number of fingerprints against ``max_molecules``) before any array is built.
        """
        _check(isinstance(state, dict), "domain state must be an object")
        _check(set(state) == {"format", "version", "params", "fingerprints", "environments",
                              "target_range"}, f"domain state keys {sorted(state)!r}")
        _check(state["format"] == FORMAT and state["version"] == VERSION,
               "unknown domain format or version")
        params = _check_params(state["params"])
        rows = _check_fingerprints(state["fingerprints"], params["n_bits"], max_molecules)
        keys = _int_list(state["environments"], MAX_ENVIRONMENTS, _MAX_KEY, "environments")
        target_range = _load_range(state["target_range"])
        domain = cls(**params)  # everything checked: now build
        domain.fingerprints_ = _bit_matrix(rows, domain.n_bits)
        domain.environments_ = _key_array(keys)
        domain.target_range_ = target_range
        return domain

    @property
    def n_molecules_(self) -> int:
        """Number of training molecules the domain holds."""
        check_is_fitted(self, "fingerprints_")
        return self.fingerprints_.shape[0]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(f"applicability domain: {message}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return is_finite_number(value)


def _check_params(params: object) -> dict:
    _check(isinstance(params, dict) and set(params) == set(_PARAMS), "bad params")
    for name, (low, high) in _PARAMS.items():
        value = params[name]
        kind_ok = _is_int(value) if isinstance(low, int) else _is_number(value)
        _check(kind_ok and low <= value <= high, f"{name} must lie in [{low}, {high}]")
    return params


def _int_list(values: object, limit: int, high: int, what: str) -> list[int]:
    """A strictly increasing list of ints in [0, high), at most ``limit`` long."""
    _check(isinstance(values, list) and len(values) <= limit, f"{what}: a list of <= {limit}")
    _check(all(_is_int(v) and 0 <= v < high for v in values), f"{what}: ints in [0, {high})")
    _check(all(a < b for a, b in zip(values, values[1:])), f"{what}: not strictly increasing")
    return values


def _check_fingerprints(rows: object, n_bits: int, max_molecules: int | None) -> list:
    """The saved fingerprints' on-bit lists, checked: 1 to ``max_molecules`` (and at most
    MAX_MOLECULES) lists of strictly increasing bits below ``n_bits``."""
    _check(isinstance(rows, list) and 0 < len(rows) <= MAX_MOLECULES,
           f"fingerprints: a list of 1 to {MAX_MOLECULES} molecules")
    _check(max_molecules is None or len(rows) <= max_molecules,
           f"fingerprints of {len(rows)} molecules, more than the {max_molecules} the model "
           f"was trained on")
    for row in rows:
        _int_list(row, n_bits, n_bits, "fingerprint bits")
    return rows


def _bit_matrix(rows: Sequence[Sequence[int]], n_bits: int) -> sp.csr_matrix:
    """Fingerprints (lists of on-bits) as a CSR matrix: a stored 1 per on-bit, one row pointer
    per molecule; nothing is sized by ``n_bits``."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=indptr[1:])
    indices = np.fromiter(chain.from_iterable(rows), dtype=np.int32, count=int(indptr[-1]))
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                         shape=(len(rows), n_bits))


def _key_array(keys: Sequence[int]) -> np.ndarray:
    """Sorted environment keys (each below 2**64) as an array."""
    return np.fromiter(keys, dtype=np.uint64, count=len(keys))


def _unseen_fraction(known: np.ndarray, counts: dict[int, int]) -> float:
    """Share of the environment counts ``counts`` whose keys are not in the sorted ``known``."""
    keys = np.fromiter(counts, dtype=np.uint64, count=len(counts))
    values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    place = np.minimum(np.searchsorted(known, keys), max(len(known) - 1, 0))
    seen = known[place] == keys if len(known) else np.zeros(len(keys), dtype=bool)
    return float(values[~seen].sum() / values.sum())


def _load_range(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    _check(isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
           and value[0] <= value[1], "target_range: [min, max] of finite numbers")
    return float(value[0]), float(value[1])
