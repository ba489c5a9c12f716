"""Proportion signals beyond MSE (kerasweak.ops.proportions) against brute force and hand-computed values."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from kerasweak.ops.proportions import (absent_class_penalty, interval_penalty, log_barrier, mean_entropy,
                                       present_class_penalty, sinkhorn_labels, sinkhorn_plan, sorted_labels)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4))
def test_the_sinkhorn_plans_class_sums_equal_the_proportions(seed, classes):
    rng = np.random.default_rng(seed)
    log_p = np.log(rng.dirichlet(np.ones(classes), size=(2, 12))).astype("float32")
    proportions = rng.dirichlet(np.ones(classes), size=2).astype("float32")
    plan = np.asarray(sinkhorn_plan(log_p, proportions, iterations=50))
    np.testing.assert_allclose(plan.sum(axis=1), 12 * proportions, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(plan.sum(axis=2), 1.0, atol=1e-2)  # pixel sums approach 1


def textbook_sinkhorn(log_p, proportions, temperature, iterations):
    """Alternating row and column scaling in the log domain with scipy's logsumexp, absent classes (column −inf)
    left out from the start: the reference plan."""
    log_kernel = log_p.astype(np.float64) / temperature
    with np.errstate(divide="ignore"):
        log_mass = np.log(proportions.astype(np.float64) * log_p.shape[1])[:, None, :]
    column = np.where(np.isinf(log_mass), -np.inf, 0.0)
    for _ in range(iterations):
        row = -logsumexp(log_kernel + column, axis=2, keepdims=True)
        column = log_mass - logsumexp(log_kernel + row, axis=1, keepdims=True)
    return np.exp(log_kernel + row + column)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.sampled_from([1.0, 0.3, 0.1]), st.booleans())
def test_the_sinkhorn_plan_is_the_textbook_alternating_scaling(seed, classes, temperature, one_class_absent):
    rng = np.random.default_rng(seed)
    log_p = np.log(rng.dirichlet(np.ones(classes), size=(2, 30))).astype("float32")
    proportions = rng.dirichlet(np.ones(classes), size=2).astype("float32")
    if one_class_absent:
        proportions[:, 0] = 0
        proportions /= proportions.sum(axis=1, keepdims=True)
    plan = np.asarray(sinkhorn_plan(log_p, proportions, temperature, iterations=20))
    np.testing.assert_allclose(plan, textbook_sinkhorn(log_p, proportions, temperature, 20), rtol=1e-3, atol=1e-5)


def test_an_absent_class_gets_no_mass():
    log_p = np.log(np.full((1, 6, 3), 1 / 3, "float32"))
    plan = np.asarray(sinkhorn_plan(log_p, np.array([[0.5, 0.0, 0.5]], "float32")))
    assert plan[..., 1].max() == 0 and np.isfinite(plan).all()


def test_for_two_classes_sinkhorn_at_a_low_temperature_is_the_exact_sorted_assignment():
    rng = np.random.default_rng(0)
    foreground = rng.uniform(0.05, 0.95, (1, 4, 5))
    maps = np.stack([1 - foreground, foreground], axis=-1).astype("float32")
    labels = np.asarray(sinkhorn_labels(maps, np.array([[0.7, 0.3]], "float32"), temperature=0.05, iterations=200))
    scores = np.log(foreground) - np.log(1 - foreground)
    exact = np.asarray(sorted_labels(scores.ravel().astype("float32"), 0.3)).reshape(1, 4, 5)
    np.testing.assert_array_equal(labels, exact)
    assert exact.sum() == 6  # round(20 · 0.3)


def test_the_sorted_assignment_is_the_brute_force_best_labelling():
    scores = np.array([0.3, -1.0, 2.0, 0.1, -0.2], "float32")
    labels = np.asarray(sorted_labels(scores, 0.4))
    best = max((c for c in itertools.product([0, 1], repeat=5) if sum(c) == 2), key=lambda c: float(np.dot(c, scores)))
    np.testing.assert_array_equal(labels, best)


def test_absent_and_present_class_penalties_by_hand():
    maps = np.zeros((1, 2, 2, 3), "float32")
    maps[0, ..., 0] = [[0.9, 0.8], [0.1, 0.2]]
    maps[0, ..., 1] = [[0.1, 0.2], [0.3, 0.0]]
    maps[0, ..., 2] = 1 - maps[0, ..., 0] - maps[0, ..., 1]
    proportions = np.array([[0.5, 0.0, 0.5]], "float32")
    assert float(absent_class_penalty(proportions, maps, k=2)[0]) == pytest.approx((0.3 + 0.2) / 2)  # class 1's top 2
    top2 = [(0.9 + 0.8) / 2, (0.8 + 0.6) / 2]  # classes 0 and 2
    assert float(present_class_penalty(proportions, maps, k=2)[0]) == pytest.approx(-np.mean(np.log(top2)), rel=1e-5)


def test_the_log_barrier_is_continuous_and_the_interval_penalty_by_hand():
    t = 5.0
    edge = 1 / t ** 2
    below, above = float(log_barrier(np.float32(-edge - 1e-6), t)), float(log_barrier(np.float32(-edge + 1e-6), t))
    assert below == pytest.approx(above, abs=1e-3)
    assert float(log_barrier(np.float32(-0.5), t)) == pytest.approx(-np.log(0.5) / t)
    assert float(log_barrier(np.float32(0.2), t)) == pytest.approx(t * 0.2 - np.log(edge) / t + 1 / t)
    rho, predicted = np.array([[0.3, 0.7]], "float32"), np.array([[0.5, 0.5]], "float32")
    expected = np.mean([float(log_barrier(np.float32(0.5 - 0.35), t)) + float(log_barrier(np.float32(0.25 - 0.5), t)),
                        float(log_barrier(np.float32(0.5 - 0.75), t)) + float(log_barrier(np.float32(0.65 - 0.5), t))])
    assert float(interval_penalty(rho, predicted, 0.05, t)[0]) == pytest.approx(expected, rel=1e-5)
    inside = float(interval_penalty(rho, rho, 0.05, t)[0])
    assert inside < float(interval_penalty(rho, predicted, 0.05, t)[0])


def test_mean_entropy_by_hand():
    maps = np.array([[[[0.5, 0.5], [1.0, 0.0]]]], "float32")  # (1, 1, 2, 2)
    assert float(mean_entropy(maps)[0]) == pytest.approx(np.log(2) / 2, rel=1e-4)
