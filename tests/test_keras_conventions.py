"""Keras conventions of the losses, layers and metric (issue 30, points 1-2): from_logits and per-pixel sample weights.

References: the probability path of each loss (logits path equal to 1e-6), hand-computed values, scipy's Sobel
filter, keras.losses.SparseCategoricalCrossentropy(ignore_class=255) and keras.metrics.MeanIoU.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak import layers, losses, metrics, models

IGNORE = 255


def _softmax(logits):
    """The probability maps of logits, in float64: softmax, or the sigmoid of one channel."""
    x = np.asarray(logits, np.float64)
    if x.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _labels(rng, shape, classes):
    labels = rng.integers(0, max(classes, 2), shape)
    labels[0, 0, 0] = IGNORE
    return labels


def _edge_net(classes, seed=0):
    keras.utils.set_random_seed(seed)
    return layers.SemedaNet(max(classes, 2))


def _pixel_losses(classes):
    """(loss with from_logits, the same on probabilities, target maker) for every loss on class maps."""
    edge_net = _edge_net(classes)
    keypoints = lambda rng, shape: losses.pack_keypoints(rng.integers(0, 2, shape + (classes,)),
                                                        rng.integers(0, 2, shape + (classes,)))
    labels = lambda rng, shape: _labels(rng, shape, classes)
    return {
        "pixel_cross_entropy": (losses.PixelCrossEntropy(from_logits=True), losses.PixelCrossEntropy(), labels),
        "keypoint": (losses.KeypointLoss(from_logits=True), losses.KeypointLoss(), keypoints),
        "sobel": (losses.SobelEdgeLoss(from_logits=True), losses.SobelEdgeLoss(), labels),
        "semeda": (losses.SemedaLoss(edge_net, from_logits=True), losses.SemedaLoss(edge_net), labels),
    }


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.integers(0, 2**31 - 1))
def test_every_pixel_loss_on_logits_equals_it_on_probabilities(classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (2, 8, 8, classes)).astype("float32")  # p in float32 keeps 1 − p to 1e-6 here
    weight = rng.random((2, 8, 8)).astype("float32")
    for name, (on_logits, on_probabilities, target) in _pixel_losses(classes).items():
        y_true = target(rng, (2, 8, 8))
        for sample_weight in (None, weight):
            got = float(on_logits(y_true, logits, sample_weight=sample_weight))
            expected = float(on_probabilities(y_true, _softmax(logits).astype("float32"), sample_weight=sample_weight))
            assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), name


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([1, 3]), st.sampled_from(["mse", "kl", "mse+kl"]), st.integers(0, 2**31 - 1))
def test_proportion_loss_on_logits_equals_it_on_their_softmax(classes, form, seed):
    """Both paths against the docstring's formulas in float64: float32 probabilities near 1 lose 1 − p's digits
    (p = 0.9959 keeps about 4 of them), so the two paths are each compared with the exact value, not with each other."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (4, classes)).astype("float32")
    target = rng.dirichlet(np.ones(max(classes, 2)), 4)[:, -classes:].astype("float32")
    probabilities = _softmax(logits).astype("float32")
    got = float(losses.ProportionLoss(form, from_logits=True)(target, logits))
    assert got == pytest.approx(_proportion_loss(form, target, _softmax(logits)), rel=1e-6, abs=1e-6)
    got = float(losses.ProportionLoss(form)(target, probabilities))
    assert got == pytest.approx(_proportion_loss(form, target, probabilities), rel=1e-6, abs=1e-6)


def _proportion_loss(form, target, predicted):
    """ProportionLoss by its docstrings, in float64: Σ (t − p)², KL(t ‖ p) over [1 − p, p] for one channel, or their sum."""
    t, p = np.asarray(target, np.float64), np.asarray(predicted, np.float64)
    mse = ((t - p) ** 2).sum(axis=-1)
    if p.shape[-1] == 1:
        t, p = np.concatenate([1 - t, t], axis=-1), np.concatenate([1 - p, p], axis=-1)
    kl = np.where(t > 0, t * (np.log(np.maximum(t, 1e-300)) - np.log(p)), 0.0).sum(axis=-1)
    return float({"mse": mse, "kl": kl, "mse+kl": mse + kl}[form].mean())


