"""Mask-free whole images: padding left out of SPSS's pooled proportion, and exports that predict at their working scale."""

import json

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from folder_fakes import write_folder
from helpers import kerasweak
from kerasweak.data.folder import fit_whole_image, whole_image_validity
from kerasweak.models import build_spss
from kerasweak.models.spss import with_validity_channel


def _brightness_backbone():
    """Images (H, W, 1) -> two class maps [1 − x/255, x/255], so the class-1 mass is the mean brightness."""
    inputs = keras.Input((None, None, 1))
    maps = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant([[-1 / 255, 1 / 255]]),
                               bias_initializer=keras.initializers.Constant([1.0, 0.0]))(inputs)
    return keras.Model(inputs, maps, name="unet")


def test_the_pooled_proportion_ignores_the_padding(tmp_path):
    """A 100×50 image, top half class 1, fits a 64² patch as 64×32: half class 1 over the valid pixels, a quarter over all."""
    image = np.zeros((100, 50, 1), np.uint8)
    image[:50] = 255
    patch, scale = fit_whole_image(image, (64, 64))
    valid = whole_image_validity((100, 50), (64, 64))
    assert scale == 0.64 and valid.sum() == 64 * 32 and valid[:, :32].all()
    assert patch[:, 32:].max() == 0  # zero padding
    backbone = _brightness_backbone()
    padded = build_spss(backbone, validity_channel=True)
    inputs = with_validity_channel(patch[None], valid[None]).astype(np.float32)
    np.testing.assert_allclose(padded(inputs).numpy(), [[0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(build_spss(backbone)(patch[None].astype(np.float32)).numpy(), [[0.75, 0.25]], atol=1e-6)
    padded.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(reloaded(inputs).numpy(), [[0.5, 0.5]], atol=1e-6)


@pytest.mark.slow
def test_an_export_of_a_proportions_only_folder_predicts_and_evaluates_at_its_working_scale(tmp_path):
    """The export records the scale; predict on a 50×90 image gives its native size, as resizing by hand with cv2 does."""
    import tensorflow as tf

    folder = write_folder(tmp_path / "data", masks=None, proportions=True, size=(60, 30))
    out = tmp_path / "out"
    trained = kerasweak("train", "spss", folder, "--out", out, "--epochs", "1", "--patch-size", "32",
                        "--base-filters", "2", "--batch-size", "8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    metadata = json.loads((out / "model" / "kerasweak.json").read_text())
    assert metadata["working_scale"] == {"longer_side": 32, "patch": [32, 32]}
    image = np.random.default_rng(0).integers(0, 256, (90, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "tall.png")
    for fmt, name in (("probabilities", "tall.npy"), ("index", "tall_index.png")):
        result = kerasweak("predict", out / "model", tmp_path / "tall.png", "--out", tmp_path / name, "--format", fmt)
        assert result.returncode == 0, result.stderr[-3000:]
    small = cv2.resize(image, (18, 32), interpolation=cv2.INTER_AREA)  # longer side 90 -> 32, 50 -> round(17.8) = 18
    loaded = tf.saved_model.load(str(out / "model"))
    assert loaded.signatures["metadata"]()["working_scale"].numpy().tolist() == [32, 32]
    maps = loaded.serve(tf.constant(small[None], tf.float32))["probabilities"].numpy()[0]
    reference = cv2.resize(maps, (50, 90), interpolation=cv2.INTER_LINEAR)
    probabilities = np.load(tmp_path / "tall.npy")
    assert probabilities.shape == (90, 50, 3)
    np.testing.assert_allclose(probabilities, reference, atol=2e-3)
    labels = np.asarray(Image.open(tmp_path / "tall_index.png"))
    top_two = np.sort(reference, axis=-1)[..., -2:]
    clear = top_two[..., 1] - top_two[..., 0] > 1e-4
    assert labels.shape == (90, 50) and np.array_equal(labels[clear], reference.argmax(-1)[clear])
    masked = write_folder(tmp_path / "masked", masks="index", size=(60, 30))  # the same images, with their masks
    scored = kerasweak("evaluate", out / "model", "--data", masked)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert scored.stdout.startswith("mIoU ") and (out / "model_confusion_test.png").is_file()
    assert str(out / "model_confusion_test.png") in scored.stdout
