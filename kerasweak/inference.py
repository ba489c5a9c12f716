"""Use an exported kerasweak model: load it, segment whole images, evaluate it."""

import json
from pathlib import Path

import numpy as np

from .data import read_image
from .errors import KerasweakError
from .evaluation import evaluate_patches, predict_tiled
from .io import atomic_path


def load_export(path, expected_methods=None):
    """(predict_fn, metadata) of a SavedModel written by a kerasweak recipe."""
    import tensorflow as tf

    path = Path(path)
    meta_path = path / "kerasweak.json"
    if not meta_path.is_file():
        raise KerasweakError("not a kerasweak model folder (no kerasweak.json)", path)
    metadata = json.loads(meta_path.read_text())
    if expected_methods and metadata["method"] not in expected_methods:
        raise KerasweakError(f"model was trained by method {metadata['method']!r}; this command needs {' or '.join(expected_methods)}", path)
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as err:
        raise KerasweakError(f"cannot load SavedModel ({err.__class__.__name__})", path) from None
    return (lambda batch: loaded.serve(tf.constant(batch, tf.float32)).numpy()), metadata


def _colour(labels, palette):
    from .figures import colourise

    return colourise(labels, np.asarray(palette, dtype=np.uint8))


def predict_file(model_path, image_path, out, tile=448, overlap=64):
    """Segment a whole image of any size; write a colour mask to `out` and an overlay beside it."""
    import cv2

    from .metrics import labels_from_probabilities

    predict_fn, metadata = load_export(model_path)
    image = read_image(image_path, channels=metadata["channels"])
    probabilities = predict_tiled(predict_fn, image, metadata["num_outputs"], tile, overlap)
    mask = _colour(labels_from_probabilities(probabilities), metadata["palette"])
    base = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    overlay = (0.5 * base + 0.5 * mask).astype(np.uint8)
    out = Path(out)
    for path, picture in ((out, mask), (out.with_name(out.stem + "_overlay.png"), overlay)):
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp) + ".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                raise KerasweakError("cannot write PNG", path)
            Path(str(tmp) + ".png").rename(tmp)
    return out


def evaluate_export(model_path, data=None, split="test"):
    """Scores of an exported model on its recipe's test split (or on all patches)."""
    from .runner import load_patches, load_test_patches

    predict_fn, metadata = load_export(model_path)
    patches = (load_test_patches if split == "test" else load_patches)(metadata["recipe"], data)
    return evaluate_patches(predict_fn, patches)
