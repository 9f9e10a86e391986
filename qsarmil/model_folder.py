"""A saved QSARModel's folder: which files it holds, and checking each before it is used.

A model folder comes from anyone (it is e-mailed around), so every file is a plain name read as
a regular file, sizes are checked before anything is read, and every setting is checked by key,
type and range; anything else is a :class:`~milearn_core.persist.ModelFileError`. Declared sizes
are checked against each other before anything is built from them: the bagger's feature count
(worked out from its settings) against the estimator's, and the applicability domain's number
of molecules against the number the model was trained on. Saving writes into a folder only where
:func:`check_save_folder` allows it, and replaces only the files it writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from milearn_core import BagStandardScaler
from milearn_core.persist import ModelFileError
from milearn_core.safe_state import is_finite_number, is_utf8_text

from .custom_descriptors import CUSTOM_PREFIX, restore_custom
from .domain import ApplicabilityDomain
from .featurize import MoleculeBagger
from .reliability import Reliability

__all__ = ["bagger_n_features", "check_feature_counts", "check_save_folder", "checked_bagger",
           "estimator_training_size", "plain_file", "read_config", "read_domain", "read_scaler"]

FORMAT = "qsarmil.QSARModel"
# 2: the estimator is a milearn_core safetensors file (1 also allowed skops); 3: domain.json,
# target_name and units; 4: n_training_molecules (caps the domain's size); 5: custom_widths
# (the name and width of each custom descriptor set; the objects themselves are never saved);
# 6: reliability.json; 7: reference_prediction (the mean training prediction contributions are
# measured from, qsarmil.attribution); 8: contribution_scale (the |atom contribution| drawn at
# full colour in one output file's pictures, from the training set)
VERSION = 8
CONFIG_FILE, ESTIMATOR_FILE, LEGACY_ESTIMATOR_FILE = ("qsarmil.json", "estimator.safetensors",
                                                         "estimator.skops")
DOMAIN_FILE = "domain.json"
RELIABILITY_FILE = "reliability.json"
_MAX_CONFIG_BYTES = 1024**2
# A domain holds each training molecule's fingerprint bits: ~180 KB for the 1025 solubility
# molecules, so 200 MB covers about a million; the size is checked before anything is read.
_MAX_DOMAIN_BYTES = 200 * 1024**2
_MAX_NAME_LENGTH = 200  # target_name, units
_RELIABILITY_BYTES_BASE, _RELIABILITY_BYTES_PER_MOLECULE = 64 * 1024, 16 * 1024
_KEYS_V2 = frozenset({"format", "version", "task", "scaler", "scale_features", "bagger",
                      "estimator_file"})
_KEYS_V3 = _KEYS_V2 | {"domain_file", "target_name", "units"}
_KEYS = {1: _KEYS_V2, 2: _KEYS_V2, 3: _KEYS_V3, 4: _KEYS_V3 | {"n_training_molecules"},
         5: _KEYS_V3 | {"n_training_molecules", "custom_widths"},
         6: _KEYS_V3 | {"n_training_molecules", "custom_widths", "reliability_file"}}
_KEYS[7] = _KEYS[6] | {"reference_prediction"}
_KEYS[8] = _KEYS[7] | {"contribution_scale"}
_MAX_CUSTOM_SETS, _MAX_CUSTOM_WIDTH = 32, 2**20
# The files save writes; an entry of one of these names that is not a regular file (a link, a
# folder) is refused rather than replaced.
_SAVED_FILES = (CONFIG_FILE, ESTIMATOR_FILE, DOMAIN_FILE, RELIABILITY_FILE)


def check_save_folder(path: str | os.PathLike, overwrite: bool = False) -> Path | None:
    """Whether :meth:`QSARModel.save` may write to ``path`` (call it before a long fit).

    Returns None for a folder that does not exist yet, else the folder to write into.

    Raises
    ------
    FileExistsError
        Where :meth:`QSARModel.save` would refuse (see there).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise FileExistsError(f"{path}: refusing to save into the working directory or a folder "
                              f"above it; choose a new folder name")
    if not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder; choose a new folder name")
    entries = {p.name for p in path.iterdir()}
    if not entries:
        return path
    if not _holds_saved_model(path):
        raise FileExistsError(f"{path}: folder holds files that are not a saved qsarmil model; "
                              f"refusing to write into it (choose a new folder name)")
    if not overwrite:
        raise FileExistsError(f"{path}: holds a saved model; pass overwrite=True (qsarmil train "
                              f"--force) to replace it")
    for name in _SAVED_FILES:
        entry = path / name
        if entry.is_symlink() or (entry.exists() and not entry.is_file()):
            raise FileExistsError(f"{entry}: is not a regular file (a link or a folder); "
                                  f"refusing to replace it (move it away or choose a new "
                                  f"folder name)")
    return path


