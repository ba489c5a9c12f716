"""Object sizes from binary masks ("Learning to segment from object sizes", eq. 3-5), in the TF graph.

Masks are (B, H, W), boolean or numeric; True or any value > 0 is foreground. H and W must be static (known
when the graph is traced, as in `model.fit` on fixed-size patches); the batch
size may be dynamic. Results are exact int32.

Border convention: pixels outside the image count as background, so a foreground
pixel at row r, column c is at most min(r + 1, c + 1, H - r, W - c) from the
background. This equals scipy's `distance_transform_cdt(metric="chessboard")` or
OpenCV's `DIST_C` on the mask padded with one background pixel all round, and
keeps an all-foreground mask finite: its size is 2·⌈min(H, W) / 2⌉.

Level sets. d_i ≥ k exactly when the (2k-1)×(2k-1) square centred on pixel i lies
inside the image and is all foreground. K = ⌈min(H, W) / 2⌉ is the largest
possible distance; every op here costs O(V·K) for V = H·W pixels per mask.
"""

import tensorflow as tf


def _static_size(masks):
    height, width = masks.shape[-2], masks.shape[-1]
    if masks.shape.rank != 3 or height is None or width is None:
        raise ValueError(f"masks must be (batch, height, width) with static height and width, got {masks.shape}")
    return height, width


def _foreground(masks):
    return tf.cast(tf.cast(masks, tf.float32) > 0, tf.int32)


def _erode(x):
    """3×3 minimum of a 0/1 map, outside the image counting as 0 (background)."""
    rows = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
    x = tf.minimum(tf.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    cols = tf.pad(x, [[0, 0], [0, 0], [1, 1]])
    return tf.minimum(tf.minimum(cols[:, :, :-2], cols[:, :, 1:-1]), cols[:, :, 2:])


def _levels(foreground):
    """[L_1, ..., L_K]: L_k is 1 where d ≥ k (L_1 is the foreground, L_{k+1} = erode(L_k))."""
    height, width = _static_size(foreground)
    levels = [foreground]
    for _ in range((min(height, width) + 1) // 2 - 1):
        levels.append(_erode(levels[-1]))
    return levels


def _box_sums(x, side):
    """Sums of x over every side×side window lying inside the image, by top-left corner, via an integral image."""
    integral = tf.pad(tf.cumsum(tf.cumsum(x, axis=1), axis=2), [[0, 0], [1, 0], [1, 0]])
    return (integral[:, side:, side:] - integral[:, :-side, side:]
            - integral[:, side:, :-side] + integral[:, :-side, :-side])


def chebyshev_distance(masks):
    """(B, H, W) int32: each foreground pixel's chessboard distance to the background, 0 on background."""
    return tf.add_n(_levels(_foreground(masks)))


def _max_level(levels):
    """(B,) int32: max_i d_i, the number of non-empty level sets."""
    return tf.add_n([tf.cast(tf.reduce_any(level > 0, axis=[1, 2]), tf.int32) for level in levels])


def object_size(masks):
    """(B,) int32: the object size 2·max_i d_i (paper eq. 4-5); 0 for an empty mask."""
    return 2 * _max_level(_levels(_foreground(masks)))


def _extent(present):
    """First and last index where `present` (B, N) is true, as (B, 1) each; (N, -1) if it never is."""
    index = tf.range(tf.shape(present)[1])
    first = tf.reduce_min(tf.where(present, index, tf.shape(present)[1]), axis=1, keepdims=True)
    last = tf.reduce_max(tf.where(present, index, -1), axis=1, keepdims=True)
    return first, last


def _after_removing(levels):
    """(B, H, W): max d after flipping each foreground pixel p to background.

    d_i ≥ k survives the flip unless p lies within distance k-1 of i, so level k
    survives unless p lies in every square of radius k-1 centred on L_k: their
    intersection is the rectangle [r_max - (k-1), r_min + (k-1)] × [c_max - (k-1),
    c_min + (k-1)] built from the bounding box of L_k.
    """
    best = tf.zeros_like(levels[0])
    rows = tf.range(levels[0].shape[1])[None, :]
    cols = tf.range(levels[0].shape[2])[None, :]
    for k, level in enumerate(levels, start=1):
        r_min, r_max = _extent(tf.reduce_any(level > 0, axis=2))
        c_min, c_max = _extent(tf.reduce_any(level > 0, axis=1))
        in_rows = (rows >= r_max - (k - 1)) & (rows <= r_min + (k - 1))  # (B, H)
        in_cols = (cols >= c_max - (k - 1)) & (cols <= c_min + (k - 1))  # (B, W)
        survives = (r_max >= 0)[:, :, None] & ~(in_rows[:, :, None] & in_cols[:, None, :])
        best = tf.where(survives, k, best)
    return best


def _after_adding(background, levels):
    """(B, H, W): the largest k for which background pixel p is the only background pixel
    of some (2k-1)-square inside the image, i.e. the level that flipping p alone
    completes; 0 where there is none. Box-filter counts find the windows with exactly
    one background pixel, and a second box filter finds the pixels they cover.
    """
    best = tf.zeros_like(background)
    for k in range(1, len(levels) + 1):
        side = 2 * k - 1
        single = tf.cast(_box_sums(background, side) == 1, tf.int32)
        covered = _box_sums(tf.pad(single, [[0, 0], [side - 1, side - 1], [side - 1, side - 1]]), side) > 0
        best = tf.where(covered & (background > 0), k, best)
    return best


def flipped_object_sizes(masks):
    """(B, H, W) int32: at each pixel i, the object size g(y↓i) after flipping pixel i alone.

    Exact, without one distance transform per pixel: a foreground→background flip
    can only lower max d, a background→foreground flip can only raise it, and both
    are read off the K level sets (see `_after_removing`, `_after_adding`) in O(V·K).
    """
    foreground = _foreground(masks)
    levels = _levels(foreground)
    current = _max_level(levels)[:, None, None]
    grown = tf.maximum(current, _after_adding(1 - foreground, levels))
    return 2 * tf.where(foreground > 0, _after_removing(levels), grown)
