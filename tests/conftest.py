import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from milearn_core.datasets import make_digit_bags

# Small, fast settings: real training, few epochs.
FAST = dict(hidden_layer_sizes=(32,), max_epochs=12, batch_size=16, random_state=0,
            early_stopping=False)


@pytest.fixture()
def one_torch_thread():
    """Small networks train many times faster on one thread than on two cores shared with
    other work (joblib's workers get one thread each anyway)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def or_bags():
    return make_digit_bags("or", n_bags=160, bag_size=(3, 8), random_state=1)


@pytest.fixture(scope="session")
def mean_bags():
    return make_digit_bags("mean", n_bags=160, bag_size=(3, 8), random_state=2)


@pytest.fixture()
def rng():
    return np.random.RandomState(0)


# -- property-based tests (tests/robustness) ---------------------------------------------------
# Profiles: "ci" (default) keeps the robustness folder to a few hundred generated cases; "slow"
# (pytest --slow) generates over 10 000. Each test body counts its cases with `count_case`, and
# the terminal summary reports them per test.
_PROFILE_SETTINGS = dict(deadline=None, database=None, print_blob=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=30, **_PROFILE_SETTINGS)
settings.register_profile("slow", max_examples=2000, **_PROFILE_SETTINGS)
_CASES = Counter()


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="run the property-based tests with the 'slow' hypothesis profile")


def pytest_configure(config):
    settings.load_profile("slow" if config.getoption("--slow") else "ci")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One thread per worker (and per process it starts): the workers already fill the
        # cores, and two threads each made small network fits many times slower.
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def count_case():
    """Call ``count_case(name)`` once per generated case; totals appear in the summary."""
    def count(name: str) -> None:
        _CASES[name] += 1
    return count


def pytest_sessionfinish(session):
    """Under pytest-xdist a worker hands its case counts to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["generated_cases"] = dict(_CASES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _CASES.update(getattr(node, "workeroutput", {}).get("generated_cases", {}))


def pytest_terminal_summary(terminalreporter):
    if not _CASES:
        return
    profile = settings.get_current_profile_name()
    terminalreporter.section(f"generated cases (hypothesis profile {profile!r})")
    for name, n in sorted(_CASES.items()):
        terminalreporter.write_line(f"{name}: {n}")
    terminalreporter.write_line(f"total: {sum(_CASES.values())}")


@pytest.fixture(scope="session")
def fitted_models():
    """Every estimator class (tests/robustness/mil_cases.py) fitted on 12 small 3-feature bags."""
    from mil_cases import ALL, REGRESSORS

    rng = np.random.RandomState(0)
    bags = [rng.rand(rng.randint(1, 4), 3) for _ in range(12)]
    return {name: make().fit(bags, np.arange(12.0) if name in REGRESSORS else np.array([0, 1] * 6))
            for name, make in ALL.items()}


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory):
    """A default QSARModel fitted on 40 bundled solubility molecules, saved once (a folder)."""
    from qsarmil.data import load_dataset
    from qsarmil.model import QSARModel

    data = load_dataset("solubility").iloc[:40]
    path = tmp_path_factory.mktemp("qsar") / "model"
    QSARModel().fit(data.smiles, data.target).save(path)
    return str(path)
