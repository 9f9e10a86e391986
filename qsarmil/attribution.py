"""Atom-level contributions and the reference they are measured from.

Atom level. The default fragment models see a molecule only through the sum of its instances
(:func:`~milearn_core.predicts_from_bag_sums`), and the in-parent count sets
(``"morgan_atoms"``, ``"atompair_parent"``, ``"physchem_atoms"``) count every Morgan
environment at its centre atom, half of every atom pair at each of its two atoms and every
atom-additive value at its atom. A bag with one instance per heavy atom therefore has the same
sum as the fragment bag, the same prediction, and contributions that split it exactly over the
atoms; a fragment's contribution is the sum of its atoms' (the kernel's share of each feature
goes to the instances in proportion to their counts, which add up).

Reference. Raw contributions add up to the prediction minus the model's intercept, a number
no chemist knows (on solubility 0.10, while the average training molecule is predicted -2.71,
so nearly every fragment "lowers logS"). Contributions are therefore stated relative to a
reference prediction: by default the mean prediction over the training molecules (as SHAP's
expected value), else the mean prediction of molecules the user names. The difference between
the reference and the intercept is spread over the molecule's atoms evenly (over its
instances in proportion to their atoms), so ``prediction = reference + sum of contributions``
holds exactly, for atoms and fragments alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from rdkit import Chem
from sklearn.base import clone, is_classifier

from milearn_core import predicts_from_bag_sums

from .columns import CHARGES
from .descriptors import WHOLE_OVER_FRAGMENTS, describe_fragments_sparse
from .feature_support import depends_on, feature_occurrences

__all__ = ["Reference", "atom_bag", "atom_contributions", "atom_level_available",
           "explanation_parts", "pair_atom_contributions", "pair_level_available",
           "reference_prediction", "relative_to_reference",
           "training_reference", "training_scale", "TRAINING_REFERENCE", "SCALE_QUANTILE", "CHARGES",
           "check_charge"]

TRAINING_REFERENCE = "mean training prediction"
SCALE_QUANTILE = 0.99  # the training atoms' |contribution| drawn at full colour
_REFERENCE_SAMPLE = 20_000
_SCALE_SAMPLE = 100    # training molecules (evenly spread) the scale is measured on


@dataclass(frozen=True)
class Reference:
    """The prediction contributions are measured from, and what it is.

    Attributes
    ----------
    value : float
        The reference prediction (target units; log-odds for classifiers).
    name : str
        What it is, for legends: ``"mean training prediction"``, ``"intercept"``,
        ``"reference CCO"`` or ``"mean of 12 reference molecules"``.
    """

    value: float
    name: str


def atom_level_available(model) -> bool:
    """Whether ``model`` (a fitted QSARModel) splits its predictions exactly over atoms.

    True for estimators that see bags only through their sums and give instance
    contributions (the default kernel models, the additive model) on fragment bags of
    atom-summable in-parent sets, with no instance scaling and no whole-molecule instance.
    """
    config = model.bagger_._config()
    return (config["bag_type"] != "conformers" and not config["include_whole"]
            and all(isinstance(k, str) and k in WHOLE_OVER_FRAGMENTS for k in config["descriptors"])
            and getattr(model, "scaler_", None) is None
            and predicts_from_bag_sums(model.estimator_)
            and hasattr(model.estimator_, "instance_contributions"))


def atom_bag(bagger, mol: Chem.Mol) -> sp.csr_matrix:
    """One instance per heavy atom of ``mol`` (a standardised molecule), described by the
    bagger's (atom-summable) descriptor sets; its rows add up to the molecule's summed bag."""
    config = bagger._config()
    atoms = [SimpleNamespace(mol=None, atoms=(a,)) for a in range(mol.GetNumAtoms())]
    bag, _ = describe_fragments_sparse(atoms, mol, config["descriptors"], config["morgan_radius"],
                                       config["morgan_size"], config["dummy_atoms"])
    return bag


def atom_contributions(model, mols: Sequence[Chem.Mol]) -> list[np.ndarray]:
    """Each heavy atom's exact share of the prediction minus the intercept, per molecule.

    Regressors: target units. Binary classifiers: the log-odds of ``classes_[1]``; more
    classes: the logit of the explained (predicted) class. See :func:`atom_level_available`.
    """
    if not atom_level_available(model):
        raise ValueError("this model's predictions do not split over atoms (it needs the "
                         "default fragment model's in-parent count descriptors)")
    if not len(mols):
        return []
    bags = [atom_bag(model.bagger_, m) for m in mols]
    estimator = model.estimator_
    contributions = estimator.instance_contributions(bags)
    if is_classifier(estimator) and len(estimator.classes_) > 2:
        target = np.asarray(estimator.decision_function(bags)).argmax(axis=1)
        contributions = [c[:, t] for c, t in zip(contributions, target)]
    return [np.asarray(c, dtype=np.float64) for c in contributions]


def pair_level_available(model) -> bool:
    """Whether ``model`` splits the difference of two molecules' predictions exactly over
    the features they differ in (:func:`pair_atom_contributions`)."""
    estimator = getattr(model, "estimator_", None)
    one_output = model.task_ == "regression" or len(getattr(estimator, "classes_", ())) == 2
    return (atom_level_available(model) and one_output
            and hasattr(estimator, "difference_contributions"))


def pair_atom_contributions(model, mol_a: Chem.Mol, mol_b: Chem.Mol, common_a: Sequence[int],
                            common_b: Sequence[int], charge: str = "change"
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Each heavy atom's share of ``prediction(a) - prediction(b)``, one molecule against the other.

    The estimator splits the difference exactly over the features whose counts differ
    between the two molecules (``difference_contributions``): what both hold alike gets
    nothing. A feature's share goes to the molecule that holds more of it, on its atoms that
    hold it without a counterpart in the other: at a common atom (``common_a[k]`` matched to
    ``common_b[k]``) its count beyond the matched atom's, at the other atoms its whole count,
    in proportion to those counts. A positive value raises its own molecule's prediction
    against the other's. Returns ``values_a`` and ``values_b`` with ``prediction(a) -
    prediction(b) = values_a.sum() - values_b.sum()``. Two-class classifiers: the log-odds of
    ``classes_[1]``.

    Parameters
    ----------
    charge : {"change", "holder"}
        Where the share of a feature held at a common atom goes. ``"change"`` (default): to
        the changed atoms (those outside ``common_*``) its occurrences there depend on (a
        Morgan environment's atoms and their neighbours, an atom pair's shortest paths and
        ends' neighbours, a per-atom value's atoms up to two bonds away;
        :mod:`qsarmil.feature_support`), as the difference comes from them:
        its own molecule's, else the other's around the matched atom (a methyl added to
        phenol changes phenol's ring CH environment too). It stays at the common atom, as
        context, only where it depends on no changed atom. ``"holder"``: every atom keeps
        what its own extra features do, so common atoms next to the change carry their
        changed environments.

    Raises
    ------
    ValueError
        Where the model cannot split a difference over atoms (:func:`pair_level_available`),
        the common atoms are not two equally long lists of distinct atoms of each molecule,
        or ``charge`` is neither ``"change"`` nor ``"holder"``.
    """
    check_charge(charge)
    if not pair_level_available(model):
        raise ValueError("this model does not split a difference of predictions over atoms (it "
                         "needs a kernel or additive model on atom-summable in-parent "
                         "descriptors, e.g. the default fragment descriptors)")
    common_a, common_b = (_atom_list(c, m, name) for c, m, name in
                          ((common_a, mol_a, "common_a"), (common_b, mol_b, "common_b")))
    if len(common_a) != len(common_b):
        raise ValueError(f"common_a holds {len(common_a)} atoms but common_b {len(common_b)}: "
                         "they must be matched pairwise")
    held_a, held_b = atom_bag(model.bagger_, mol_a), atom_bag(model.bagger_, mol_b)
    features, shares = model.estimator_.difference_contributions(held_a, held_b)
    if np.ndim(shares) != 1:
        raise ValueError("pair contributions need a model with one output")
    # Bags hold float32; the split is summed in float64, so that it adds up to the shares.
    unmatched_a = held_a[:, features].toarray().astype(np.float64)
    unmatched_b = held_b[:, features].toarray().astype(np.float64)
    if len(common_a):
        matched = np.minimum(unmatched_a[common_a], unmatched_b[common_b])
        unmatched_a[common_a] -= matched
        unmatched_b[common_b] -= matched
    # Per feature, (unmatched in a) - (unmatched in b) is the count difference, never 0 for a
    # feature that differs: the molecule with more unmatched holds the extra, and its
    # unmatched total is positive, so the shares add up exactly.
    total_a, total_b = unmatched_a.sum(axis=0), unmatched_b.sum(axis=0)
    shares = np.asarray(shares, dtype=np.float64)
    a_more = total_a > total_b
    per_a = np.where(a_more, shares, 0.0) / np.where(total_a > 0, total_a, 1.0)
    per_b = np.where(a_more, 0.0, -shares) / np.where(total_b > 0, total_b, 1.0)
    shares_a, shares_b = unmatched_a * per_a, unmatched_b * per_b  # atoms x differing features
    if charge == "change":
        config = model.bagger_._config()
        settings = (config["descriptors"], config["morgan_radius"], config["morgan_size"])
        shares_a, shares_b = _charged_to_change((mol_a, mol_b), (common_a, common_b),
                                                (shares_a, shares_b), features, settings)
    return shares_a.sum(axis=1), shares_b.sum(axis=1)


