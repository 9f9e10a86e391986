"""Your own fragment descriptors: a callable or a scikit-learn transformer per fragment.

A custom descriptor set is either a callable ``f(fragment_mol, parent_mol, atom_ids) -> 1-D
array`` (``fragment_mol``: the fragment cut out, its cut points handled as ``dummy_atoms``
says; ``atom_ids``: its atoms' indices in ``parent_mol``) or an object with ``transform(mols)
-> 2-D array`` over fragment Mols (a fitted scikit-learn transformer). It may stand in
``MoleculeBagger(descriptors=...)`` beside the named sets. Whole-molecule descriptors are a
callable that looks at ``parent_mol`` only (:func:`whole_molecule`): every fragment then
carries them.

A saved model records each custom set by name and width only: nothing from the file is ever
run, so ``QSARModel.load(path, custom_descriptors={name: f})`` must hand the same objects back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from rdkit import Chem

__all__ = ["CUSTOM_PREFIX", "custom_name", "describe_custom", "is_custom", "probe_width",
           "restore_custom", "save_custom", "whole_molecule"]

CUSTOM_PREFIX = "custom:"
_PROBE = "CCO"  # a molecule every descriptor should handle; sizes a custom set when saved


def is_custom(kind) -> bool:
    """Whether a descriptor entry is the user's own (not a named set)."""
    return not isinstance(kind, str) and (callable(kind) or hasattr(kind, "transform"))


def custom_name(kind) -> str:
    """The name a custom set is saved and reported under (its function or class name)."""
    name = getattr(kind, "__name__", None) or type(kind).__name__
    return name if name != "<lambda>" else "lambda"


def describe_custom(kind, fragment: Chem.Mol, parent: Chem.Mol, atoms: Sequence[int]) -> np.ndarray:
    """One fragment's values of a custom set, as a 1-D float array (a ValueError says what
    came back where it is not a non-empty row of numbers)."""
    if hasattr(kind, "transform"):
        values = kind.transform([fragment])
        values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
        if values.ndim != 2 or values.shape[0] != 1:
            raise ValueError(f"custom descriptor {custom_name(kind)}: transform of one fragment "
                             f"gave shape {values.shape}, expected (1, n)")
        values = values[0]
    else:
        values = kind(fragment, parent, tuple(atoms))
    try:
        row = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"custom descriptor {custom_name(kind)} returned {type(values).__name__}, "
                         "not numbers") from None
    if row.ndim != 1 or row.size == 0:
        raise ValueError(f"custom descriptor {custom_name(kind)} returned shape {row.shape}, "
                         "expected a non-empty 1-D array")
    return row


def probe_width(kind) -> int:
    """Values per fragment of a custom set, measured on ethanol described whole."""
    mol = Chem.MolFromSmiles(_PROBE)
    return len(describe_custom(kind, mol, mol, range(mol.GetNumAtoms())))


def whole_molecule(function: Callable[[Chem.Mol], Sequence[float]]) -> Callable:
    """A custom set that gives every fragment its parent molecule's ``function(mol)`` values."""
    def describe(fragment, parent, atoms):
        return function(parent)

    describe.__name__ = f"whole_{getattr(function, '__name__', 'molecule')}"
    return describe


def save_custom(kinds: Sequence) -> tuple[list, dict[str, int]]:
    """Descriptor entries as saved (custom sets as ``"custom:NAME"``) and each custom width."""
    saved, widths = [], {}
    for kind in kinds:
        if is_custom(kind):
            name = custom_name(kind)
            if name in widths:
                raise ValueError(f"two custom descriptors are named {name!r}; give them "
                                 "different function names to save the model")
            widths[name] = probe_width(kind)
            saved.append(CUSTOM_PREFIX + name)
        else:
            saved.append(kind)
    return saved, widths


def restore_custom(kinds, widths: Mapping[str, int], given: Mapping[str, object] | None) -> list:
    """Saved descriptor entries with each ``"custom:NAME"`` replaced by ``given[NAME]``, whose
    width must be the saved one. Raises ValueError naming what is missing or different."""
    names = [k[len(CUSTOM_PREFIX):] for k in kinds if isinstance(k, str) and k.startswith(CUSTOM_PREFIX)]
    given = dict(given or {})
    missing = [n for n in names if n not in given]
    if missing:
        listed = ", ".join(f"{n!r}: {n}" for n in missing)
        raise ValueError(f"the model uses custom descriptors {missing}; nothing from the file is "
                         f"run, so pass them again: QSARModel.load(path, custom_descriptors="
                         f"{{{listed}}})")
    extra = sorted(set(given) - set(names))
    if extra:
        raise ValueError(f"custom descriptors {extra} were given but the model does not use them")
    out = []
    for kind in kinds:
        if isinstance(kind, str) and kind.startswith(CUSTOM_PREFIX):
            name = kind[len(CUSTOM_PREFIX):]
            obj = given[name]
            if not is_custom(obj):
                raise ValueError(f"custom descriptor {name!r} must be a callable or a transformer")
            width = probe_width(obj)
            if width != widths.get(name):
                raise ValueError(f"custom descriptor {name!r} gives {width} values per fragment; "
                                 f"the model was trained on {widths.get(name)}")
            out.append(obj)
        else:
            out.append(kind)
    return out
