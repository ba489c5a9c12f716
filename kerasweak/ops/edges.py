"""Semantic edges of label masks and Sobel edges of class maps (SEMEDA, section 3.3 and 4.1), in the TF graph.

Border convention: pixels outside the image are not neighbours. A pixel is an
edge when some in-image pixel of its 3×3 window has another label; this equals
replicate padding, so the image border alone never makes an edge. The SEMEDA
network pads the same way (see `kerasweak.layers.SemedaNet`).
"""

import tensorflow as tf


def _window_max(x, radius):
    """Max over the (2r+1)×(2r+1) window of each pixel of a (B, H, W) float map, in-image pixels only."""
    side = 2 * radius + 1
    return tf.nn.max_pool2d(x[..., None], side, 1, "SAME")[..., 0]


def semantic_edges(labels):
    """(B, H, W) int32: 1 where the 8 neighbours of a pixel are not all of its own label (section 3.3), else 0.

    Every label value counts as a region, an ignore label too, so the rim of an
    unlabelled area is an edge. A pixel is an edge exactly when its 3×3 window's
    maximum and minimum labels differ.
    """
    x = tf.cast(labels, tf.float32)
    return tf.cast(_window_max(x, 1) != -_window_max(-x, 1), tf.int32)


def boundary_band(labels, width):
    """(B, H, W) bool: pixels within chessboard distance width - 1 of a semantic edge, for width ≥ 1.

    Semantic edges lie on both sides of a boundary between two regions, so the
    band holds `width` pixels on each side of it; width 1 is the edge map itself,
    the paper's 1-pixel trimap (Fig. 4).
    """
    if width < 1:
        raise ValueError(f"band width must be >= 1, got {width}")
    return _window_max(tf.cast(semantic_edges(labels), tf.float32), width - 1) > 0


def sobel_edges(maps):
    """(B, H, W, C) float32: per-channel Sobel gradient magnitude sqrt(gy² + gx² + 1e-12).

    tf.image.sobel_edges pads by reflection, so the gradient across the image
    border is 0 on the outermost pixels. The 1e-12 keeps the gradient of the magnitude finite where a map
    is flat; it is the same on both sides of an L1 difference, so it cancels there.
    """
    gradients = tf.image.sobel_edges(tf.cast(maps, tf.float32))
    return tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=-1) + 1e-12)
