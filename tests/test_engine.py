"""The network engine's round-2 behaviour: pooling="auto", restarts, the learning-rate schedule,
self-attention on padded bags, model files from before, and the conformer cache."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from milearn_core import MILClassifier, MILRegressor, StepwiseSearchCV
from milearn_core.estimators import BagWrapper
from milearn_core.estimators.neural import AUTO_POOLINGS
from milearn_core.nn.pooling import SelfAttentionPooling
from milearn_core.training import make_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = dict(hidden_layer_sizes=(16,), batch_size=16, random_state=0)


def type_bags(n_bags: int, rule, seed: int = 0):
    """Bags of 6 one-hot instances of 5 types (plus noise); label = ``rule(has type 0, has 1)``."""
    rng = np.random.RandomState(seed)
    bags, labels = [], []
    for _ in range(n_bags):
        kinds = rng.randint(2, 5, 6)
        present = rng.randint(4)  # none, type 0, type 1, both: balanced
        if present & 1:
            kinds[0] = 0
        if present & 2:
            kinds[1] = 1
        bags.append(np.eye(5)[kinds] + 0.05 * rng.randn(6, 5))
        labels.append(int(rule(0 in kinds, 1 in kinds)))
    return bags, np.array(labels)


def test_auto_pooling_keeps_attention_when_it_fits_and_adds_self_attention_for_xor():
    X, y = type_bags(240, lambda a, b: a)  # depends on one type: attention is enough
    easy = MILClassifier(**SMALL).fit(X, y)
    assert easy.pooling == "auto" and easy.pooling_ == "attention" and easy.n_runs_ == 1

    X, y = type_bags(400, lambda a, b: a != b)
    Xt, yt = type_bags(200, lambda a, b: a != b, seed=1)
    xor = MILClassifier(**SMALL).fit(X, y)
    assert xor.n_runs_ > 1  # attention left the validation loss high: self-attention trained
    assert xor.pooling_ == "self_attention"
    assert (xor.predict(Xt) == yt).mean() >= 0.9
    attention_only = MILClassifier(pooling="attention", restarts=0, **SMALL).fit(X, y)
    assert (attention_only.predict(Xt) == yt).mean() < 0.8


def test_restarts_keep_the_run_of_lowest_validation_loss():
    rng = np.random.RandomState(0)
    X = [rng.randn(4, 3) for _ in range(80)]
    y = rng.randint(0, 2, 80)  # noise: no run learns anything
    model = MILClassifier(pooling="mean", restarts=2, max_epochs=5, **SMALL).fit(X, y)
    assert model.n_runs_ == 3
    single = MILClassifier(pooling="mean", restarts=0, max_epochs=5, **SMALL).fit(X, y)
    assert single.n_runs_ == 1
    assert model.history_.best_loss <= single.history_.best_loss  # the first run is one of three
    # A run that learned is kept at once.
    X, y = type_bags(200, lambda a, b: a)
    assert MILClassifier(pooling="attention", restarts=2, **SMALL).fit(X, y).n_runs_ == 1


@pytest.mark.parametrize("bad, message", [
    ({"lr_schedule": "linear"}, "lr_schedule"), ({"restarts": -1}, "restarts"), ({"tol": 1.5}, "tol"),
    ({"pooling": "attentoin"}, "unknown pooling")])
def test_bad_engine_settings_are_named(bad, message):
    X, y = type_bags(20, lambda a, b: a)
    with pytest.raises(ValueError, match=message):
        MILClassifier(**{**SMALL, **bad}).fit(X, y)


def test_onecycle_schedule_warms_up_then_anneals():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.01)
    schedule = make_schedule(optimizer, "onecycle", 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    peak = int(np.argmax(rates))
    assert 20 <= peak <= 40 and math.isclose(max(rates), 0.01, rel_tol=1e-6)
    assert rates[0] < 0.002 and rates[-1] < 1e-5
    assert make_schedule(optimizer, "constant", 100) is None


def test_self_attention_on_padded_bags_matches_a_block_masked_reference():
    torch.manual_seed(0)
    pool = SelfAttentionPooling(8, n_heads=2, attention_dim=4)
    sizes = [3, 1, 5]
    h = torch.randn(sum(sizes), 8)
    bag_index = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    z, weights = pool(h, bag_index, 3)
    # Reference: attention over the whole batch with other bags masked out.
    q, k, v = pool.qkv(h).view(len(h), 3, 2, 4).unbind(dim=1)
    scores = torch.einsum("ihd,jhd->hij", q, k) / 2.0
    scores = scores.masked_fill(bag_index[:, None] != bag_index[None, :], float("-inf"))
    mixed = torch.einsum("hij,jhd->ihd", torch.softmax(scores, -1), v).reshape(len(h), 8)
    z_ref, w_ref = pool.pool(pool.norm(h + pool.out(mixed)), bag_index, 3)
    torch.testing.assert_close(z, z_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, w_ref, atol=1e-6, rtol=1e-5)
    # Each bag's output depends on its own instances only.
    z_alone, _ = pool(h[3:4], torch.zeros(1, dtype=torch.long), 1)
    torch.testing.assert_close(z_alone[0], z[1], atol=1e-5, rtol=1e-5)


def test_self_attention_weights_come_from_leaving_instances_out():
    X, y = type_bags(60, lambda a, b: a and b)
    model = MILClassifier(pooling="self_attention", max_epochs=5, **SMALL).fit(X, y)
    auto = model.instance_weights(X[:5])
    loo = model.instance_weights(X[:5], method="loo")
    for a, b in zip(auto, loo):
        np.testing.assert_allclose(a, b)


def _rewrite_config(path, change):
    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["milearn_core"])
    tensors = load_file(str(path))
    change(config)
    save_file(tensors, str(path), metadata={"milearn_core": json.dumps(config)})


def test_auto_model_round_trips_and_older_files_load_with_their_training_settings(tmp_path):
    X, y = type_bags(120, lambda a, b: a)
    model = MILClassifier(**SMALL).fit(X, y)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = MILClassifier.load(path)
    assert loaded.pooling == "auto" and loaded.pooling_ == model.pooling_
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)

    def as_before(config):  # a file written before lr_schedule, restarts and pooling_
        for key in ("lr_schedule", "restarts", "tol"):
            del config["params"][key]
        del config["fitted"]["pooling_"]
        config["params"]["pooling"] = model.pooling_
    _rewrite_config(path, as_before)
    old = MILClassifier.load(path)
    assert (old.pooling_, old.lr_schedule, old.restarts, old.tol) == (
        model.pooling_, "constant", 0, 0.0)
    np.testing.assert_allclose(old.predict_proba(X), model.predict_proba(X), atol=1e-6)

    # "auto" without the fitted choice is refused, as is a made-up pooling.
    _rewrite_config(path, lambda c: c["params"].update(pooling="auto"))
    with pytest.raises(ValueError, match="pooling_"):
        MILClassifier.load(path)
    _rewrite_config(path, lambda c: c["fitted"].update(pooling_="os.system"))
    with pytest.raises(ValueError, match="pooling_"):
        MILClassifier.load(path)


def test_search_averages_three_seeds_for_networks_and_one_for_the_rest():
    X, y = type_bags(60, lambda a, b: a)
    steps = [("pooling", ["attention", "mean"])]
    net = StepwiseSearchCV(MILClassifier(max_epochs=3, **SMALL), steps, cv=2, progress=False,
                           refit=False).fit(X, y)
    assert net.n_seeds_ == 3 and net.n_fits_ == 2 * 2 * 3
    seeds = {net._seed({"pooling": "attention"}, r) for r in range(3)}
    assert len(seeds) == 3
    from sklearn.linear_model import LogisticRegression

    flat = StepwiseSearchCV(BagWrapper(LogisticRegression()), [("pool", ["mean", "max"])], cv=2,
                            progress=False, refit=False).fit(X, y)
    assert flat.n_seeds_ == 1 and flat.n_fits_ == 4
    with pytest.raises(ValueError, match="n_seeds"):
        StepwiseSearchCV(MILClassifier(**SMALL), steps, n_seeds=0).fit(X, y)


def test_auto_candidates_are_an_additive_then_an_interaction_pooling():
    assert AUTO_POOLINGS["classification"] == ("attention", "self_attention")
    assert AUTO_POOLINGS["regression"][1] == "self_attention"
    X, y = type_bags(120, lambda a, b: a)
    reg = MILRegressor(pooling="auto", **SMALL).fit(X, y.astype(float))
    assert reg.pooling_ in AUTO_POOLINGS["regression"]


def test_a_converged_run_stops_on_small_improvements_but_a_plateau_does_not():
    X, y = type_bags(240, lambda a, b: a)
    creeping = MILClassifier(pooling="attention", tol=0.0, max_epochs=60, **SMALL).fit(X, y)
    converged = MILClassifier(pooling="attention", tol=0.5, max_epochs=60, **SMALL).fit(X, y)
    assert converged.n_epochs_ < creeping.n_epochs_
    assert (converged.predict(X) == y).mean() >= 0.95
    # On the plateau (noise labels: never under a tenth of the constant loss) tol changes nothing.
    rng = np.random.RandomState(0)
    Xn, yn = [rng.randn(4, 3) for _ in range(80)], rng.randint(0, 2, 80)
    a = MILClassifier(pooling="mean", tol=0.0, restarts=0, **SMALL).fit(Xn, yn)
    b = MILClassifier(pooling="mean", tol=0.5, restarts=0, **SMALL).fit(Xn, yn)
    assert a.n_epochs_ == b.n_epochs_