def check_charge(charge: str) -> None:
    """A clear error unless ``charge`` names one of :data:`CHARGES`."""
    if charge not in CHARGES:
        raise ValueError(f"charge must be {' or '.join(map(repr, CHARGES))}, got {charge!r}")


def _charged_to_change(mols: tuple, commons: tuple, shares: tuple, features: np.ndarray,
                       settings: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Each common atom's share of a feature (``shares``: atoms x ``features``, per molecule)
    moved, evenly, to the changed atoms its occurrences depend on: its own molecule's, else
    those of the other molecule around the matched atom (sign turned, as the other molecule's
    values count against it). A share that depends on no changed atom stays: the context."""
    changed = [np.ones(m.GetNumAtoms(), dtype=bool) for m in mols]
    for flags, common in zip(changed, commons):
        flags[common] = False
    if not len(commons[0]) or not any(flags.any() for flags in changed):
        return shares
    held = [feature_occurrences(m, *settings) for m in mols]
    distances = [Chem.GetDistanceMatrix(m) for m in mols]
    mappings = [dict(zip(commons[0], commons[1])), dict(zip(commons[1], commons[0]))]
    out = [shares[0].copy(), shares[1].copy()]
    for x, y in ((0, 1), (1, 0)):
        for atom in commons[x]:
            for f in np.flatnonzero(shares[x][atom]):
                occurrences = held[x][atom].get(int(features[f]), ())
                target, sign = x, 1.0
                atoms = _changed_among(occurrences, distances[x], None, changed[x])
                if not len(atoms):
                    target, sign = y, -1.0
                    atoms = _changed_among(occurrences, distances[y], mappings[x], changed[y])
                if len(atoms):
                    out[target][atoms, f] += sign * shares[x][atom, f] / len(atoms)
                    out[x][atom, f] -= shares[x][atom, f]
    return out[0], out[1]


def _changed_among(occurrences, distances: np.ndarray, mapping: dict | None,
                   changed: np.ndarray) -> np.ndarray:
    """The changed atoms any of ``occurrences`` depends on (read through ``mapping``)."""
    atoms = [depends_on(o, distances, mapping) for o in occurrences]
    on = np.unique(np.concatenate(atoms)) if atoms else np.array([], dtype=np.int64)
    return on[changed[on]]


def _atom_list(atoms: Sequence[int], mol: Chem.Mol, name: str) -> list[int]:
    """``atoms`` as a list of distinct atom indices of ``mol``, else ValueError."""
    out = [int(a) for a in atoms]
    n = mol.GetNumAtoms()
    if len(set(out)) != len(out) or any(not 0 <= a < n for a in out):
        raise ValueError(f"{name} must list distinct atoms of its molecule (0 to {n - 1}), "
                         f"got {list(atoms)!r}")
    return out


def reference_prediction(model, reference="training") -> Reference | None:
    """The reference that contributions are measured from (None where the model has no
    intercept to start from, e.g. networks and multi-class classifiers).

    Parameters
    ----------
    model : fitted QSARModel
    reference : "training", "intercept", str or sequence of str
        ``"training"``: the mean prediction over the training molecules (kept at fit; a model
        saved before it existed falls back to the intercept, and says so); ``"intercept"``:
        the model's own intercept (contributions as the estimator gives them); a SMILES: that
        molecule's prediction; several SMILES: their mean prediction.
    """
    intercept = _intercept(model)
    if intercept is None:
        return None
    if isinstance(reference, str) and reference == "intercept":
        return Reference(intercept, "intercept")
    if isinstance(reference, str) and reference == "training":
        value = getattr(model, "reference_prediction_", None)
        return (Reference(intercept, "intercept") if value is None
                else Reference(float(value), TRAINING_REFERENCE))
    items = [reference] if isinstance(reference, (str, Chem.Mol)) else list(reference)
    if not items:
        raise ValueError("reference: give at least one molecule")
    scores = _scores(model, items)
    if len(items) == 1:
        shown = items[0] if isinstance(items[0], str) else Chem.MolToSmiles(items[0])
        return Reference(float(scores[0]), f"reference {shown[:40]}")
    return Reference(float(np.mean(scores)), f"mean of {len(items)} reference molecules")


def _evenly_spread(n: int, at_most: int) -> list[int]:
    """At most ``at_most`` of the indices ``0 .. n - 1``, evenly spread, first and last kept."""
    return [int(i) for i in np.unique(np.linspace(0, n - 1, min(n, at_most)).round())]


def training_reference(model, bags) -> float | None:
    """The mean prediction (log-odds for classifiers) over the training bags (at most
    ``_REFERENCE_SAMPLE`` of them, evenly spread: predicting 100 000 bags again would cost
    minutes), or None where the model has no intercept to measure contributions from."""
    if _intercept(model) is None:
        return None
    return float(np.mean(_bag_scores(model.estimator_,
                                     [bags[i] for i in _evenly_spread(len(bags), _REFERENCE_SAMPLE)])))


def training_scale(model, mols: Sequence[Chem.Mol]) -> float | None:
    """The |atom contribution| drawn at full colour in pictures of one output file: the
    ``SCALE_QUANTILE`` (99th) percentile of |contribution| over the atoms of the training
    molecules (at most 100 of them, evenly spread), relative to the mean training prediction.

    None where contributions do not split over atoms (:func:`atom_level_available`) or no
    reference was kept. Larger values are drawn at full colour (clipped), so one extreme atom
    does not pale every other picture.
    """
    reference = getattr(model, "reference_prediction_", None)
    if reference is None or not len(mols) or not atom_level_available(model):
        return None
    shift = float(reference) - _intercept(model)
    values = [np.abs(c - shift / len(c)) for c in
              atom_contributions(model, [mols[i] for i in _evenly_spread(len(mols), _SCALE_SAMPLE)])
              if len(c)]
    if not values:
        return None
    return float(np.quantile(np.concatenate(values), SCALE_QUANTILE))


def relative_to_reference(contributions: np.ndarray, atoms: Sequence[Sequence[int]],
                          shift: float) -> np.ndarray:
    """Contributions less ``shift`` (reference minus intercept), spread over the instances in
    proportion to their atoms: a partition of the atoms gives each atom ``shift / n_atoms``,
    and the result still adds up to the prediction minus the reference."""
    sizes = np.array([len(a) for a in atoms], dtype=np.float64)
    total = sizes.sum()
    share = sizes / total if total > 0 else np.full(len(sizes), 1.0 / max(len(sizes), 1))
    return np.asarray(contributions, dtype=np.float64) - shift * share


def _intercept(model) -> float | None:
    estimator = model.estimator_
    value = (getattr(estimator, "contribution_intercept_", None) if is_classifier(estimator)
             else getattr(estimator, "intercept_", None))
    return float(value) if value is not None and np.ndim(value) == 0 else None


def _bag_scores(estimator, bags) -> np.ndarray:
    if is_classifier(estimator):
        return np.asarray(estimator.decision_function(bags), dtype=np.float64)
    return np.asarray(estimator.predict(bags), dtype=np.float64)


def _scores(model, items: list) -> np.ndarray:
    """Predictions (log-odds for classifiers) of reference molecules; all must be usable."""
    bagger = clone(model.bagger_).set_params(progress=False)  # bagger_ keeps the batch explained
    bags = (bagger.transform_summed(items) if model._sums_suffice(model.scaler_ is not None)
            else bagger.transform(items))
    if bagger.failures_:
        first = bagger.failures_[0]
        raise ValueError(f"reference molecule {first.index} ({first.input!r}): {first.reason}")
    return _bag_scores(model.estimator_, model._scale(bags))


def explanation_parts(model, reference, instances: list, provenance: dict
                      ) -> tuple[Reference | None, dict[int, np.ndarray]]:
    """For :meth:`QSARModel.explain`: the reference, and per explained row its atoms'
    contributions relative to it (where the model splits over atoms). The ``contribution``
    column of each instance table is set relative to the reference in place."""
    ref = reference_prediction(model, reference)
    rows = [row for row, frame in enumerate(instances)
            if frame is not None and "contribution" in frame and row in provenance]
    if ref is None or not rows:
        return ref, {}
    shift = ref.value - _intercept(model)
    for row in rows:
        frame = instances[row]
        frame["contribution"] = relative_to_reference(frame["contribution"].to_numpy(),
                                                      list(frame["atoms"]), shift)
    per_atom: dict[int, np.ndarray] = {}
    if atom_level_available(model):
        mols = [provenance[row].mol for row in rows]
        for row, mol, values in zip(rows, mols, atom_contributions(model, mols)):
            per_atom[row] = relative_to_reference(values, [(a,) for a in range(mol.GetNumAtoms())],
                                                  shift)
    return ref, per_atom
