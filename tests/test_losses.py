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


def test_proportion_loss_is_zero_at_the_target():
    target = np.array([[0.2, 0.3, 0.5]], dtype="float32")
    for form in ("mse", "kl"):
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


@pytest.mark.parametrize("loss", [losses.ProportionLoss(form="kl"), losses.PixelCrossEntropy(ignore_label=7)])
def test_losses_serialise_with_their_config(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
