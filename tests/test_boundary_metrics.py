import numpy as np
import pytest

from kerasweak.metrics import class_e_measures, e_measure, e_measure_scores, present_class_miou, trimap_miou


def _reference_e_measure(fm, gt):
    """Fan et al.'s Emeasure.m transcribed pixel by pixel, with a plain mean instead of its sum / (H·W - 1)."""
    fm, gt = fm.astype(float), gt.astype(float)
    if gt.sum() == 0:
        enhanced = 1.0 - fm
    elif (1 - gt).sum() == 0:
        enhanced = fm
    else:
        enhanced = np.empty(gt.shape)
        mu_fm, mu_gt = fm.mean(), gt.mean()
        for index in np.ndindex(gt.shape):
            a, b = gt[index] - mu_gt, fm[index] - mu_fm
            phi = 2 * a * b / (a * a + b * b + np.finfo(float).eps)
            enhanced[index] = (phi + 1) ** 2 / 4
    return enhanced.sum() / gt.size


def _fixtures():
    rng = np.random.default_rng(0)
    gt = np.zeros((6, 7), bool)
    gt[1:4, 2:6] = True
    yield gt, gt  # perfect
    yield ~gt, gt  # inverted
    yield np.zeros_like(gt), gt  # nothing predicted
    yield rng.random(gt.shape) < 0.5, gt
    yield rng.random(gt.shape) < 0.2, np.zeros_like(gt)  # all-background truth
    yield rng.random(gt.shape) < 0.7, np.ones_like(gt)  # all-foreground truth


@pytest.mark.parametrize("pred, gt", list(_fixtures()))
def test_e_measure_matches_the_reference_formula(pred, gt):
    assert e_measure(pred, gt) == pytest.approx(_reference_e_measure(pred, gt), abs=1e-12)


def test_e_measure_hand_values_and_batching():
    gt = np.array([[1, 1, 0, 0]])
    assert e_measure(gt, gt) == pytest.approx(1.0)
    assert e_measure(1 - gt, gt) == pytest.approx(0.0)
    assert e_measure(np.zeros_like(gt), gt) == pytest.approx(0.25)  # φ = 0 everywhere
    pairs = list(_fixtures())
    batched = e_measure(np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs]))
    np.testing.assert_allclose(batched, [_reference_e_measure(p, g) for p, g in pairs], atol=1e-12)


def test_valid_mask_restricts_e_measure_to_its_pixels():
    rng = np.random.default_rng(1)
    pred, gt = rng.random((6, 8)) < 0.5, rng.random((6, 8)) < 0.4
    valid = np.zeros((6, 8), bool)
    valid[1:5, 2:7] = True
    assert e_measure(pred, gt, valid) == pytest.approx(_reference_e_measure(pred[1:5, 2:7], gt[1:5, 2:7]), abs=1e-12)


def test_class_e_measures_per_image_and_class_with_ignored_pixels():
    labels = np.array([[[0, 0, 1, 1], [0, 0, 1, 255]], [[255] * 4] * 2])
    predictions = np.array([[[0, 0, 1, 0], [0, 0, 1, 1]], [[0] * 4] * 2])
    scores = class_e_measures(labels, predictions, 3)
    valid = labels[0] != 255
    expected = [_reference_e_measure((predictions[0] == c)[valid], (labels[0] == c)[valid]) for c in range(3)]
    np.testing.assert_allclose(scores[0], expected, atol=1e-12)
    assert np.isnan(scores[1]).all()  # no labelled pixel
    summary = e_measure_scores(scores, ["a", "b", "c"])
    assert summary["e_measure"] == pytest.approx(np.mean(expected))
    assert summary["e_measure_per_class"]["c"] == pytest.approx(expected[2])


def _brute_trimap(labels, predictions, num_classes, width):
    """Edges and bands pixel by pixel, IoU over the classes present in each region."""
    n, height, wide = labels.shape
    scores = {}
    band = np.zeros(labels.shape, bool)
    for b in range(n):
        edges = [(r, c) for r, c in np.ndindex(height, wide)
                 if (labels[b, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] != labels[b, r, c]).any()]
        for r, c in np.ndindex(height, wide):
            band[b, r, c] = any(max(abs(r - er), abs(c - ec)) < width for er, ec in edges)
    for region, inside in (("boundary", band), ("non_boundary", ~band)):
        keep = inside & (labels != 255)
        ious = []
        for k in range(num_classes):
            truth, pred = (labels == k) & keep, (predictions == k) & keep
            if (truth | pred).any():
                ious.append((truth & pred).sum() / (truth | pred).sum())
        scores[region] = np.mean(ious)
    return scores


def test_trimap_miou_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.repeat(rng.integers(0, 3, (2, 4, 5)), 3, axis=1), 3, axis=2)  # 12x15 blocks
    labels[0, :2, :2] = 255
    predictions = np.where(rng.random(labels.shape) < 0.8, labels % 255, rng.integers(0, 3, labels.shape))
    got = trimap_miou(labels, predictions, 3, widths=(1, 2, 3))
    assert sorted(got) == [1, 2, 3]
    for width, regions in got.items():
        expected = _brute_trimap(labels, predictions, 3, width)
        assert regions["boundary"] == pytest.approx(expected["boundary"])
        assert regions["non_boundary"] == pytest.approx(expected["non_boundary"])


def test_present_class_miou_skips_absent_classes():
    assert present_class_miou([[2, 0, 0], [1, 1, 0], [0, 0, 0]]) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert np.isnan(present_class_miou(np.zeros((2, 2))))
