import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasweak import losses, models
from kerasweak.data import sample_keypoints, synthetic_patches


@pytest.mark.parametrize("height,width", [(16, 16), (32, 48), (80, 64)])
def test_unet_keeps_any_multiple_of_16(height, width):
    unet = models.build_unet(3, base_filters=2)
    out = unet(np.zeros((1, height, width, 3), "float32"))
    assert out.shape == (1, height, width, 3)
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_only_a_reflect_padded_unet_sees_no_border_in_a_constant_image(padding):
    """The issue-33 stripe needs a network that knows where its input ends: zero padding tells it, reflect does not.

    On a constant image every contracting-path feature is constant when each 3×3
    convolution sees mirrored image at the edge; with zeros the edge pixels differ.
    """
    keras.utils.set_random_seed(0)
    unet = models.build_unet(3, base_filters=4, padding=padding)
    encoder = keras.Model(unet.input, unet.get_layer("bottleneck_conv2").output)
    features = np.asarray(encoder(np.full((1, 64, 48, 3), 200, "float32")))
    spread = np.abs(features - features[:, 1:2, 1:2]).max()
    if padding == "reflect":
        assert spread < 1e-5
    else:
        assert spread > 1e-3


def test_a_reflect_padded_unet_has_the_zero_padded_ones_weights_and_survives_a_keras_round_trip(tmp_path):
    zeros, reflect = (models.build_unet(3, base_filters=2, padding=p) for p in ("zeros", "reflect"))
    assert reflect.count_params() == zeros.count_params()
    reflect.save(tmp_path / "reflect.keras")
    restored = keras.saving.load_model(tmp_path / "reflect.keras")
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3)).astype("float32")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), reflect.predict(x, verbose=0))
    with pytest.raises(ValueError, match="padding"):
        models.build_unet(3, padding="same")


def test_unet_binary_output_is_one_sigmoid_channel():
    unet = models.build_unet(1, base_filters=2, channels=1)
    assert unet.layers[-1].get_config()["activation"] == "sigmoid"
    out = np.asarray(unet(np.full((2, 32, 32, 1), 128, "float32")))
    assert out.shape == (2, 32, 32, 1) and ((out > 0) & (out < 1)).all()


def test_unet_follows_the_paper_architecture():
    unet = models.build_unet(6, base_filters=4)
    names = [layer.name for layer in unet.layers]
    assert sum(n.startswith("down") and "conv" in n for n in names) == 8
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in unet.layers) == 4
    assert sum(isinstance(layer, keras.layers.Concatenate) for layer in unet.layers) == 4
    assert sum(n.startswith("up") and "conv" in n and isinstance(unet.get_layer(n), keras.layers.Conv2DTranspose) for n in names) == 8
    assert [unet.get_layer(f"down{i}_conv1").filters for i in range(4)] == [4, 8, 16, 32]


def _trained_spss(steps=3):
    keras.utils.set_random_seed(0)
    patches = synthetic_patches(n=16, size=32, num_classes=3)
    model = models.build_spss(models.build_unet(3, base_filters=2))
    model.compile(keras.optimizers.Adam(1e-2), losses.ProportionLoss())
    history = model.fit(patches.images.astype("float32"), patches.proportions, batch_size=8, epochs=steps, verbose=0)
    return model, patches, history


@pytest.mark.slow
def test_spss_trains_in_plain_compile_fit_and_segments_with_its_backbone():
    model, patches, history = _trained_spss(steps=8)
    assert history.history["loss"][-1] < history.history["loss"][0]
    maps = models.segmenter_of(model)(patches.images[:2].astype("float32"))
    assert maps.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(model(patches.images[:2].astype("float32")), np.mean(maps, axis=(1, 2)), rtol=1e-5)


@pytest.mark.slow
def test_keras_round_trip_gives_identical_outputs(tmp_path):
    model, patches, _ = _trained_spss()
    path = tmp_path / "spss.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = patches.images[:4].astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), restored.predict(x, verbose=0))
    assert isinstance(restored.loss, losses.ProportionLoss)


@pytest.mark.slow
def test_exported_savedmodel_maps_raw_pixels_to_class_maps_of_any_size(tmp_path):
    model, patches, _ = _trained_spss()
    segmenter = models.segmenter_of(model)
    segmenter.export(str(tmp_path / "export"), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    x = np.random.default_rng(0).integers(0, 256, (1, 48, 64, 3)).astype("float32")
    np.testing.assert_allclose(loaded.serve(x), segmenter(x), rtol=1e-5, atol=1e-6)


def _trained_spss_plus(steps=3, alpha=0.5):
    keras.utils.set_random_seed(0)
    patches = synthetic_patches(n=16, size=32, num_classes=3)
    labels, weights = sample_keypoints(patches.masks, 3, k=5, seed=0)
    model = models.build_spss_plus(models.build_unet(3, base_filters=2))
    model.compile(keras.optimizers.Adam(1e-2),
                  loss={"proportions": losses.ProportionLoss(), "class_maps": losses.KeypointLoss()},
                  loss_weights={"proportions": alpha, "class_maps": 1 - alpha})
    targets = {"proportions": patches.proportions, "class_maps": losses.pack_keypoints(labels, weights)}
    history = model.fit(patches.images.astype("float32"), targets, batch_size=8, epochs=steps, verbose=0)
    return model, patches, history


@pytest.mark.slow
def test_spss_plus_trains_on_both_losses_in_plain_compile_fit():
    model, patches, history = _trained_spss_plus(steps=8)
    assert {"proportions_loss", "class_maps_loss"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert models.segmenter_of(model).name == "unet"
    x = patches.images[:2].astype("float32")
    outputs = model(x)
    np.testing.assert_allclose(outputs["class_maps"], models.segmenter_of(model)(x), rtol=1e-6)
    np.testing.assert_allclose(outputs["proportions"], np.mean(outputs["class_maps"], axis=(1, 2)), rtol=1e-5)


@pytest.mark.slow
def test_spss_plus_keras_round_trip_gives_identical_outputs(tmp_path):
    model, patches, _ = _trained_spss_plus()
    model.save(tmp_path / "spss_plus.keras")
    restored = keras.saving.load_model(tmp_path / "spss_plus.keras")
    x = patches.images[:4].astype("float32")
    before, after = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    assert set(after) == {"proportions", "class_maps"}
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
