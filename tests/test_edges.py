import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from kerasweak.ops import boundary_band, semantic_edges, sobel_edges


def _brute_edges(mask):
    """Section 3.3 literally: 1 unless every in-image 8-neighbour has the pixel's label."""
    height, width = mask.shape
    edges = np.zeros(mask.shape, np.int32)
    for r, c in np.ndindex(mask.shape):
        window = mask[max(r - 1, 0):min(r + 2, height), max(c - 1, 0):min(c + 2, width)]
        edges[r, c] = int((window != mask[r, c]).any())
    return edges


def _brute_band(mask, width):
    edge_pixels = np.argwhere(_brute_edges(mask))
    band = np.zeros(mask.shape, bool)
    for r, c in np.ndindex(mask.shape):
        band[r, c] = any(max(abs(r - er), abs(c - ec)) <= width - 1 for er, ec in edge_pixels)
    return band


def test_square_has_a_two_pixel_ring_and_the_border_is_not_an_edge():
    mask = np.zeros((5, 6), np.uint8)
    mask[1:3, 2:4] = 1
    expected = np.array([[0, 1, 1, 1, 1, 0],
                         [0, 1, 1, 1, 1, 0],
                         [0, 1, 1, 1, 1, 0],
                         [0, 1, 1, 1, 1, 0],
                         [0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(semantic_edges(mask[None])[0], expected)


def test_constant_split_checkerboard_and_ignore_label():
    constant = np.full((4, 4), 3)
    split = np.repeat([[0, 0, 1, 1]], 4, axis=0)
    checkerboard = np.indices((4, 4)).sum(axis=0) % 2
    ignored = np.zeros((4, 4), int)
    ignored[3, 3] = 255  # an unlabelled pixel is a region of its own
    got = semantic_edges(np.stack([constant, split, checkerboard, ignored])).numpy()
    np.testing.assert_array_equal(got[0], 0)
    np.testing.assert_array_equal(got[1], np.repeat([[0, 1, 1, 0]], 4, axis=0))
    np.testing.assert_array_equal(got[2], 1)
    expected = np.zeros((4, 4), int)
    expected[2:, 2:] = 1
    np.testing.assert_array_equal(got[3], expected)


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 3)))
def test_semantic_edges_match_the_definition(masks):
    got = semantic_edges(masks).numpy()
    for mask, edges in zip(masks, got):
        np.testing.assert_array_equal(edges, _brute_edges(mask))


def test_boundary_band_is_within_width_minus_one_of_an_edge():
    blocks = np.random.default_rng(0).integers(0, 3, (2, 3, 4))
    masks = np.repeat(np.repeat(blocks, 3, axis=1), 3, axis=2)[:, :, :11]  # 3x3 blocks, 9x11
    for width in (1, 2, 4):
        got = boundary_band(masks, width).numpy()
        for mask, band in zip(masks, got):
            np.testing.assert_array_equal(band, _brute_band(mask, width))
    np.testing.assert_array_equal(boundary_band(masks, 1), semantic_edges(masks).numpy() > 0)
    with pytest.raises(ValueError, match=">= 1"):
        boundary_band(masks, 0)


def test_sobel_edges_are_the_per_channel_gradient_magnitude():
    maps = np.random.default_rng(1).random((2, 7, 8, 3)).astype("float32")
    got = sobel_edges(maps).numpy()
    for b, c in np.ndindex(2, 3):
        channel = maps[b, :, :, c].astype(np.float64)
        gy, gx = ndimage.sobel(channel, axis=0, mode="mirror"), ndimage.sobel(channel, axis=1, mode="mirror")
        np.testing.assert_allclose(got[b, :, :, c], np.hypot(gy, gx), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sobel_edges(np.ones((1, 4, 4, 2))), 1e-6, rtol=1e-3)


def test_sobel_edges_equal_tf_image_sobel_edges():
    """The keras.ops depthwise convolution reproduces TensorFlow's own Sobel op, reflect padding included."""
    tf = pytest.importorskip("tensorflow")
    maps = np.random.default_rng(2).random((2, 6, 9, 4)).astype("float32")
    gradients = tf.image.sobel_edges(tf.constant(maps))
    expected = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=-1) + 1e-12).numpy()
    np.testing.assert_allclose(sobel_edges(maps), expected, rtol=1e-6, atol=1e-6)
