import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from kerasweak import KerasweakError, models
from kerasweak.ops import object_size


def _size(y):
    return 2 * int(ndimage.distance_transform_cdt(np.pad(y, 1), metric="chessboard").max(initial=0))


def _exact_gradient(logits, target):
    """Eq. 12 by enumerating all 2^V masks: Σ_y Pr(y) [l(s, g(y with y_i=+1)) - l(s, g(y with y_i=-1))]."""
    p = 1 / (1 + np.exp(-logits.ravel()))
    gradient = np.zeros(p.size)
    for bits in itertools.product([0, 1], repeat=p.size):
        y = np.array(bits)
        probability = np.prod(np.where(y == 1, p, 1 - p))
        for i in range(p.size):
            on, off = y.copy(), y.copy()
            on[i], off[i] = 1, 0
            loss_on, loss_off = ((target - _size(m.reshape(logits.shape))) ** 2 for m in (on, off))
            gradient[i] += probability * (loss_on - loss_off)
    return gradient.reshape(logits.shape)


def test_mean_of_single_sample_estimates_approaches_the_exact_gradient():
    logits = np.array([[1.0, 2.5, 0.0], [1.5, 3.0, -0.5], [2.0, 1.0, -2.0]], "float32")  # V = 9
    exact = _exact_gradient(logits, target=2.0)
    sampled = models.sampled_size_gradient(logits[None], [2.0], num_samples=40000, seed=0).numpy()[0]
    assert np.abs(exact).max() > 0.2
    np.testing.assert_allclose(sampled, exact, atol=0.02)  # per-sample terms lie in [-4, 4]: at most 4/√n = 0.02 per standard error


def _targets(masks, sizes, mask_weight, size_weight):
    return {"mask": np.asarray(masks, "uint8"), "size": np.asarray(sizes, "float32"),
            "mask_weight": np.asarray(mask_weight, "float32"), "size_weight": np.asarray(size_weight, "float32")}


def _logit_gradient(logits, targets):
    logits = tf.Variable(logits)
    with tf.GradientTape() as tape:
        objective = models.size_supervised_objective(logits, targets, num_samples=2, seed=1)
    return tape.gradient(objective, logits).numpy()[..., 0]


def test_mixed_batch_weights_choose_the_loss_per_image():
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(2, 8, 8, 1)) + 1.5).astype("float32")  # dense samples, where flips change sizes
    masks = (rng.random((2, 8, 8)) < 0.5).astype("uint8")
    mixed = _logit_gradient(logits, _targets(masks, [0.0, 6.0], [1, 0], [0, 1]))
    other_mask = _logit_gradient(logits, _targets(np.stack([masks[0], 1 - masks[1]]), [0.0, 6.0], [1, 0], [0, 1]))
    other_size = _logit_gradient(logits, _targets(masks, [8.0, 6.0], [1, 0], [0, 1]))
    np.testing.assert_array_equal(mixed, other_mask)  # image 1 has mask_weight 0: its mask is unused
    np.testing.assert_array_equal(mixed, other_size)  # image 0 has size_weight 0: its size is unused
    bce = (1 / (1 + np.exp(-logits[0, ..., 0])) - masks[0]) / 2  # BCE summed over pixels (eq. 6), mean over the batch
    np.testing.assert_allclose(mixed[0], bce, rtol=1e-5, atol=1e-7)
    assert np.abs(mixed[1]).max() > 0


def _expected_size_loss(logits, target, draws=2000):
    """Monte Carlo E_Y[(s - g(Y))²] (eq. 10) for one image's logits (H, W)."""
    y = np.random.default_rng(0).random((draws, *logits.shape)) < 1 / (1 + np.exp(-logits))
    return float(np.mean((target - object_size(y).numpy()) ** 2))


@pytest.mark.slow
def test_descending_the_sampled_gradient_lowers_the_expected_size_loss():
    """Free logits, no network: samples from σ(3) are mostly foreground, too large for size 4."""
    logits = tf.Variable(np.full((1, 12, 12, 1), 3.0, "float32"))
    targets = _targets(np.zeros((1, 12, 12)), [4.0], [0.0], [1.0])
    before = _expected_size_loss(logits.numpy()[0, ..., 0], 4.0)
    optimizer = keras.optimizers.SGD(0.05)
    for step in range(60):
        with tf.GradientTape() as tape:
            objective = models.size_supervised_objective(logits, targets, num_samples=4, seed=step)
        optimizer.apply([tape.gradient(objective, logits)], [logits])
    assert _expected_size_loss(logits.numpy()[0, ..., 0], 4.0) < 0.75 * before


def _toy_data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 48, 32), "uint8")
    for mask in masks:
        r, c = rng.integers(4, 20, 2)
        mask[r:r + rng.integers(6, 20), c:c + rng.integers(4, 10)] = 1
    images = (40 + 160 * masks + rng.integers(0, 30, masks.shape))[..., None].astype("float32")
    sizes = object_size(masks).numpy().astype("float32")
    return images, _targets(masks, sizes, np.arange(n) % 2, np.ones(n))


def _fitted(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.SizeSupervisedSegmenter(models.build_unet(1, base_filters=2, channels=1), num_samples=2, seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    images, targets = _toy_data()
    stop = keras.callbacks.EarlyStopping(monitor="val_size_error", mode="min", patience=1)
    history = model.fit(images, targets, batch_size=4, epochs=2, validation_data=(images[:4], {k: v[:4] for k, v in targets.items()}),
                        callbacks=[stop], verbose=0)
    return model, images, history


@pytest.mark.slow
def test_fit_reports_size_error_and_iou_and_round_trips(tmp_path):
    model, images, history = _fitted(tmp_path)
    assert {"loss", "mask_loss", "size_error", "iou", "val_size_error", "val_iou"} <= set(history.history)
    assert all(np.isfinite(v).all() for v in history.history.values())
    path = tmp_path / "sizes.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, models.SizeSupervisedSegmenter) and restored.num_samples == 2
    np.testing.assert_array_equal(model.predict(images, verbose=0), restored.predict(images, verbose=0))
    model.export(tmp_path / "exported", verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))  # keep a reference: it owns the variables
    np.testing.assert_allclose(exported.serve(tf.constant(images)), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_backbone_must_have_one_output_and_class_logits():
    with pytest.raises(KerasweakError, match="one sigmoid output"):
        models.SizeSupervisedSegmenter(models.build_unet(3, base_filters=2))
    inputs = keras.Input((16, 16, 1))
    with pytest.raises(KerasweakError, match="class_logits"):
        models.SizeSupervisedSegmenter(keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)))
    with pytest.raises(KerasweakError, match="num_samples"):
        models.SizeSupervisedSegmenter(models.build_unet(1, base_filters=2), num_samples=0)
