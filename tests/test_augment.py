"""Label-preserving augmentation and mosaics keep every label exact (kerasweak.data.augment)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kerasweak.data import make_dataset, proportions_from_masks, read_dubai
from kerasweak.data.augment import augmenter, colour, flip_rotate, mosaic
from kerasweak.errors import KerasweakError
from kerasweak.recipe import load_recipe, with_overrides
from kerasweak.runner import run_recipe
from helpers import assert_scores_match_confusion, assert_summary_of_seeds, held_out_masks

NUM_CLASSES = 4
masks_8x8 = arrays(np.uint8, (8, 8), elements=st.integers(0, NUM_CLASSES - 1))


def _dihedral(mask):
    """The 8 flips/rotations of a square mask."""
    rotations = [np.rot90(mask, k) for k in range(4)]
    return rotations + [np.fliplr(r) for r in rotations]


@settings(max_examples=25, deadline=None)
@given(masks_8x8, st.integers(0, 2**31 - 1))
def test_flip_rotate_is_a_symmetry_of_the_square_and_keeps_proportions(mask, seed):
    tf.random.set_seed(seed)
    proportions = proportions_from_masks(mask[None], NUM_CLASSES)[0]
    image, kept = flip_rotate(tf.constant(mask[..., None]), tf.constant(proportions))
    moved = image.numpy()[..., 0]
    assert any(np.array_equal(moved, candidate) for candidate in _dihedral(mask))
    np.testing.assert_array_equal(kept.numpy(), proportions)
    np.testing.assert_array_equal(proportions_from_masks(moved[None], NUM_CLASSES)[0], proportions)


def test_flip_rotate_reaches_all_eight_symmetries():
    mask = np.arange(16, dtype=np.uint8).reshape(4, 4)[..., None]
    tf.random.set_seed(0)
    seen = {flip_rotate(tf.constant(mask), tf.zeros(1))[0].numpy().tobytes() for _ in range(200)}
    assert len(seen) == 8


@settings(max_examples=25, deadline=None)
@given(masks_8x8, st.integers(0, 2**31 - 1))
def test_flip_rotate_moves_masks_and_keypoint_maps_with_the_image(mask, seed):
    tf.random.set_seed(seed)
    keypoints = np.stack([mask == 1, mask == 2, mask > 0, mask < 3], axis=-1).astype(np.uint8)  # (H, W, 2C), C = 2
    proportions = proportions_from_masks(mask[None], NUM_CLASSES)[0]
    image, labels = flip_rotate(tf.constant(mask[..., None].astype(np.float32)),
                                {"mask": tf.constant(mask), "class_maps": tf.constant(keypoints),
                                 "proportions": tf.constant(proportions)})
    moved = image.numpy()[..., 0].astype(np.uint8)
    assert any(np.array_equal(moved, candidate) for candidate in _dihedral(mask))
    np.testing.assert_array_equal(labels["mask"].numpy(), moved)
    np.testing.assert_array_equal(labels["class_maps"].numpy(),
                                  np.stack([moved == 1, moved == 2, moved > 0, moved < 3], axis=-1).astype(np.uint8))
    np.testing.assert_array_equal(labels["proportions"].numpy(), proportions)


def test_make_dataset_flips_spss_plus_targets_with_their_images():
    rng = np.random.default_rng(0)
    marks = rng.integers(0, 2, (6, 8, 8, 1)).astype(np.uint8)
    keypoints = np.concatenate([marks, np.ones_like(marks)], axis=-1)  # labels, weights: (N, H, W, 2C), C = 1
    targets = {"proportions": marks.mean(axis=(1, 2)).astype(np.float32), "class_maps": keypoints}
    tf.random.set_seed(3)
    for images, labels in make_dataset(marks * 200, targets, batch_size=3, shuffle=True, augment=["flip_rotate"]):
        np.testing.assert_array_equal(labels["class_maps"].numpy()[..., 0] * 200, images.numpy()[..., 0])
        np.testing.assert_array_equal(labels["class_maps"].numpy()[..., 1], 1)


def test_augment_is_open_to_every_single_stage_method_and_mosaics_to_spss_only():
    for name in ("dubai-benchmark", "dubai-semeda", "em-spss-plus"):
        recipe = load_recipe(name)
        train = with_overrides(recipe, {"train": {"augment": ["flip_rotate"]}})["train"]
        assert (train["augment"], train["mosaic"]) == (["flip_rotate"], 1)
    plus = load_recipe("em-spss-plus")
    with pytest.raises(KerasweakError, match="needs method spss, not spss_plus"):
        with_overrides(plus, {"train": {"mosaic": 2}})


def test_colour_jitter_keeps_proportions_and_the_pixel_range():
    tf.random.set_seed(1)
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.float32))
    proportions = tf.constant([0.25, 0.75])
    jittered, kept = colour(image, proportions)
    np.testing.assert_array_equal(kept.numpy(), proportions.numpy())
    assert 0 <= jittered.numpy().min() and jittered.numpy().max() <= 255 and not np.allclose(jittered, image)


@settings(max_examples=25, deadline=None)
@given(st.lists(masks_8x8, min_size=4, max_size=4))
def test_a_mosaics_proportions_are_the_area_weighted_mean_of_its_patches(masks):
    masks = np.stack(masks)
    proportions = proportions_from_masks(masks, NUM_CLASSES)
    tiled, mean = mosaic(2)(tf.constant(masks[..., None]), tf.constant(proportions))
    tiled = tiled.numpy()[..., 0]
    np.testing.assert_array_equal(tiled[:8, :8], masks[0])
    np.testing.assert_array_equal(tiled[:8, 8:], masks[1])
    np.testing.assert_array_equal(tiled[8:, :8], masks[2])
    np.testing.assert_allclose(mean.numpy(), proportions_from_masks(tiled[None], NUM_CLASSES)[0], atol=1e-6)


def test_mosaic_batches_hold_fewer_larger_inputs_with_valid_proportions():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 16, 16, 3)).astype(np.uint8)
    proportions = rng.dirichlet(np.ones(3), 20).astype(np.float32)
    batches = list(make_dataset(images, proportions, batch_size=8, shuffle=True, augment=["flip_rotate", "colour"], mosaic=2))
    assert [tuple(x.shape) for x, _ in batches] == [(2, 32, 32, 3), (2, 32, 32, 3), (1, 32, 32, 3)]  # 5 mosaics of 4
    np.testing.assert_allclose(np.concatenate([y for _, y in batches]).sum(axis=1), 1.0, atol=1e-6)


def test_bad_augmentation_settings_are_one_line_errors():
    recipe = load_recipe("dubai-spss")
    with pytest.raises(KerasweakError, match=r"\[train\] augment item 'cutout': must be one of flip_rotate, colour"):
        with_overrides(recipe, {"train": {"augment": ["cutout"]}})
    with pytest.raises(KerasweakError, match=r"\[train\] mosaic must be >= 1, got 0"):
        with_overrides(recipe, {"train": {"mosaic": 0}})
    benchmark = load_recipe("dubai-benchmark")
    with pytest.raises(KerasweakError, match="mosaic keeps proportion labels exact, so it needs method spss, not pixel"):
        with_overrides(benchmark, {"train": {"mosaic": 2}})
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmenter(["blur"])


@pytest.mark.slow
def test_an_spss_recipe_trains_with_augmentation_and_mosaics(tmp_path, fake_dubai, tiny_recipe):
    recipe = load_recipe(str(tiny_recipe("spss")))
    recipe["train"].update(augment=["flip_rotate", "colour"], mosaic=2, epochs=1)
    results = run_recipe(recipe, data=fake_dubai, out=tmp_path / "out", verbose=0, echo=lambda *_: None)
    assert results["per_seed"][0]["epochs"] == 1
    assert_scores_match_confusion(results["per_seed"][0], held_out_masks(read_dubai(fake_dubai, patch_size=32)))
    assert_summary_of_seeds(results)
