"""The synthetic protein-protein interaction task: sequences, planted motifs, windows, keys."""

from __future__ import annotations

import numpy as np
import pytest

from milearn_core import MILClassifier, kid_accuracy
from milearn_core.datasets import (
    AMINO_ACIDS,
    BACKGROUND,
    MILDataset,
    make_ppi_bags,
    ppi_window_features,
)


@pytest.fixture(scope="module")
def ppi():
    return make_ppi_bags(n_pairs=240, random_state=3)


def test_background_is_swissprot_composition():
    assert BACKGROUND.sum() == pytest.approx(1.0)
    top = [AMINO_ACIDS[i] for i in np.argsort(-BACKGROUND)[:3]]
    assert top == ["L", "A", "G"] and AMINO_ACIDS[BACKGROUND.argmin()] == "W"


def test_sequences_follow_background(ppi):
    # negative pairs only: planted motifs shift the composition of the positives on purpose
    residues = "".join(p for info, label in zip(ppi.bag_info, ppi.y) if not label for p in info["proteins"])
    counts = np.array([residues.count(a) for a in AMINO_ACIDS])
    freq = counts / counts.sum()
    # ~24 000 residues: every frequency within 0.6 percentage points (about 3 sigma for L)
    assert counts.sum() > 20000
    np.testing.assert_allclose(freq, BACKGROUND, atol=0.006)


def test_labels_follow_the_planted_motif_pair(ppi):
    assert 0.35 < ppi.y.mean() < 0.65
    for info, label in zip(ppi.bag_info, ppi.y):
        first, second = info["proteins"]
        motif_a, motif_b = info["motifs"]
        assert label == (motif_a in first and motif_b in second)
        assert (info["planted"]["A"] is not None) == bool(label) == (info["planted"]["B"] is not None)
        if label:
            pos = info["planted"]["A"]
            assert first[pos:pos + len(motif_a)] == motif_a
        else:  # negatives hold neither motif anywhere
            assert not any(m in p for m in (motif_a, motif_b) for p in (first, second))


def test_instances_are_windows_and_keys_overlap_the_motif(ppi):
    for bag, keys, values, info, label in zip(ppi.bags, ppi.key_instances, ppi.instance_values,
                                              ppi.bag_info, ppi.y):
        assert bag.shape == (len(info["windows"]), 422) and bag.dtype == np.float32
        for row, (protein, start), key, covered in zip(bag, info["windows"], keys, values):
            seq = info["proteins"][protein]
            np.testing.assert_array_equal(row, ppi_window_features(seq[start:start + 15]))
            pos = info["planted"]["AB"[protein]]
            motif = set() if pos is None else set(range(pos, pos + 8))
            assert covered == len(motif & set(range(start, start + 15)))
            assert key == (label == 1 and covered > 0)
        # both proteins are covered to their last residue
        for protein, seq in enumerate(info["proteins"]):
            ends = [s + 15 for p, s in info["windows"] if p == protein]
            assert max(ends) == len(seq)
        if label:  # some window holds each whole motif
            whole = np.flatnonzero(values == 8)
            assert {info["windows"][i][0] for i in whole} == {0, 1}


def test_window_encodings():
    window = "ACDEFGHIKLMNPQR"
    aac = ppi_window_features(window, "aac")
    dpc = ppi_window_features(window, "aac_dpc")
    full = ppi_window_features(window, "aac_dpc_phys")
    assert aac.shape == (20,) and dpc.shape == (420,) and full.shape == (422,)
    assert aac.sum() == 15 and dpc[20:].sum() == 14
    assert dpc[20 + AMINO_ACIDS.index("A") * 20 + AMINO_ACIDS.index("C")] == 1   # "AC"
    assert dpc[20 + AMINO_ACIDS.index("C") * 20 + AMINO_ACIDS.index("A")] == 0   # "CA" is not there
    # Kyte-Doolittle: I (4.5) + V (4.2) - R (-4.5); charge: K + R + D + E + H(0.1)
    np.testing.assert_allclose(ppi_window_features("IVR", "aac_dpc_phys")[-2:], [0.42, 0.1], atol=1e-6)
    np.testing.assert_allclose(ppi_window_features("KRDEH")[-1], 0.01, atol=1e-6)
    with pytest.raises(ValueError, match="encoding must be one of"):
        ppi_window_features(window, "blosum")


def test_seeded_and_subset_keeps_info():
    a = make_ppi_bags(n_pairs=30, random_state=5)
    b = make_ppi_bags(n_pairs=30, random_state=5)
    c = make_ppi_bags(n_pairs=30, random_state=6)
    np.testing.assert_array_equal(np.vstack(a.bags), np.vstack(b.bags))
    assert a.bag_info[0]["proteins"] != c.bag_info[0]["proteins"]
    part = a.subset([3, 1])
    assert isinstance(part, MILDataset) and part.bag_info == [a.bag_info[3], a.bag_info[1]]
    np.testing.assert_array_equal(part.bags[1], a.bags[1])


def test_harder_variants():
    short = make_ppi_bags(n_pairs=40, motif_length=4, random_state=0)
    assert all(len(m) == 4 for m in short.bag_info[0]["motifs"])
    mutated = make_ppi_bags(n_pairs=200, mutation_rate=0.25, random_state=0)
    motif_a = mutated.bag_info[0]["motifs"][0]
    copies = [i["proteins"][0][i["planted"]["A"]:i["planted"]["A"] + 8]
              for i in mutated.bag_info if i["planted"]["A"] is not None]
    changed = np.mean([a != b for c in copies for a, b in zip(c, motif_a)])
    assert 0.15 < changed < 0.3    # 0.25 x (1 - chance of drawing the same residue)
    decoys = make_ppi_bags(n_pairs=200, decoy_fraction=1.0, random_state=0)
    for info, label, keys, values in zip(decoys.bag_info, decoys.y, decoys.key_instances,
                                         decoys.instance_values):
        halves = [info["planted"][s] is not None for s in "AB"]
        assert sum(halves) == (2 if label else 1)
        if not label:
            assert not keys.any() and values.max() == 8


def test_bad_arguments():
    with pytest.raises(ValueError, match="motif_length"):
        make_ppi_bags(n_pairs=5, motif_length=20)
    with pytest.raises(ValueError, match="stride"):
        make_ppi_bags(n_pairs=5, stride=9)
    with pytest.raises(ValueError, match="at least one window"):
        make_ppi_bags(n_pairs=5, protein_length=10)
    with pytest.raises(ValueError, match="mutation_rate"):
        make_ppi_bags(n_pairs=5, mutation_rate=1.5)


def test_attention_network_finds_the_motif_windows(one_torch_thread):
    """A small attention network learns the task and points at the motif windows."""
    data = make_ppi_bags(n_pairs=300, protein_length=(40, 80), random_state=0)
    train, test = data.subset(np.arange(220)), data.subset(np.arange(220, 300))
    model = MILClassifier(hidden_layer_sizes=(64,), max_epochs=60, random_state=0).fit(train.bags, train.y)
    assert (model.predict(test.bags) == test.y).mean() >= 0.9
    weights = model.instance_weights(test.bags)
    assert kid_accuracy(weights, test.key_instances, bags=np.flatnonzero(test.y == 1)) >= 0.9
