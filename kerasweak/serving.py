"""The SavedModel serving contract: a self-describing export that TF Serving, `tf.saved_model.load` and TFSMLayer can use.

Signatures: `serve` (float32 0-255 pixels, also `serving_default`) and
`serve_uint8` (uint8 pixels), each (batch, H, W, channels) of any H×W, returning
{"probabilities": (batch, H, W, C)}; `metadata` (no inputs) returning the class
names, palette, channels, working patch size, working scale ([H, W] the
images were fitted into; [0, 0] for native scale, kerasweak.inference.working_scale)
and the whole kerasweak.json as tensors. The signatures themselves run at the
scale they are given; `kerasweak predict` applies the working scale. Inside the graph the image is padded to a multiple of 16 by repeating
its last row and column, and the output cropped back.
"""

import json

import keras
import numpy as np

MULTIPLE = 16  # the U-Net's four 2×2 poolings


def _padded(images):
    """Images (B, H, W, K) with H and W padded up to multiples of 16 by edge replication."""
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = tf.minimum(tf.range((height + MULTIPLE - 1) // MULTIPLE * MULTIPLE), height - 1)
    cols = tf.minimum(tf.range((width + MULTIPLE - 1) // MULTIPLE * MULTIPLE), width - 1)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


def write_savedmodel(segmenter, path, metadata):
    """Export `segmenter` (raw pixels -> class maps) to `path` with the signatures above; `metadata` is kerasweak.json's."""
    import tensorflow as tf

    channels = int(metadata["channels"])

    def probabilities(images):
        x = tf.cast(images, tf.float32)
        maps = segmenter(_padded(x), training=False)
        return {"probabilities": tf.cast(maps, tf.float32)[:, :tf.shape(x)[1], :tf.shape(x)[2]]}

    described = {"class_names": tf.constant(list(metadata["class_names"])),
                 "palette": tf.constant(np.asarray(metadata["palette"], np.int32)),
                 "channels": tf.constant(channels), "num_outputs": tf.constant(int(metadata["num_outputs"])),
                 "patch_size": tf.constant(_height_width(metadata.get("patch_size", 0))),
                 "working_scale": tf.constant(_height_width((metadata.get("working_scale") or {}).get("patch", 0))),
                 "kerasweak_json": tf.constant(json.dumps(metadata))}
    archive = keras.export.ExportArchive()
    archive.track(segmenter)
    for name, dtype in (("serve", tf.float32), ("serve_uint8", tf.uint8)):
        archive.add_endpoint(name, probabilities, input_signature=[tf.TensorSpec((None, None, None, channels), dtype)])
    archive.add_endpoint("metadata", lambda: dict(described), input_signature=[])
    archive.write_out(str(path), verbose=False)


def _height_width(patch_size):
    """[height, width] of a patch size given as one side or as [height, width] (0: none recorded)."""
    return np.broadcast_to(np.atleast_1d(np.asarray(patch_size, np.int32)), (2,)).copy()


def serving_fn(loaded):
    """batch (B, H, W, K) -> class maps (B, H, W, C) as numpy, for a loaded export of this or an older kerasweak.

    uint8 batches go to `serve_uint8` where there is one; older exports (output
    `output_0`, H and W multiples of 16) return their tensor directly.
    """
    import tensorflow as tf

    def predict(batch):
        batch = np.asarray(batch)
        if batch.dtype == np.uint8 and hasattr(loaded, "serve_uint8"):
            out = loaded.serve_uint8(tf.constant(batch))
        else:
            out = loaded.serve(tf.constant(batch, tf.float32))
        return np.asarray(out["probabilities"] if isinstance(out, dict) else out)
    return predict
