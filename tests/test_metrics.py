import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from kerasweak.metrics import MeanIoU, confusion_matrix, fit_class_bias, labels_from_probabilities, scores_from_confusion


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 300), st.integers(0, 2**31 - 1))
def test_scores_match_scikit_learn(num_classes, n, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, num_classes, n)
    predicted = rng.integers(0, num_classes, n)
    names = [f"c{i}" for i in range(num_classes)]
    scores = scores_from_confusion(confusion_matrix(truth, predicted, num_classes), names)
    labels = list(range(num_classes))
    iou = jaccard_score(truth, predicted, labels=labels, average=None, zero_division=0)
    f1 = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose([scores["iou"][c] for c in names], iou, atol=1e-12)
    np.testing.assert_allclose([scores["f1"][c] for c in names], f1, atol=1e-12)
    for key, reference in (("precision", precision_score), ("recall", recall_score)):
        expected = reference(truth, predicted, labels=labels, average=None, zero_division=0)
        np.testing.assert_allclose([scores[key][c] for c in names], expected, atol=1e-12)
    assert np.isclose(scores["miou"], iou.mean())
    assert np.isclose(scores["accuracy"], accuracy_score(truth, predicted))


def test_ignored_pixels_are_left_out_and_subset_mean_is_reported():
    truth = np.array([0, 1, 2, 255, 255])
    predicted = np.array([0, 1, 1, 2, 0])
    matrix = confusion_matrix(truth, predicted, 3)
    assert matrix.sum() == 3
    scores = scores_from_confusion(matrix, ["a", "b", "Unlabeled"], exclude_from_mean=("Unlabeled",))
    assert np.isclose(scores["miou_2"], (1.0 + 0.5) / 2)
    assert np.isclose(scores["miou"], (1.0 + 0.5 + 0.0) / 3)


def test_binary_probabilities_threshold_at_half():
    assert labels_from_probabilities(np.array([[0.2], [0.5], [0.9]])).tolist() == [0, 1, 1]


def test_streaming_mean_iou_matches_numpy():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (2, 6, 6))
    truth[0, 0, :3] = 255
    probs = rng.random((2, 6, 6, 3)).astype("float32")
    metric = MeanIoU(num_classes=3)
    metric.update_state(truth, probs)
    expected = scores_from_confusion(confusion_matrix(truth, probs.argmax(-1), 3), ["a", "b", "c"])["miou"]
    assert np.isclose(float(metric.result()), expected, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.02, 0.5), st.integers(0, 2**31 - 1))
def test_calibrated_sigmoid_cut_is_one_threshold_matching_the_target_area(target, seed):
    """Brute force: the biased labels are p above one threshold, and the foreground area is the target's."""
    p = np.random.default_rng(seed).beta(0.5, 0.5, (3, 40, 40, 1))
    labels = labels_from_probabilities(p, fit_class_bias(p, [target]))
    assert p[..., 0][labels == 1].min() >= p[..., 0][labels == 0].max()
    assert abs(labels.mean() - target) < 0.01


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_calibrated_class_areas_match_the_target_proportions(num_classes, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(num_classes) * 0.7, (4, 30, 30))
    target = rng.dirichlet(np.ones(num_classes) * 3)
    bias = fit_class_bias(p, target)
    area = np.bincount(labels_from_probabilities(p, bias).ravel(), minlength=num_classes) / (4 * 30 * 30)
    np.testing.assert_allclose(area, target, atol=0.02)
    assert abs(bias.mean()) < 1e-9
    np.testing.assert_array_equal(labels_from_probabilities(p, np.zeros(num_classes)), p.argmax(-1))


def test_calibrating_a_constant_map_keeps_the_plain_cut():
    """No cut splits a constant map; the bias that comes closest to a 7% target is none (all background)."""
    p = np.full((2, 8, 8, 1), 0.3)
    bias = fit_class_bias(p, [0.07])
    np.testing.assert_array_equal(labels_from_probabilities(p, bias), labels_from_probabilities(p))
