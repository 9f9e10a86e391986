"""A synthetic structural-alert classification task with known key atoms.

A molecule is positive when one of a few toxicophores from RDKit's bundled FilterCatalog
matches it (by default Brenk et al. 2008: nitro group, Michael acceptor, three-membered
heterocycle such as an epoxide). The matched atoms are the ground truth for key instance
detection: a fragment-bag model finds the alert when its top-weighted fragment contains all
atoms of one alert match. Everything is computed on the molecule as
:class:`~qsarmil.featurize.MoleculeBagger` bags it (salts stripped), so atom indices line up
with the bags' provenance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from .fragments import fragment_molecule
from .standardize import prepared_molecules

__all__ = ["AlertTask", "DEFAULT_ALERTS", "alert_matches", "make_alert_task", "top_fragment_hits"]

DEFAULT_ALERTS = ("nitro_group", "Michael_acceptor_1", "Three-membered_heterocycle")
_CATALOGS = {name: getattr(FilterCatalogParams.FilterCatalogs, name)
             for name in ("BRENK", "PAINS", "NIH", "ZINC")}


@dataclass
class AlertTask:
    """Molecules labelled by structural alerts.

    Attributes
    ----------
    smiles : list of str
        The molecules kept (those RDKit parses), as given.
    y : ndarray of int
        1 where an alert matches, else 0.
    alert_atoms : list of list of tuple of int
        Per molecule, the atoms of every alert match (alternatives; empty for negatives),
        indexed in the molecule as bagged (salts stripped).
    alert_names : list of list of str
        Per molecule, the alerts that matched.
    reachable : ndarray of bool
        Whether some fragment of ``bag_type`` contains all atoms of one match (only then can
        a fragment model point at the alert; BRICS cuts some alerts, such as many Michael
        acceptors, across a C=C bond).
    bag_type : str
    """

    smiles: list[str]
    y: np.ndarray
    alert_atoms: list[list[tuple[int, ...]]]
    alert_names: list[list[str]]
    reachable: np.ndarray
    bag_type: str

    def subset(self, index) -> AlertTask:
        """The molecules at ``index`` (e.g. a train/test split or a balanced sample)."""
        index = np.asarray(index, dtype=int)
        return AlertTask([self.smiles[i] for i in index], self.y[index],
                         [self.alert_atoms[i] for i in index], [self.alert_names[i] for i in index],
                         self.reachable[index], self.bag_type)

    def balanced_split(self, train_fraction: float = 0.75, random_state: int = 0
                       ) -> tuple[AlertTask, AlertTask]:
        """Every positive and as many negatives drawn at random, shuffled and split into a
        training and a test task (seeded)."""
        rng = np.random.RandomState(random_state)
        positives = np.flatnonzero(self.y == 1)
        negatives = rng.choice(np.flatnonzero(self.y == 0), len(positives), replace=False)
        order = rng.permutation(np.r_[positives, negatives])
        cut = int(train_fraction * len(order))
        return self.subset(order[:cut]), self.subset(order[cut:])


def _catalog_entries(alerts: Sequence[str], catalog: str) -> dict:
    if catalog not in _CATALOGS:
        raise ValueError(f"catalog must be one of {sorted(_CATALOGS)}, got {catalog!r}")
    params = FilterCatalogParams()
    params.AddCatalog(_CATALOGS[catalog])
    filters = FilterCatalog(params)
    entries = {}
    for i in range(filters.GetNumEntries()):
        entry = filters.GetEntryWithIdx(i)
        entries.setdefault(entry.GetDescription(), []).append(entry)
    unknown = [a for a in alerts if a not in entries]
    if unknown:
        raise ValueError(f"alerts {unknown} are not in RDKit's {catalog} catalog; its entries "
                         f"include {sorted(entries)[:12]} ...")
    return {a: entries[a] for a in alerts}


def _patterns(smarts: Mapping[str, str] | None) -> dict:
    out = {}
    for name, pattern in (smarts or {}).items():
        query = Chem.MolFromSmarts(pattern)
        if query is None:
            raise ValueError(f"alert {name!r}: RDKit cannot parse the SMARTS {pattern!r}")
        out[name] = query
    return out


def alert_matches(mol: Chem.Mol, entries: Mapping[str, list], patterns: Mapping[str, Chem.Mol]
                  ) -> tuple[list[tuple[int, ...]], list[str]]:
    """Atoms of every match of every alert in ``mol``, and the names of the alerts that matched."""
    atoms, names = [], []
    for name, group in entries.items():
        for entry in group:
            for match in entry.GetFilterMatches(mol):
                atoms.append(tuple(sorted({a for _, a in match.atomPairs})))
                names.append(name)
    for name, query in patterns.items():
        for match in mol.GetSubstructMatches(query):
            atoms.append(tuple(sorted(match)))
            names.append(name)
    return atoms, list(dict.fromkeys(names))


def make_alert_task(smiles: Iterable[str], alerts: Sequence[str] | None = DEFAULT_ALERTS,
                    catalog: str = "BRENK", smarts: Mapping[str, str] | None = None,
                    bag_type: str = "brics") -> AlertTask:
    """Label molecules by structural alerts.

    Parameters
    ----------
    smiles : iterable of str
    alerts : sequence of str, optional
        Entry descriptions in RDKit's ``catalog`` (default: nitro group, Michael acceptor,
        three-membered heterocycle from Brenk). None or empty: only ``smarts``.
    catalog : {"BRENK", "PAINS", "NIH", "ZINC"}
    smarts : mapping of name to SMARTS, optional
        Extra alerts of your own (e.g. ``{"aromatic_nitro": "c[N+](=O)[O-]"}``).
    bag_type : {"brics", "recap"}
        The fragments ``reachable`` is computed for.

    Returns
    -------
    AlertTask
        Molecules RDKit cannot parse are left out.

    Raises
    ------
    ValueError
        An unknown alert, catalog or bag type, a bad SMARTS, or no alert at all.
    """
    if bag_type not in ("brics", "recap"):
        raise ValueError(f"bag_type must be 'brics' or 'recap', got {bag_type!r}")
    entries = _catalog_entries(list(alerts or ()), catalog)
    patterns = _patterns(smarts)
    if not entries and not patterns:
        raise ValueError("no alert to look for: give alerts or smarts")
    kept, ys, atoms, names, reachable = [], [], [], [], []
    for smi, mol in prepared_molecules(smiles):
        matched, hit_names = alert_matches(mol, entries, patterns)
        fragments = [set(f.atoms) for f in fragment_molecule(mol, bag_type)] if matched else []
        kept.append(smi)
        ys.append(int(bool(matched)))
        atoms.append(matched)
        names.append(hit_names)
        reachable.append(any(set(m) <= f for m in matched for f in fragments))
    return AlertTask(kept, np.array(ys, dtype=int), atoms, names, np.array(reachable, dtype=bool),
                     bag_type)


def top_fragment_hits(instances: Sequence, alert_atoms: Sequence[Sequence[tuple[int, ...]]]
                      ) -> np.ndarray:
    """Whether each molecule's top-weighted fragment contains all atoms of one alert match.

    Parameters
    ----------
    instances : list of DataFrame or None
        Per molecule, the instance table of :meth:`QSARModel.predict_with_weights` (``atoms``
        and ``weight`` columns); None where the molecule failed (a miss).
    alert_atoms : list of list of tuple of int
        Per molecule, the atoms of its alert matches (:attr:`AlertTask.alert_atoms`).

    Returns
    -------
    ndarray of bool
    """
    if len(instances) != len(alert_atoms):
        raise ValueError(f"{len(instances)} instance tables but {len(alert_atoms)} alert entries")
    hits = []
    for frame, matches in zip(instances, alert_atoms):
        if frame is None or not len(matches):
            hits.append(False)
            continue
        top = set(frame.atoms.iloc[int(np.argmax(frame.weight.to_numpy()))])
        hits.append(any(set(m) <= top for m in matches))
    return np.array(hits, dtype=bool)
