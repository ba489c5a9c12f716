"""Exported kerasweak models: write one (SavedModel plus kerasweak.json), load it, segment whole images, evaluate it."""

import json
from pathlib import Path

import numpy as np

from .data import get_dataset, read_image, read_patches, read_test_patches
from .errors import KerasweakError
from .evaluation import evaluate_patches, predict_tiled
from .io import atomic_path, check_writable
from .models import segmenter_of
from .recipe import normalise_recipe

METADATA_KEYS = ("method", "recipe", "dataset", "class_names", "palette", "num_outputs", "channels")


def export_metadata(recipe, patches, model, class_bias=None):
    """What `predict` and `evaluate` need to use an exported model on its own; `class_bias` if [evaluation] calibrate fitted one."""
    calibration = {} if class_bias is None else {"class_bias": list(class_bias)}
    return {**calibration, "method": recipe["method"], "recipe": recipe, "dataset": recipe["dataset"],
            "class_names": patches.class_names, "palette": np.asarray(patches.palette).tolist(),
            "num_outputs": int(segmenter_of(model).output_shape[-1]),
            "patch_size": recipe["data"]["patch_size"], "channels": int(patches.images.shape[-1]),
            "split": recipe["data"], "input": "raw pixel values 0-255, float32, (batch, H, W, channels), H and W multiples of 16"}


def export_segmenter(model, path, metadata):
    """Export the segmenter as a SavedModel with kerasweak.json beside it, atomically."""
    with atomic_path(path) as tmp:
        segmenter_of(model).export(str(tmp), format="tf_saved_model", verbose=False)
        (Path(tmp) / "kerasweak.json").write_text(json.dumps(metadata, indent=2))


def load_export(path):
    """(predict_fn, metadata) of a SavedModel written by a kerasweak recipe."""
    import tensorflow as tf

    path = Path(path)
    meta_path = path / "kerasweak.json"
    if not meta_path.is_file():
        raise KerasweakError("not a kerasweak model folder (no kerasweak.json)", path)
    try:
        metadata = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KerasweakError(f"kerasweak.json is not valid JSON ({err})", path) from None
    missing = [key for key in METADATA_KEYS if key not in metadata] if isinstance(metadata, dict) else list(METADATA_KEYS)
    if missing:
        raise KerasweakError(f"kerasweak.json lacks {', '.join(missing)}; export the model again with this kerasweak", path)
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as err:
        raise KerasweakError(f"cannot load SavedModel ({err.__class__.__name__})", path) from None
    return (lambda batch: loaded.serve(tf.constant(batch, tf.float32)).numpy()), metadata


def _colour(labels, palette):
    from .figures import colourise

    return colourise(labels, np.asarray(palette, dtype=np.uint8))


def predict_file(model_path, image_path, out, tile=448, overlap=64):
    """Segment a whole image of any size; write a colour mask to `out` and an overlay beside it.

    A model exported with a class bias ([evaluation] calibrate) is cut with it.
    """
    import cv2

    from .metrics import labels_from_probabilities

    out = Path(out)
    if out.is_dir():
        raise KerasweakError("is a folder; --out takes the name of the PNG to write", out)
    check_writable(out.parent)
    predict_fn, metadata = load_export(model_path)
    image = read_image(image_path, channels=metadata["channels"])
    probabilities = predict_tiled(predict_fn, image, metadata["num_outputs"], tile, overlap)
    mask = _colour(labels_from_probabilities(probabilities, metadata.get("class_bias")), metadata["palette"])
    base = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    overlay = (0.5 * base + 0.5 * mask).astype(np.uint8)
    for path, picture in ((out, mask), (out.with_name(out.stem + "_overlay.png"), overlay)):
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp) + ".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                raise KerasweakError("cannot write PNG", path)
            Path(str(tmp) + ".png").rename(tmp)
    return out


def evaluate_export(model_path, data=None, split="test"):
    """Scores of an exported model on its recipe's test split (or on all patches).

    They include the E-measure and trimap mIoU when the recipe's [evaluation]
    section (kept in kerasweak.json) asks for them, as the run reported them, and
    "calibrated" scores when the export carries a class bias.
    """
    predict_fn, metadata = load_export(model_path)
    if not get_dataset(metadata["dataset"], model_path).has_masks:
        raise KerasweakError(f"model was trained on {metadata['dataset']} data, which has no masks to score it against",
                             model_path)
    recipe = normalise_recipe(metadata["recipe"], model_path, stored=True)
    evaluation = recipe["evaluation"]
    patches = (read_test_patches if split == "test" else read_patches)(recipe, data)
    return evaluate_patches(predict_fn, patches, e_measure=evaluation["e_measure"], trimap_widths=evaluation["trimap_widths"],
                            class_bias=metadata.get("class_bias"))
