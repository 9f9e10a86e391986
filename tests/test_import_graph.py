"""The packages' import graph has no circle, and persistence imports no estimator.

Every ``import`` statement of every module (deferred ones inside functions included) is read
with ``ast``; the graph of our own modules must be acyclic, ``milearn_core`` must never import
``qsarmil``, and ``persist``/``safe_state`` must reach no estimator module. Each module is also
imported alone (our modules cleared from ``sys.modules`` first) in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

import milearn_core
from milearn_core.safe_state import StateError, _registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("milearn_core", "qsarmil")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its body (the module, not the package
    whose ``__init__`` Python also runs on the way)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_import_reader_sees_real_edges():
    graph = _graph()
    assert "milearn_core.persist" in graph["milearn_core.estimators.kernels"]
    assert "milearn_core.safe_state" in graph["milearn_core.persist"]
    assert "milearn_core.training" in graph["milearn_core.persist"]  # a deferred import


def test_no_module_reaches_itself_through_its_imports():
    graph = _graph()
    circles = sorted(name for name in graph if name in _reachable(graph, name))
    assert circles == []


def test_persistence_imports_no_estimator_and_the_engine_no_chemistry():
    graph = _graph()
    for name in ("milearn_core.persist", "milearn_core.safe_state"):
        reached = _reachable(graph, name)
        assert not {m for m in reached if m.startswith("milearn_core.estimators")
                    or m in ("milearn_core.consensus", "milearn_core.search")}, name
    for name in graph:
        if name.startswith("milearn_core"):
            assert not any(m.startswith("qsarmil") for m in graph[name]), name


def test_each_engine_module_imports_alone():
    names = sorted(n for n in _modules() if n.startswith("milearn_core"))
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('milearn_core', 'qsarmil')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


# -- the registry ---------------------------------------------------------------------------------
def _fitted_examples():
    rng = np.random.RandomState(0)
    X = [rng.rand(rng.randint(1, 4), 5) for _ in range(30)]
    y = rng.rand(30)
    labels = (y > 0.5).astype(int)
    return [
        (milearn_core.AdditiveRegressor(), y),
        (milearn_core.BagKernelRegressor(), y),
        (milearn_core.BagKernelClassifier(), labels),
        (milearn_core.BagWrapper(Ridge()), y),
        (milearn_core.InstanceWrapper(LogisticRegression()), labels),
        (milearn_core.MISVM(), labels),
        (milearn_core.ConsensusRegressor([("a", milearn_core.AdditiveRegressor()),
                                          ("k", milearn_core.BagKernelRegressor())]), y),
    ], X


def test_every_engine_class_is_registered_with_a_schema_that_covers_its_fitted_state():
    examples, X = _fitted_examples()
    ours = {s.cls: s for s in _registry().values() if s.name.startswith("milearn_core.")}
    assert {type(est) for est, _ in examples} <= set(ours)
    for est, y in examples:
        est.fit(X, y)
        schema = ours[type(est)]
        assert schema.fields is not None and schema.check is not None, schema.name
        stored = set(est.__getstate__()) - set(est._get_param_names())
        assert stored <= schema.fields, (schema.name, stored - schema.fields)


def test_an_unregistered_subclass_is_refused_at_save(tmp_path):
    class Mine(milearn_core.AdditiveRegressor):
        pass

    examples, X = _fitted_examples()
    model = Mine().fit(X, examples[0][1])
    with pytest.raises(TypeError, match="model files hold only these classes"):
        model.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_an_attribute_outside_the_schema_is_refused_at_save_and_at_load(tmp_path, monkeypatch):
    examples, X = _fitted_examples()
    model = milearn_core.AdditiveRegressor().fit(X, examples[0][1])
    model.extra_ = np.zeros(3)
    with pytest.raises(TypeError, match=r"attributes \['extra_'\] are not in its schema"):
        model.save(tmp_path / "m.safetensors")
    # A file that holds one anyway (written with the check switched off) is refused on load.
    from milearn_core import safe_state

    schema = _registry()["milearn_core.AdditiveRegressor"]
    monkeypatch.setitem(safe_state._REGISTRY, schema.name,
                        safe_state.StateSchema(schema.name, schema.cls, None, schema.check))
    model.save(tmp_path / "m.safetensors")
    monkeypatch.setitem(safe_state._REGISTRY, schema.name, schema)
    with pytest.raises(milearn_core.ModelFileError, match=r"attributes \['extra_'\] are not in"):
        milearn_core.AdditiveRegressor.load(tmp_path / "m.safetensors")


def test_a_name_cannot_be_registered_twice_for_another_class():
    from milearn_core.safe_state import register_state

    class Other:
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_state("milearn_core.AdditiveRegressor")(Other)
    assert _registry()["milearn_core.AdditiveRegressor"].cls is milearn_core.AdditiveRegressor


def test_state_errors_are_value_errors():
    assert issubclass(StateError, ValueError)
