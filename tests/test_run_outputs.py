"""What every run shows besides its scores (issue 30 point 6): figure.png's class legend, loss.png, TensorBoard masks.

References: the class names and palette given, hand-written log.csv columns,
and the events file read back with TensorFlow's summary_iterator.
"""

import numpy as np
import tensorflow as tf
from PIL import Image

from kerasweak.data import PatchSet, make_dataset
from kerasweak.figures import class_map_figure, colourise, legend_handles, loss_curves, loss_figure
from kerasweak.models import build_spss, build_unet
from kerasweak.training import fit_stage

CLASSES = ["road", "tree", "water"]
PALETTE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)


def test_legend_handles_name_each_class_in_its_colour():
    handles = legend_handles(CLASSES, PALETTE)
    assert [handle.get_label() for handle in handles] == CLASSES
    assert np.allclose([handle.get_facecolor()[:3] for handle in handles], PALETTE / 255)


def test_figure_png_shows_the_colour_of_classes_no_panel_has(tmp_path):
    images = np.full((2, 16, 16, 3), 90, np.uint8)
    masks = np.zeros((2, 16, 16), np.uint8)  # every pixel road: tree and water are drawn in the legend only
    probabilities = np.zeros((2, 16, 16, 3), np.float32)
    probabilities[..., 0] = 1
    class_map_figure(tmp_path / "figure.png", images, masks, probabilities, CLASSES, PALETTE)
    colours = {tuple(c) for c in np.asarray(Image.open(tmp_path / "figure.png").convert("RGB")).reshape(-1, 3)}
    assert {tuple(int(v) for v in c) for c in PALETTE} <= colours


def _write_log(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(map(str, row)) for row in rows) + "\n")


def test_loss_curves_are_the_log_columns_of_every_stage_of_every_seed(tmp_path):
    _write_log(tmp_path / "seed_0" / "log.csv", [("epoch", "loss", "val_loss"), (0, 0.9, 1.1), (1, 0.5, 0.7), (2, 0.25, 0.6)])
    _write_log(tmp_path / "seed_0" / "finetune" / "log.csv", [("epoch", "loss"), (0, 3.5), (1, 2.0)])
    _write_log(tmp_path / "seed_1" / "log.csv", [("epoch", "loss", "val_loss"), (0, 0.8, 1.0), (1, 0.7, ""), (2, 0.6, 0.9)])
    assert loss_figure(tmp_path / "empty") is None
    assert loss_curves(tmp_path) == {"seed_0 loss": [(1, 0.9), (2, 0.5), (3, 0.25)],
                                     "seed_0 val_loss": [(1, 1.1), (2, 0.7), (3, 0.6)],
                                     "seed_0/finetune loss": [(1, 3.5), (2, 2.0)],
                                     "seed_1 loss": [(1, 0.8), (2, 0.7), (3, 0.6)],
                                     "seed_1 val_loss": [(1, 1.0), (3, 0.9)]}  # epoch 2 was not validated
    assert loss_figure(tmp_path) == tmp_path / "loss.png"
    assert Image.open(tmp_path / "loss.png").size[0] > 0


def _image_summaries(log_dir):
    """{tag: [(step, decoded images (N, H, W, C))]} of every image summary under `log_dir`."""
    found = {}
    for events in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    encoded = tf.make_ndarray(value.tensor)[2:]  # width, height, then one PNG per image
                    decoded = np.stack([tf.io.decode_png(png).numpy() for png in encoded])
                    found.setdefault(value.tag, []).append((event.step, decoded))
    return found


def test_tensorboard_gets_the_predicted_masks_of_three_validation_patches_each_epoch(tmp_path):
    """An SPSS model outputs proportions; the masks come from the segmenter inside it."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    masks = rng.integers(0, 3, (8, 16, 16)).astype(np.uint8)
    proportions = np.stack([(masks == c).mean(axis=(1, 2)) for c in range(3)], axis=1).astype(np.float32)
    val = PatchSet(images=images[4:], masks=masks[4:], proportions=proportions[4:], sources=["x"] * 4,
                   class_names=CLASSES, palette=PALETTE)
    model = build_spss(build_unet(3, base_filters=2, channels=3))
    model.compile(optimizer="adam", loss="mse")
    fit_stage(model, make_dataset(images[:4], proportions[:4], 4), make_dataset(val.images, val.proportions, 4),
              tmp_path, epochs=2, patience=2, verbose=0, preview=val)

    summaries = _image_summaries(tmp_path / "tensorboard" / "masks")
    assert sorted(summaries) == ["ground_truth", "input", "prediction"]
    pick = [0, 1, 3]  # evenly spaced through the 4 validation patches
    [(step, shown)] = summaries["input"]
    assert step == 0 and np.array_equal(shown, val.images[pick])
    [(step, truth)] = summaries["ground_truth"]
    assert step == 0 and np.array_equal(truth, colourise(val.masks[pick], PALETTE))
    assert [step for step, _ in summaries["prediction"]] == [0, 1]
    for _, predicted in summaries["prediction"]:
        assert predicted.shape == (3, 16, 16, 3)
        assert {tuple(c) for c in predicted.reshape(-1, 3)} <= {tuple(c) for c in PALETTE}
