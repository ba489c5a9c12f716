"""Trains tiny models on one device and under MirroredStrategy with two logical CPUs; prints the figures as JSON.

Run by tests/test_distribute.py in its own process: logical devices must be set
before TensorFlow initialises its devices. Usage: python two_replica_runs.py WORKDIR
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasweak import losses, models  # noqa: E402
from kerasweak.data import make_dataset  # noqa: E402
from kerasweak.distribute import distribution_strategy  # noqa: E402
from kerasweak.runner import run_recipe  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from helpers import write_fake_dubai, write_recipe  # noqa: E402

IMAGES, SIZE, BATCH, EPOCHS, LEARNING_RATE = 8, 32, 4, 2, 1e-2


def tiny_data():
    """8 images of bright squares on noise, their masks, six-class maps, proportions, sizes; half the masks known."""
    rng = np.random.default_rng(0)
    masks = np.zeros((IMAGES, SIZE, SIZE), np.float32)
    for index in range(IMAGES):
        row, col, side = rng.integers(2, 12), rng.integers(2, 12), rng.integers(4, 16)
        masks[index, row:row + side, col:col + side] = 1
    images = np.repeat((masks * 120 + rng.integers(0, 100, masks.shape))[..., None], 3, axis=-1).astype(np.float32)
    classes = (masks + 2 * (rng.random(masks.shape) > 0.7)).astype(np.int32)  # classes 0-3 of 6
    proportions = np.stack([(classes == c).mean(axis=(1, 2)) for c in range(6)], axis=1).astype(np.float32)
    has_mask = (np.arange(IMAGES) % 2).astype(np.float32)
    sizes = {"mask": masks * has_mask[:, None, None], "size": masks.sum(axis=(1, 2)), "mask_weight": has_mask,
             "size_weight": 1 - has_mask}
    return images, {"spss": proportions, "pixel": classes, "sizes": sizes}


def build(kind, seed):
    keras.utils.set_random_seed(0)  # the same initial weights on every run
    unet = models.build_unet(1 if kind == "sizes" else 6, base_filters=4)
    if kind == "spss":
        model, loss = models.build_spss(unet), losses.ProportionLoss()
    elif kind == "pixel":
        model, loss = unet, losses.PixelCrossEntropy()
    else:
        model, loss = models.SizeSupervisedSegmenter(unet, num_samples=1, seed=seed), None
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss)
    return model


def train(kind, strategy, images, targets, seed=0):
    """Per-epoch logs and final weights of EPOCHS epochs of `kind` under `strategy`, in a fixed batch order."""
    with strategy.scope():
        model = build(kind, seed)
        history = model.fit(make_dataset(images, targets, BATCH), epochs=EPOCHS, verbose=0).history
    return history, model.get_weights()


def compare(kind, images, targets, other_seed=None):
    """Logs on one device and on two replicas, and the largest difference of their final weights.

    With `other_seed`, also the two-replica run with that noise seed, as a control.
    """
    one, one_weights = train(kind, distribution_strategy("none"), images, targets)
    figures = {"one_device": one}
    for name, seed in (("two_replicas", 0), ("other_noise", other_seed)):
        if seed is not None:
            figures[name], weights = train(kind, distribution_strategy("mirrored"), images, targets, seed)
            figures[f"{name}_max_weight_difference"] = max(float(np.max(np.abs(a - b))) for a, b in zip(one_weights, weights))
    return figures


def main(workdir):
    workdir = Path(workdir)
    images, targets = tiny_data()
    figures = {"replicas": distribution_strategy("mirrored").num_replicas_in_sync}
    for kind in ("spss", "pixel", "sizes"):
        figures[kind] = compare(kind, images, targets[kind], other_seed=1 if kind == "sizes" else None)
    recipe = write_recipe(workdir / "tiny-spss.toml", method="spss")
    run_recipe(str(recipe), data=write_fake_dubai(workdir / "data").parent, out=workdir / "out", strategy="mirrored",
               verbose=0, echo=lambda line: None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1])
