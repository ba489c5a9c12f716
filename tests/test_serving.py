"""The self-describing SavedModel (issue 30, point 5): named output, uint8 and float input, any H×W, metadata inside.

References: the Keras segmenter itself (on the edge-padded image), tf.saved_model.load, keras.layers.TFSMLayer and
`saved_model_cli show --all`.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE
from kerasweak.inference import export_segmenter, load_export
from kerasweak.models import build_unet
from kerasweak.recipe import load_recipe

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


def _metadata(num_outputs=6):
    recipe = load_recipe("dubai-spss")
    return {"method": "spss", "recipe": recipe, "dataset": recipe["dataset"], "class_names": DUBAI_CLASSES,
            "palette": DUBAI_PALETTE.tolist(), "num_outputs": num_outputs, "patch_size": 224, "channels": 3,
            "split": recipe["data"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_unet(6, base_filters=2)
    path = tmp_path_factory.mktemp("serving") / "model"
    export_segmenter(model, path, _metadata())
    return model, path


def _edge_padded(image, multiple=16):
    height, width = image.shape[1:3]
    return np.pad(image, ((0, 0), (0, -height % multiple), (0, -width % multiple), (0, 0)), mode="edge")


@pytest.mark.parametrize("height,width", [(32, 48), (100, 100), (17, 5)])
def test_serve_names_its_output_and_takes_any_size_as_uint8_or_float(exported, height, width):
    model, path = exported
    loaded = tf.saved_model.load(str(path))
    image = np.random.default_rng(height).integers(0, 256, (2, height, width, 3)).astype(np.uint8)
    expected = np.asarray(model(_edge_padded(image).astype("float32")))[:, :height, :width]
    as_float = loaded.signatures["serving_default"](images=tf.constant(image, tf.float32))
    assert list(as_float) == ["probabilities"]
    np.testing.assert_allclose(as_float["probabilities"], expected, atol=1e-5)
    as_uint8 = loaded.signatures["serve_uint8"](images=tf.constant(image))["probabilities"]
    np.testing.assert_allclose(as_uint8, expected, atol=1e-5)


def test_metadata_signature_describes_the_classes_and_the_working_scale(exported):
    _, path = exported
    described = tf.saved_model.load(str(path)).signatures["metadata"]()
    assert [name.decode() for name in described["class_names"].numpy()] == DUBAI_CLASSES
    np.testing.assert_array_equal(described["palette"], DUBAI_PALETTE)
    assert int(described["channels"]) == 3 and int(described["num_outputs"]) == 6
    assert described["patch_size"].numpy().tolist() == [224, 224]
    assert described["working_scale"].numpy().tolist() == [0, 0]  # a native-scale model
    assert json.loads(described["kerasweak_json"].numpy().decode()) == json.loads((path / "kerasweak.json").read_text())


def test_tfsm_layer_serves_the_export_inside_a_keras_model(exported):
    model, path = exported
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serve")
    image = np.random.default_rng(1).integers(0, 256, (1, 40, 24, 3)).astype("float32")
    served = layer(image)
    np.testing.assert_allclose(served["probabilities"], np.asarray(model(_edge_padded(image)))[:, :40, :24], atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not SAVED_MODEL_CLI.exists(), reason="saved_model_cli is not in this environment")
def test_saved_model_cli_shows_the_three_signatures(exported):
    _, path = exported
    shown = subprocess.run([str(SAVED_MODEL_CLI), "show", "--dir", str(path), "--all"], capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr
    for fragment in ("signature_def['serving_default']", "signature_def['serve_uint8']", "signature_def['metadata']",
                     "outputs['probabilities']", "dtype: DT_UINT8", "outputs['class_names']"):
        assert fragment in shown.stdout, fragment


def test_load_export_reads_new_exports_with_uint8_and_old_ones_with_output_0(exported, tmp_path):
    model, path = exported
    predict_fn, metadata = load_export(path)
    image = np.random.default_rng(2).integers(0, 256, (1, 20, 36, 3)).astype(np.uint8)
    np.testing.assert_allclose(predict_fn(image), np.asarray(model(_edge_padded(image).astype("float32")))[:, :20, :36],
                               atol=1e-5)
    old = tmp_path / "old"
    model.export(str(old), format="tf_saved_model", verbose=False)  # how kerasweak exported before: output_0, no metadata
    shutil.copy(path / "kerasweak.json", old / "kerasweak.json")
    assert "output_0" in tf.saved_model.load(str(old)).signatures["serving_default"].structured_outputs
    old_fn, _ = load_export(old)
    batch = image[:, :16, :32].astype("float32")
    np.testing.assert_allclose(old_fn(batch), np.asarray(model(batch)), atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_a_model_trained_in_mixed_bfloat16_is_exported_to_compute_in_float32(tmp_path, padding):
    """Reference: the same weights in a U-Net built under float32. The export matches it to float32 rounding,
    where the mixed_bfloat16 model itself is off by bfloat16's (a CPU without bfloat16 instructions runs that 10x slower)."""
    from kerasweak.models import build_spss, segmenter_of

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trained = build_spss(build_unet(6, base_filters=4, padding=padding))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    reference = build_unet(6, base_filters=4, padding=padding)
    reference.set_weights(segmenter_of(trained).get_weights())
    export_segmenter(trained, tmp_path / "model", _metadata())
    predict, _ = load_export(tmp_path / "model")
    images = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3)).astype(np.float32)
    expected = np.asarray(reference(images))
    assert np.abs(predict(images) - expected).max() < 1e-5
    assert np.abs(np.asarray(segmenter_of(trained)(images)) - expected).max() > 1e-4
