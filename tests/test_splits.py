"""Honest splits (kerasweak.data.splits): no source image, block of slices or volume on two sides."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweak.data import split_indices
from kerasweak.data.splits import block_split, group_split, source_groups, split_patches
from kerasweak.recipe import load_recipe

group_sizes = st.lists(st.integers(1, 12), min_size=3, max_size=40)


def _groups(sizes):
    return [f"image{g}.png" for g, size in enumerate(sizes) for _ in range(size)]


@settings(max_examples=60, deadline=None)
@given(group_sizes, st.integers(0, 5))
def test_a_split_by_group_keeps_each_group_in_one_part_and_every_patch_once(sizes, seed):
    groups = np.array(_groups(sizes))
    parts = group_split(groups, 0.2, 0.1, seed)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(groups)))  # a partition
    owners = [set(groups[index]) for index in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert len(parts[2]) > 0 and len(parts[0]) > 0  # some test and some training patches


def test_a_split_by_group_takes_about_its_fraction_and_depends_on_the_seed_only():
    groups = _groups([10] * 50)  # 50 images of 10 patches
    train, val, test = group_split(groups, 0.2, 0.1, seed=3)
    assert (len(train), len(val), len(test)) == (360, 40, 100)  # 10 test images, 4 of the other 40 for validation
    assert all(np.array_equal(a, b) for a, b in zip(group_split(groups, 0.2, 0.1, 3), (train, val, test)))
    assert not np.array_equal(group_split(groups, 0.2, 0.1, 4)[2], test)


@settings(max_examples=40, deadline=None)
@given(st.integers(12, 60), st.integers(1, 6), st.integers(0, 2), st.integers(0, 5))
def test_blocks_leave_a_gap_between_training_slices_and_held_out_ones(num_slices, patches_per_slice, gap, seed):
    slices = [f"slice{z:03d}.png" for z in range(num_slices) for _ in range(patches_per_slice)]
    train, val, test = block_split(slices, 0.2, 0.1, seed, gap=gap)
    position = lambda index: {int(slices[i][5:8]) for i in index}
    held = position(val) | position(test)
    # brute force: no training slice within `gap` slices of a held-out one
    assert all(abs(t - h) > gap for t in position(train) for h in held)
    assert not position(val) & position(test) and len(test) > 0
    assert len(set(np.concatenate([train, val, test]).tolist())) == len(train) + len(val) + len(test)


def test_volumes_group_the_slices_of_one_patient():
    sources = ["imagesTr/a.nii.gz[z=1]", "imagesTr/a.nii.gz[z=7]", "imagesTr/b.nii.gz[z=2]"]
    assert source_groups(sources, "volume") == ["imagesTr/a.nii.gz"] * 2 + ["imagesTr/b.nii.gz"]
    assert source_groups(sources, "image") == sources


def test_the_patch_rule_is_the_papers_random_split():
    sources = _groups([4] * 10)
    for got, expected in zip(split_patches(sources, "patch", 0.2, 0.1, 0), split_indices(40, 0.2, 0.1, 0)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name, rule", [("dubai-spss-tiles", "image"), ("dubai-benchmark-tiles", "image"),
                                        ("em-benchmark-blocks", "block"), ("em-spss-plus-blocks", "block"),
                                        ("hippocampus-size-volumes", "volume"), ("dubai-spss", "patch")])
def test_the_honest_split_recipes_name_their_rule(name, rule):
    assert load_recipe(name)["data"]["split"] == rule


@settings(max_examples=40, deadline=None)
@given(st.integers(10, 300), st.lists(st.integers(1, 400), min_size=1, max_size=4), st.integers(0, 5))
def test_train_patches_draws_nested_training_subsets_and_keeps_validation_and_test(count, sizes, seed):
    from kerasweak.data.registry import recipe_split
    from kerasweak.recipe import with_overrides

    recipe = with_overrides(load_recipe("dubai-spss"), {"data": {"split_seed": seed}})
    train, val, test = recipe_split(recipe, count)
    previous = set()
    for size in sorted(sizes):
        limited = recipe_split(with_overrides(recipe, {"data": {"train_patches": size}}), count)
        subset = set(limited[0].tolist())
        assert len(subset) == min(size, len(train)) and subset <= set(train.tolist()) and previous <= subset
        assert list(limited[0]) == sorted(subset)
        np.testing.assert_array_equal(limited[1], val)
        np.testing.assert_array_equal(limited[2], test)
        previous = subset
