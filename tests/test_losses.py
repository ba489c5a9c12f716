import keras
import numpy as np
import pytest

from kerasweak import losses


def test_proportion_mse_matches_hand_computed_value():
    target = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], dtype="float32")
    predicted = np.array([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]], dtype="float32")
    # image 1: 0.0625 + 0 + 0.0625 = 0.125; image 2: 0.25 + 0.0625 + 0.0625 = 0.375; mean 0.25
    assert float(losses.ProportionLoss()(target, predicted)) == pytest.approx(0.25)


def test_proportion_kl_matches_hand_computed_value():
    target = np.array([[0.5, 0.5, 0.0]], dtype="float32")
    predicted = np.array([[0.25, 0.5, 0.25]], dtype="float32")
    expected = 0.5 * np.log(0.5 / 0.25)  # the zero-target class contributes nothing
    assert float(losses.ProportionLoss(form="kl")(target, predicted)) == pytest.approx(expected, rel=1e-5)


def test_proportion_kl_of_one_sigmoid_channel_scores_its_complement_too():
    target = np.array([[0.1]], dtype="float32")
    predicted = np.array([[0.4]], dtype="float32")
    expected = 0.1 * np.log(0.1 / 0.4) + 0.9 * np.log(0.9 / 0.6)  # binary KL of [0.9, 0.1] from [0.6, 0.4]
    assert float(losses.ProportionLoss(form="kl")(target, predicted)) == pytest.approx(expected, rel=1e-5)
    overshoot = float(losses.ProportionLoss(form="kl")(target, np.array([[0.99]], dtype="float32")))
    assert overshoot > float(losses.ProportionLoss(form="kl")(target, target)) + 1.0


def test_proportion_mse_plus_kl_is_their_sum_by_hand():
    target = np.array([[0.5, 0.5, 0.0]], dtype="float32")
    predicted = np.array([[0.25, 0.5, 0.25]], dtype="float32")
    expected = (0.0625 + 0 + 0.0625) + 0.5 * np.log(0.5 / 0.25)  # MSE + KL(target ‖ predicted)
    assert float(losses.ProportionLoss(form="mse+kl")(target, predicted)) == pytest.approx(expected, rel=1e-5)


def test_proportion_loss_is_zero_at_the_target():
    target = np.array([[0.2, 0.3, 0.5]], dtype="float32")
    for form in ("mse", "kl", "mse+kl"):
        assert float(losses.ProportionLoss(form=form)(target, target)) == pytest.approx(0.0, abs=1e-6)


def test_unknown_proportion_form_is_rejected():
    with pytest.raises(ValueError, match="form"):
        losses.ProportionLoss(form="l1")


def test_pixel_cross_entropy_matches_hand_value_and_ignores_label_255():
    probs = np.zeros((1, 1, 3, 2), dtype="float32")
    probs[0, 0] = [[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]
    labels = np.array([[[0, 1, 255]]])
    expected = -(np.log(0.8) + np.log(0.6)) / 2
    assert float(losses.PixelCrossEntropy()(labels, probs)) == pytest.approx(expected, rel=1e-5)


def test_pixel_cross_entropy_binary_sigmoid_map():
    probs = np.array([[[[0.9], [0.3]]]], dtype="float32")
    labels = np.array([[[1, 0]]])
    expected = -(np.log(0.9) + np.log(0.7)) / 2
    assert float(losses.PixelCrossEntropy()(labels, probs)) == pytest.approx(expected, rel=1e-5)


def _keypoint_target(labels, weights):
    return losses.pack_keypoints(np.asarray(labels, np.uint8), np.asarray(weights, np.uint8))


def test_keypoint_loss_matches_hand_computed_value():
    probs = np.zeros((2, 1, 3, 2), dtype="float32")
    probs[0, 0] = [[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]
    probs[1, 0] = [[0.1, 0.9], [0.9, 0.1], [0.5, 0.5]]
    labels = np.zeros((2, 1, 3, 2))
    weights = np.zeros((2, 1, 3, 2))
    weights[0, 0, [0, 2], 0] = 1  # class 0: two positive keypoints
    labels[0, 0, [0, 2], 0] = 1
    weights[0, 0, [0, 1], 1] = 1  # class 1: a negative at pixel 0, a positive at pixel 1
    labels[0, 0, 1, 1] = 1
    # image 0: class 0 (-log 0.8 - log 0.5) / 2 + class 1 (-log 0.8 - log 0.6) / 2; image 1 has no keypoints
    image0 = -(np.log(0.8) + np.log(0.5)) / 2 - (np.log(0.8) + np.log(0.6)) / 2
    assert float(losses.KeypointLoss()(_keypoint_target(labels, weights), probs)) == pytest.approx(image0 / 2, rel=1e-5)
    per_image = np.asarray(losses.keypoint_bce(_keypoint_target(labels, weights), probs))
    np.testing.assert_allclose(per_image, [image0, 0.0], rtol=1e-5)


def test_keypoint_loss_binary_sigmoid_map():
    probs = np.array([[[[0.9], [0.3], [0.5]]]], dtype="float32")
    target = _keypoint_target([[[[1], [0], [0]]]], [[[[1], [1], [0]]]])
    expected = -(np.log(0.9) + np.log(0.7)) / 2
    assert float(losses.KeypointLoss()(target, probs)) == pytest.approx(expected, rel=1e-5)


def test_keypoint_loss_is_zero_without_keypoints():
    probs = keras.ops.softmax(np.random.default_rng(0).normal(size=(3, 8, 8, 4)).astype("float32"))
    labels = np.random.default_rng(1).integers(0, 2, (3, 8, 8, 4))
    assert float(losses.KeypointLoss()(_keypoint_target(labels, np.zeros_like(labels)), probs)) == 0.0


def test_pack_keypoints_stacks_labels_then_weights():
    labels, weights = np.ones((2, 4, 4, 3)), np.zeros((2, 4, 4, 3))
    packed = losses.pack_keypoints(labels, weights)
    assert packed.shape == (2, 4, 4, 6) and packed.dtype == np.uint8
    assert (packed[..., :3] == 1).all() and (packed[..., 3:] == 0).all()
    with pytest.raises(ValueError, match="same shape"):
        losses.pack_keypoints(labels, weights[..., :2])


def test_keypoint_target_with_wrong_channel_count_is_rejected():
    with pytest.raises(ValueError, match="expected 2 x 2"):
        losses.keypoint_bce(np.zeros((1, 2, 2, 3), "float32"), np.full((1, 2, 2, 2), 0.5, "float32"))


@pytest.mark.parametrize("loss", [losses.ProportionLoss(form="kl"), losses.ProportionLoss(form="mse+kl"),
                                  losses.PixelCrossEntropy(ignore_label=7),
                                  losses.KeypointLoss(name="sk")])
def test_losses_serialise_with_their_config(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
