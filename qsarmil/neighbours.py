"""Nearest training molecules: who they are, how alike, what was measured.

The similarity is the applicability domain's (:mod:`qsarmil.domain`): Tanimoto on 2048-bit
Morgan fingerprints (radius 2) of the standardised molecules, whose training fingerprints the
domain already holds; this module keeps, row for row with them, each training molecule's ID,
input SMILES, measured value, out-of-fold absolute error (regression) and a structure key (its
canonical standardised SMILES), so that "in training set" means the same standardised
structure, not merely similarity 1.

The saved state is plain JSON (:meth:`TrainingNeighbours.to_dict`), checked in full by
:meth:`TrainingNeighbours.from_dict` against the number of training molecules before anything
is built from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from rdkit import Chem

from milearn_core.persist import ModelFileError
from milearn_core.safe_state import is_finite_number, is_utf8_text

__all__ = ["TrainingNeighbours", "nearest", "structure_key"]

MAX_TEXT = 500  # characters of one stored ID or SMILES
_CHUNK = 1000  # query rows compared with the training set at a time: memory ~ chunk x n_train
_CHUNK_CELLS = 16_000_000  # ... and at most this many similarities (128 MB) at a time


def structure_key(mol: Chem.Mol) -> str:
    """Canonical isomeric SMILES of a standardised molecule (hydrogens removed)."""
    return Chem.MolToSmiles(Chem.RemoveHs(mol))


def nearest(train: sp.csr_matrix, queries: sp.csr_matrix, k: int, exclude_self: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of ``train`` for each row of ``queries`` (Tanimoto on 0/1
    rows), most similar first.

    Parameters
    ----------
    train, queries : csr_matrix with the same number of columns
    k : int
        Neighbours per query (at most the training rows available).
    exclude_self : bool
        ``queries`` is ``train``: leave each row out of its own neighbours.

    Returns
    -------
    indices : ndarray of int, shape (n_queries, k)
    similarities : ndarray of float, shape (n_queries, k)
    """
    n_train = train.shape[0] - (1 if exclude_self else 0)
    k = max(0, min(k, n_train))
    on_train = np.diff(train.indptr).astype(np.float64)
    on_query = np.diff(queries.indptr).astype(np.float64)
    train_t = train.T.tocsr()
    out_i = np.zeros((queries.shape[0], k), dtype=np.int64)
    out_s = np.zeros((queries.shape[0], k))
    # A domain may hold up to a million molecules: fewer query rows at a time, not more memory.
    chunk = max(1, min(_CHUNK, _CHUNK_CELLS // max(train.shape[0], 1)))
    for lo in range(0, queries.shape[0], chunk):
        hi = min(lo + chunk, queries.shape[0])
        sim = (queries[lo:hi] @ train_t).toarray().astype(np.float64)  # bits in common
        union = on_query[lo:hi, None] + on_train[None, :] - sim
        sim /= np.maximum(union, 1.0)  # in place; a union of 0 has 0 in common: similarity 0
        if exclude_self:
            sim[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        if k == 0:
            continue
        if k == 1:  # the domain's nearest molecule: no partition needed
            top = sim.argmax(axis=1)[:, None]
            out_i[lo:hi], out_s[lo:hi] = top, np.take_along_axis(sim, top, axis=1)
            continue
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        order = np.lexsort((top, -top_sim), axis=1)  # most similar first; ties by index
        out_i[lo:hi] = np.take_along_axis(top, order, axis=1)
        out_s[lo:hi] = np.take_along_axis(top_sim, order, axis=1)
    return out_i, out_s


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(f"training neighbours: {message}")


def _texts(value: object, n: int, what: str) -> list[str]:
    _check(isinstance(value, list) and len(value) == n, f"{what}: a list of {n} texts")
    _check(all(is_utf8_text(v) and len(v) <= MAX_TEXT for v in value),
           f"{what}: UTF-8 texts of at most {MAX_TEXT} characters")
    return value


def _numbers(value: object, n: int, what: str, allow_nan: bool = False) -> np.ndarray:
    _check(isinstance(value, list) and len(value) == n, f"{what}: a list of {n} numbers")
    _check(all(is_finite_number(v) or (allow_nan and v is None) for v in value),
           f"{what}: finite numbers")
    return np.array([math.nan if v is None else float(v) for v in value], dtype=np.float64)


class TrainingNeighbours:
    """The training molecules, row for row with the domain's fingerprints.

    Attributes
    ----------
    ids_, smiles_, keys_ : list of str
        Each training molecule's ID (the input row where none was given), input SMILES, and
        structure key (:func:`structure_key`).
    measured_ : list
        Measured values: floats (regression) or class labels as text.
    errors_ : ndarray or None
        Regression: absolute out-of-fold error of each training molecule.
    """

    def fit(self, ids: Sequence[str], smiles: Sequence[str], keys: Sequence[str],
            measured: Sequence, errors: np.ndarray | None = None) -> TrainingNeighbours:
        self.ids_ = [str(i)[:MAX_TEXT] for i in ids]
        self.smiles_ = [str(s)[:MAX_TEXT] for s in smiles]
        self.keys_ = [str(k)[:MAX_TEXT] for k in keys]
        self.measured_ = list(measured)
        self.errors_ = None if errors is None else np.asarray(errors, dtype=np.float64)
        if len({len(self.ids_), len(self.smiles_), len(self.keys_), len(self.measured_)}) != 1:
            raise ValueError("ids, smiles, keys and measured values must align")
        self._index = None
        return self

    def __len__(self) -> int:
        return len(self.ids_)

    def training_row(self, key: str) -> int | None:
        """The training molecule with this structure key, if any (the first such)."""
        if getattr(self, "_index", None) is None:
            self._index = {}
            for i, k in enumerate(self.keys_):
                self._index.setdefault(k, i)
        return self._index.get(key)

    def to_dict(self) -> dict:
        numeric = all(isinstance(v, (int, float, np.floating)) for v in self.measured_)
        return {"ids": self.ids_, "smiles": self.smiles_, "keys": self.keys_,
                "measured": ([float(v) for v in self.measured_] if numeric
                             else [str(v) for v in self.measured_]),
                "errors": None if self.errors_ is None else self.errors_.tolist()}

    @classmethod
    def from_dict(cls, state: object, n_molecules: int, numeric: bool) -> TrainingNeighbours:
        """Rebuild from :meth:`to_dict` output (untrusted), exactly ``n_molecules`` rows;
        ``numeric``: measured values must be numbers (regression), else class labels."""
        _check(isinstance(state, dict)
               and set(state) == {"ids", "smiles", "keys", "measured", "errors"}, "state keys")
        ids = _texts(state["ids"], n_molecules, "ids")
        smiles = _texts(state["smiles"], n_molecules, "smiles")
        keys = _texts(state["keys"], n_molecules, "keys")
        measured = state["measured"]
        _check(isinstance(measured, list) and len(measured) == n_molecules, "measured values")
        if numeric:
            measured = _numbers(measured, n_molecules, "measured values").tolist()
        else:
            measured = _texts(measured, n_molecules, "measured labels")
        errors = state["errors"]
        if errors is not None:
            errors = _numbers(errors, n_molecules, "errors")
            _check(bool(np.all(errors >= 0)), "errors must be nonnegative")
        return cls().fit(ids, smiles, keys, measured, errors)