@pytest.mark.parametrize("classes", [1, 3])
def test_proportion_head_on_logits_pools_their_probabilities(classes):
    logits = np.random.default_rng(classes).normal(0, 3, (2, 5, 7, classes)).astype("float32")
    pooled = np.asarray(layers.ProportionHead(from_logits=True)(logits))
    np.testing.assert_allclose(pooled, _softmax(logits).mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(pooled, np.asarray(layers.ProportionHead()(_softmax(logits).astype("float32"))), atol=1e-6)


@pytest.mark.parametrize("classes", [1, 3])
def test_losses_and_their_gradients_stay_finite_for_logits_of_1e4(classes):
    rng = np.random.default_rng(0)
    logits = tf.constant(np.where(rng.random((2, 8, 8, classes)) < 0.5, -1e4, 1e4).astype("float32"))
    proportion_logits = tf.constant(np.where(rng.random((2, classes)) < 0.5, -1e4, 1e4).astype("float32"))
    target = rng.dirichlet(np.ones(max(classes, 2)), 2)[:, -classes:].astype("float32")
    cases = [(on_logits, target_of(rng, (2, 8, 8)), logits) for on_logits, _, target_of in _pixel_losses(classes).values()]
    cases += [(losses.ProportionLoss(form, from_logits=True), target, proportion_logits) for form in ("mse", "kl", "mse+kl")]
    cases += [(lambda y, x: tf.reduce_sum(layers.ProportionHead(from_logits=True)(x)), None, logits)]
    for loss, y_true, x in cases:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(y_true, x)
        assert np.isfinite(float(value)), loss
        assert np.all(np.isfinite(tape.gradient(value, x).numpy())), loss


@pytest.mark.parametrize("classes", [1, 6])
def test_build_unet_without_activation_gives_the_logits_of_the_default_model(classes):
    keras.utils.set_random_seed(0)
    probabilities = models.build_unet(classes, base_filters=2)
    logits = models.build_unet(classes, base_filters=2, activation=None)
    logits.set_weights(probabilities.get_weights())
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3)).astype("float32")
    np.testing.assert_allclose(_softmax(logits(images)), probabilities(images), atol=1e-6)


