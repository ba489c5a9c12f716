"""Label-preserving augmentation and mosaics (tf.data transforms on (image, label) pairs).

A patch's class proportions are unchanged by flips, 90° rotations and colour
jitter, so these augment SPSS without touching its labels. A k×k mosaic of
equal-sized patches has, as its proportions, the mean of theirs (each patch is
1/k² of its area; exact when every pixel of the patches is labelled, as the
proportions then count every pixel). Both work on (image, proportions) pairs;
`flip_with_mask` flips an image and its mask together (supervised pre-training).
"""

import tensorflow as tf

AUGMENTATIONS = ("flip_rotate", "colour")  # the ones that keep proportion labels, offered by recipes
COLOUR_JITTER = 0.1  # ± fraction for brightness (of 255) and contrast


def flip_rotate(image, proportions):
    """One of the 8 flips/rotations of the square, uniformly: a random 90° rotation, then a random mirror."""
    image = tf.image.rot90(image, tf.random.uniform([], 0, 4, dtype=tf.int32))
    image = tf.cond(tf.random.uniform([]) < 0.5, lambda: tf.reverse(image, [1]), lambda: image)
    return image, proportions


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
