"""TensorBoard mask previews: a few validation patches and the model's colour-coded masks of them, epoch by epoch.

Scalars alone do not show what a model segments; these images do, while it
trains. The patches are fixed (evenly spaced through the validation set), so
every epoch shows the same ones, and predicting 3 patches costs next to nothing.
"""

import keras
import numpy as np
import tensorflow as tf

from .figures import colourise
from .metrics import labels_from_probabilities
from .models import segmenter_of

PREVIEW_PATCHES = 3


class MaskPreviews(keras.callbacks.Callback):
    """Writes "input" and "ground_truth" (when `patches` have masks) at train begin, "prediction" at each epoch end.

    `patches` (a PatchSet, e.g. the validation part) gives the images, masks and
    palette. Predictions come from the segmenter inside the training model
    (models.segmenter_of), so methods whose model outputs proportions still show
    per-pixel masks. Steps are Keras's epoch numbers, as in its TensorBoard scalars;
    a resumed stage writes the input and ground truth again, to a new events file.
    """

    def __init__(self, log_dir, patches, count=PREVIEW_PATCHES):
        super().__init__()
        pick = np.linspace(0, len(patches) - 1, num=min(count, len(patches))).astype(int)
        self.log_dir, self.palette = str(log_dir), np.asarray(patches.palette, np.uint8)
        self.images = patches.images[pick]
        self.masks = None if patches.masks is None else patches.masks[pick]
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)
        # image summaries take 1, 3 or 4 channels; of other counts the first is shown
        shown = self.images if self.images.shape[-1] in (1, 3, 4) else self.images[..., :1]
        with self.writer.as_default():
            tf.summary.image("input", shown, step=0, max_outputs=len(shown))
            if self.masks is not None:
                tf.summary.image("ground_truth", colourise(self.masks, self.palette), step=0, max_outputs=len(shown))
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        segmenter = segmenter_of(self.model)  # its image channels: a padded SPSS model's inputs add a validity channel
        maps = segmenter(self.images[..., :segmenter.input_shape[-1]].astype(np.float32), training=False)
        labels = labels_from_probabilities(keras.ops.convert_to_numpy(keras.ops.cast(maps, "float32")))
        with self.writer.as_default():
            tf.summary.image("prediction", colourise(labels, self.palette), step=epoch, max_outputs=len(labels))
        self.writer.flush()  # a killed run keeps the epochs it finished

    def on_train_end(self, logs=None):
        self.writer.close()
