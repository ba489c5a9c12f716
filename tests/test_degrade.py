import numpy as np
import pytest

from kerasweak.data import clustered_proportions, noisy_proportions


def _proportions(n=60, classes=6, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(classes), size=n).astype(np.float32)


@pytest.mark.parametrize("mode", ["softmax", "clip"])
@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5])
def test_noisy_proportions_are_proportions(mode, sigma):
    p = _proportions()
    noisy = noisy_proportions(p, sigma, seed=1, mode=mode)
    assert noisy.shape == p.shape and noisy.dtype == np.float32 and (noisy >= 0).all()
    np.testing.assert_allclose(noisy.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(noisy, noisy_proportions(p, sigma, seed=1, mode=mode))


def test_zero_noise_clip_returns_the_input_but_softmax_flattens_it():
    p = _proportions()
    np.testing.assert_allclose(noisy_proportions(p, 0.0, seed=0, mode="clip"), p, rtol=1e-6)
    one_class = np.array([[1, 0, 0, 0, 0, 0]], np.float32)
    expected = np.exp(one_class) / np.exp(one_class).sum()  # eq. 5 as written: (0.35, 0.13, ...)
    np.testing.assert_allclose(noisy_proportions(one_class, 0.0, seed=0), expected, rtol=1e-6)


def test_noise_grows_with_sigma():
    p = _proportions()
    errors = [np.abs(noisy_proportions(p, s, seed=0, mode="clip") - p).mean() for s in (0.05, 0.2, 0.5)]
    assert errors == sorted(errors)
    with pytest.raises(ValueError, match="mode"):
        noisy_proportions(p, 0.1, seed=0, mode="abs")


@pytest.mark.parametrize("k", [1, 5, 20])
def test_each_cluster_gets_one_members_original_proportions(k):
    p = _proportions()
    degraded = clustered_proportions(p, k, seed=0)
    assert degraded.shape == p.shape
    vectors = np.unique(degraded, axis=0)
    assert len(vectors) == k
    for vector in vectors:
        members = np.flatnonzero((degraded == vector).all(axis=1))
        assert (p[members] == vector).all(axis=1).sum() == 1  # exactly one member keeps its own row


def test_k_equal_to_n_returns_the_input_and_bad_k_is_rejected():
    p = _proportions(n=12)
    np.testing.assert_array_equal(clustered_proportions(p, 12, seed=0), p)
    for k in (0, 13):
        with pytest.raises(ValueError, match="k must be between"):
            clustered_proportions(p, k, seed=0)
