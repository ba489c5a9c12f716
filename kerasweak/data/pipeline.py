"""The tf.data input pipeline shared by every method."""

import keras
import numpy as np
import tensorflow as tf

from .augment import augmenter
from .augment import mosaic as tile_mosaic
from .lazy import LazyPatches


class EpochCounter(keras.callbacks.Callback):
    """The epoch `fit` is in, as a variable the input pipeline reads (see `shuffle_by_epoch`)."""

    def __init__(self):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


def epoch_order(size, seed, epoch):
    """Dataset of the indices 0..size-1 in an order fixed by (seed, epoch) alone.

    `epoch` is a variable read as each epoch starts (an EpochCounter's). A run
    resumed at epoch k (kerasweak.backup) then sees the batches an uninterrupted
    run sees at epoch k, which `Dataset.shuffle`'s reshuffling (counted from the
    dataset's creation) would not give. Stateless, so it also runs under op determinism.
    """
    return tf.data.Dataset.from_tensors(0).flat_map(lambda _: tf.data.Dataset.from_tensor_slices(
        tf.random.experimental.stateless_shuffle(tf.range(size), seed=tf.stack([tf.constant(seed, tf.int64), epoch.read_value()]))))


def shuffle_by_epoch(elements, seed, epoch):
    """Dataset of the slices of `elements` (arrays with one first axis) in `epoch_order`."""
    elements = tf.nest.map_structure(tf.convert_to_tensor, elements)
    size = int(tf.nest.flatten(elements)[0].shape[0])
    data = epoch_order(size, seed, epoch).map(lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), elements),
                                              num_parallel_calls=tf.data.AUTOTUNE)
    return data.apply(tf.data.experimental.assert_cardinality(size))


def is_lazy(elements):
    """Whether any array of a nested structure (tuple, dict) is a LazyPatches (decoded on access)."""
    return any(isinstance(array, LazyPatches) for array in tf.nest.flatten(elements))


def indexed_elements(elements, shuffle=False, seed=0, epoch=None):
    """Dataset of the slices of `elements` drawn by index through `tf.numpy_function`, for LazyPatches arrays.

    Nothing is converted to a tensor up front, so memory holds the patches in
    flight, not the data set. The order is make_dataset's in-memory one: by
    `epoch_order` with `epoch`, else a shuffle of every index with `seed`, else as stored.
    """
    arrays = tf.nest.flatten(elements)
    size = len(arrays[0])
    if shuffle and epoch is not None:
        order = epoch_order(size, seed, epoch)
    else:
        order = tf.data.Dataset.range(size)
        if shuffle:
            order = order.shuffle(size, seed=seed, reshuffle_each_iteration=True)

    def fetch(i):
        return [np.asarray(array[int(i)]) for array in arrays]

    def load(i):
        values = tf.numpy_function(fetch, [i], [tf.as_dtype(array.dtype) for array in arrays], stateful=False)
        for value, array in zip(values, arrays):
            value.set_shape(array.shape[1:])
        return tf.nest.pack_sequence_as(elements, values)

    return order.map(load, num_parallel_calls=tf.data.AUTOTUNE).apply(tf.data.experimental.assert_cardinality(size))


def batch_for_replicas(data, batch_size, count):
    """`data.batch(batch_size)` for `count` elements, without a last batch too small to give every replica an element.

    Under a tf.distribute strategy each batch is split across the replicas, so a
    last batch smaller than their number leaves one empty, and on an empty batch
    TensorFlow's oneDNN convolution returns its input's channel count ("input depth
    must be evenly divisible by filter depth: 3 vs 2" in the next layer). Such a
    batch is dropped: fewer images than replicas, under a strategy only.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return data.batch(batch_size, drop_remainder=0 < count % batch_size < replicas)


def prefetched(data):
    """`data.prefetch(AUTOTUNE)` with tf.data's autotuning model switched off.

    With it on, deleting an iterator, which Keras does at the end of every
    epoch, stalls for about 11 s every few epochs while the autotune thread
    shuts down (9 of epochs 25-41 of a dubai-spss seed took 40-42 s, the
    others 30-32 s; benchmarks/epoch_stall.py measures it). The pipelines' few
    cheap maps run at tf.data's default parallelism without it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_dataset(images, targets, batch_size=16, shuffle=False, seed=0, augment=(), mosaic=1, epoch=None):
    """Batches of (float32 raw-pixel images, targets), shuffled if asked, prefetched.

    `targets` is an array or a tuple/dict of arrays with the same first axis.
    Images stay in their raw 0-255 range: the models normalise them themselves.
    Batches are `prefetched` (no tf.data autotuning, so epochs end without a stall).
    `augment` names transforms of kerasweak.data.augment (those in AUGMENTATIONS
    keep every target exact, moving spatial ones with the image; "flip_with_mask" flips mask targets along).
    For proportion targets only, `mosaic` = k > 1 tiles k×k shuffled patches into one input (see
    kerasweak.data.augment); a batch then holds max(1, batch_size // k²) mosaics,
    so a step sees about as many pixels as without, and leftover patches wait for the next epoch.
    `epoch` (an EpochCounter's variable) makes the shuffle order a function of (seed, epoch), so resuming replays it.
    Under a tf.distribute strategy, batch_size is the global batch (see batch_for_replicas).
    LazyPatches images or targets (a large generic folder) are read patch by
    patch (`indexed_elements`) in the same order, so the batches are the same.
    """
    lazy = is_lazy((images, targets))
    if lazy:
        data = indexed_elements((images, targets), shuffle, seed, epoch)
    elif shuffle and epoch is not None:
        data = shuffle_by_epoch((images, targets), seed, epoch)
    else:
        data = tf.data.Dataset.from_tensor_slices((images, targets))
    data = data.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if epoch is None and not lazy:
        data = data.cache()
        if shuffle:
            data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment:
        data = data.map(augmenter(augment), num_parallel_calls=tf.data.AUTOTUNE)
    count = len(images)
    if mosaic > 1:
        data = data.batch(mosaic * mosaic, drop_remainder=True).map(tile_mosaic(mosaic), num_parallel_calls=tf.data.AUTOTUNE)
        batch_size, count = max(1, batch_size // (mosaic * mosaic)), count // (mosaic * mosaic)
    return prefetched(batch_for_replicas(data, batch_size, count))


def predict_batches(images, batch_size=16):
    """Yield float32 image batches for inference without building a tf.data graph."""
    for start in range(0, len(images), batch_size):
        yield np.asarray(images[start:start + batch_size], dtype=np.float32)
