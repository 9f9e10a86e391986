"""MoleculeBagger: SMILES in, bags of per-instance descriptors out (a scikit-learn transformer)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from rdkit import Chem, rdBase
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from milearn_core.progress import show_progress

from .conformers import (
    ConformerError,
    ConformerSettings,
    TimeLimit,
    TimeLimitError,
    generate_conformers,
)
from .custom_descriptors import is_custom, probe_width
from .descriptors import (
    COUNT_FINGERPRINTS,
    COUNT_LIKE,
    DESCRIPTORS_2D,
    DESCRIPTORS_3D,
    SUMMABLE_OVER_FRAGMENTS,
    WHOLE_OVER_FRAGMENTS,
    describe_conformer,
    describe_fragment,
    describe_fragments_sparse,
    describe_summed,
    descriptor_names,
)
from .fragments import atom_partition, fragment_molecule
from .standardize import Failure, MoleculeError, parse_molecule, prepare_molecule

__all__ = ["BAG_TYPES", "MoleculeBagger", "Provenance", "BaggingError", "conformer_cache"]

BAG_TYPES = ("brics", "recap", "conformers")
_DEFAULT_DESCRIPTORS = {"fragments": ("morgan_parent",),
                        "conformers": ("shape", "autocorr3d", "rdf", "morse", "whim", "usrcat",
                                       "pharmacophore3d")}
_SPARSE_MORGAN_SIZE, _DENSE_MORGAN_SIZE = 32768, 2048
_PROGRESS_MIN = 200  # "auto" shows a progress bar from this many molecules on


class BaggingError(MoleculeError):
    """Raised in strict mode for the first molecule that cannot be bagged."""


_CONFORMER_CACHE: ContextVar[dict | None] = ContextVar("conformer_cache", default=None)


@contextmanager
def conformer_cache() -> Iterator[None]:
    """Within this block, a SMILES bagged into conformers with the same settings twice is
    embedded once: cross-validation folds and the final fit share the bags.

    Conformer generation is the costly step (tens of ms a molecule, against a few for
    fragments); fragment bags and RDKit Mol inputs are not cached. The cache lives in this
    process and is dropped when the block ends. ``qsarmil train`` opens one around its folds;
    wrap your own ``cross_val_score`` of a conformer ``QSARModel`` in it the same way.
    """
    token = _CONFORMER_CACHE.set({})
    try:
        yield
    finally:
        _CONFORMER_CACHE.reset(token)


def _renumbered(result, index: int):
    """A copy of a cached bagging result for input row ``index`` (callers may change it)."""
    if isinstance(result, Failure):
        return replace(result, index=index)
    return result[0].copy(), replace(result[1], index=index, mol=Chem.Mol(result[1].mol))


@dataclass
class Provenance:
    """Where each instance of one molecule's bag comes from.

    Attributes
    ----------
    index : int
        Input row.
    mol : rdkit Mol
        That molecule; for conformer bags it has explicit Hs and holds the conformers.
    atoms : list of tuple of int
        Parent atom indices per instance (all heavy atoms for conformer bags).
    instance_smiles : list of str
        Fragment SMILES (with ``*`` at cut points) or, for conformers, the molecule's SMILES.
    conformer_ids : list of int
        Conformer id per instance (conformer bags only).
    energies : ndarray or None
        Conformer energies in kcal/mol where optimised.
    descriptor_issues : list of str
        Descriptor values that were not finite and were set to 0, as "instance k: name".
    stripped : str
        Formulas of the counter-ions and solvents removed from the input (e.g. ``"HCl"``,
        ``"Na+"``), empty when nothing was (see :func:`qsarmil.standardize.strip_salts`).
    """

    index: int
    mol: Chem.Mol
    atoms: list[tuple[int, ...]]
    instance_smiles: list[str]
    conformer_ids: list[int] = field(default_factory=list)
    energies: np.ndarray | None = None
    descriptor_issues: list[str] = field(default_factory=list)
    stripped: str = ""

    @property
    def smiles(self) -> str:
        """Canonical SMILES of the (standardised) molecule that was bagged."""
        return Chem.MolToSmiles(Chem.RemoveHs(self.mol) if self.conformer_ids else self.mol)


def _bag_conformers(mol: Chem.Mol, index: int, config: dict, budget: TimeLimit):
    embedded, energies = generate_conformers(mol, config["conformers"], budget)
    heavy = tuple(a.GetIdx() for a in embedded.GetAtoms() if a.GetAtomicNum() > 1)
    conf_ids = [c.GetId() for c in embedded.GetConformers()]
    rows, issues = [], []
    for k, conf_id in enumerate(conf_ids):
        values, bad = describe_conformer(embedded, conf_id, config["descriptors"])
        rows.append(values)
        issues += [f"instance {k}: {name}" for name in bad]
    smiles = Chem.MolToSmiles(mol)
    return np.vstack(rows, dtype=np.float32), Provenance(
        index, embedded, [heavy] * len(conf_ids), [smiles] * len(conf_ids), conf_ids, energies, issues)


def _bag_fragments(mol: Chem.Mol, index: int, config: dict, budget: TimeLimit):
    if config["summed"]:
        return _summed_fragments(mol, index, config, budget)
    fragments = fragment_molecule(mol, config["bag_type"], config["include_whole"])
    budget.check(f"cutting fragments ({len(fragments)} made)")
    settings = (config["descriptors"], config["morgan_radius"], config["morgan_size"],
                config["dummy_atoms"])
    if config["sparse"]:
        bag, issues = describe_fragments_sparse(fragments, mol, *settings, time_limit=budget)
    else:
        rows, issues = [], []
        for k, frag in enumerate(fragments):
            budget.check(f"describing fragments ({k} of {len(fragments)} done)")
            values, bad = describe_fragment(frag.mol, *settings, mol, frag.atoms)
            rows.append(values)
            issues += [f"instance {k}: {name}" for name in bad]
        bag = np.vstack(rows, dtype=np.float32)
    return bag, Provenance(index, mol, [f.atoms for f in fragments], [f.smiles for f in fragments],
                           descriptor_issues=issues)


def _summed_fragments(mol: Chem.Mol, index: int, config: dict, budget: TimeLimit):
    """The fragment bag summed into one instance, from the same cuts (see transform_summed)."""
    whole = tuple(range(mol.GetNumAtoms()))
    if set(config["descriptors"]) <= set(WHOLE_OVER_FRAGMENTS):  # no cut needed
        parts = [whole]
    else:
        parts = atom_partition(mol, config["bag_type"])
        budget.check(f"cutting fragments ({len(parts)} made)")
    row = describe_summed(mol, parts, config["descriptors"], config["morgan_radius"],
                          config["morgan_size"], time_limit=budget)
    budget.check("describing the molecule")
    return (row if config["sparse"] else row.toarray()), Provenance(
        index, mol, [whole], [Chem.MolToSmiles(mol)])


def _bag_one(item, index: int, config: dict):
    """Bag one molecule; returns (bag, Provenance) or a Failure. Runs in joblib workers.

    RDKit's log stays off the console: what matters of it is in the Failure's reason.
    """
    with rdBase.BlockLogs():
        return _bag_one_quietly(item, index, config)


def bag_chunk(items: Sequence, start: int, config: dict) -> list:
    """:func:`_bag_one` over ``items``, numbered from ``start`` (a task for Dask workers)."""
    return [_bag_one(item, start + j, config) for j, item in enumerate(items)]


def _bag_one_quietly(item, index: int, config: dict):
    budget = TimeLimit(config["time_limit"])
    try:
        mol = parse_molecule(item, index, False, config["max_smiles_length"],
                             config["max_heavy_atoms"])
        try:
            mol, stripped = prepare_molecule(mol, config["strip_salts"], config["standardize"])
        except Exception as exc:  # RDKit raises several exception types here
            raise MoleculeError(f"standardisation failed ({exc})") from None
        bag_fn = _bag_conformers if config["bag_type"] == "conformers" else _bag_fragments
        bag, prov = bag_fn(mol, index, config, budget)
        prov.stripped = stripped
        if config["sparse"] and not sp.issparse(bag):
            bag = sp.csr_matrix(bag)
        return bag, prov
    except MoleculeError as exc:
        return Failure(index, _input_text(item), exc.reason)
    except (ConformerError, TimeLimitError) as exc:
        return Failure(index, _input_text(item), str(exc))
    except Exception as exc:  # RDKit can fail in many ways on odd chemistry; report, don't crash
        return Failure(index, _input_text(item), f"{type(exc).__name__}: {exc}")


def _input_text(item) -> str:
    return item if isinstance(item, str) else str(item)


def _check_limits(max_heavy_atoms, max_smiles_length, time_limit) -> None:
    for name, value in (("max_heavy_atoms", max_heavy_atoms), ("max_smiles_length", max_smiles_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")


class MoleculeBagger(TransformerMixin, BaseEstimator):
    """Turn molecules into bags of instance descriptors.

    Parameters
    ----------
    bag_type : {"brics", "recap", "conformers"}
        Fragment bags (2-D) or conformer bags (3-D).
    descriptors : str or tuple of str, optional
        Fragment bags: any of ``"morgan_parent"`` (Morgan counts of the fragment's atoms taken in
        the parent molecule; the default), ``"morgan_atoms"`` (the same without dropping
        environments RDKit finds redundant: every atom's environments count, so the fragments
        add up to the molecule exactly), ``"atompair_parent"`` (the parent's atom pairs, half
        a pair per end, weight ``ATOM_PAIR_WEIGHT``), ``"physchem_atoms"`` (the fragment's
        atoms' Crippen logP in positive and negative parts, Crippen MR, TPSA and Labute ASA,
        scaled per heavy atom; additive and nonnegative, treated as counts; the physchem
        recipe, :func:`qsarmil.recipes.physchem_model`), ``"morgan"`` (of the fragment cut out,
        see ``dummy_atoms``), ``"rdkit2d"``, ``"pharmacophore"``. Conformer bags: any of
        ``"shape"``, ``"autocorr3d"``, ``"rdf"``, ``"morse"``, ``"whim"``, ``"getaway"``,
        ``"usr"``, ``"usrcat"``, ``"pharmacophore3d"`` (default: all but ``"getaway"`` and
        ``"usr"``).
    morgan_radius : int
        Morgan radius.
    morgan_size : int or None
        Morgan fingerprint bits; None: 32768 for sparse bags, 2048 for dense ones. Sparse bags
        can afford many bits, so that different atom environments rarely share one: at 2048
        bits, hash collisions undid the whole fragment-logP KID gain of ``"morgan_parent"``
        (0.85 against 0.92 with a ridge model).
    include_whole : bool
        Add the whole molecule as an extra instance of fragment bags.
    dummy_atoms : {"keep", "cap"}
        Descriptors of the fragment cut out (all but ``"morgan_parent"``) with the ``*``
        cut-point atoms kept (labelled by BRICS type) or capped with hydrogen (see
        :mod:`qsarmil.descriptors`).
    strip_salts : bool
        Describe the parent of a salt or mixture: the largest organic fragment, neutralised
        (counter-ions and solvents removed; metal complexes such as cisplatin and molecules
        without carbon kept whole; see :func:`qsarmil.standardize.strip_salts`). What was
        removed is in ``Provenance.stripped``. On by default; models saved before this option
        existed load with it off, so they keep their predictions.
    standardize : bool
        Standardise molecules first: RDKit's cleanup, then as ``strip_salts`` (implies it).
    max_heavy_atoms : int or None
        Molecules with more heavy atoms (counted before standardisation) become failures. The
        default 500 covers drug-like and natural-product chemistry (vancomycin has 101 heavy
        atoms, cyclosporin 85, maitotoxin 236, the largest bundled molecule, a CHEMBL4616
        peptide, 316) and bags in a fraction of a second (0.2 s for a 505-atom polyester,
        against 160 s for a 2505-atom one); None: no limit.
    max_smiles_length : int or None
        Longer SMILES become failures before RDKit parses them (a 5 MB SMILES would take GBs
        of memory); None: no limit.
    time_limit : float
        Seconds per molecule, for every bag type: parsing, fragmenting and describing (checked
        between fragments), or conformer embedding and optimisation. A molecule over the limit
        becomes a failure.
    n_conformers, conformer_seed, prune_rms, optimize, energy_window
        Conformer settings (see :class:`qsarmil.conformers.ConformerSettings`).
    sparse : bool or "auto"
        Return bags as scipy CSR matrices; "auto": when every descriptor set is a count
        fingerprint (mostly zeros). milearn_core's neural and additive models take them as they
        are; other estimators make them dense.
    n_jobs : int
        joblib workers (-1: all cores).
    progress : bool or "auto"
        Progress bar; "auto": from 200 molecules on, and only where a person watches (stderr
        is a terminal, or a Jupyter kernel); a script, a log or KNIME gets none.
    strict : bool
        Raise on the first molecule that fails instead of recording it.

    Attributes (after ``transform``)
    --------------------------------
    provenance_ : list of Provenance
        One per bag returned.
    failures_ : list of Failure
        Molecules that could not be bagged (input row, input, reason).
    valid_index_ : ndarray of int
        Input rows of the bags returned, in order.
    """

    def __init__(self, bag_type: str = "brics", descriptors=None, morgan_radius: int = 2,
                 morgan_size: int | None = None, include_whole: bool = False, dummy_atoms: str = "keep",
                 standardize: bool = False, strip_salts: bool = True, sparse="auto",
                 max_heavy_atoms: int | None = 500, max_smiles_length: int | None = 5000,
                 n_conformers: int = 10, conformer_seed: int = 42, prune_rms: float = 0.5,
                 optimize: str | None = "mmff", energy_window: float | None = None,
                 time_limit: float = 30.0, n_jobs: int = 1, progress="auto", strict: bool = False):
        self.bag_type = bag_type
        self.descriptors = descriptors
        self.morgan_radius = morgan_radius
        self.morgan_size = morgan_size
        self.include_whole = include_whole
        self.dummy_atoms = dummy_atoms
        self.standardize = standardize
        self.strip_salts = strip_salts
        self.sparse = sparse
        self.max_heavy_atoms = max_heavy_atoms
        self.max_smiles_length = max_smiles_length
        self.n_conformers = n_conformers
        self.conformer_seed = conformer_seed
        self.prune_rms = prune_rms
        self.optimize = optimize
        self.energy_window = energy_window
        self.time_limit = time_limit
        self.n_jobs = n_jobs
        self.progress = progress
        self.strict = strict

    def _config(self) -> dict:
        if self.bag_type not in BAG_TYPES:
            raise ValueError(f"bag_type must be one of {BAG_TYPES}, got {self.bag_type!r}")
        family = "conformers" if self.bag_type == "conformers" else "fragments"
        kinds = self.descriptors or _DEFAULT_DESCRIPTORS[family]
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        allowed = DESCRIPTORS_3D if family == "conformers" else DESCRIPTORS_2D
        custom = [k for k in kinds if is_custom(k)]
        if custom and family == "conformers":
            raise ValueError("custom descriptors describe fragments; conformer bags take only "
                             f"named sets from {sorted(DESCRIPTORS_3D)}")
        unknown = [k for k in kinds if not is_custom(k) and k not in allowed]
        if unknown:
            raise ValueError(f"descriptors {unknown} do not apply to {self.bag_type} bags; "
                             f"choose from {sorted(allowed)}")
        if self.sparse not in (True, False, "auto"):
            raise ValueError(f"sparse must be True, False or 'auto', got {self.sparse!r}")
        _check_limits(self.max_heavy_atoms, self.max_smiles_length, self.time_limit)
        counts_only = all(k in COUNT_LIKE for k in kinds)  # counts: mostly zeros, nonnegative
        sparse = counts_only if self.sparse == "auto" else bool(self.sparse)
        return {
            "bag_type": self.bag_type, "descriptors": kinds, "standardize": self.standardize,
            "strip_salts": bool(self.strip_salts),
            "counts_only": counts_only, "sparse": sparse,
            "morgan_radius": self.morgan_radius,
            "morgan_size": self.morgan_size or (_SPARSE_MORGAN_SIZE if sparse else _DENSE_MORGAN_SIZE),
            "include_whole": self.include_whole, "dummy_atoms": self.dummy_atoms,
            "max_heavy_atoms": self.max_heavy_atoms, "max_smiles_length": self.max_smiles_length,
            "time_limit": self.time_limit, "summed": False,
            "conformers": ConformerSettings(self.n_conformers, self.conformer_seed, self.prune_rms,
                                            self.optimize, self.energy_window, self.time_limit),
        }

    def fit(self, X, y=None):
        """Check the settings (the bagger learns nothing from data)."""
        self._config()
        return self

    def transform(self, X) -> list[np.ndarray]:
        """Bag the molecules ``X`` (SMILES strings or RDKit Mols).

        Returns one bag per molecule that could be processed; see ``valid_index_`` and
        ``failures_`` for the alignment with the input.
        """
        return self._transform(X, summed=False)

    def n_features(self) -> int:
        """Values per instance, from the settings alone: nothing is bagged (count fingerprints
        are ``morgan_size`` wide; a custom set is measured on ethanol)."""
        config = self._config()
        size, radius = config["morgan_size"], config["morgan_radius"]
        return sum(probe_width(kind) if is_custom(kind)
                   else size if kind in COUNT_FINGERPRINTS
                   else len(descriptor_names(kind, radius)) for kind in config["descriptors"])

    def summable(self) -> bool:
        """Whether :meth:`transform_summed` can sum the bags without building fragments.

        True for fragment bags of in-parent descriptor sets (``"morgan_parent"``,
        ``"morgan_atoms"``, ``"atompair_parent"``, ``"physchem_atoms"``) without the whole
        molecule as an extra instance: the fragments partition the atoms, and each environment,
        atom pair or atom value is counted at its atoms.
        """
        config = self._config()
        return (config["bag_type"] != "conformers" and not config["include_whole"]
                and all(k in SUMMABLE_OVER_FRAGMENTS for k in config["descriptors"]))

    def transform_summed(self, X) -> list[np.ndarray]:
        """Each molecule's bag summed into one instance, without building its fragments.

        Equal (to float32 rounding) to summing the instances of :meth:`transform`'s bags. No
        fragment is built, named or described on its own; ``"morgan_parent"`` still needs the
        cuts (RDKit drops duplicate environments per fragment), ``"morgan_atoms"`` and
        ``"atompair_parent"`` add up to the whole molecule and need none (the 30 MoleculeACE
        training sets: 27 s with them, 59 s with ``"morgan_parent"``). Enough for estimators
        that see bags only through their sums (:func:`milearn_core.predicts_from_bag_sums`).
        ``provenance_`` then describes one instance per molecule, covering all its atoms.
        Failures are those of :meth:`transform` less the steps skipped: ``time_limit``
        bounds the work done here, so a molecule whose fragments would run out of time may
        still be summed (and then fail only when explained).

        Raises
        ------
        ValueError
            Where the bags cannot be summed this way (see :meth:`summable`).
        """
        if not self.summable():
            raise ValueError(f"{self.bag_type} bags of {self._config()['descriptors']} "
                             f"(include_whole={self.include_whole}) cannot be summed without "
                             f"their fragments; transform_summed needs in-parent descriptors "
                             f"{SUMMABLE_OVER_FRAGMENTS} on fragment bags")
        return self._transform(X, summed=True)

    def transform_with(self, X, summed: bool, run: Callable[[list, dict], Iterable]
                       ) -> list[np.ndarray]:
        """:meth:`transform` (or with ``summed``, :meth:`transform_summed`) with the work done
        by ``run(items, config)``, which yields :func:`bag_chunk`'s results in input order
        (:func:`qsarmil.scale.bag_on_dask`): the same bags, failures and provenance."""
        if summed and not self.summable():
            return self.transform_summed(X)  # raises, naming what cannot be summed
        return self._transform(X, summed=summed, run=run)

    def _transform(self, X, summed: bool, run: Callable[[list, dict], Iterable] | None = None
                   ) -> list[np.ndarray]:
        config = dict(self._config(), summed=summed)
        items = list(X)
        show = show_progress(self.progress) and (self.progress is True or len(items) >= _PROGRESS_MIN)
        cache = _CONFORMER_CACHE.get() if config["bag_type"] == "conformers" else None
        if cache is None:
            results = self._bag_all(items, config, run)
        else:
            results = self._bag_cached(items, config, run, cache)
        bags, provenance, failures = [], [], []
        width = self.n_features() if any(is_custom(k) for k in config["descriptors"]) else None
        for result in tqdm(results, total=len(items), disable=not show, desc="bagging molecules"):
            if width is not None and not isinstance(result, Failure) and result[0].shape[1] != width:
                result = Failure(result[1].index, _input_text(items[result[1].index]),
                                 f"the descriptors gave {result[0].shape[1]} values per fragment, "
                                 f"not {width} (a custom descriptor's length varies)")
            if isinstance(result, Failure):
                if self.strict:
                    raise BaggingError(f"row {result.index} ({result.input!r}): {result.reason}")
                failures.append(result)
            else:
                bags.append(result[0])
                provenance.append(result[1])
        self.provenance_ = provenance
        self.failures_ = failures
        self.valid_index_ = np.array([p.index for p in provenance], dtype=int)
        return bags

    def _bag_all(self, items: list, config: dict, run) -> Iterable:
        """Bagging results of ``items`` in input order (row = position in ``items``)."""
        if run is not None:
            return run(items, config)
        if self.n_jobs == 1:
            return (_bag_one(item, i, config) for i, item in enumerate(items))
        return Parallel(n_jobs=self.n_jobs, return_as="generator", batch_size="auto")(
            delayed(_bag_one)(item, i, config) for i, item in enumerate(items))

    def _bag_cached(self, items: list, config: dict, run, cache: dict) -> list:
        """:meth:`_bag_all` through ``cache``: only SMILES not bagged with ``config`` before."""
        settings = repr(sorted(config.items()))
        keys = [(item, settings) if isinstance(item, str) else None for item in items]
        missing = [i for i, key in enumerate(keys) if key is None or key not in cache]
        results = {}
        for i, result in zip(missing, self._bag_all([items[i] for i in missing], config, run)):
            results[i] = _renumbered(result, i)
            if keys[i] is not None:
                cache[keys[i]] = result
        return [results[i] if i in results else _renumbered(cache[keys[i]], i)
                for i in range(len(items))]