def _holds_saved_model(path: Path) -> bool:
    """Whether ``path`` has the marker file of a model saved by any version of qsarmil."""
    try:
        file = plain_file(path, CONFIG_FILE)
        if file.stat().st_size > _MAX_CONFIG_BYTES:
            return False
        config = json.loads(file.read_text(encoding="utf-8"))
    except (ModelFileError, OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def read_config(path: Path) -> dict:
    """qsarmil.json of a model folder, every key checked."""
    file = plain_file(path, CONFIG_FILE)
    if file.stat().st_size > _MAX_CONFIG_BYTES:
        raise ModelFileError(f"{file}: larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: not a saved QSARModel ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a saved QSARModel")
    version = config.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in _KEYS:
        raise ModelFileError(f"{path}: saved by an unknown version ({version!r}) of qsarmil")
    expected = _KEYS[version]
    if set(config) != expected:
        raise ModelFileError(f"{path}: settings have keys {sorted(config)}, expected {sorted(expected)}")
    if config["task"] not in ("regression", "classification"):
        raise ModelFileError(f"{path}: unknown task {config['task']!r}")
    if config["scale_features"] not in ("auto", True, False):
        raise ModelFileError(f"{path}: scale_features {config['scale_features']!r} not understood")
    if config["estimator_file"] == LEGACY_ESTIMATOR_FILE:
        raise ModelFileError(f"{path}: saved by qsarmil 0.1 in the skops format, which is no longer "
                             f"loaded (it can run code); train and save the model again")
    if config["estimator_file"] != ESTIMATOR_FILE:
        raise ModelFileError(f"{path}: estimator file {config['estimator_file']!r} is not "
                             f"{ESTIMATOR_FILE!r}")
    if config.get("domain_file") not in (None, DOMAIN_FILE):
        raise ModelFileError(f"{path}: domain file {config['domain_file']!r} is not "
                             f"{DOMAIN_FILE!r}")
    if config.get("reliability_file") not in (None, RELIABILITY_FILE) or (
            config.get("reliability_file") and not config.get("domain_file")):
        raise ModelFileError(f"{path}: reliability file {config['reliability_file']!r} is not "
                             f"{RELIABILITY_FILE!r} beside a domain file")
    for key in ("target_name", "units"):
        value = config.get(key)
        if value is not None and (not is_utf8_text(value) or len(value) > _MAX_NAME_LENGTH):
            raise ModelFileError(f"{path}: {key} must be text of at most {_MAX_NAME_LENGTH} "
                                 f"characters")
    if version >= 4:
        _check_training_size(file, config["n_training_molecules"], config["domain_file"])
    reference = config.get("reference_prediction")
    if reference is not None and not is_finite_number(reference):
        raise ModelFileError(f"{path}: reference_prediction = {reference!r} is not a finite number")
    scale = config.get("contribution_scale")
    if scale is not None and (not is_finite_number(scale) or scale < 0):
        raise ModelFileError(f"{path}: contribution_scale = {scale!r} is not a finite number >= 0")
    widths = config.get("custom_widths", {})
    if not isinstance(widths, dict) or len(widths) > _MAX_CUSTOM_SETS or not all(
            isinstance(k, str) and 0 < len(k) <= _MAX_NAME_LENGTH and not isinstance(v, bool)
            and isinstance(v, int) and 1 <= v <= _MAX_CUSTOM_WIDTH for k, v in widths.items()):
        raise ModelFileError(f"{path}: custom_widths must map at most {_MAX_CUSTOM_SETS} names to "
                             f"widths in [1, {_MAX_CUSTOM_WIDTH}]")
    return config


def _check_training_size(file: Path, value: object, domain_file: str | None) -> None:
    """n_training_molecules: a positive integer, or null only for a model without a domain."""
    if value is None and domain_file is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelFileError(f"{file}: n_training_molecules = {value!r} is not a positive "
                             f"integer (a model with an applicability domain needs one)")


def estimator_training_size(estimator: object) -> int | None:
    """How many training bags a fitted estimator keeps (a bag-kernel model keeps them all),
    or None where it keeps none."""
    indptr = getattr(estimator, "train_indptr_", None)
    return None if indptr is None else max(len(indptr) - 1, 0)


def read_domain(path: Path, name: str | None, max_molecules: int | None = None
                ) -> ApplicabilityDomain | None:
    """The saved applicability domain (None where the folder has none), size-capped and
    checked by :meth:`ApplicabilityDomain.from_dict`, holding at most ``max_molecules``
    training molecules (the number the model was trained on, where known)."""
    if name is None:
        return None
    file, state = _read_json(path, name, "applicability domain")
    try:
        return ApplicabilityDomain.from_dict(state, max_molecules)
    except ModelFileError as exc:
        raise ModelFileError(f"{file}: {exc}") from None


def read_reliability(path: Path, name: str | None, domain: ApplicabilityDomain | None,
                     classes) -> Reliability | None:
    """The saved intervals / sets and training-neighbour table (None where the folder has
    none), size-capped and checked by :meth:`Reliability.from_dict`: one row per molecule of
    the (already checked) domain."""
    if name is None or domain is None:
        return None
    # Parsed JSON costs up to ~25x its text (a list of empty lists): the file may hold only
    # what the training molecules need (each at most 4 texts of 500 characters, escaped).
    file, state = _read_json(path, name, "reliability table",
                             _RELIABILITY_BYTES_BASE + _RELIABILITY_BYTES_PER_MOLECULE * domain.n_molecules_)
    try:
        return Reliability.from_dict(state, domain.n_molecules_, classes)
    except ModelFileError as exc:
        raise ModelFileError(f"{file}: {exc}") from None


def _read_json(path: Path, name: str, what: str, max_bytes: int = _MAX_DOMAIN_BYTES
               ) -> tuple[Path, object]:
    """A JSON file of the folder, its size checked before it is read (at most ``max_bytes``,
    and never more than ``_MAX_DOMAIN_BYTES``)."""
    limit = min(max_bytes, _MAX_DOMAIN_BYTES)
    file = plain_file(path, name)
    if file.stat().st_size > limit:
        raise ModelFileError(f"{file}: larger than {limit} bytes")
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            # read() sizes its buffer by the request: ask for what the file holds, plus one
            # byte to notice growth, never a full limit's worth
            raw = fh.read(min(os.fstat(fh.fileno()).st_size, limit) + 1)
        if len(raw) > limit:
            raise ModelFileError(f"{file}: larger than {limit} bytes")
        return file, json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{file}: not a saved {what} ({type(exc).__name__}: {exc})") from None


def plain_file(folder: Path, name: str) -> Path:
    """``folder/name``, refused unless it is a regular file (no link, device or folder)."""
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: no such model folder")
    file = folder / name
    if file.is_symlink() or not file.is_file():
        raise ModelFileError(f"{folder}: no regular file {name!r} (not a saved QSARModel)")
    return file


def checked_bagger(params, custom_widths: dict | None = None, custom: dict | None = None
                   ) -> MoleculeBagger:
    """A MoleculeBagger from saved settings: known names, plain JSON values, valid together.
    Saved custom descriptor sets (``"custom:NAME"``, one per ``custom_widths`` entry) are
    replaced by the objects in ``custom`` (see :func:`qsarmil.custom_descriptors.restore_custom`)."""
    if not isinstance(params, dict):
        raise TypeError("not a JSON object")
    names = set(MoleculeBagger._get_param_names())
    unknown = set(params) - names
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    for key, value in params.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in items):
            raise TypeError(f"{key} = {value!r} is not a plain value")
    for key, high in _BAGGER_LIMITS.items():
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= high):
            raise ValueError(f"{key} = {value!r} is not a number in [0, {high}]")
    params = {"strip_salts": False, **params}  # saved before salts were stripped: as trained
    kinds = params.get("descriptors")
    named = [k[len(CUSTOM_PREFIX):] for k in (kinds if isinstance(kinds, list) else [kinds])
             if isinstance(k, str) and k.startswith(CUSTOM_PREFIX)]
    if sorted(named) != sorted(custom_widths or {}):
        raise ValueError(f"custom descriptors {named} do not match custom_widths "
                         f"{sorted(custom_widths or {})}")
    if named or custom:  # restore_custom also refuses objects the model does not use
        params["descriptors"] = restore_custom(kinds, custom_widths, custom)
    bagger = MoleculeBagger(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
    bagger.set_params(n_jobs=1, progress="auto", strict=False)  # the machine's choice, not the file's
    bagger._config()
    return bagger


def bagger_n_features(bagger: MoleculeBagger) -> int:
    """Features per instance the bagger makes, from its settings alone (nothing is bagged, and
    count fingerprints are sized by ``morgan_size`` without listing their columns)."""
    return bagger.n_features()


def check_feature_counts(path: Path, bagger: MoleculeBagger, estimator: object) -> None:
    """Refuse a bagger whose instances are not as wide as the estimator's (before either is
    used: a bagger of 2**26-bit dense fingerprints would allocate GBs per molecule)."""
    expected = getattr(estimator, "n_features_in_", None)
    if expected is None:
        return
    made = bagger_n_features(bagger)
    if made != expected:
        raise ModelFileError(f"{path / CONFIG_FILE}: the bagger settings make {made} features "
                             f"per instance, but {ESTIMATOR_FILE} takes {expected}")


# Settings that size the work per molecule.
_BAGGER_LIMITS = {"morgan_radius": 8, "morgan_size": 2**26, "n_conformers": 1000,
                  "time_limit": 86_400, "prune_rms": 100, "energy_window": 1000,
                  "max_heavy_atoms": 100_000, "max_smiles_length": 10**7}


def read_scaler(path: Path, config, n_features: int | None) -> BagStandardScaler | None:
    if config is None:
        return None
    if not isinstance(config, dict) or set(config) != {"mean", "scale"}:
        raise ModelFileError(f"{path}: scaler settings not understood")
    try:
        mean = np.asarray(config["mean"], dtype=np.float64)
        scale = np.asarray(config["scale"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: scaler values are not numbers") from None
    if (mean.ndim != 1 or mean.shape != scale.shape or not np.isfinite(mean).all()
            or not np.isfinite(scale).all() or (scale <= 0).any()
            or (n_features is not None and len(mean) != n_features)):
        raise ModelFileError(f"{path}: scaler does not fit the estimator")
    scaler = BagStandardScaler()
    scaler.transformer_ = StandardScaler()
    scaler.transformer_.mean_, scaler.transformer_.scale_ = mean, scale
    scaler.transformer_.n_features_in_ = scaler.n_features_in_ = len(mean)
    return scaler
