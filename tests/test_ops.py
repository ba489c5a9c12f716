import cv2
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

import kerasweak
from kerasweak.ops import chebyshev_distance, flipped_object_sizes, object_size


def _scipy_distance(mask):
    """Chessboard distance with outside = background: scipy on the mask padded with a background ring."""
    return ndimage.distance_transform_cdt(np.pad(mask, 1), metric="chessboard")[1:-1, 1:-1]


def _cv2_distance(mask):
    return cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_C, 3)[1:-1, 1:-1].astype(np.int32)


def _brute_size(mask):
    return 2 * int(_scipy_distance(mask).max(initial=0))


def _brute_flipped(mask):
    flipped = np.zeros(mask.shape, np.int32)
    for index in np.ndindex(mask.shape):
        changed = mask.copy()
        changed[index] = 1 - changed[index]
        flipped[index] = _brute_size(changed)
    return flipped


def _random_masks(seed=0, n=12, shape=(16, 12)):
    rng = np.random.default_rng(seed)
    masks = (rng.random((n, *shape)) < rng.random((n, 1, 1))).astype(np.uint8)
    masks[0], masks[1] = 0, 1  # empty and full
    masks[2] = 0
    masks[2, 3:13, 2:9] = 1  # one rectangle
    return masks


def test_chebyshev_distance_matches_scipy_and_opencv():
    masks = _random_masks()
    got = chebyshev_distance(masks).numpy()
    for mask, d in zip(masks, got):
        np.testing.assert_array_equal(d, _scipy_distance(mask))
        np.testing.assert_array_equal(d, _cv2_distance(mask))


def test_full_and_empty_masks_have_finite_sizes():
    masks = np.stack([np.ones((16, 12)), np.zeros((16, 12))])
    np.testing.assert_array_equal(object_size(masks), [12, 0])
    np.testing.assert_array_equal(flipped_object_sizes(masks)[0], _brute_flipped(masks[0].astype(np.uint8)))
    np.testing.assert_array_equal(flipped_object_sizes(masks)[1], np.full((16, 12), 2))
    assert np.isfinite(chebyshev_distance(masks).numpy()).all()


def test_object_size_is_twice_the_largest_distance():
    masks = _random_masks(seed=1)
    np.testing.assert_array_equal(object_size(masks), [_brute_size(m) for m in masks])


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 1)))
def test_flipped_object_sizes_equal_brute_force(mask):
    np.testing.assert_array_equal(flipped_object_sizes(mask[None]).numpy()[0], _brute_flipped(mask))


def test_flipped_object_sizes_on_dense_blobs_equal_brute_force():
    """Large solid objects with holes, where flips change the size most (random masks rarely have them)."""
    rng = np.random.default_rng(2)
    masks = np.zeros((6, 16, 16), np.uint8)
    for mask in masks:
        r, c = rng.integers(0, 4, 2)
        mask[r:r + rng.integers(6, 13), c:c + rng.integers(6, 13)] = 1
        mask[tuple(rng.integers(0, 16, (2, 2)))] = 0
    got = flipped_object_sizes(masks).numpy()
    for mask, flipped in zip(masks, got):
        np.testing.assert_array_equal(flipped, _brute_flipped(mask))


def test_ops_run_in_a_graph_with_a_dynamic_batch():
    @tf.function(input_signature=[tf.TensorSpec((None, 16, 12), tf.float32)])
    def sizes(masks):
        return object_size(masks), flipped_object_sizes(masks)

    masks = _random_masks(seed=3, n=4).astype("float32")
    size, flipped = sizes(masks)
    np.testing.assert_array_equal(size, object_size(masks))
    np.testing.assert_array_equal(flipped, flipped_object_sizes(masks))


def test_ops_need_static_height_and_width():
    @tf.function(input_signature=[tf.TensorSpec((None, None, None), tf.float32)])
    def size(masks):
        return object_size(masks)

    with pytest.raises(ValueError, match="static height and width"):
        size.get_concrete_function()


def test_ops_is_a_lazy_public_submodule():
    assert kerasweak.ops.object_size is object_size
