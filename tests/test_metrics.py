import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from kerasweak.metrics import MeanIoU, confusion_matrix, labels_from_probabilities, scores_from_confusion


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
