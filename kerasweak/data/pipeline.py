"""The tf.data input pipeline shared by every method."""

import numpy as np
import tensorflow as tf

from .augment import augmenter
from .augment import mosaic as tile_mosaic


def make_dataset(images, targets, batch_size=16, shuffle=False, seed=0, augment=(), mosaic=1):
    """Batches of (float32 raw-pixel images, targets), cached, shuffled, prefetched.

    `targets` is an array or a tuple/dict of arrays with the same first axis.
    Images stay in their raw 0-255 range: the models normalise them themselves.
    For proportion targets only: `augment` names label-preserving augmentations
    and `mosaic` = k > 1 tiles k×k shuffled patches into one input (see
    kerasweak.data.augment); a batch then holds max(1, batch_size // k²) mosaics,
    so a step sees about as many pixels as without, and leftover patches wait for the next epoch.
    """
    data = tf.data.Dataset.from_tensor_slices((images, targets))
    data = data.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment:
        data = data.map(augmenter(augment), num_parallel_calls=tf.data.AUTOTUNE)
    if mosaic > 1:
        data = data.batch(mosaic * mosaic, drop_remainder=True).map(tile_mosaic(mosaic), num_parallel_calls=tf.data.AUTOTUNE)
        batch_size = max(1, batch_size // (mosaic * mosaic))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_batches(images, batch_size=16):
    """Yield float32 image batches for inference without building a tf.data graph."""
    for start in range(0, len(images), batch_size):
        yield np.asarray(images[start:start + batch_size], dtype=np.float32)
