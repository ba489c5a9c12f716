"""Label-preserving augmentation and mosaics (tf.data transforms on (image, label) pairs).

A patch's class proportions are unchanged by flips, 90° rotations and colour
jitter, so these augment SPSS without touching its labels; `flip_rotate` moves
spatial labels (masks, keypoint maps) with the image, so it serves every method.
A k×k mosaic of equal-sized patches has, as its proportions, the mean of theirs
(each patch is 1/k² of its area; exact when every pixel of the patches is
labelled, as the proportions then count every pixel). `flip_with_mask` flips an
image and its mask together (the object-size paper's pre-training).
"""

import tensorflow as tf

AUGMENTATIONS = ("flip_rotate", "colour")  # the ones that keep every label exact, offered by recipes
COLOUR_JITTER = 0.1  # ± fraction for brightness (of 255) and contrast


def flip_rotate(image, label):
    """One of the 8 flips/rotations of the square, uniformly: a random 90° rotation, then a random mirror.

    `label` is a tensor or a dict/tuple of them; each spatial one ((H, W) or
    (H, W, K): a mask, a keypoint map) gets the image's transform, and the
    others (proportion vectors) stay as they are.
    """
    turns = tf.random.uniform([], 0, 4, dtype=tf.int32)
    mirror = tf.random.uniform([]) < 0.5

    def move(x):
        x = tf.image.rot90(x, turns)
        return tf.cond(mirror, lambda: tf.reverse(x, [1]), lambda: x)

    def move_label(y):
        if y.shape.rank == 2:
            return move(y[..., None])[..., 0]
        return move(y) if y.shape.rank == 3 else y

    return move(image), tf.nest.map_structure(move_label, label)


def colour(image, proportions):
    """Random brightness and contrast of raw 0-255 pixels, clipped to 0-255."""
    image = tf.image.random_brightness(image, COLOUR_JITTER * 255.0)
    image = tf.image.random_contrast(image, 1.0 - COLOUR_JITTER, 1.0 + COLOUR_JITTER)
    return tf.clip_by_value(image, 0.0, 255.0), proportions


def flip_with_mask(image, mask):
    """Flip image and mask together, horizontally and vertically, each with probability 1/2 (the object-size paper's augmentation)."""
    coins = tf.random.uniform([2]) < 0.5
    for axis, coin in ((1, coins[0]), (0, coins[1])):
        image, mask = tf.cond(coin, lambda: (tf.reverse(image, [axis]), tf.reverse(mask, [axis])), lambda: (image, mask))
    return image, mask


TRANSFORMS = {"flip_rotate": flip_rotate, "colour": colour, "flip_with_mask": flip_with_mask}


def augmenter(names):
    """(image, label) -> (image, label) applying the named transforms (TRANSFORMS) in order."""
    unknown = sorted(set(names) - set(TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; known: {', '.join(TRANSFORMS)}")
    transforms = [TRANSFORMS[name] for name in names]

    def apply(image, proportions):
        for transform in transforms:
            image, proportions = transform(image, proportions)
        return image, proportions

    return apply


def mosaic(k):
    """(k², H, W, C) images and (k², C) proportions -> one (kH, kW, C) mosaic, row by row, and their mean proportions."""

    def tile(images, proportions):
        rows = [tf.concat([images[r * k + c] for c in range(k)], axis=1) for r in range(k)]
        return tf.concat(rows, axis=0), tf.reduce_mean(proportions, axis=0)

    return tile
