import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from milearn_core import BagError, BagMinMaxScaler, BagStandardScaler, MILRegressor, check_bags
from milearn_core.bags import check_bag_targets, pack_bags


def test_check_bags_accepts_ragged_lists_and_3d_arrays(rng):
    bags = check_bags([rng.rand(3, 4), rng.rand(1, 4).tolist()])
    assert [b.shape for b in bags] == [(3, 4), (1, 4)]
    assert all(b.dtype == np.float32 for b in bags)
    assert len(check_bags(rng.rand(5, 2, 4))) == 5


@pytest.mark.parametrize(
    "bags, message",
    [
        ([np.ones((2, 3)), np.ones((0, 3))], "bag 1: empty bag"),
        ([np.ones((2, 3)), np.ones((2, 4))], "bag 1: has 4 features, expected 3"),
        ([np.ones((2, 3)), np.ones((2, 3)), np.array([[1, np.nan, 0]])], "bag 2: instance 0"),
        ([np.ones((2, 3)), np.array([[0, 1, 2], [1, np.inf, 0]])], "bag 1: instance 1"),
        ([np.ones(3)], "bag 0: expected a 2-D array"),
        ([np.ones((2, 3)), [["a", "b", "c"]]], "bag 1: cannot be read"),
        ([], "holds no bags"),
        (np.ones((4, 3)), "sequence of 2-D bags"),
    ],
)
def test_check_bags_errors_name_the_bag(bags, message):
    with pytest.raises(BagError, match=message):
        check_bags(bags)


def test_feature_count_checked_against_fitted_model(rng):
    with pytest.raises(BagError, match="bag 0: has 3 features, expected 5"):
        check_bags([rng.rand(2, 3)], n_features=5)


def test_targets_must_match_bags():
    with pytest.raises(BagError, match="y has 2 labels but X has 3 bags"):
        check_bag_targets([1, 2], 3)
    with pytest.raises(BagError, match="bag 1: target is NaN"):
        check_bag_targets([1.0, np.nan], 2)


def test_pack_and_split_round_trip(rng):
    bags = [rng.rand(n, 2) for n in (3, 1, 4)]
    packed = pack_bags(bags)
    assert packed.instances.shape == (8, 2)
    assert packed.bag_index.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert packed.sizes.tolist() == [3, 1, 4]
    for original, back in zip(bags, packed.split(packed.instances)):
        np.testing.assert_array_equal(original, back)


def test_standard_scaler_fits_on_all_instances_and_keeps_bags(rng):
    bags = [rng.rand(n, 3) * 10 + 5 for n in (2, 7, 1)]
    scaled = BagStandardScaler().fit_transform(bags)
    assert [len(b) for b in scaled] == [2, 7, 1]
    stacked = np.vstack(scaled)
    np.testing.assert_allclose(stacked.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(stacked.std(axis=0), 1, atol=1e-9)


def test_minmax_scaler_range_and_feature_check(rng):
    bags = [rng.rand(n, 3) * 4 - 2 for n in (5, 3)]
    scaler = BagMinMaxScaler(feature_range=(-1, 1)).fit(bags)
    stacked = np.vstack(scaler.transform(bags))
    np.testing.assert_allclose(stacked.min(axis=0), -1)
    np.testing.assert_allclose(stacked.max(axis=0), 1)
    with pytest.raises(BagError, match="bag 0: has 2 features"):
        scaler.transform([rng.rand(2, 2)])


def test_scaler_as_first_pipeline_step(mean_bags):
    pipe = Pipeline([("scale", BagStandardScaler()),
                     ("mil", MILRegressor(hidden_layer_sizes=(16,), max_epochs=3, random_state=0))])
    pipe.fit(mean_bags.bags, mean_bags.y)
    assert pipe.predict(mean_bags.bags[:5]).shape == (5,)


def test_sparse_bags_stay_sparse_only_where_accepted(rng):
    bags = [sp.random(n, 50, density=0.1, random_state=n, format="coo") for n in (3, 1, 4)]
    kept = check_bags(bags, accept_sparse=True)
    assert all(sp.issparse(b) and b.format == "csr" and b.dtype == np.float32 for b in kept)
    dense = check_bags(bags)
    assert all(isinstance(b, np.ndarray) for b in dense)
    packed = pack_bags(kept)
    assert sp.issparse(packed.instances) and packed.instances.shape == (8, 50)
    np.testing.assert_array_equal(packed.instances.toarray(), pack_bags(dense).instances)


def test_sparse_bag_errors_name_the_bag_and_instance():
    bad = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, np.nan]]))
    with pytest.raises(BagError, match="bag 1: instance 1 holds NaN"):
        check_bags([sp.csr_matrix(np.ones((1, 3))), bad], accept_sparse=True)
    with pytest.raises(BagError, match="bag 0: has 3 features, expected 4"):
        check_bags([sp.csr_matrix(np.ones((2, 3)))], n_features=4, accept_sparse=True)
    with pytest.raises(BagError, match="bag 0: empty bag"):
        check_bags([sp.csr_matrix((0, 3))], accept_sparse=True)