def test_pixel_cross_entropy_weighs_each_pixel_by_hand():
    # one 1×2×2 image, classes 0/1, the last pixel unlabelled: the mean over the 3 labelled pixels of w · (−log p_true)
    probs = np.array([[[[0.8, 0.2], [0.4, 0.6]], [[0.5, 0.5], [0.9, 0.1]]]], "float32")
    labels = np.array([[[0, 1], [1, IGNORE]]])
    weight = np.array([[[2.0, 0.5], [0.0, 7.0]]], "float32")
    expected = (2.0 * -np.log(0.8) + 0.5 * -np.log(0.6) + 0.0 * -np.log(0.5)) / 3
    assert float(losses.PixelCrossEntropy()(labels, probs, sample_weight=weight)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.PixelCrossEntropy()(labels, probs, sample_weight=np.zeros_like(weight))) == 0.0
    per_image = float(losses.PixelCrossEntropy()(labels, probs, sample_weight=np.array([3.0])))
    assert per_image == pytest.approx(3 * float(losses.PixelCrossEntropy()(labels, probs)), rel=1e-6)


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_pixel_cross_entropy_equals_keras_sparse_cross_entropy_when_images_have_as_many_labels(classes, seed):
    """Keras divides by the labelled pixels of the batch, kerasweak per image: equal when every image has as many."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (3, 6, 6, classes)).astype("float32")
    labels = rng.integers(0, classes, (3, 6, 6))
    labels[:, 0, :2] = IGNORE  # two unlabelled pixels in every image
    weight = rng.random((3, 6, 6)).astype("float32")
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    ours = losses.PixelCrossEntropy(from_logits=True)
    assert float(ours(labels, logits, sample_weight=weight)) == pytest.approx(
        float(reference(labels, logits, sample_weight=weight)), rel=1e-5)
    labels[0, 1:] = IGNORE  # now image 0 has 4 labels: kerasweak still averages per image, Keras over the batch's pixels
    per_pixel = -np.log(np.take_along_axis(_softmax(logits), np.where(labels == IGNORE, 0, labels)[..., None], -1))[..., 0]
    valid = labels != IGNORE
    per_image = (per_pixel * valid).sum(axis=(1, 2)) / valid.sum(axis=(1, 2))
    assert float(ours(labels, logits)) == pytest.approx(per_image.mean(), rel=1e-5)
    assert float(reference(labels, logits)) == pytest.approx(per_pixel[valid].mean(), rel=1e-5)


def test_keypoint_loss_weighs_each_keypoint_by_hand():
    p = np.array([[[[0.9], [0.3]], [[0.6], [0.2]]]], "float32")  # one sigmoid channel, 1×2×2
    target = losses.pack_keypoints(np.array([[[[1], [0]], [[1], [0]]]]), np.array([[[[1], [1]], [[0], [1]]]]))
    weight = np.array([[[2.0, 1.0], [5.0, 0.0]]], "float32")
    expected = (2.0 * -np.log(0.9) + 1.0 * -np.log(0.7) + 0.0 * -np.log(0.8)) / 3  # 3 keypoints; (1, 0) is none
    assert float(losses.KeypointLoss()(target, p, sample_weight=weight)) == pytest.approx(expected, rel=1e-6)


def _sobel_magnitude(maps):
    """scipy's Sobel filter of each channel, mirror padding (tf.image.sobel_edges' REFLECT), as the magnitude."""
    from scipy import ndimage

    gy = np.stack([ndimage.sobel(m, axis=0, mode="mirror") for m in np.moveaxis(maps, -1, 0)], axis=-1)
    gx = np.stack([ndimage.sobel(m, axis=1, mode="mirror") for m in np.moveaxis(maps, -1, 0)], axis=-1)
    return np.sqrt(gy ** 2 + gx ** 2 + 1e-12)


def test_sobel_edge_loss_with_pixel_weights_matches_scipy():
    rng = np.random.default_rng(3)
    probs = _softmax(rng.normal(0, 2, (2, 9, 7, 3)))
    labels = _labels(rng, (2, 9, 7), 3)
    weight = rng.random((2, 9, 7))
    expected = []
    for b in range(2):
        valid = labels[b] != IGNORE
        target = np.eye(3)[np.where(valid, labels[b], 0)] * valid[..., None]
        edge = np.abs(_sobel_magnitude(probs[b] * valid[..., None]) - _sobel_magnitude(target)).mean(axis=-1)
        cross_entropy = -(np.log(np.clip((probs[b] * target).sum(-1), 1e-7, 1)) * valid * weight[b]).sum() / valid.sum()
        expected.append(cross_entropy + 2.0 * (edge * weight[b]).mean())
    got = losses.SobelEdgeLoss(2.0)(labels, probs.astype("float32"), sample_weight=weight.astype("float32"))
    assert float(got) == pytest.approx(np.mean(expected), rel=1e-5)


def test_semeda_loss_weighs_cross_entropy_and_every_embedding_term_per_pixel():
    rng = np.random.default_rng(4)
    edge_net = _edge_net(3, seed=4)
    edge_net.build((None, None, None, 3))
    probs = _softmax(rng.normal(0, 2, (2, 8, 8, 3))).astype("float32")
    labels = _labels(rng, (2, 8, 8), 3)
    weight = rng.random((2, 8, 8)).astype("float32")
    valid = (labels != IGNORE)[..., None]
    target = np.eye(3)[np.where(valid[..., 0], labels, 0)] * valid
    embeddings = zip(edge_net.embeddings(probs * valid), edge_net.embeddings(target.astype("float32")))
    edge = sum(lam * (np.abs(np.asarray(a) - np.asarray(b)).mean(-1) * weight).mean(axis=(1, 2))
               for lam, (a, b) in zip((4.0, 2.0, 1.0), embeddings))
    cross_entropy = losses.pixel_cross_entropy(labels, probs, pixel_weight=weight)
    got = losses.SemedaLoss(edge_net, lambdas=(4, 2, 1), reduction=None)(labels, probs, sample_weight=weight)
    np.testing.assert_allclose(got, cross_entropy + edge, rtol=1e-5)


def test_fit_and_evaluate_take_per_pixel_sample_weights():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3)).astype("float32")
    labels = _labels(rng, (4, 32, 32), 3)
    weight = rng.random((4, 32, 32)).astype("float32")
    unet = models.build_unet(3, base_filters=2, activation=None)
    unet.compile(optimizer="adam", loss=losses.PixelCrossEntropy(from_logits=True),
                 weighted_metrics=[metrics.MeanIoU(3, from_logits=True)])
    unet.fit(images, labels, sample_weight=weight, epochs=1, batch_size=4, verbose=0)
    loss, _ = unet.evaluate(images, labels, sample_weight=weight, batch_size=4, verbose=0)
    expected = losses.pixel_cross_entropy(labels, unet(images), from_logits=True, pixel_weight=weight)
    assert loss == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_mean_iou_weighs_each_pixel_by_hand():
    # 1×2×3 image, two classes: truth 0 0 1 / 1 1 255, predicted 0 1 1 / 0 1 1, weights 1 2 3 / 4 5 6
    labels = np.array([[[0, 0, 1], [1, 1, IGNORE]]])
    probs = np.eye(2, dtype="float32")[np.array([[[0, 1, 1], [0, 1, 1]]])]
    weight = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]], "float32")
    metric = metrics.MeanIoU(2)
    metric.update_state(labels, probs, sample_weight=weight)
    # matrix [[1, 2], [4, 8]]: IoU 0 = 1 / (1 + 2 + 4), IoU 1 = 8 / (8 + 2 + 4)
    assert float(metric.result()) == pytest.approx((1 / 7 + 8 / 14) / 2, rel=1e-6)
    metric.reset_state()
    metric.update_state(labels, probs, sample_weight=np.zeros_like(weight))
    assert float(metric.result()) == 0.0


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_mean_iou_equals_keras_mean_iou_with_pixel_weights_when_every_class_occurs(classes, seed):
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(classes), 2 * 8 * 8)[:2 * 64].reshape(2, 8, 8)  # every class occurs
    labels[0, 0, 0] = IGNORE
    probs = rng.random((2, 8, 8, classes)).astype("float32")
    weight = rng.random((2, 8, 8)).astype("float32")
    ours, reference = metrics.MeanIoU(classes), keras.metrics.MeanIoU(classes, ignore_class=IGNORE, sparse_y_pred=False,
                                                                        dtype="float32")
    ours.update_state(labels, probs, sample_weight=weight)
    reference.update_state(labels, probs, sample_weight=weight)
    assert float(ours.result()) == pytest.approx(float(reference.result()), rel=1e-5)


@pytest.mark.parametrize("obj", [losses.PixelCrossEntropy(from_logits=True), losses.KeypointLoss(from_logits=True),
                                 losses.SobelEdgeLoss(from_logits=True), losses.ProportionLoss("kl", from_logits=True),
                                 metrics.MeanIoU(3, from_logits=True), layers.ProportionHead(from_logits=True)],
                         ids=lambda obj: type(obj).__name__)
def test_from_logits_survives_serialisation(obj):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj) and restored.from_logits is True
