"""The tf.data input pipeline shared by every method."""

import numpy as np
import tensorflow as tf


def make_dataset(images, targets, batch_size=16, shuffle=False, seed=0):
    """Batches of (float32 raw-pixel images, targets), cached, shuffled, prefetched.

    `targets` is an array or a tuple/dict of arrays with the same first axis.
    Images stay in their raw 0-255 range: the models normalise them themselves.
    """
    data = tf.data.Dataset.from_tensor_slices((images, targets))
    data = data.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_batches(images, batch_size=16):
    """Yield float32 image batches for inference without building a tf.data graph."""
    for start in range(0, len(images), batch_size):
        yield np.asarray(images[start:start + batch_size], dtype=np.float32)
