"""Semantic edges of label masks and Sobel edges of class maps (SEMEDA, section 3.3 and 4.1), in pure keras.ops.

Border convention: pixels outside the image are not neighbours. A pixel is an
edge when some in-image pixel of its 3×3 window has another label; this equals
replicate padding, so the image border alone never makes an edge. The SEMEDA
network pads the same way (see `kerasweak.layers.SemedaNet`).
"""

import numpy as np
from keras import ops

_SOBEL_Y = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype="float32")
_SOBEL = np.stack([_SOBEL_Y, _SOBEL_Y.T], axis=-1)  # (3, 3, 2): d/dy, d/dx, as tf.image.sobel_edges


def _window_max(x, radius):
    """Max over the (2r+1)×(2r+1) window of each pixel of a (B, H, W) float map, in-image pixels only."""
    side = 2 * radius + 1
    return ops.max_pool(x[..., None], side, 1, "same")[..., 0]


def semantic_edges(labels):
    """(B, H, W) int32: 1 where the 8 neighbours of a pixel are not all of its own label (section 3.3), else 0.

    Every label value counts as a region, an ignore label too, so the rim of an
    unlabelled area is an edge. A pixel is an edge exactly when its 3×3 window's
    maximum and minimum labels differ.
    """
    x = ops.cast(labels, "float32")
    return ops.cast(ops.not_equal(_window_max(x, 1), -_window_max(-x, 1)), "int32")


def boundary_band(labels, width):
    """(B, H, W) bool: pixels within chessboard distance width - 1 of a semantic edge, for width ≥ 1.

    Semantic edges lie on both sides of a boundary between two regions, so the
    band holds `width` pixels on each side of it; width 1 is the edge map itself,
    the paper's 1-pixel trimap (Fig. 4).
    """
    if width < 1:
        raise ValueError(f"band width must be >= 1, got {width}")
    return _window_max(ops.cast(semantic_edges(labels), "float32"), width - 1) > 0


def sobel_edges(maps):
    """(B, H, W, C) float32: per-channel Sobel gradient magnitude sqrt(gy² + gx² + 1e-12).

    As tf.image.sobel_edges: a depthwise 3×3 convolution of the reflect-padded
    maps, so the gradient across the image border is 0 on the outermost pixels
    (scipy.ndimage.sobel's mode="mirror"). The 1e-12 keeps the gradient of the
    magnitude finite where a map is flat; it is the same on both sides of an L1
    difference, so it cancels there.
    """
    x = ops.cast(maps, "float32")
    channels = x.shape[-1]
    padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    gradients = ops.depthwise_conv(padded, np.tile(_SOBEL[:, :, None, :], (1, 1, channels, 1)), padding="valid")
    batch, height, width = ops.shape(gradients)[:3]
    squares = ops.sum(ops.square(ops.reshape(gradients, (batch, height, width, channels, 2))), axis=-1)
    return ops.sqrt(squares + 1e-12)
