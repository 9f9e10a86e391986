import numpy as np
import pytest
import torch

from milearn_core.bags import pack_bags
from milearn_core.batching import DeviceBags, SparseRows, drop_instances
from milearn_core.nn import MILNetwork


@pytest.fixture()
def sparse_bags(rng):
    """Fingerprint-like bags: 512 count features, about 3% non-zero."""
    bags = []
    for n in (3, 1, 6, 2, 5):
        x = (rng.rand(n, 512) < 0.03) * rng.randint(1, 4, size=(n, 512))
        bags.append(x.astype(np.float32))
    return bags


def test_density_decides_the_storage(sparse_bags, rng):
    assert DeviceBags(pack_bags(sparse_bags), torch.device("cpu")).sparse
    dense = [rng.rand(4, 512).astype(np.float32)]
    assert not DeviceBags(pack_bags(dense), torch.device("cpu")).sparse
    small = [np.eye(3, dtype=np.float32)]  # sparse but few features: dense is faster
    assert not DeviceBags(pack_bags(small), torch.device("cpu")).sparse


def test_sparse_rows_hold_the_same_numbers(sparse_bags):
    bags = DeviceBags(pack_bags(sparse_bags), torch.device("cpu"), sparse=True)
    ids = torch.tensor([2, 0])
    x, bag_index = bags.gather(ids)
    assert isinstance(x, SparseRows)
    dense = torch.zeros(len(x.offsets), 512)
    rows = torch.repeat_interleave(torch.arange(len(x.offsets)),
                                   torch.diff(torch.cat([x.offsets, torch.tensor([len(x.indices)])])))
    dense[rows, x.indices] = x.values
    expected = torch.as_tensor(np.vstack([sparse_bags[2], sparse_bags[0]]))
    torch.testing.assert_close(dense, expected)
    assert bag_index.tolist() == [0] * 6 + [1] * 3


@pytest.mark.parametrize("pooling", ["attention", "instance_sum", "self_attention"])
def test_sparse_and_dense_paths_agree(sparse_bags, pooling):
    torch.manual_seed(0)
    net = MILNetwork(512, 2, (16,), pooling=pooling).eval()
    ids = torch.arange(len(sparse_bags))
    outs = [net(*DeviceBags(pack_bags(sparse_bags), torch.device("cpu"), sparse=s).gather(ids),
                len(ids)) for s in (True, False)]
    torch.testing.assert_close(outs[0].bag, outs[1].bag, rtol=1e-5, atol=1e-5)


def test_drop_instances_keeps_one_per_bag():
    bag_index = torch.tensor([0, 0, 0, 1, 2, 2])
    for seed in range(20):
        keep = drop_instances(bag_index, 3, 0.9, torch.Generator().manual_seed(seed))
        assert set(bag_index[keep].tolist()) == {0, 1, 2}
