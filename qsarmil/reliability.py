"""How sure is each prediction: an interval (or a conformal class set), the expected error,
the nearest training molecules, and a domain flag that says why in words.

Fitted by :class:`~qsarmil.model.QSARModel` on its own training molecules:

- Out-of-fold predictions of every training molecule (:func:`milearn_core.uncertainty.out_of_fold`):
  exact leave-one-out for the kernel models (free with the fit), 5-fold refits otherwise.
- Regression: normalised conformal intervals. A molecule's difficulty is the mean out-of-fold
  absolute error of its ``K_DIFFICULTY`` nearest training molecules (similarity weighted),
  raised up to twofold as its nearest training molecule gets less similar
  (:func:`milearn_core.uncertainty.neighbour_difficulty`); training molecules get theirs with
  themselves left out, so their scores are out-of-sample too. The expected error is the half
  width of the 50 % interval (half of such predictions err by less).
  Chosen on training data only (leave-one-out errors of the default model on solubility,
  FreeSolv and 6 MoleculeACE sets): against intervals of one width, the 90 % intervals'
  mean training width was 1.00x with 10 neighbours and a floor of 0.1 x the median error,
  0.97x with 20, 0.96x with the similarity factor, 0.95x with a floor of 0.5 x the median
  (kept); 30 or 50 neighbours gained under 0.01 more.
  Mondrian by nearest-neighbour similarity: where the training set is large enough
  (``SIMILARITY_BINS`` bins of at least ``MIN_PER_BIN`` molecules), the training molecules
  are split into bins by their nearest training molecule's similarity (tertiles) and each
  bin gets its own quantile. One quantile for all covered the thirds unevenly on the
  training molecules themselves: leave-one-out, at 90 %, 0.873 / 0.910 / 0.920 from the least
  to the most similar third on average over the 32 bundled regression sets, the least similar
  third lowest on 27 of them; so the level held on average but not for molecules with distant
  neighbours. (The idea came from the two sets whose test coverage fell below 0.85 with one
  quantile, whose test coverage per bin was looked at; the edges and bin sizes were not tuned.)
- Classification: class-conditional conformal prediction sets on out-of-fold probabilities.
- Above ``MAX_REFERENCE`` training molecules, the domain, the neighbour search and the
  calibration use a seeded sample of that many (:func:`reference_rows`); "in training set"
  and the nearest molecules then refer to that sample. A model fitted on landmarks
  (:mod:`milearn_core.estimators.approx`) leaves its landmarks out of the sample.
- The domain flag: :class:`~qsarmil.domain.ApplicabilityDomain`'s similarity and
  environment checks, plus (regression) an expected error above the 90th percentile of the
  training molecules' own, with each reason written out in ``domain_note``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rdkit import Chem

from milearn_core.persist import ModelFileError
from milearn_core.uncertainty import IntervalCalibrator, SetCalibrator, neighbour_difficulty, out_of_fold

from .domain import ApplicabilityDomain
from .neighbours import TrainingNeighbours, nearest, structure_key

__all__ = ["Reliability", "K_DIFFICULTY", "FLAG_QUANTILE", "MAX_REFERENCE", "reference_rows",
           "structure_keys"]

FORMAT = "qsarmil.reliability"
VERSION = 2  # 2: Mondrian similarity bins ("similarity_edges"); 1 still loads (one bin)
K_DIFFICULTY = 20  # neighbours whose errors set a molecule's difficulty
SIMILARITY_BINS = 3  # Mondrian bins by the nearest training molecule's similarity
MIN_PER_BIN = 100  # training molecules a bin needs; fewer in any bin: one bin for all
MAX_EDGES = 15
FLOOR = 0.5  # x the median out-of-fold error, added to every difficulty
FLAG_QUANTILE = 0.9  # expected errors above this quantile of the training molecules' are flagged
MAX_NEIGHBOURS_SHOWN = 20
# Training molecules searched for neighbours and held by the domain: the search is O(n) per
# scored molecule and O(n^2) at fit (100 000 molecules: 10^10 similarities), so larger sets
# keep a seeded sample of this many (calibration needs far fewer).
MAX_REFERENCE = 10_000


def reference_rows(n_molecules: int, limit: int | None = None,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """The training rows the domain and the neighbour search hold: all up to ``limit``
    (default ``MAX_REFERENCE``), above it a seeded sample of ``limit``, in training order.

    ``exclude``: rows left out, e.g. a landmark model's landmarks, whose leave-one-out errors
    are pessimistic (their own basis function stays in the model); the others' are ordinary
    leave-one-out errors, as calibration needs.
    """
    limit = MAX_REFERENCE if limit is None else limit
    rows = np.arange(n_molecules) if exclude is None else np.setdiff1d(np.arange(n_molecules), exclude)
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(0).choice(rows, limit, replace=False))


def _similarity_edges(similarity: np.ndarray) -> list[float]:
    """Bin edges (tertiles) of the training molecules' nearest-neighbour similarity, or []
    where any of the ``SIMILARITY_BINS`` bins would hold fewer than ``MIN_PER_BIN``."""
    if similarity.shape[1] == 0 or len(similarity) < SIMILARITY_BINS * MIN_PER_BIN:
        return []
    nearest_similarity = similarity[:, 0]
    edges = np.quantile(nearest_similarity, np.arange(1, SIMILARITY_BINS) / SIMILARITY_BINS)
    counts = np.bincount(np.digitize(nearest_similarity, edges), minlength=SIMILARITY_BINS)
    return [float(e) for e in edges] if counts.min() >= MIN_PER_BIN else []


def _level(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"interval level must be a number between 0 and 1 (e.g. 0.9), got {value!r}")
    return float(value)


def structure_keys(provenance: Sequence) -> list[str]:
    """Each bagged molecule's :func:`~qsarmil.neighbours.structure_key`, taken from its
    provenance where the bagger already wrote it (whole-molecule and conformer bags)."""
    keys = []
    for p in provenance:
        whole = len(p.instance_smiles) == 1 and len(p.atoms) == 1 \
            and len(p.atoms[0]) == p.mol.GetNumAtoms()
        keys.append(p.instance_smiles[0] if whole and not p.conformer_ids
                    else structure_key(p.mol))
    return keys


class Reliability:
    """Intervals or sets, expected errors, neighbours and domain notes for one model.

    Parameters
    ----------
    level : float
        Default interval / set level (0.9: 90 %).
    n_neighbours : int
        Nearest training molecules listed per prediction.
    """

    def __init__(self, level: float = 0.9, n_neighbours: int = 3):
        self.level = _level(level)
        if isinstance(n_neighbours, bool) or not isinstance(n_neighbours, int) \
                or not 0 <= n_neighbours <= MAX_NEIGHBOURS_SHOWN:
            raise ValueError(f"n_neighbours must be an integer in [0, {MAX_NEIGHBOURS_SHOWN}], "
                             f"got {n_neighbours!r}")
        self.n_neighbours = n_neighbours

    def fit(self, estimator, bags: list, y: np.ndarray, domain: ApplicabilityDomain,
            keys: Sequence[str], ids: Sequence[str], smiles: Sequence[str],
            cv: int = 5, rows: np.ndarray | None = None) -> Reliability:
        """Calibrate on the training molecules (row for row with ``bags`` and ``y``;
        ``keys``, ``ids`` and ``smiles``: the domain's molecules, row for row with its
        fingerprints; ``keys``: their :func:`structure_keys`).

        ``rows``: the training rows the domain holds (:func:`reference_rows`; default all):
        calibration, neighbours and the flag's limit come from them.
        """
        rows = np.arange(len(bags)) if rows is None else np.asarray(rows)
        if domain.n_molecules_ != len(rows):
            raise ValueError("the domain must hold the reference molecules, row for row")
        oof = out_of_fold(estimator, bags, y, cv=cv)[rows]
        y = np.asarray(y)[rows]
        self.k_difficulty_ = K_DIFFICULTY
        self.classes_ = getattr(estimator, "classes_", None)
        if self.classes_ is None:
            y = np.asarray(y, dtype=np.float64)
            errors = np.abs(y - oof)
            self.floor_ = FLOOR * float(np.median(errors)) + 1e-9
            train = domain.fingerprints_  # each training molecule left out of its own neighbours
            index, similarity = nearest(train, train, self.k_difficulty_, exclude_self=True)
            difficulty = self._difficulty(errors, index, similarity)
            self.similarity_edges_ = _similarity_edges(similarity)
            groups = self._groups(similarity)
            self.intervals_ = IntervalCalibrator().fit(y - oof, difficulty, groups)
            expected = self.intervals_.half_width(0.5, difficulty, groups)
            self.error_threshold_ = float(np.quantile(expected, FLAG_QUANTILE))
            self.sets_ = None
            measured = y.tolist()
        else:
            code_of = {c: i for i, c in enumerate(self.classes_.tolist())}
            codes = np.array([code_of[v] for v in np.asarray(y).tolist()])
            self.sets_ = SetCalibrator().fit(oof, codes)
            self.intervals_, self.floor_, self.error_threshold_, errors = None, None, None, None
            self.similarity_edges_ = []
            measured = [str(v) for v in np.asarray(y).tolist()]
        self.neighbours_ = TrainingNeighbours().fit(ids, smiles, keys, measured, errors)
        return self

    def _difficulty(self, errors: np.ndarray, index: np.ndarray, similarity: np.ndarray
                    ) -> np.ndarray:
        """Difficulty from the nearest training molecules (``index``, ``similarity``: most
        similar first; the first ``k_difficulty_`` count), 1 where there are none."""
        k = self.k_difficulty_
        if index.shape[1] == 0:
            return np.ones(len(index))
        return neighbour_difficulty(errors[index[:, :k]], similarity[:, :k], self.floor_)

    def _groups(self, similarity: np.ndarray) -> np.ndarray | None:
        """Each molecule's Mondrian bin by its nearest training molecule's similarity (None
        with one bin, or without neighbours)."""
        if not self.similarity_edges_ or similarity.shape[1] == 0:
            return None
        return np.digitize(similarity[:, 0], self.similarity_edges_)

    def columns(self, mols: Sequence[Chem.Mol], keys: Sequence[str], domain: ApplicabilityDomain,
                predictions: np.ndarray, probabilities: np.ndarray | None,
                domain_table: dict, level: float | None = None, units: str = "",
                found: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
        """The reliability columns for scored molecules (``mols`` standardised, row for row
        with their ``keys`` and ``predictions``; ``domain_table``: the domain's columns for
        these rows; ``found``: ``domain.search(mols, self.neighbours_needed())`` where the
        caller has it)."""
        level = self.level if level is None else _level(level)
        n = len(mols)
        needed = self.neighbours_needed()
        index, similarity = domain.search(mols, needed) if found is None else found
        index, similarity = index[:, :needed], similarity[:, :needed]
        table = self.neighbours_
        out: dict = {}
        reasons: list[list[str]] = [[] for _ in range(n)]
        in_domain = np.asarray(domain_table["in_domain"], dtype=bool).copy()
        if self.intervals_ is not None:
            difficulty = self._difficulty(table.errors_, index, similarity)
            groups = self._groups(similarity)
            low, high = self.intervals_.interval(predictions, level, difficulty, groups)
            expected = self.intervals_.half_width(0.5, difficulty, groups)
            out.update(prediction_lower=low, prediction_upper=high,
                       interval_level=np.full(n, level), expected_error=expected)
            too_uncertain = expected > self.error_threshold_
            in_domain &= ~too_uncertain
            for i in np.flatnonzero(too_uncertain):
                reasons[i].append(f"expected error {expected[i]:.2g}{' ' + units if units else ''} "
                                  f"above {self.error_threshold_:.2g} (the {FLAG_QUANTILE:.0%} "
                                  f"point of the training molecules' own)")
        else:
            sets = self.sets_.predict_sets(probabilities, level)
            out.update(prediction_set=np.array(
                           ["|".join(str(c) for c in self.classes_[row]) for row in sets], dtype=object),
                       set_size=sets.sum(axis=1).astype(np.int64), set_level=np.full(n, level))
        for i in range(n):
            sim, unseen = domain_table["max_similarity"][i], domain_table["unseen_fraction"][i]
            if sim < domain.min_similarity:
                reasons[i].insert(0, f"nearest training molecule at similarity {sim:.2f} "
                                     f"(< {domain.min_similarity:.2f})")
            if unseen > domain.max_unseen_fraction:
                reasons[i].insert(0, f"{unseen:.0%} of its atom environments never seen in "
                                     f"training (> {domain.max_unseen_fraction:.0%})")
            if "prediction_in_range" in domain_table and not domain_table["prediction_in_range"][i]:
                reasons[i].append("prediction outside the training targets' range")
        rows = [table.training_row(key) for key in keys]
        numeric = self.intervals_ is not None
        out["in_domain"] = in_domain
        out["domain_note"] = np.array(["; ".join(r) for r in reasons], dtype=object)
        out["in_training_set"] = np.array([r is not None for r in rows], dtype=object)
        out["training_value"] = np.array(
            [(math.nan if numeric else None) if r is None else table.measured_[r] for r in rows],
            dtype=np.float64 if numeric else object)
        missing = math.nan if numeric else None
        for j in range(self.n_neighbours):
            rows_j = index[:, j].tolist() if j < index.shape[1] else None  # fewer training rows
            out[f"nearest_{j + 1}_id"] = np.array(
                [None] * n if rows_j is None else [table.ids_[i] for i in rows_j], dtype=object)
            out[f"nearest_{j + 1}_similarity"] = (np.full(n, np.nan) if rows_j is None
                                                  else similarity[:, j])
            out[f"nearest_{j + 1}_value"] = np.array(
                [missing] * n if rows_j is None else [table.measured_[i] for i in rows_j],
                dtype=np.float64 if numeric else object)
        return out

    def neighbours_needed(self) -> int:
        """Nearest training molecules :meth:`columns` looks at per molecule."""
        return max(self.n_neighbours, self.k_difficulty_ if self.intervals_ is not None else 0)

    def column_kinds(self) -> dict[str, bool]:
        """The names :meth:`columns` returns, in order, each with whether it holds floats
        (NaN where a molecule failed; the others hold None)."""
        numeric = self.intervals_ is not None
        first = ({"prediction_lower": True, "prediction_upper": True, "interval_level": True,
                  "expected_error": True} if numeric
                 else {"prediction_set": False, "set_size": False, "set_level": True})
        rest = {"in_domain": False, "domain_note": False, "in_training_set": False,
                "training_value": numeric}
        for j in range(1, self.n_neighbours + 1):
            rest.update({f"nearest_{j}_id": False, f"nearest_{j}_similarity": True,
                         f"nearest_{j}_value": numeric})
        return first | rest

    def column_names(self) -> list[str]:
        """The names :meth:`columns` returns, in order."""
        return list(self.column_kinds())

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "level": self.level,
                "n_neighbours": self.n_neighbours, "k_difficulty": self.k_difficulty_,
                "floor": self.floor_,
                "similarity_edges": list(self.similarity_edges_),
                "error_threshold": self.error_threshold_,
                "intervals": None if self.intervals_ is None else self.intervals_.to_dict(),
                "sets": None if self.sets_ is None else self.sets_.to_dict(),
                "neighbours": self.neighbours_.to_dict()}

    @classmethod
    def from_dict(cls, state: object, n_molecules: int, classes: np.ndarray | None) -> Reliability:
        """Rebuild from :meth:`to_dict` output (untrusted): every field checked, sized by the
        ``n_molecules`` the model was trained on; ``classes``: the classifier's (None for
        regression)."""
        def check(condition: bool, message: str) -> None:
            if not condition:
                raise ModelFileError(f"reliability: {message}")

        keys = {"format", "version", "level", "n_neighbours", "k_difficulty", "floor",
                "error_threshold", "intervals", "sets", "neighbours"}
        check(isinstance(state, dict) and type(state.get("version")) is int
              and state["version"] in (1, VERSION), "unknown format or version")
        if state["version"] >= 2:
            keys = keys | {"similarity_edges"}
        check(set(state) == keys, "state keys")
        check(state["format"] == FORMAT, "unknown format or version")
        try:
            model = cls(state["level"], state["n_neighbours"])
        except ValueError as exc:
            raise ModelFileError(f"reliability: {exc}") from None
        k = state["k_difficulty"]
        check(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 1000,
              "k_difficulty must be an integer in [1, 1000]")
        model.k_difficulty_, model.classes_ = k, classes
        model.neighbours_ = TrainingNeighbours.from_dict(state["neighbours"], n_molecules,
                                                         numeric=classes is None)
        if classes is None:
            for name in ("floor", "error_threshold"):
                value = state[name]
                check(isinstance(value, float) and math.isfinite(value) and value > 0,
                      f"{name} must be a positive number")
            check(state["sets"] is None and model.neighbours_.errors_ is not None,
                  "a regression model holds intervals and errors, no sets")
            model.floor_, model.error_threshold_ = state["floor"], state["error_threshold"]
            model.intervals_ = IntervalCalibrator.from_dict(state["intervals"], n_molecules)
            model.sets_ = None
            edges = state.get("similarity_edges", [])
            check(isinstance(edges, list) and len(edges) <= MAX_EDGES
                  and all(isinstance(e, float) and 0.0 <= e <= 1.0 for e in edges)
                  and edges == sorted(edges), f"similarity_edges: at most {MAX_EDGES} sorted "
                  "numbers in [0, 1]")
            groups = model.intervals_.group_scores_
            check(groups is not None and len(edges) + 1 == len(groups) if edges else groups is None,
                  "similarity_edges must match the interval groups")
            model.similarity_edges_ = edges
        else:
            check(state["intervals"] is None and state["floor"] is None
                  and state["error_threshold"] is None, "a classifier holds sets only")
            check(state.get("similarity_edges", []) == [], "a classifier has no similarity bins")
            model.sets_ = SetCalibrator.from_dict(state["sets"], len(classes), n_molecules)
            model.similarity_edges_ = []
            model.intervals_, model.floor_, model.error_threshold_ = None, None, None
        return model
