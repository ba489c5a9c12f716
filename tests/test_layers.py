import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.layers import CoarseStart, EdgeAwareSmoothness, ProportionHead, ReflectPadding2D, edge_aware_smoothness
from kerasweak.losses import ProportionLoss
from kerasweak.models import build_spss, build_unet, segmenter_of


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_proportion_head_is_the_spatial_mean(batch, height, width, classes, seed):
    maps = np.random.default_rng(seed).random((batch, height, width, classes)).astype("float32")
    np.testing.assert_allclose(ProportionHead()(maps), maps.mean(axis=(1, 2)), rtol=1e-5)


def test_proportions_of_softmax_maps_sum_to_one():
    logits = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    props = ProportionHead()(keras.ops.softmax(logits))
    np.testing.assert_allclose(np.sum(props, axis=-1), 1.0, rtol=1e-5)


def test_proportion_head_serialises():
    layer = ProportionHead(name="p")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, ProportionHead) and restored.name == "p"


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_reflect_padding_matches_numpy_reflect(height, width, pad, seed):
    pad = min(pad, height - 1, width - 1)  # numpy's "reflect" needs pad < size, as TensorFlow's does
    x = np.random.default_rng(seed).random((2, height, width, 3)).astype("float32")
    layer = ReflectPadding2D(pad)
    out = np.asarray(layer(x))
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect"))
    assert layer.compute_output_shape(x.shape) == out.shape
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, ReflectPadding2D) and restored.width == pad


def _mean_pooled(images, factor):
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


@pytest.mark.parametrize("factor", [2, 4])
def test_coarse_start_pools_the_first_training_calls_only(factor):
    images = np.random.default_rng(factor).random((2, 16, 24, 3)).astype("float32")
    layer = CoarseStart(factor, steps=2)
    np.testing.assert_array_equal(layer(images), images)  # inference: full size, counts nothing
    for _ in range(2):
        np.testing.assert_allclose(layer(images, training=True), _mean_pooled(images, factor), rtol=1e-6)
    np.testing.assert_array_equal(layer(images, training=True), images)
    assert int(layer.step.numpy()) == 3
    np.testing.assert_array_equal(CoarseStart(factor, steps=0)(images, training=True), images)  # 0 = off
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert (restored.factor, restored.steps) == (factor, 2)


def test_an_spss_model_with_a_coarse_start_trains_its_first_steps_on_pooled_images():
    """The loss of a coarse step is the proportion MSE of the segmenter run on the 2×-pooled batch (by hand)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 64, 32, 3)).astype("float32")
    targets = rng.dirichlet(np.ones(3), 4).astype("float32")
    model = build_spss(build_unet(3, base_filters=2), coarse={"factor": 2, "steps": 1})
    model.compile(keras.optimizers.SGD(0.0), ProportionLoss())  # a zero rate: the weights stay those of the hand value
    segmenter = segmenter_of(model)
    for pooled in (_mean_pooled(images, 2), images):  # step 1 is coarse, step 2 full size
        expected = np.mean(np.sum((np.asarray(segmenter(pooled)).mean(axis=(1, 2)) - targets) ** 2, axis=-1))  # eq. 1
        np.testing.assert_allclose(model.train_on_batch(images, targets), expected, rtol=1e-4)
    np.testing.assert_allclose(model.predict(images, verbose=0), np.asarray(segmenter(images)).mean(axis=(1, 2)),
                               rtol=1e-5)


# A 3×3 one-channel image with a vertical edge (0 | 10) and a two-class map [1 − p, p].
EDGE_IMAGE = np.array([[0, 0, 10], [0, 0, 10], [0, 0, 10]], "float32")[None, ..., None]
EDGE_P = np.array([[0, 0, 1], [0, 0, 1], [0, 1, 1]], "float32")[None, ..., None]
EDGE_MAPS = np.concatenate([1 - EDGE_P, EDGE_P], axis=-1)


def test_edge_aware_smoothness_matches_a_hand_computed_3x3_value():
    # σ = 10. Neighbour pairs whose class changes (each |Δ|₁ = 2 over the two classes):
    # right (0,1)-(0,2) and (1,1)-(1,2) across the edge, ‖ΔI‖² = 100: weight exp(-100 / 200) each;
    # right (2,0)-(2,1) and down (1,1)-(2,1) within the flat region: weight 1 each. Over 9 pixels.
    expected = 2 * (2 * np.exp(-0.5) + 2) / 9
    np.testing.assert_allclose(edge_aware_smoothness(EDGE_IMAGE, EDGE_MAPS, 10.0), [expected], rtol=1e-6)
    layer = EdgeAwareSmoothness(0.5, sigma=10.0)
    np.testing.assert_array_equal(layer(EDGE_IMAGE, EDGE_MAPS), EDGE_MAPS)  # the maps pass through
    assert float(layer.losses[0]) == pytest.approx(0.5 * expected, rel=1e-6)


def test_edge_aware_smoothness_is_zero_for_constant_maps():
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    maps = np.broadcast_to(np.array([0.2, 0.3, 0.5], "float32"), (2, 5, 4, 3))
    np.testing.assert_allclose(edge_aware_smoothness(images, maps, 15.0), [0.0, 0.0], atol=0)


def test_an_spss_model_with_the_smoothness_prior_adds_its_loss_and_survives_a_keras_round_trip(tmp_path):
    model = build_spss(build_unet(3, base_filters=4), smoothness={"weight": 0.25, "sigma": 12.0})
    images = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "spss.keras")
    restored = keras.saving.load_model(tmp_path / "spss.keras")
    layer = restored.get_layer("smoothness")
    assert isinstance(layer, EdgeAwareSmoothness) and (layer.weight, layer.sigma) == (0.25, 12.0)
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5)
    class_maps = segmenter_of(restored)(images)
    expected = 0.25 * np.mean(edge_aware_smoothness(images, class_maps, 12.0))
    proportions = restored(images)  # records the prior's loss, which fit adds to the compiled ones
    restored.compile(loss=ProportionLoss())
    assert len(restored.losses) == 1 and float(restored.losses[0]) == pytest.approx(float(expected), rel=1e-5)
    assert float(restored.compute_loss(images, np.full((2, 3), 1 / 3, "float32"), proportions)) > float(expected)
